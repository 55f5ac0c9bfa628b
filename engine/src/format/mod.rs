//! On-disk encodings, pure and I/O-free: every structure blockd writes is
//! encoded and decoded here and nowhere else. This file holds the layout
//! constants and the record header that frames every log record;
//! `superblock.rs` the superblock slot; `nodes.rs` map nodes (dense, runs
//! and packed); `pages.rs` chunk-table pages (and version 3 leaves, for
//! migration); `extents.rs`
//! multi-block extents (slot values, block crcs, extent Write and Reloc
//! bodies);
//! `records.rs` the bodies of Write, Zero, Reloc, Seal and Free records.
//! Catalog records and the checkpoint blob are JSON of the catalogue's and
//! the blob's serde types (`catalog.rs`, `checkpoint.rs`).
//!
//! Invariant: every decoder validates magic, lengths, checksums and
//! self-identity and returns [`Error`](crate::Error) of kind `Corrupt` rather than
//! panicking on bad bytes; encoders are the only writers of these layouts,
//! so a layout changes here or not at all. docs/design.md draws these
//! layouts as byte diagrams.

mod extents;
mod nodes;
mod pages;
mod records;
mod superblock;

pub use extents::*;
pub use nodes::*;
pub use pages::*;
pub use records::*;
pub use superblock::*;

