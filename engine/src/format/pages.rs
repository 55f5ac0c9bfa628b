//! Metadata pages, every one naming its own identity so that a misdirected
//! pointer is caught: map nodes (510 chunk ids and a level, written as a
//! dense 4096-byte page or as runs of consecutive ids, whichever is
//! smaller), chunk-table leaves (255 entries of 16 bytes) and interior
//! pages (255 child pointers with the child's crc), 4096 bytes each, and
//! the format version 3 leaves (127 entries of 32 bytes) that `migrate.rs`
//! reads.

use super::{
    get_u32, get_u64, put_u32, put_u64, CT_FANOUT, CT_LEAF_ENTRIES, NODE_FANOUT, PAGE_LEN,
};
use crate::error::{Error, Result};
use crate::types::{ChunkId, LogAddr, NODE_ID_BASE};

const NODE_MAGIC: u32 = u32::from_le_bytes(*b"NODE");
/// A runs-encoded map node (format version 5).
const NODE_RUNS_MAGIC: u32 = u32::from_le_bytes(*b"NODR");
/// Leaves of 16-byte entries (format version 4; version 3's were "CTLF").
const CT_LEAF_MAGIC: u32 = u32::from_le_bytes(*b"OTLF");
const CT_INNER_MAGIC: u32 = u32::from_le_bytes(*b"CTIN");

/// A map node: 510 child entries, chunk ids of nodes (level > 0) or data.
/// In memory always the 510 slots; on disk either *dense* (the 510 slots,
/// a 4096-byte page) or *runs* (one 16-byte entry per run of slots naming
/// consecutive ids, or the same special value), whichever is smaller
/// ([`Node::encode`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// 0 for leaves, whose entries are data chunks; >0 for interior nodes.
    pub level: u8,
    /// Child entries; [`ChunkId::HOLE`] and [`ChunkId::ZERO`] cover a whole subtree.
    pub slots: Box<[u64; NODE_FANOUT as usize]>,
}

/// Bytes before the runs of a runs-encoded node.
pub const NODE_RUNS_HEAD: usize = 24;
/// Bytes of one run of a runs-encoded node.
pub const NODE_RUN_LEN: usize = 16;
/// The most runs a runs-encoded node holds: with more, the dense page is
/// no larger, and is written instead.
pub const NODE_MAX_RUNS: usize = (PAGE_LEN - NODE_RUNS_HEAD - 1) / NODE_RUN_LEN;

/// One run of a runs-encoded node: `len` slots from `first` holding
/// `value, value + 1, ...` (consecutive ids), or `value` in each slot when
/// it is special (only [`ChunkId::ZERO`]: holes are the slots no run
/// covers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    first: u16,
    len: u16,
    value: u64,
}

impl Run {
    /// The value of the run's slot `k`.
    fn at(&self, k: u64) -> u64 {
        if ChunkId(self.value).is_special() {
            self.value
        } else {
            self.value.wrapping_add(k)
        }
    }
}

impl Node {
    /// A node whose every entry is `fill`.
    pub fn filled(level: u8, fill: ChunkId) -> Self {
        Node {
            level,
            slots: Box::new([fill.0; NODE_FANOUT as usize]),
        }
    }

