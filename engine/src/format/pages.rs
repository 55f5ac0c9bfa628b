//! Chunk-table pages, every one naming its own identity so that a
//! misdirected pointer is caught: leaves (255 entries of 16 bytes) and
//! interior pages (255 child pointers with the child's crc), 4096 bytes
//! each, and the format version 3 leaves (127 entries of 32 bytes) that
//! `migrate.rs` reads. Map nodes are in `nodes.rs`.

use super::{
    get_u32, get_u64, node_len_ok, put_u32, put_u64, CT_FANOUT, CT_LEAF_ENTRIES, PAGE_LEN,
};
use crate::error::{Error, Result};
use crate::types::{ChunkId, LogAddr, NODE_ID_BASE};

/// Leaves of 16-byte entries (format version 4; version 3's were "CTLF").
const CT_LEAF_MAGIC: u32 = u32::from_le_bytes(*b"OTLF");
const CT_INNER_MAGIC: u32 = u32::from_le_bytes(*b"CTIN");

/// One chunk-table entry: where a chunk lives, how many references it has,
/// its checksum and its stored length. On disk 16 bytes (`loc` u64, a u32
/// word, `crc` u32): the word's low 20 bits are the refcount (at most
/// [`REFCOUNT_MAX`]) and its high 12 bits a stored length under 4096, or 0
/// for 4096 bytes: for a data chunk the length of a compressed block
/// (1 to 4095), for a map node the length of a runs-encoded or packed
/// node record body (format versions 5 and 7; 0 for a dense page).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtEntry {
    /// Location: the payload for data chunks, the record for nodes;
    /// [`LogAddr::NONE`] for a node not yet written by a checkpoint.
    pub loc: LogAddr,
    /// References from map nodes and catalogue roots; 0 means free.
    pub refcount: u32,
    /// crc32 of the stored bytes (of a node: its record body).
    pub crc: u32,
    /// Stored length in bytes: a data chunk's (compressed length when
    /// compressed), a node's record body (4096 for a dense page, and for a
    /// node not written yet; less for runs and packed nodes).
    pub stored_len: u32,
    /// [`CT_FLAG_COMPRESSED`] and friends (data chunks only).
    pub flags: u32,
    /// Blocks of an extent (1 to 32; format version 6): its `loc` names
    /// its crc array, each block's crc lies in the log beside its payload,
    /// `crc` is 0 and `stored_len` counts its crcs and payloads. 0 for a
    /// one-block chunk whose crc is in the entry (format versions 4 and 5,
    /// and compressed blocks) and for map nodes.
    pub nblocks: u8,
    /// Where an extent's payloads lie ([`super::extent_block`]): 0 right
    /// after its crc array, else that many 4 KiB pages after the page
    /// holding it (format version 8, kind 12 records). 0 for the others.
    pub gap: u16,
}

/// Bit 31 of an extent entry's `loc` on disk (segment offsets stay below
/// 2³¹): marks the entry as an extent's (refcount u32, block count u8)
/// rather than a one-block chunk's (20-bit refcount, length, crc).
pub const CT_LOC_EXTENT: u64 = 1 << 31;

/// The chunk is stored zstd-compressed.
pub const CT_FLAG_COMPRESSED: u32 = 1;

/// The most references a chunk-table entry holds (20 bits; the other 12
/// of its word hold a stored length). Each is a map node (or a catalogue
/// root, or a queued reference) naming the chunk: a data chunk reaches it
/// only through a million snapshots or clones that each rewrote the leaf
/// around one same block, a map node through a million objects sharing it.
pub const REFCOUNT_MAX: u32 = (1 << 20) - 1;

/// Checks a data chunk's stored length and flags are what a chunk-table
/// entry can hold: a plain 4096-byte block, or a compressed one of 1 to
/// 4095 bytes (compression is kept only when it shrinks the block).
pub fn check_stored(stored_len: u32, flags: u32) -> Result<()> {
    let ok = match flags {
        0 => stored_len == PAGE_LEN as u32,
        CT_FLAG_COMPRESSED => (1..PAGE_LEN as u32).contains(&stored_len),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::corrupt(format!(
            "data chunk with stored length {stored_len} and flags {flags:#x}"
        )))
    }
}

/// Bytes of one leaf entry.
const CT_ENTRY_LEN: usize = 16;

impl CtEntry {
    /// True when the entry is in use.
    pub fn is_live(&self) -> bool {
        self.refcount > 0
    }