/// Record header magic, "BLKD" little-endian.
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"BLKD");
/// Size of a record header.
pub const HEADER_LEN: usize = 32;
/// Size of a metadata page (map node or chunk-table page).
pub const PAGE_LEN: usize = 4096;
/// Entries in a map node.
pub const NODE_FANOUT: u64 = 510;
/// Entries in a chunk-table (object-table) leaf page: 16 bytes each.
pub const CT_LEAF_ENTRIES: u64 = 255;
/// Children of a chunk-table interior page (16 bytes each: location and crc).
pub const CT_FANOUT: u64 = 255;
/// Levels of interior pages above chunk-table leaves: enough for node ids,
/// which start at 2⁵⁷ ([`crate::types::NODE_ID_BASE`]).
pub const CT_INTERIOR_LEVELS: u8 = 7;
/// Chunk-table slots, and so the bound on chunk ids: leaves of
/// [`CT_LEAF_ENTRIES`] under [`CT_INTERIOR_LEVELS`] levels of
/// [`CT_FANOUT`] (255⁸ ≈ 1.8 × 10¹⁹, just under 2⁶⁴).
pub const CT_CAPACITY: u64 = CT_LEAF_ENTRIES * CT_FANOUT.pow(CT_INTERIOR_LEVELS as u32);
/// Superblock magic.
pub const SUPER_MAGIC: [u8; 8] = *b"BLKDSUPR";
/// On-disk format version. Version 8 writes large writes as aligned
/// extent Write records (kind 12: payloads at 4 KiB-aligned file offsets,
/// located through the `gap` of their extent's entry; `extents.rs`);
/// older records and entries stay valid, so version 4 to 7 stores open as
/// they are. Version 7 may write a map node *packed* (a
/// base value and 510 offsets from it of 1 to 7 bytes each; `nodes.rs`),
/// which makes a leaf written at random about half a page; dense and runs
/// nodes stay valid, so a version 6 store opens as it is. Version 6 stores data as extents of 1 to 32
/// blocks (one id, one chunk-table entry and one refcount each, block
/// crcs in the Write record; `extents.rs`); the one-block chunks of
/// versions 4 and 5 stay valid as they are, so those stores open without
/// rewriting anything. Version 5 writes a map node as runs of
/// consecutive ids when that is smaller than the dense page, and keeps a
/// node's record length (and a 20-bit refcount) in its chunk-table entry;
/// a version 4 store (dense nodes only, which stay valid) opens as it is.
/// Version 4 has chunk-table leaves of 255 16-byte entries and separate id
/// regions (data ids from 2, node ids from 2⁵⁷); a cleanly closed version
/// 3 store (leaves of 127 32-byte entries, data ids even and node ids odd)
/// is migrated on open (`migrate.rs`); versions 1 and 2 are refused with a
/// message saying to open them with a format-3 build first
/// (docs/design.md, "Format versions").
pub const FORMAT_VERSION: u32 = 8;
/// The oldest format version this build opens (migrating it).
pub const OLDEST_FORMAT_VERSION: u32 = 3;
/// The format version whose stores `migrate.rs` rewrites at open; later
/// ones (4 to 7) open as they are.
pub const MIGRATED_FORMAT_VERSION: u32 = 3;
/// Size of one superblock slot.
pub const SUPER_SLOT_LEN: usize = 4096;
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
    /// Data blocks written to a volume as extents (format version 6).
    WriteExtents = 10,
    /// An extent moved by the segment cleaner (format version 6).
    RelocExtent = 11,
    /// Data blocks written as extents with their payloads 4 KiB-aligned
    /// in the file (format version 8).
    WriteAligned = 12,
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
            10 => RecordKind::WriteExtents,
            11 => RecordKind::RelocExtent,
            12 => RecordKind::WriteAligned,
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
    } else if kind == RecordKind::WriteExtents {
        extent_write_covered(body).map_or(body.len(), |c| c.min(body.len()))
    } else if kind == RecordKind::WriteAligned {
        aligned_write_covered(body).map_or(body.len(), |c| c.min(body.len()))
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

    /// The header of a record whose whole `body_len`-byte body has crc32
    /// `body_crc`, computed beforehand (a checkpoint encodes map nodes
    /// outside the state lock). The same bytes as [`RecordHeader::encode`]
    /// for any kind but Write.
    pub fn encode_with_crc(
        kind: RecordKind,
        seq: u64,
        body_crc: u32,
        body_len: u32,
    ) -> [u8; HEADER_LEN] {
        debug_assert!(!matches!(
            kind,
            RecordKind::Write | RecordKind::WriteExtents | RecordKind::WriteAligned
        ));
        let mut h = [0u8; HEADER_LEN];
        put_u32(&mut h, 0, RECORD_MAGIC);
        h[4] = kind as u8;
        put_u64(&mut h, 8, seq);
        put_u32(&mut h, 16, body_len);
        put_u32(&mut h, 20, body_crc);
        put_u32(&mut h, 24, body_len);
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

/// True when `b` starts with the record magic (a candidate header).
pub(crate) fn has_record_magic(b: &[u8]) -> bool {
    b.len() >= 4 && get_u32(b, 0) == RECORD_MAGIC
}

/// The fields of a record header read without checking its own crc (for
/// describing a damaged record: the body's crc may still vouch for the
/// body). Only the magic is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawHeader {
    /// The kind byte, possibly not a known kind.
    pub kind: u8,
    /// Body length in bytes.
    pub body_len: u32,
    /// crc32 of the first `crc_len` bytes of the body.
    pub body_crc: u32,
    /// Bytes of the body the crc covers.
    pub crc_len: u32,
}

impl RawHeader {
    /// Reads the fields of `h`; `None` without a record magic.
    pub(crate) fn peek(h: &[u8]) -> Option<RawHeader> {
        if h.len() < HEADER_LEN || !has_record_magic(h) {
            return None;
        }
        Some(RawHeader {
            kind: h[4],
            body_len: get_u32(h, 16),
            body_crc: get_u32(h, 20),
            crc_len: get_u32(h, 24),
        })
    }

    /// True when the header names a record of `kind`.
    pub(crate) fn is(&self, kind: RecordKind) -> bool {
        self.kind == kind as u8
    }
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
    fn raw_header_peek() {
        let body = b"twelve bytes";
        let mut h = RecordHeader::encode(RecordKind::Zero, 7, body);
        // A damaged header crc still yields its fields.
        h[30] ^= 0xff;
        assert!(RecordHeader::decode(&h).is_none());
        let r = RawHeader::peek(&h).unwrap();
        assert!(r.is(RecordKind::Zero) && !r.is(RecordKind::Write));
        assert_eq!((r.body_len, r.crc_len), (12, 12));
        assert_eq!(r.body_crc, crc32fast::hash(body));
        assert!(RawHeader::peek(&h[..HEADER_LEN - 1]).is_none());
        h[0] ^= 1;
        assert!(RawHeader::peek(&h).is_none() && !has_record_magic(&h));
    }
}
