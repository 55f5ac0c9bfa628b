//! On-disk encodings, pure and I/O-free: the record header that frames every
//! log record, the superblock slot, map node pages and chunk-table pages.
//! Every decoder validates magic, lengths, checksums and self-identity and
//! returns [`Error`] of kind `Corrupt` rather than panicking on bad bytes.
//! docs/design.md draws these layouts as byte diagrams.

use crate::error::{Error, ErrorKind, Result};
use crate::types::{ChunkId, LogAddr};

/// Record header magic, "BLKD" little-endian.
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"BLKD");
/// Size of a record header.
pub const HEADER_LEN: usize = 32;
/// Size of a metadata page (map node or chunk-table page).
pub const PAGE_LEN: usize = 4096;
/// Entries in a map node.
pub const NODE_FANOUT: u64 = 510;
/// Entries in a chunk-table leaf page.
pub const CT_LEAF_ENTRIES: u64 = 127;
/// Children of a chunk-table interior page (16 bytes each: location and crc).
pub const CT_FANOUT: u64 = 255;
/// Levels of interior pages above chunk-table leaves.
pub const CT_INTERIOR_LEVELS: u8 = 5;
/// Chunk-table slots, and so the bound on chunk ids: leaves of
/// [`CT_LEAF_ENTRIES`] under [`CT_INTERIOR_LEVELS`] levels of
/// [`CT_FANOUT`] (127 × 255⁵ ≈ 1.4 × 10¹⁴).
pub const CT_CAPACITY: u64 = CT_LEAF_ENTRIES * CT_FANOUT.pow(CT_INTERIOR_LEVELS as u32);
/// Superblock magic.
pub const SUPER_MAGIC: [u8; 8] = *b"BLKDSUPR";
/// On-disk format version. Version 1 had interior chunk-table pages of 510
/// bare child locations (4 levels) and no root crc in the superblock; it is
/// migrated on open (`migrate.rs`). Version 2 had no pending-free queue
/// (no Free records, no `free_queue` in the blob): opening it only marks it
/// version 3, so that an older build, which would take a Free record for a
/// torn tail, refuses the store instead.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this build opens (migrating it).
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Size of one superblock slot.
pub const SUPER_SLOT_LEN: usize = 4096;

const NODE_MAGIC: u32 = u32::from_le_bytes(*b"NODE");
const CT_LEAF_MAGIC: u32 = u32::from_le_bytes(*b"CTLF");
const CT_INNER_MAGIC: u32 = u32::from_le_bytes(*b"CTIN");

/// The kind of a log record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum RecordKind {
    /// Data blocks written to a volume, payloads inline.
    Write = 1,
    /// A block range set to hole or zero.
    Zero = 2,
    /// A catalogue operation (JSON).
    Catalog = 3,
    /// A map node page written by a checkpoint.
    Node = 4,
    /// A chunk-table page written by a checkpoint.
    CtPage = 5,
    /// The checkpoint blob: catalogue, counters, segment table (JSON).
    Checkpoint = 6,
    /// A data chunk moved by the segment cleaner.
    Reloc = 7,
    /// End of a segment; the log continues in the next one.
    Seal = 8,
    /// One bounded step of the pending-free queue (`free.rs`).
    Free = 9,
}

impl RecordKind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => RecordKind::Write,
            2 => RecordKind::Zero,
            3 => RecordKind::Catalog,
            4 => RecordKind::Node,
            5 => RecordKind::CtPage,
            6 => RecordKind::Checkpoint,
            7 => RecordKind::Reloc,
            8 => RecordKind::Seal,
            9 => RecordKind::Free,
            _ => return None,
        })
    }
}

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// What the body holds.
    pub kind: RecordKind,
    /// Log sequence number: each record's is one more than the previous.
    pub seq: u64,
    /// Body length in bytes.
    pub body_len: u32,
    /// crc32 of the first `crc_len` bytes of the body.
    pub body_crc: u32,
    /// Bytes of the body the header's crc covers: all of it, except for
    /// Write records, whose payloads carry their own crcs in their entries
    /// (so that data is checksummed once, not twice).
    pub crc_len: u32,
    /// The durability claim (header bytes 5..8, a 24-bit distance): when
    /// this record was appended, every record up to `seq - claim` had
    /// completed an `fdatasync`. 0 = no claim (records of older builds).
    /// Replay uses it to tell a torn tail from a damaged synced record.
    pub claim: u32,
}