    /// The most references the entry can hold: 2³² − 1 for an extent,
    /// [`REFCOUNT_MAX`] for the others.
    pub fn max_refs(&self) -> u32 {
        if self.nblocks > 0 {
            u32::MAX
        } else {
            REFCOUNT_MAX
        }
    }

    /// Blocks of data the entry holds: an extent's, 1 for a one-block
    /// chunk (meaningless for nodes).
    pub fn blocks(&self) -> u64 {
        u64::from(self.nblocks.max(1))
    }

    /// The entry of a new extent of `nblocks` blocks whose crc array lies
    /// at `loc` and payloads where `gap` says, with `refcount` references.
    pub fn extent(loc: LogAddr, nblocks: u8, gap: u16, refcount: u32) -> CtEntry {
        CtEntry {
            loc,
            refcount,
            crc: 0,
            stored_len: (super::EXTENT_BYTES_PER_BLOCK * u64::from(nblocks)) as u32,
            flags: 0,
            nblocks,
            gap,
        }
    }

    /// Where block `k` of this extent lies: its crc and its payload
    /// ([`super::extent_block`]).
    pub fn extent_block(&self, k: u8) -> (LogAddr, LogAddr) {
        super::extent_block(self.loc, self.nblocks, self.gap, k)
    }

    /// Encodes the entry of chunk `id` into its 16 bytes.
    fn encode_into(&self, id: u64, b: &mut [u8]) {
        if self.nblocks > 0 && self.is_live() {
            // extent: loc | bit 31, refcount u32, nblocks u8, 0 u8, gap u16
            put_u64(b, 0, self.loc.0 | CT_LOC_EXTENT);
            put_u32(b, 8, self.refcount);
            put_u32(b, 12, u32::from(self.nblocks) | u32::from(self.gap) << 16);
            return;
        }
        let len = if !self.is_live() || self.stored_len >= PAGE_LEN as u32 {
            0
        } else if id >= NODE_ID_BASE || self.flags & CT_FLAG_COMPRESSED != 0 {
            self.stored_len
        } else {
            0
        };
        debug_assert!(self.refcount <= REFCOUNT_MAX, "{self:?}");
        let word = (self.refcount & REFCOUNT_MAX) | (len << 20);
        put_u64(b, 0, self.loc.0);
        put_u32(b, 8, word);
        put_u32(b, 12, self.crc);
    }

    /// Decodes the 16 bytes of chunk `id`'s entry.
    fn decode_from(id: u64, b: &[u8]) -> Result<CtEntry> {
        let (loc, word, crc) = (LogAddr(get_u64(b, 0)), get_u32(b, 8), get_u32(b, 12));
        if loc.is_none() && word == 0 && crc == 0 {
            return Ok(CtEntry::default());
        }
        if loc.0 & CT_LOC_EXTENT != 0 && id < NODE_ID_BASE {
            let (loc, n, gap) = (LogAddr(loc.0 & !CT_LOC_EXTENT), crc & 0xffff, crc >> 16);
            if loc.is_none() || word == 0 || !(1..=super::EXTENT_MAX_BLOCKS as u32).contains(&n) {
                return Err(Error::corrupt(format!(
                    "chunk-table entry of extent {id} is malformed (location {}, refcount \
                     {word}, word {n:#x})",
                    loc.0
                )));
            }
            return Ok(CtEntry::extent(loc, n as u8, gap as u16, word));
        }
        let (refcount, len) = (word & REFCOUNT_MAX, word >> 20);
        let stored_len = if len == 0 { PAGE_LEN as u32 } else { len };
        if id >= NODE_ID_BASE {
            if refcount == 0 || !node_len_ok(stored_len) {
                return Err(Error::corrupt(format!(
                    "chunk-table entry of map node {id} is malformed (location {}, word {word:#x})",
                    loc.0
                )));
            }
            return Ok(CtEntry {
                loc,
                refcount,
                crc,
                stored_len,
                flags: 0,
                nblocks: 0,
                gap: 0,
            });
        }
        if refcount == 0 || loc.is_none() {
            return Err(Error::corrupt(format!(
                "chunk-table entry of data chunk {id} is malformed (location {}, word {word:#x})",
                loc.0
            )));
        }
        Ok(CtEntry {
            loc,
            refcount,
            crc,
            stored_len,
            flags: if len == 0 { 0 } else { CT_FLAG_COMPRESSED },
            nblocks: 0,
            gap: 0,
        })
    }

