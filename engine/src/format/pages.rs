//! Metadata pages, 4096 bytes each, every one naming its own identity so
//! that a misdirected pointer is caught: map nodes (510 chunk ids and a
//! level), chunk-table leaves (255 entries of 16 bytes) and interior pages
//! (255 child pointers with the child's crc), and the format version 3
//! leaves (127 entries of 32 bytes) that `migrate.rs` reads.

use super::{
    get_u32, get_u64, put_u32, put_u64, CT_FANOUT, CT_LEAF_ENTRIES, NODE_FANOUT, PAGE_LEN,
};
use crate::error::{Error, Result};
use crate::types::{ChunkId, LogAddr, NODE_ID_BASE};

const NODE_MAGIC: u32 = u32::from_le_bytes(*b"NODE");
/// Leaves of 16-byte entries (format version 4; version 3's were "CTLF").
const CT_LEAF_MAGIC: u32 = u32::from_le_bytes(*b"OTLF");
const CT_INNER_MAGIC: u32 = u32::from_le_bytes(*b"CTIN");

/// A map node: 510 child entries, chunk ids of nodes (level > 0) or data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// 0 for leaves, whose entries are data chunks; >0 for interior nodes.
    pub level: u8,
    /// Child entries; [`ChunkId::HOLE`] and [`ChunkId::ZERO`] cover a whole subtree.
    pub slots: Box<[u64; NODE_FANOUT as usize]>,
}

impl Node {
    /// A node whose every entry is `fill`.
    pub fn filled(level: u8, fill: ChunkId) -> Self {
        Node {
            level,
            slots: Box::new([fill.0; NODE_FANOUT as usize]),
        }
    }

    /// Encodes the node page, naming its own chunk id.
    pub fn encode(&self, id: ChunkId) -> Vec<u8> {
        let mut b = vec![0u8; PAGE_LEN];
        put_u32(&mut b, 0, NODE_MAGIC);
        b[4] = self.level;
        put_u64(&mut b, 8, id.0);
        for (i, s) in self.slots.iter().enumerate() {
            put_u64(&mut b, 16 + 8 * i, *s);
        }
        b
    }

    /// Decodes a node page, checking that it names `id`.
    pub fn decode(b: &[u8], id: ChunkId) -> Result<Node> {
        if b.len() != PAGE_LEN || get_u32(b, 0) != NODE_MAGIC {
            return Err(Error::corrupt(format!(
                "map node {} has a bad header",
                id.0
            )));
        }
        if get_u64(b, 8) != id.0 {
            return Err(Error::corrupt(format!(
                "map node {} holds node {} (misdirected pointer)",
                id.0,
                get_u64(b, 8)
            )));
        }
        let level = b[4];
        if level > 8 {
            return Err(Error::corrupt(format!(
                "map node {} has level {level}",
                id.0
            )));
        }
        let mut slots = Box::new([0u64; NODE_FANOUT as usize]);
        for (i, s) in slots.iter_mut().enumerate() {
            *s = get_u64(b, 16 + 8 * i);
        }
        Ok(Node { level, slots })
    }
}

/// One chunk-table entry: where a chunk lives, how many references it has,
/// and its checksum. On disk 16 bytes (`loc` u64, a u32 word, `crc` u32):
/// for a node the word is its refcount (`stored_len` is always a page, no
/// flags); for data chunks the low 20 bits are the refcount (at most
/// [`DATA_REFCOUNT_MAX`]) and the high 12 the stored length of a
/// compressed chunk (1 to 4095), or 0 for an uncompressed 4096-byte one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtEntry {
    /// Location: the payload for data chunks, the record for nodes;
    /// [`LogAddr::NONE`] for a node not yet written by a checkpoint.
    pub loc: LogAddr,
    /// References from map nodes and catalogue roots; 0 means free.
    pub refcount: u32,
    /// crc32 of the stored bytes.
    pub crc: u32,
    /// Stored length in bytes (compressed length when compressed).
    pub stored_len: u32,
    /// [`CT_FLAG_COMPRESSED`] and friends.
    pub flags: u32,
}

/// The chunk is stored zstd-compressed.
pub const CT_FLAG_COMPRESSED: u32 = 1;