/// The largest durability claim a header holds (24 bits).
pub const MAX_CLAIM: u64 = 0xFF_FFFF;

/// The part of a body the record header's crc covers.
fn covered_len(kind: RecordKind, body: &[u8]) -> usize {
    if kind == RecordKind::Write && body.len() >= WRITE_FIXED {
        let n = get_u32(body, 24) as usize;
        n.saturating_mul(WRITE_ENTRY)
            .saturating_add(WRITE_FIXED)
            .min(body.len())
    } else {
        body.len()
    }
}

pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

impl RecordHeader {
    /// Encodes the header for a body.
    pub fn encode(kind: RecordKind, seq: u64, body: &[u8]) -> [u8; HEADER_LEN] {
        let covered = covered_len(kind, body);
        Self::encode_covered(kind, seq, &body[..covered], body.len() as u32)
    }

    /// The header of a record whose body is `body_len` bytes, of which the
    /// checksummed prefix is `covered` (a Write record's fixed part and
    /// entries, when its payloads are written from elsewhere).
    pub fn encode_covered(
        kind: RecordKind,
        seq: u64,
        covered: &[u8],
        body_len: u32,
    ) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        put_u32(&mut h, 0, RECORD_MAGIC);
        h[4] = kind as u8;
        put_u64(&mut h, 8, seq);
        put_u32(&mut h, 16, body_len);
        put_u32(&mut h, 20, crc32fast::hash(covered));
        put_u32(&mut h, 24, covered.len() as u32);
        let c = crc32fast::hash(&h[..28]);
        put_u32(&mut h, 28, c);
        h
    }

    /// Stores in an encoded header `h` (of the record with sequence `seq`)
    /// the claim that every record up to `synced_through` was durable when
    /// it was appended, and reseals the header crc. The distance saturates
    /// at 2^24 - 1 (a weaker, still true, claim); nothing durable yet
    /// (`synced_through` 0) makes the weakest one.
    pub fn set_claim(h: &mut [u8; HEADER_LEN], seq: u64, synced_through: u64) {
        let d = seq.saturating_sub(synced_through).min(MAX_CLAIM) as u32;
        h[5..8].copy_from_slice(&d.to_le_bytes()[..3]);
        let c = crc32fast::hash(&h[..28]);
        put_u32(h, 28, c);
    }

    /// The sequence number up to which this record claims every record was
    /// durable when it was appended; `None` without a claim.
    pub fn synced_through(&self) -> Option<u64> {
        (self.claim != 0).then(|| self.seq.saturating_sub(u64::from(self.claim)))
    }

    /// Decodes and validates a header; `None` when it is not a valid header
    /// (the normal end of a log, or a torn write).
    pub fn decode(h: &[u8]) -> Option<RecordHeader> {
        if h.len() < HEADER_LEN || get_u32(h, 0) != RECORD_MAGIC {
            return None;
        }
        if crc32fast::hash(&h[..28]) != get_u32(h, 28) {
            return None;
        }
        let (body_len, crc_len) = (get_u32(h, 16), get_u32(h, 24));
        if crc_len > body_len {
            return None;
        }
        Some(RecordHeader {
            kind: RecordKind::from_u8(h[4])?,
            seq: get_u64(h, 8),
            body_len,
            body_crc: get_u32(h, 20),
            crc_len,
            claim: get_u32(h, 4) >> 8,
        })
    }

    /// True when `body` matches the header's checksum.
    pub fn body_ok(&self, body: &[u8]) -> bool {
        body.len() == self.body_len as usize
            && crc32fast::hash(&body[..self.crc_len as usize]) == self.body_crc
            && self.crc_len as usize == covered_len(self.kind, body)
    }
}

/// The durable root of the store, written alternately to two slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Incremented by each checkpoint; the valid slot with the highest wins.
    pub generation: u64,
    /// Segment size in bytes.
    pub segment_size: u32,
    /// Root page of the chunk table, and the crc32 of its record body (the
    /// root's parent pointer, as interior pages hold their children's).
    pub ct_root: CtChild,
    /// The checkpoint blob record.
    pub blob: LogAddr,
    /// Where log replay starts.
    pub replay_start: LogAddr,
    /// Sequence number of the first record to replay.
    pub replay_seq: u64,
    /// The store's identity.
    pub store_id: [u8; 16],
    /// The format version the slot was written in (see [`FORMAT_VERSION`]);
    /// encoding always writes the current one.
    pub version: u32,
}