    /// Bytes of the log the stored copy of chunk `id` holds, for the
    /// per-segment live-byte accounting: a data chunk's stored bytes, or a
    /// node's whole record (header and body).
    pub fn live_bytes(&self, id: ChunkId) -> u64 {
        if id.is_node() {
            (super::HEADER_LEN as u64) + u64::from(self.stored_len)
        } else {
            u64::from(self.stored_len)
        }
    }
}

/// A pointer to a chunk-table page: where its record lies and the crc32 of
/// the record's body (the 4096-byte page). Held by the parent page (or, for
/// the root, by the superblock), so a stale or misplaced copy of a page,
/// valid in itself and naming the right (level, index), is still refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtChild {
    /// The page's record; [`LogAddr::NONE`] for an all-empty page.
    pub loc: LogAddr,
    /// crc32 of the page record's body; 0 when `loc` is none.
    pub crc: u32,
}

impl CtChild {
    /// No page (an all-empty subtree).
    pub const NONE: CtChild = CtChild {
        loc: LogAddr::NONE,
        crc: 0,
    };

    /// True when `body`, read from `loc`, is the page this pointer names.
    pub fn matches(&self, body: &[u8]) -> bool {
        crc32fast::hash(body) == self.crc
    }
}

/// Bytes of one interior chunk-table entry: loc u64, crc u32, 0 u32.
const CT_CHILD_LEN: usize = 16;

/// A chunk-table page: a leaf of entries or an interior page of child
/// pointers, keyed by (level, index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CtPage {
    /// Entries for chunk ids `index*127 .. index*127+127`.
    Leaf(Box<[CtEntry; CT_LEAF_ENTRIES as usize]>),
    /// Pointers to child pages one level down.
    Inner(Box<[CtChild; CT_FANOUT as usize]>),
}

impl CtPage {
    /// An empty page for `level` (0 = leaf).
    pub fn empty(level: u8) -> Self {
        if level == 0 {
            CtPage::Leaf(Box::new([CtEntry::default(); CT_LEAF_ENTRIES as usize]))
        } else {
            CtPage::Inner(Box::new([CtChild::NONE; CT_FANOUT as usize]))
        }
    }

    /// True when every entry or child is empty (the page need not be stored).
    pub fn is_empty(&self) -> bool {
        match self {
            CtPage::Leaf(es) => es.iter().all(|e| *e == CtEntry::default()),
            CtPage::Inner(cs) => cs.iter().all(|c| c.loc.is_none()),
        }
    }

    /// Encodes the page, naming its own key.
    pub fn encode(&self, level: u8, index: u64) -> Vec<u8> {
        let mut b = vec![0u8; PAGE_LEN];
        self.encode_into(level, index, &mut b);
        b
    }

    /// Encodes the page into `b` (exactly [`PAGE_LEN`] bytes, zeroed), so
    /// a checkpoint frames it in place with no second copy.
    pub fn encode_into(&self, level: u8, index: u64, b: &mut [u8]) {
        b[4] = level;
        put_u64(b, 8, index);
        match self {
            CtPage::Leaf(es) => {
                put_u32(b, 0, CT_LEAF_MAGIC);
                for (i, e) in es.iter().enumerate() {
                    let o = 16 + CT_ENTRY_LEN * i;
                    let id = index * CT_LEAF_ENTRIES + i as u64;
                    e.encode_into(id, &mut b[o..o + CT_ENTRY_LEN]);
                }
            }
            CtPage::Inner(cs) => {
                put_u32(b, 0, CT_INNER_MAGIC);
                for (i, c) in cs.iter().enumerate() {
                    let o = 16 + CT_CHILD_LEN * i;
                    put_u64(b, o, c.loc.0);
                    put_u32(b, o + 8, c.crc);
                }
            }
        }
    }