/// The most references a data chunk's entry holds (20 bits; the other 12
/// of its word hold a compressed chunk's length). Each is a map leaf (or a
/// queued reference) naming the chunk: reached only by a million snapshots
/// or clones that each rewrote the leaf around one same block.
pub const DATA_REFCOUNT_MAX: u32 = (1 << 20) - 1;

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

    /// The most references the entry of chunk `id` can hold.
    pub fn max_refs(id: ChunkId) -> u32 {
        if id.0 < NODE_ID_BASE {
            DATA_REFCOUNT_MAX
        } else {
            u32::MAX
        }
    }

    /// Encodes the entry of chunk `id` into its 16 bytes.
    fn encode_into(&self, id: u64, b: &mut [u8]) {
        let word = if id < NODE_ID_BASE && self.is_live() {
            let len = if self.flags & CT_FLAG_COMPRESSED != 0 {
                self.stored_len
            } else {
                0
            };
            debug_assert!(self.refcount <= DATA_REFCOUNT_MAX && len < 4096, "{self:?}");
            (self.refcount & DATA_REFCOUNT_MAX) | (len << 20)
        } else {
            self.refcount
        };
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
        if id >= NODE_ID_BASE {
            return Ok(CtEntry {
                loc,
                refcount: word,
                crc,
                stored_len: PAGE_LEN as u32,
                flags: 0,
            });
        }
        let (refcount, len) = (word & DATA_REFCOUNT_MAX, word >> 20);
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
            stored_len: if len == 0 { PAGE_LEN as u32 } else { len },
            flags: if len == 0 { 0 } else { CT_FLAG_COMPRESSED },
        })
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
        b[4] = level;
        put_u64(&mut b, 8, index);
        match self {
            CtPage::Leaf(es) => {
                put_u32(&mut b, 0, CT_LEAF_MAGIC);
                for (i, e) in es.iter().enumerate() {
                    let o = 16 + CT_ENTRY_LEN * i;
                    let id = index * CT_LEAF_ENTRIES + i as u64;
                    e.encode_into(id, &mut b[o..o + CT_ENTRY_LEN]);
                }
            }
            CtPage::Inner(cs) => {
                put_u32(&mut b, 0, CT_INNER_MAGIC);
                for (i, c) in cs.iter().enumerate() {
                    let o = 16 + CT_CHILD_LEN * i;
                    put_u64(&mut b, o, c.loc.0);
                    put_u32(&mut b, o + 8, c.crc);
                }
            }
        }
        b
    }

    /// Decodes a page, checking that it is the page (level, index).
    pub fn decode(b: &[u8], level: u8, index: u64) -> Result<CtPage> {
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
        if level == 0 && magic == CT_LEAF_MAGIC {
            let mut es = Box::new([CtEntry::default(); CT_LEAF_ENTRIES as usize]);
            for (i, e) in es.iter_mut().enumerate() {
                let o = 16 + CT_ENTRY_LEN * i;
                let id = index
                    .saturating_mul(CT_LEAF_ENTRIES)
                    .saturating_add(i as u64);
                *e = CtEntry::decode_from(id, &b[o..o + CT_ENTRY_LEN])
                    .map_err(|e| e.with_context(what()))?;
            }
            Ok(CtPage::Leaf(es))
        } else if level > 0 && magic == CT_INNER_MAGIC {
            let mut cs = Box::new([CtChild::NONE; CT_FANOUT as usize]);
            for (i, c) in cs.iter_mut().enumerate() {
                let o = 16 + CT_CHILD_LEN * i;
                *c = CtChild {
                    loc: LogAddr(get_u64(b, o)),
                    crc: get_u32(b, o + 8),
                };
                if get_u32(b, o + 12) != 0 || (c.loc.is_none() && c.crc != 0) {
                    return Err(Error::corrupt(format!(
                        "{} has a malformed child entry {i}",
                        what()
                    )));
                }
            }
            Ok(CtPage::Inner(cs))
        } else {
            Err(Error::corrupt(format!("{} has a bad magic", what())))
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
    /// Reads the identity of a page body.
    pub fn peek(b: &[u8]) -> Result<PageKey> {
        if b.len() != PAGE_LEN {
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
    use super::*;

    #[test]
    fn node_self_location() {
        let mut n = Node::filled(1, ChunkId::HOLE);
        n.slots[5] = 77;
        let b = n.encode(ChunkId(9));
        assert_eq!(Node::decode(&b, ChunkId(9)).unwrap(), n);
        assert!(Node::decode(&b, ChunkId(11)).is_err());
    }

    #[test]
    fn ct_page_roundtrip() {
        let mut p = CtPage::empty(0);
        if let CtPage::Leaf(es) = &mut p {
            // Compressed and plain data, at the most references.
            es[3] = CtEntry {
                loc: LogAddr(99),
                refcount: DATA_REFCOUNT_MAX,
                crc: 5,
                stored_len: 4095,
                flags: CT_FLAG_COMPRESSED,
            };
            es[254] = CtEntry {
                loc: LogAddr(1 << 40),
                refcount: 1,
                crc: 6,
                stored_len: 4096,
                flags: 0,
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
        // Node entries hold a full 32-bit refcount and no length.
        let leaf = NODE_ID_BASE / CT_LEAF_ENTRIES + 1;
        let mut p = CtPage::empty(0);
        let node = CtEntry {
            loc: LogAddr::NONE,
            refcount: u32::MAX,
            crc: 0,
            stored_len: PAGE_LEN as u32,
            flags: 0,
        };
        if let CtPage::Leaf(es) = &mut p {
            es[0] = node;
        }
        let b = p.encode(0, leaf);
        assert_eq!(CtPage::decode(&b, 0, leaf).unwrap(), p);
        assert_eq!(CtEntry::max_refs(ChunkId::node(0)), u32::MAX);
        assert_eq!(CtEntry::max_refs(ChunkId::data(0)), DATA_REFCOUNT_MAX);
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
        assert!(PageKey::peek(&p[..PAGE_LEN - 1]).is_err());
        assert!(PageKey::peek(&[]).is_err());
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

    #[test]
    fn node_garbled() {
        let b = Node::filled(0, ChunkId::HOLE).encode(ChunkId(9));
        assert!(Node::decode(&b[..PAGE_LEN - 1], ChunkId(9)).is_err());
        let mut bad = b.clone();
        bad[4] = 9;
        let e = Node::decode(&bad, ChunkId(9)).unwrap_err();
        assert!(e.to_string().contains("level 9"), "{e}");
        let mut bad = b;
        bad[1] ^= 1;
        assert!(Node::decode(&bad, ChunkId(9)).is_err());
    }
}