impl Superblock {
    /// Encodes one slot.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; SUPER_SLOT_LEN];
        b[..8].copy_from_slice(&SUPER_MAGIC);
        put_u32(&mut b, 8, FORMAT_VERSION);
        put_u32(&mut b, 12, self.segment_size);
        put_u64(&mut b, 16, self.generation);
        put_u64(&mut b, 24, self.ct_root.loc.0);
        put_u64(&mut b, 32, self.blob.0);
        put_u64(&mut b, 40, self.replay_start.0);
        put_u64(&mut b, 48, self.replay_seq);
        b[56..72].copy_from_slice(&self.store_id);
        put_u32(&mut b, 72, self.ct_root.crc);
        let c = crc32fast::hash(&b[..124]);
        put_u32(&mut b, 124, c);
        b
    }

    /// Decodes one slot; `None` when the slot is empty, torn or foreign.
    pub fn decode(b: &[u8]) -> Result<Option<Superblock>> {
        if b.len() < SUPER_SLOT_LEN || b[..8] != SUPER_MAGIC {
            return Ok(None);
        }
        if crc32fast::hash(&b[..124]) != get_u32(b, 124) {
            return Ok(None);
        }
        let version = get_u32(b, 8);
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the superblock has on-disk format version {version}; this build of blockd \
                     reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION} (a newer blockd \
                     wrote this store: open it with that version)"
                ),
            ));
        }
        // Version 1 kept bytes 72..124 zero: no root crc.
        let root_crc = if version >= 2 { get_u32(b, 72) } else { 0 };
        Ok(Some(Superblock {
            segment_size: get_u32(b, 12),
            generation: get_u64(b, 16),
            ct_root: CtChild {
                loc: LogAddr(get_u64(b, 24)),
                crc: root_crc,
            },
            blob: LogAddr(get_u64(b, 32)),
            replay_start: LogAddr(get_u64(b, 40)),
            replay_seq: get_u64(b, 48),
            store_id: b[56..72].try_into().expect("16 bytes"),
            version,
        }))
    }
}

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
/// and its checksum.
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

impl CtEntry {
    /// True when the entry is in use.
    pub fn is_live(&self) -> bool {
        self.refcount > 0
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
                    let o = 16 + 32 * i;
                    put_u64(&mut b, o, e.loc.0);
                    put_u32(&mut b, o + 8, e.refcount);
                    put_u32(&mut b, o + 12, e.crc);
                    put_u32(&mut b, o + 16, e.stored_len);
                    put_u32(&mut b, o + 20, e.flags);
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
                let o = 16 + 32 * i;
                *e = CtEntry {
                    loc: LogAddr(get_u64(b, o)),
                    refcount: get_u32(b, o + 8),
                    crc: get_u32(b, o + 12),
                    stored_len: get_u32(b, o + 16),
                    flags: get_u32(b, o + 20),
                };
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

/// Length of a Free record's body.
pub const FREE_BODY: usize = 16;

/// A Free record: one step of the pending-free queue, releasing at most
/// `max_refs` references, the first of them `top` (the queue's top when
/// the step began; replay checks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeStep {
    /// Most references the step releases.
    pub max_refs: u32,
    /// The queue's top entry when the step began.
    pub top: ChunkId,
}

impl FreeStep {
    /// Encodes the body: max_refs u32, 0 u32, top u64.
    pub fn encode(&self) -> [u8; FREE_BODY] {
        let mut b = [0u8; FREE_BODY];
        put_u32(&mut b, 0, self.max_refs);
        put_u64(&mut b, 8, self.top.0);
        b
    }

    /// Decodes a Free record body.
    pub fn decode(b: &[u8]) -> Result<FreeStep> {
        if b.len() != FREE_BODY || get_u32(b, 4) != 0 {
            return Err(Error::corrupt(
                "free record has a bad length or reserved field",
            ));
        }
        let s = FreeStep {
            max_refs: get_u32(b, 0),
            top: ChunkId(get_u64(b, 8)),
        };
        if s.max_refs == 0 || s.top.is_special() {
            return Err(Error::corrupt("free record names no work"));
        }
        Ok(s)
    }
}

/// Length of a Write record's fixed part before its entries.
pub const WRITE_FIXED: usize = 32;
/// Length of one Write record entry.
pub const WRITE_ENTRY: usize = 24;

/// One block of a Write record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteEntry {
    /// The chunk written, or [`ChunkId::ZERO`] for an all-zero block.
    pub chunk: ChunkId,
    /// crc32 of the stored payload.
    pub crc: u32,
    /// Stored length of the payload.
    pub stored_len: u32,
    /// [`CT_FLAG_COMPRESSED`] when compressed.
    pub flags: u32,
}