    /// Checks the head of page bytes `b`: a page's length, naming (level,
    /// index), with the magic of its kind. What the entries hold is
    /// checked as they are read ([`CtPage::decode`], [`CtPage::leaf_entry`],
    /// [`CtPage::inner_child`]).
    pub fn check_head(b: &[u8], level: u8, index: u64) -> Result<()> {
        let what = || format!("chunk-table page (level {level}, index {index})");
        if b.len() != PAGE_LEN {
            return Err(Error::corrupt(format!("{} has length {}", what(), b.len())));
        }
        if b[4] != level || get_u64(b, 8) != index {
            return Err(Error::corrupt(format!(
                "{} holds page (level {}, index {}) (misdirected pointer)",
                what(),
                b[4],
                get_u64(b, 8)
            )));
        }
        let magic = get_u32(b, 0);
        if (level == 0 && magic == CT_LEAF_MAGIC) || (level > 0 && magic == CT_INNER_MAGIC) {
            Ok(())
        } else {
            Err(Error::corrupt(format!("{} has a bad magic", what())))
        }
    }

    /// Entry `slot` of leaf `index`, read from the leaf's bytes `b` (whose
    /// head [`CtPage::check_head`] passed) without decoding the others.
    pub fn leaf_entry(b: &[u8], index: u64, slot: usize) -> Result<CtEntry> {
        let o = 16 + CT_ENTRY_LEN * slot;
        let id = index
            .saturating_mul(CT_LEAF_ENTRIES)
            .saturating_add(slot as u64);
        CtEntry::decode_from(id, &b[o..o + CT_ENTRY_LEN])
            .map_err(|e| e.with_context(format!("chunk-table page (level 0, index {index})")))
    }

    /// Writes entry `slot` of leaf `index` into the leaf's bytes `b`, the
    /// others left as they are (the inverse of [`CtPage::leaf_entry`]).
    pub fn put_leaf_entry(b: &mut [u8], index: u64, slot: usize, e: &CtEntry) {
        let o = 16 + CT_ENTRY_LEN * slot;
        let id = index
            .saturating_mul(CT_LEAF_ENTRIES)
            .saturating_add(slot as u64);
        e.encode_into(id, &mut b[o..o + CT_ENTRY_LEN]);
    }

    /// True when the leaf's bytes `b` hold no entry (the leaf need not be
    /// stored).
    pub fn leaf_bytes_empty(b: &[u8]) -> bool {
        b[16..].iter().all(|&x| x == 0)
    }

    /// Child pointer `slot` of interior page (level, index), read from the
    /// page's bytes `b` (whose head [`CtPage::check_head`] passed).
    pub fn inner_child(b: &[u8], level: u8, index: u64, slot: usize) -> Result<CtChild> {
        let o = 16 + CT_CHILD_LEN * slot;
        let c = CtChild {
            loc: LogAddr(get_u64(b, o)),
            crc: get_u32(b, o + 8),
        };
        if get_u32(b, o + 12) != 0 || (c.loc.is_none() && c.crc != 0) {
            return Err(Error::corrupt(format!(
                "chunk-table page (level {level}, index {index}) has a malformed child entry {slot}"
            )));
        }
        Ok(c)
    }

    /// Decodes a page, checking that it is the page (level, index).
    pub fn decode(b: &[u8], level: u8, index: u64) -> Result<CtPage> {
        Self::check_head(b, level, index)?;
        if level == 0 {
            let mut es = Box::new([CtEntry::default(); CT_LEAF_ENTRIES as usize]);
            for (i, e) in es.iter_mut().enumerate() {
                *e = Self::leaf_entry(b, index, i)?;
            }
            Ok(CtPage::Leaf(es))
        } else {
            let mut cs = Box::new([CtChild::NONE; CT_FANOUT as usize]);
            for (i, c) in cs.iter_mut().enumerate() {
                *c = Self::inner_child(b, level, index, i)?;
            }
            Ok(CtPage::Inner(cs))
        }
    }
}

/// Entries of a format version 3 chunk-table leaf.
pub const V3_LEAF_ENTRIES: u64 = 127;
/// Interior levels of a format version 3 chunk table (interior pages as
/// in version 4).
pub const V3_INTERIOR_LEVELS: u8 = 5;
const V3_LEAF_MAGIC: u32 = u32::from_le_bytes(*b"CTLF");

/// Decodes a format version 3 chunk-table leaf (127 entries of 32 bytes:
/// loc u64, refcount u32, crc u32, stored_len u32, flags u32, 0 u64),
/// checking that it is leaf `index`: what `migrate.rs` reads.
pub fn decode_v3_leaf(b: &[u8], index: u64) -> Result<Vec<CtEntry>> {
    if b.len() != PAGE_LEN || get_u32(b, 0) != V3_LEAF_MAGIC || b[4] != 0 || get_u64(b, 8) != index
    {
        return Err(Error::corrupt(format!(
            "version 3 chunk-table leaf {index} has a bad header"
        )));
    }
    Ok((0..V3_LEAF_ENTRIES as usize)
        .map(|i| {
            let o = 16 + 32 * i;
            CtEntry {
                loc: LogAddr(get_u64(b, o)),
                refcount: get_u32(b, o + 8),
                crc: get_u32(b, o + 12),
                stored_len: get_u32(b, o + 16),
                flags: get_u32(b, o + 20),
                nblocks: 0,
                gap: 0,
            }
        })
        .collect())
}