    /// The node's runs: maximal runs of slots holding consecutive
    /// non-special ids, or [`ChunkId::ZERO`]; holes are not covered.
    fn runs(&self) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        for (i, &v) in self.slots.iter().enumerate() {
            if v == ChunkId::HOLE.0 {
                continue;
            }
            if let Some(r) = runs.last_mut() {
                let end = u64::from(r.first) + u64::from(r.len);
                if end == i as u64 && r.at(u64::from(r.len)) == v {
                    r.len += 1;
                    continue;
                }
            }
            runs.push(Run {
                first: i as u16,
                len: 1,
                value: v,
            });
        }
        runs
    }

    /// Encodes the node, naming its own chunk id: as runs when that is
    /// smaller than the dense page (a sequentially written leaf is one or
    /// a few runs), else dense. Deterministic: the same node always
    /// encodes to the same bytes.
    pub fn encode(&self, id: ChunkId) -> Vec<u8> {
        let runs = self.runs();
        if runs.len() <= NODE_MAX_RUNS {
            self.encode_runs(id, &runs)
        } else {
            self.encode_dense(id)
        }
    }

    /// Encodes the node as a dense 4096-byte page (as format version 4
    /// wrote every node).
    pub fn encode_dense(&self, id: ChunkId) -> Vec<u8> {
        let mut b = vec![0u8; PAGE_LEN];
        put_u32(&mut b, 0, NODE_MAGIC);
        b[4] = self.level;
        put_u64(&mut b, 8, id.0);
        for (i, s) in self.slots.iter().enumerate() {
            put_u64(&mut b, 16 + 8 * i, *s);
        }
        b
    }

    fn encode_runs(&self, id: ChunkId, runs: &[Run]) -> Vec<u8> {
        let mut b = vec![0u8; NODE_RUNS_HEAD + NODE_RUN_LEN * runs.len()];
        put_u32(&mut b, 0, NODE_RUNS_MAGIC);
        b[4] = self.level;
        put_u64(&mut b, 8, id.0);
        b[16..18].copy_from_slice(&(runs.len() as u16).to_le_bytes());
        for (k, r) in runs.iter().enumerate() {
            let o = NODE_RUNS_HEAD + NODE_RUN_LEN * k;
            b[o..o + 2].copy_from_slice(&r.first.to_le_bytes());
            b[o + 2..o + 4].copy_from_slice(&r.len.to_le_bytes());
            put_u64(&mut b, o + 8, r.value);
        }
        b
    }

    /// Decodes a node record body, dense or runs, checking that it names
    /// `id`.
    pub fn decode(b: &[u8], id: ChunkId) -> Result<Node> {
        let bad = |why: &str| Error::corrupt(format!("map node {} {why}", id.0));
        let magic = if b.len() >= 16 { get_u32(b, 0) } else { 0 };
        let dense = magic == NODE_MAGIC && b.len() == PAGE_LEN;
        let runs = magic == NODE_RUNS_MAGIC && b.len() >= NODE_RUNS_HEAD && b.len() < PAGE_LEN;
        if !dense && !runs {
            return Err(bad("has a bad header"));
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
            return Err(bad(&format!("has level {level}")));
        }
        if b[5..8] != [0, 0, 0] {
            return Err(bad("has a bad header"));
        }
        let mut slots = Box::new([0u64; NODE_FANOUT as usize]);
        if dense {
            for (i, s) in slots.iter_mut().enumerate() {
                *s = get_u64(b, 16 + 8 * i);
            }
            return Ok(Node { level, slots });
        }
        let n = usize::from(u16::from_le_bytes([b[16], b[17]]));
        if b[18..24].iter().any(|&x| x != 0) || b.len() != NODE_RUNS_HEAD + NODE_RUN_LEN * n {
            return Err(bad(&format!(
                "has a bad runs header ({n} runs in {} bytes)",
                b.len()
            )));
        }
        let mut end = 0u64;
        for k in 0..n {
            let o = NODE_RUNS_HEAD + NODE_RUN_LEN * k;
            let r = Run {
                first: u16::from_le_bytes([b[o], b[o + 1]]),
                len: u16::from_le_bytes([b[o + 2], b[o + 3]]),
                value: get_u64(b, o + 8),
            };
            let (first, len) = (u64::from(r.first), u64::from(r.len));
            let ok = get_u32(b, o + 4) == 0
                && len > 0
                && first >= end
                && first + len <= NODE_FANOUT
                && r.value != ChunkId::HOLE.0
                && r.value.checked_add(len).is_some();
            if !ok {
                return Err(bad(&format!(
                    "has a malformed run {k} (slots {first}+{len}, value {})",
                    r.value
                )));
            }
            for j in 0..len {
                slots[(first + j) as usize] = r.at(j);
            }
            end = first + len;
        }
        Ok(Node { level, slots })
    }
}

/// One chunk-table entry: where a chunk lives, how many references it has,
/// its checksum and its stored length. On disk 16 bytes (`loc` u64, a u32
/// word, `crc` u32): the word's low 20 bits are the refcount (at most
/// [`REFCOUNT_MAX`]) and its high 12 bits a stored length under 4096, or 0
/// for 4096 bytes: for a data chunk the length of a compressed block
/// (1 to 4095), for a map node the length of a runs-encoded node record
/// body (format version 5; 0 for a dense page).
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
    /// node not written yet).
    pub stored_len: u32,
    /// [`CT_FLAG_COMPRESSED`] and friends (data chunks only).
    pub flags: u32,
    /// Blocks of an extent (1 to 32; format version 6): its `loc` names
    /// its crc array, each block's crc lies in the log beside its payload,
    /// `crc` is 0 and `stored_len` counts its crcs and payloads. 0 for a
    /// one-block chunk whose crc is in the entry (format versions 4 and 5,
    /// and compressed blocks) and for map nodes.
    pub nblocks: u8,
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