/// A decoded Write record body (payloads are located by offset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteBody {
    /// The volume written.
    pub object: [u8; 16],
    /// First block written.
    pub first_block: u64,
    /// One entry per block.
    pub entries: Vec<WriteEntry>,
    /// Offset of each entry's payload within the body.
    pub payload_offsets: Vec<usize>,
}

/// Encodes a Write record body.
pub fn encode_write(
    object: [u8; 16],
    first_block: u64,
    entries: &[WriteEntry],
    payloads: &[&[u8]],
) -> Vec<u8> {
    let mut b = Vec::new();
    encode_write_into(&mut b, object, first_block, entries, payloads);
    b
}

/// Appends a Write record body to `out` (which may already hold a header
/// placeholder, so that the record goes to disk in one write).
pub fn encode_write_into(
    out: &mut Vec<u8>,
    object: [u8; 16],
    first_block: u64,
    entries: &[WriteEntry],
    payloads: &[&[u8]],
) {
    let total: usize = payloads.iter().map(|p| p.len()).sum();
    out.reserve(WRITE_FIXED + WRITE_ENTRY * entries.len() + total);
    encode_write_head(out, object, first_block, entries);
    for p in payloads {
        out.extend_from_slice(p);
    }
}

/// Appends a Write record body's fixed part and entries to `out`: the
/// checksummed prefix, which the payloads follow.
pub fn encode_write_head(
    out: &mut Vec<u8>,
    object: [u8; 16],
    first_block: u64,
    entries: &[WriteEntry],
) {
    let base = out.len();
    out.resize(base + WRITE_FIXED + WRITE_ENTRY * entries.len(), 0);
    let b = &mut out[base..];
    b[..16].copy_from_slice(&object);
    put_u64(b, 16, first_block);
    put_u32(b, 24, entries.len() as u32);
    for (i, e) in entries.iter().enumerate() {
        let o = WRITE_FIXED + WRITE_ENTRY * i;
        put_u64(b, o, e.chunk.0);
        put_u32(b, o + 8, e.crc);
        put_u32(b, o + 12, e.stored_len);
        put_u32(b, o + 16, e.flags);
    }
}

/// Decodes a Write record body, checking lengths and payload checksums.
pub fn decode_write(b: &[u8]) -> Result<WriteBody> {
    let (w, bad) = decode_write_salvage(b)?;
    match bad.first() {
        Some(i) => Err(Error::corrupt(format!(
            "write record payload {i} fails its checksum"
        ))),
        None => Ok(w),
    }
}