/// The identity a node or chunk-table page names (its level byte and its
/// id or index), read without decoding the rest: what the cleaner needs to
/// tell whether a page record is still the live copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageKey {
    /// Level (map nodes: 0 for leaves; chunk-table pages: 0 for leaves).
    pub level: u8,
    /// A node's chunk id, a chunk-table page's index within its level.
    pub index: u64,
}

impl PageKey {
    /// Reads the identity of a page body (a chunk-table page, or a map
    /// node, dense or runs-encoded: at least its 16-byte head).
    pub fn peek(b: &[u8]) -> Result<PageKey> {
        if b.len() < 16 || b.len() > PAGE_LEN {
            return Err(Error::corrupt(format!(
                "metadata page has length {}",
                b.len()
            )));
        }
        Ok(PageKey {
            level: b[4],
            index: get_u64(b, 8),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Node, NODE_RUNS_HEAD, NODE_RUN_LEN};
    use super::*;

    #[test]
    fn ct_page_roundtrip() {
        let mut p = CtPage::empty(0);
        if let CtPage::Leaf(es) = &mut p {
            // Compressed and plain data, at the most references.
            es[3] = CtEntry {
                loc: LogAddr(99),
                refcount: REFCOUNT_MAX,
                crc: 5,
                stored_len: 4095,
                flags: CT_FLAG_COMPRESSED,
                nblocks: 0,
                gap: 0,
            };
            es[254] = CtEntry {
                loc: LogAddr(1 << 40),
                refcount: 1,
                crc: 6,
                stored_len: 4096,
                flags: 0,
                nblocks: 0,
                gap: 0,
            };
        }
        let b = p.encode(0, 12);
        assert_eq!(CtPage::decode(&b, 0, 12).unwrap(), p);
        assert!(CtPage::decode(&b, 0, 13).is_err());
        assert!(CtPage::decode(&b, 1, 12).is_err());
        // Entries are 16 bytes: the last ends the page.
        assert_eq!(get_u32(&b, 16 + 16 * 254 + 12), 6);
        // A data entry with a location but no references is refused.
        let mut bad = b.clone();
        put_u32(&mut bad, 16 + 16 * 3 + 8, 4095 << 20);
        let e = CtPage::decode(&bad, 0, 12).unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
        // Node entries hold a 20-bit refcount and their record's length
        // (0 for a dense page, and for a node not written yet).
        let leaf = NODE_ID_BASE / CT_LEAF_ENTRIES + 1;
        let mut p = CtPage::empty(0);
        let node = CtEntry {
            loc: LogAddr::NONE,
            refcount: REFCOUNT_MAX,
            crc: 0,
            stored_len: PAGE_LEN as u32,
            flags: 0,
            nblocks: 0,
            gap: 0,
        };
        let runs = CtEntry {
            loc: LogAddr(1 << 33),
            refcount: 3,
            crc: 9,
            stored_len: (NODE_RUNS_HEAD + 2 * NODE_RUN_LEN) as u32,
            flags: 0,
            nblocks: 0,
            gap: 0,
        };
        if let CtPage::Leaf(es) = &mut p {
            es[0] = node;
            es[1] = runs;
        }
        let b = p.encode(0, leaf);
        assert_eq!(CtPage::decode(&b, 0, leaf).unwrap(), p);
        assert_eq!(get_u32(&b, 16 + 8), REFCOUNT_MAX);
        assert_eq!(get_u32(&b, 16 + 16 + 8), 3 | (56 << 20));
        assert_eq!(runs.live_bytes(ChunkId::node(1)), 32 + 56);
        assert_eq!(node.live_bytes(ChunkId::node(0)), 32 + 4096);
        // A node length no encoding has is refused.
        let mut bad = b.clone();
        put_u32(&mut bad, 16 + 16 + 8, 3 | (57 << 20));
        assert!(CtPage::decode(&bad, 0, leaf).is_err());
        assert_eq!(node.max_refs(), REFCOUNT_MAX);
        // An extent entry: loc marked, full 32-bit refcount, block count.
        let ext = CtEntry::extent(LogAddr(1 << 33 | 96), 32, 0, u32::MAX);
        assert_eq!(
            (ext.max_refs(), ext.blocks(), ext.stored_len),
            (u32::MAX, 32, 32 * 4100)
        );
        let mut p = CtPage::empty(0);
        if let CtPage::Leaf(es) = &mut p {
            es[7] = ext;
        }
        let b = p.encode(0, 3);
        assert_eq!(get_u64(&b, 16 + 16 * 7), 1 << 33 | 96 | CT_LOC_EXTENT);
        assert_eq!(CtPage::decode(&b, 0, 3).unwrap(), p);
        // Bytes 14..16 hold the gap to the payloads (format version 8).
        let mut x = b.clone();
        x[16 + 16 * 7 + 15] = 1;
        match CtPage::decode(&x, 0, 3).unwrap() {
            CtPage::Leaf(es) => assert_eq!((es[7].gap, es[7].nblocks), (256, 32)),
            _ => panic!("not a leaf"),
        }
        for (at, v) in [(12, 0u8), (12, 33), (13, 1)] {
            let mut x = b.clone();
            x[16 + 16 * 7 + at] = v;
            assert!(CtPage::decode(&x, 0, 3).is_err(), "byte {at} = {v}");
        }
        let mut x = b.clone();
        put_u32(&mut x, 16 + 16 * 7 + 8, 0);
        assert!(CtPage::decode(&x, 0, 3).is_err());
        let mut p = CtPage::empty(2);
        if let CtPage::Inner(cs) = &mut p {
            cs[254] = CtChild {
                loc: LogAddr(1 << 40),
                crc: 0x1234_5678,
            };
        }
        let b = p.encode(2, 7);
        assert_eq!(b.len(), PAGE_LEN);
        assert_eq!(CtPage::decode(&b, 2, 7).unwrap(), p);
        assert!(!p.is_empty() && CtPage::empty(3).is_empty());
        // The reserved word of a child entry must be zero.
        let mut bad = b.clone();
        bad[16 + 16 * 254 + 12] = 1;
        assert!(CtPage::decode(&bad, 2, 7).is_err());
    }

    #[test]
    fn page_keys() {
        let n = Node::filled(2, ChunkId::ZERO).encode(ChunkId(41));
        assert_eq!(
            PageKey::peek(&n).unwrap(),
            PageKey {
                level: 2,
                index: 41
            }
        );
        let p = CtPage::empty(3).encode(3, 9);
        assert_eq!(PageKey::peek(&p).unwrap(), PageKey { level: 3, index: 9 });
        assert!(PageKey::peek(&p[..15]).is_err());
        assert!(PageKey::peek(&[0u8; PAGE_LEN + 1]).is_err());
        assert!(PageKey::peek(&[]).is_err());
        // A runs-encoded node is shorter than a page.
        let n = Node::filled(0, ChunkId::ZERO).encode(ChunkId(43));
        assert_eq!(n.len(), NODE_RUNS_HEAD + NODE_RUN_LEN);
        assert_eq!(
            PageKey::peek(&n).unwrap(),
            PageKey {
                level: 0,
                index: 43
            }
        );
    }

    #[test]
    fn v3_leaf() {
        let mut b = vec![0u8; PAGE_LEN];
        put_u32(&mut b, 0, V3_LEAF_MAGIC);
        put_u64(&mut b, 8, 5);
        let o = 16 + 32 * 126;
        put_u64(&mut b, o, 1 << 33);
        put_u32(&mut b, o + 8, 2);
        put_u32(&mut b, o + 16, 4096);
        let es = decode_v3_leaf(&b, 5).unwrap();
        assert_eq!(es.len(), 127);
        assert_eq!(
            (es[126].loc.0, es[126].refcount, es[126].stored_len),
            (1 << 33, 2, 4096)
        );
        assert!(es[0] == CtEntry::default());
        assert!(decode_v3_leaf(&b, 6).is_err());
        assert!(decode_v3_leaf(&b[..PAGE_LEN - 1], 5).is_err());
        // A version 4 leaf is not a version 3 one.
        assert!(decode_v3_leaf(&CtPage::empty(0).encode(0, 5), 5).is_err());
    }
}