/// True when `len` is the body length of a node record: a dense page, or
/// a runs encoding (its head and whole runs, smaller than a page).
pub fn node_len_ok(len: u32) -> bool {
    let len = len as usize;
    len == PAGE_LEN
        || (NODE_RUNS_HEAD..PAGE_LEN).contains(&len)
            && (len - NODE_RUNS_HEAD).is_multiple_of(NODE_RUN_LEN)
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
    /// at `loc`, with `refcount` references.
    pub fn extent(loc: LogAddr, nblocks: u8, refcount: u32) -> CtEntry {
        CtEntry {
            loc,
            refcount,
            crc: 0,
            stored_len: (super::EXTENT_BYTES_PER_BLOCK * u64::from(nblocks)) as u32,
            flags: 0,
            nblocks,
        }
    }

    /// Encodes the entry of chunk `id` into its 16 bytes.
    fn encode_into(&self, id: u64, b: &mut [u8]) {
        if self.nblocks > 0 && self.is_live() {
            // extent: loc | bit 31, refcount u32, nblocks u8, 0 u8, 0 u16
            put_u64(b, 0, self.loc.0 | CT_LOC_EXTENT);
            put_u32(b, 8, self.refcount);
            put_u32(b, 12, u32::from(self.nblocks));
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
            let (loc, n) = (LogAddr(loc.0 & !CT_LOC_EXTENT), crc);
            if loc.is_none() || word == 0 || !(1..=super::EXTENT_MAX_BLOCKS as u32).contains(&n) {
                return Err(Error::corrupt(format!(
                    "chunk-table entry of extent {id} is malformed (location {}, refcount \
                     {word}, word {n:#x})",
                    loc.0
                )));
            }
            return Ok(CtEntry::extent(loc, n as u8, word));
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
                refcount: REFCOUNT_MAX,
                crc: 5,
                stored_len: 4095,
                flags: CT_FLAG_COMPRESSED,
                nblocks: 0,
            };
            es[254] = CtEntry {
                loc: LogAddr(1 << 40),
                refcount: 1,
                crc: 6,
                stored_len: 4096,
                flags: 0,
                nblocks: 0,
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
        };
        let runs = CtEntry {
            loc: LogAddr(1 << 33),
            refcount: 3,
            crc: 9,
            stored_len: (NODE_RUNS_HEAD + 2 * NODE_RUN_LEN) as u32,
            flags: 0,
            nblocks: 0,
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
        let ext = CtEntry::extent(LogAddr(1 << 33 | 96), 32, u32::MAX);
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
        for (at, v) in [(12, 0u8), (12, 33), (13, 1), (15, 1)] {
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

    #[test]
    fn node_garbled() {
        let b = Node::filled(0, ChunkId::HOLE).encode_dense(ChunkId(9));
        assert!(Node::decode(&b[..PAGE_LEN - 1], ChunkId(9)).is_err());
        let mut bad = b.clone();
        bad[4] = 9;
        let e = Node::decode(&bad, ChunkId(9)).unwrap_err();
        assert!(e.to_string().contains("level 9"), "{e}");
        let mut bad = b;
        bad[1] ^= 1;
        assert!(Node::decode(&bad, ChunkId(9)).is_err());
    }

    /// A node of `runs` runs of consecutive ids, of `len` slots each, from
    /// slot `gap` on, `gap` holes apart.
    fn node_of_runs(level: u8, runs: usize, len: usize, gap: usize) -> Node {
        let mut n = Node::filled(level, ChunkId::HOLE);
        let mut at = gap;
        for r in 0..runs {
            for k in 0..len {
                n.slots[at + k] = 1000 * (r as u64 + 1) + k as u64;
            }
            at += len + gap;
        }
        n
    }

    #[test]
    fn node_runs_encoding() {
        // A sequentially written leaf: one run, 40 bytes instead of 4096.
        let mut n = Node::filled(0, ChunkId::HOLE);
        for (i, s) in n.slots.iter_mut().enumerate() {
            *s = 77 + i as u64;
        }
        let b = n.encode(ChunkId(5));
        assert_eq!(b.len(), NODE_RUNS_HEAD + NODE_RUN_LEN);
        assert_eq!(&b[..4], b"NODR");
        assert_eq!(Node::decode(&b, ChunkId(5)).unwrap(), n);
        assert!(Node::decode(&b, ChunkId(6)).is_err());
        // Zero and hole runs: zeros are a constant run, holes no run.
        n.slots[10..20].fill(ChunkId::ZERO.0);
        n.slots[20..30].fill(ChunkId::HOLE.0);
        let b = n.encode(ChunkId(5));
        assert_eq!(b.len(), NODE_RUNS_HEAD + 3 * NODE_RUN_LEN);
        assert_eq!(Node::decode(&b, ChunkId(5)).unwrap(), n);
        // All holes: no runs at all.
        let h = Node::filled(2, ChunkId::HOLE);
        let b = h.encode(ChunkId(5));
        assert_eq!(b.len(), NODE_RUNS_HEAD);
        assert_eq!(Node::decode(&b, ChunkId(5)).unwrap(), h);
        // The most runs that still beat the page, then dense.
        let most = node_of_runs(1, NODE_MAX_RUNS, 1, 1);
        let b = most.encode(ChunkId(8));
        assert_eq!(b.len(), NODE_RUNS_HEAD + NODE_MAX_RUNS * NODE_RUN_LEN);
        assert!(b.len() < PAGE_LEN);
        assert_eq!(Node::decode(&b, ChunkId(8)).unwrap(), most);
        let more = node_of_runs(1, NODE_MAX_RUNS + 1, 1, 1);
        let b = more.encode(ChunkId(8));
        assert_eq!((b.len(), &b[..4]), (PAGE_LEN, &b"NODE"[..]));
        assert_eq!(Node::decode(&b, ChunkId(8)).unwrap(), more);
        // The dense page of any node still decodes (format version 4).
        assert_eq!(
            Node::decode(&n.encode_dense(ChunkId(5)), ChunkId(5)).unwrap(),
            n
        );
    }

    #[test]
    fn node_runs_garbled() {
        let n = node_of_runs(0, 3, 5, 2);
        let b = n.encode(ChunkId(9));
        assert_eq!(b.len(), NODE_RUNS_HEAD + 3 * NODE_RUN_LEN);
        let run = |k: usize| NODE_RUNS_HEAD + NODE_RUN_LEN * k;
        let garble = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut x = b.clone();
            f(&mut x);
            Node::decode(&x, ChunkId(9)).unwrap_err().to_string()
        };
        // Wrong run count for the length, a run cut short.
        assert!(garble(&|x| x[16] = 4).contains("runs header"));
        assert!(garble(&|x| x.truncate(x.len() - 1)).contains("runs header"));
        assert!(garble(&|x| x[20] = 1).contains("runs header"));
        // Overlapping, empty, out of the node, hole, overflowing, reserved.
        assert!(garble(&|x| x[run(1)] = 3).contains("malformed run 1"));
        assert!(garble(&|x| x[run(0) + 2..run(0) + 4].fill(0)).contains("malformed run 0"));
        assert!(
            garble(&|x| x[run(2)..run(2) + 2].copy_from_slice(&509u16.to_le_bytes()))
                .contains("malformed run 2")
        );
        assert!(garble(&|x| put_u64(x, run(0) + 8, 0)).contains("malformed run 0"));
        assert!(garble(&|x| put_u64(x, run(0) + 8, u64::MAX - 2)).contains("malformed run 0"));
        assert!(garble(&|x| x[run(0) + 5] = 1).contains("malformed run 0"));
        assert!(garble(&|x| x[6] = 1).contains("bad header"));
        // A runs node as long as a page, or a dense one shorter, is refused.
        let mut x = b.clone();
        x.resize(PAGE_LEN, 0);
        assert!(Node::decode(&x, ChunkId(9)).is_err());
        let mut x = n.encode_dense(ChunkId(9));
        x.truncate(PAGE_LEN - 16);
        assert!(Node::decode(&x, ChunkId(9)).is_err());
    }

    proptest::proptest! {
        /// Any node, however its slots lie, encodes to whichever of dense
        /// and runs is smaller and decodes back to itself; the entry's
        /// length field holds the encoding's length.
        #[test]
        fn node_encodings_roundtrip(
            level in 0u8..4,
            pieces in proptest::collection::vec((0u64..4, 1usize..40, 0u64..1 << 60), 0..80),
        ) {
            let mut n = Node::filled(level, ChunkId::HOLE);
            let mut at = 0usize;
            for (kind, len, base) in pieces {
                for k in 0..len {
                    if at >= NODE_FANOUT as usize {
                        break;
                    }
                    n.slots[at] = match kind {
                        0 => ChunkId::HOLE.0,
                        1 => ChunkId::ZERO.0,
                        2 => base + 2 + k as u64,
                        _ => base + 2 + 7 * k as u64,
                    };
                    at += 1;
                }
            }
            let b = n.encode(ChunkId(77));
            let runs = n.runs().len();
            let runs_len = NODE_RUNS_HEAD + NODE_RUN_LEN * runs;
            proptest::prop_assert_eq!(b.len(), if runs_len < PAGE_LEN { runs_len } else { PAGE_LEN });
            proptest::prop_assert!(node_len_ok(b.len() as u32));
            proptest::prop_assert_eq!(Node::decode(&b, ChunkId(77)).unwrap(), n.clone());
            proptest::prop_assert_eq!(b, n.encode(ChunkId(77)));
            let mut p = CtPage::empty(0);
            let e = CtEntry { loc: LogAddr(1 << 32), refcount: 1, crc: 2, stored_len: runs_len.min(PAGE_LEN) as u32, flags: 0, nblocks: 0 };
            if let CtPage::Leaf(es) = &mut p {
                es[0] = e;
            }
            let leaf = NODE_ID_BASE / CT_LEAF_ENTRIES + 1;
            proptest::prop_assert_eq!(CtPage::decode(&p.encode(0, leaf), 0, leaf).unwrap(), p);
        }
    }
}