/// Decodes a Write record body, checking lengths but not payload
/// checksums: returns the body and the indices of the entries whose
/// payload fails its crc (what a salvaging replay leaves out).
pub fn decode_write_salvage(b: &[u8]) -> Result<(WriteBody, Vec<usize>)> {
    if b.len() < WRITE_FIXED {
        return Err(Error::corrupt("write record too short"));
    }
    let n = get_u32(b, 24) as usize;
    let meta_end = n
        .checked_mul(WRITE_ENTRY)
        .and_then(|x| x.checked_add(WRITE_FIXED))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| Error::corrupt("write record entry count exceeds its length"))?;
    let mut entries = Vec::with_capacity(n);
    let mut payload_offsets = Vec::with_capacity(n);
    let mut bad = Vec::new();
    let mut off = meta_end;
    for i in 0..n {
        let o = WRITE_FIXED + WRITE_ENTRY * i;
        let e = WriteEntry {
            chunk: ChunkId(get_u64(b, o)),
            crc: get_u32(b, o + 8),
            stored_len: get_u32(b, o + 12),
            flags: get_u32(b, o + 16),
        };
        let end = off
            .checked_add(e.stored_len as usize)
            .filter(|&x| x <= b.len())
            .ok_or_else(|| Error::corrupt("write record payload exceeds its length"))?;
        if e.stored_len as u64 > crate::types::BLOCK_SIZE {
            return Err(Error::corrupt("write record payload longer than a block"));
        }
        if !e.chunk.is_data() && e.chunk != ChunkId::ZERO {
            return Err(Error::corrupt(format!(
                "write record entry {i} names chunk {}",
                e.chunk.0
            )));
        }
        if e.chunk.is_data() && crc32fast::hash(&b[off..end]) != e.crc {
            bad.push(i);
        }
        entries.push(e);
        payload_offsets.push(off);
        off = end;
    }
    let mut object = [0u8; 16];
    object.copy_from_slice(&b[..16]);
    let w = WriteBody {
        object,
        first_block: get_u64(b, 16),
        entries,
        payload_offsets,
    };
    Ok((w, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_torn() {
        let body = b"hello world";
        let h = RecordHeader::encode(RecordKind::Catalog, 42, body);
        let d = RecordHeader::decode(&h).unwrap();
        assert_eq!(d.seq, 42);
        assert!(d.body_ok(body));
        assert!(!d.body_ok(b"hello worle"));
        let mut bad = h;
        bad[9] ^= 1;
        assert!(RecordHeader::decode(&bad).is_none());
        assert_eq!(d.claim, 0);
        assert_eq!(d.synced_through(), None);
        let mut c = h;
        RecordHeader::set_claim(&mut c, 42, 40);
        let d = RecordHeader::decode(&c).unwrap();
        assert_eq!((d.kind, d.seq, d.claim), (RecordKind::Catalog, 42, 2));
        assert_eq!(d.synced_through(), Some(40));
        let mut c = RecordHeader::encode(RecordKind::Catalog, 1 << 30, body);
        RecordHeader::set_claim(&mut c, 1 << 30, 1);
        let d = RecordHeader::decode(&c).unwrap();
        assert_eq!(d.synced_through(), Some((1 << 30) - MAX_CLAIM));
    }

    #[test]
    fn free_step_roundtrip() {
        let f = FreeStep {
            max_refs: 256,
            top: ChunkId(77),
        };
        assert_eq!(FreeStep::decode(&f.encode()).unwrap(), f);
        assert!(FreeStep::decode(&f.encode()[..8]).is_err());
        let mut bad = f.encode();
        bad[4] = 1;
        assert!(FreeStep::decode(&bad).is_err());
        let z = FreeStep {
            max_refs: 0,
            top: ChunkId(77),
        };
        assert!(FreeStep::decode(&z.encode()).is_err());
    }

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
            es[3] = CtEntry {
                loc: LogAddr(99),
                refcount: 2,
                crc: 5,
                stored_len: 4096,
                flags: 1,
            };
        }
        let b = p.encode(0, 12);
        assert_eq!(CtPage::decode(&b, 0, 12).unwrap(), p);
        assert!(CtPage::decode(&b, 0, 13).is_err());
        assert!(CtPage::decode(&b, 1, 12).is_err());
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
    fn superblock_roundtrip() {
        let s = Superblock {
            generation: 3,
            segment_size: 1 << 26,
            ct_root: CtChild {
                loc: LogAddr(1),
                crc: 0xdead_beef,
            },
            blob: LogAddr(2),
            replay_start: LogAddr(3),
            replay_seq: 4,
            store_id: [7; 16],
            version: FORMAT_VERSION,
        };
        let mut b = s.encode();
        assert_eq!(Superblock::decode(&b).unwrap(), Some(s));
        // A slot of another version: version 1 has no root crc, a newer
        // one is refused with a clear error.
        for (v, ok) in [(1, true), (FORMAT_VERSION + 1, false)] {
            let mut o = b.clone();
            put_u32(&mut o, 8, v);
            if v == 1 {
                put_u32(&mut o, 72, 0);
            }
            let c = crc32fast::hash(&o[..124]);
            put_u32(&mut o, 124, c);
            match Superblock::decode(&o) {
                Ok(Some(d)) if ok => assert_eq!((d.version, d.ct_root.crc), (1, 0)),
                Err(e) if !ok => assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}"),
                r => panic!("version {v}: {r:?}"),
            }
        }
        b[20] ^= 0xff;
        assert_eq!(Superblock::decode(&b).unwrap(), None);
    }

    #[test]
    fn write_body_roundtrip_and_hostile_lengths() {
        let p = vec![9u8; 100];
        let e = WriteEntry {
            chunk: ChunkId(4),
            crc: crc32fast::hash(&p),
            stored_len: 100,
            flags: 0,
        };
        let b = encode_write([1; 16], 10, &[e], &[&p]);
        let d = decode_write(&b).unwrap();
        assert_eq!(d.entries, vec![e]);
        assert_eq!(&b[d.payload_offsets[0]..d.payload_offsets[0] + 100], &p[..]);
        let mut bad = b.clone();
        put_u32(&mut bad, 24, u32::MAX);
        assert!(decode_write(&bad).is_err());
    }
}
