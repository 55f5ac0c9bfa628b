//! Log record bodies other than pages and JSON: Write (block entries and
//! inline payloads), Zero (a block range set to hole or zero), Reloc (a
//! chunk moved by the cleaner, payload inline), Seal (the next segment) and
//! Free (one step of the pending-free queue). Each body has a typed form
//! with an encoder and a decoder that refuses bad lengths and values with a
//! `Corrupt` error.

use super::{get_u32, get_u64, put_u32, put_u64};
use crate::error::{Error, Result};
use crate::types::{ChunkId, SegmentNo};

/// Length of a Free record's body.
pub const FREE_BODY: usize = 16;

/// A Free record: one step of the pending-free queue, releasing or sorting
/// at most `max_refs` references, the first of them `top` (the queue's top,
/// or the first reference of the sorted set, when the step began; replay
/// checks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeStep {
    /// Most references the step takes.
    pub max_refs: u32,
    /// What the step does with them.
    pub mode: FreeMode,
    /// The first reference the step takes.
    pub top: ChunkId,
}

/// What a Free step does with the references it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeMode {
    /// Pops the queue and releases each reference at once (every step
    /// before data references were sorted; still replayed from old logs).
    Release = 0,
    /// Pops the queue: a node's reference is released (its children
    /// pushed when it was the last); a data chunk's goes into the sorted
    /// set, by chunk-table leaf.
    Gather = 1,
    /// Releases references from the sorted set, in chunk-table order.
    Sweep = 2,
}

impl FreeStep {
    /// Encodes the body: max_refs u32, mode u32, top u64.
    pub fn encode(&self) -> [u8; FREE_BODY] {
        let mut b = [0u8; FREE_BODY];
        put_u32(&mut b, 0, self.max_refs);
        put_u32(&mut b, 4, self.mode as u32);
        put_u64(&mut b, 8, self.top.0);
        b
    }

    /// Decodes a Free record body.
    pub fn decode(b: &[u8]) -> Result<FreeStep> {
        if b.len() != FREE_BODY {
            return Err(Error::corrupt("free record has a bad length"));
        }
        let mode = match get_u32(b, 4) {
            0 => FreeMode::Release,
            1 => FreeMode::Gather,
            2 => FreeMode::Sweep,
            m => return Err(Error::corrupt(format!("free record has unknown mode {m}"))),
        };
        let s = FreeStep {
            max_refs: get_u32(b, 0),
            mode,
            top: ChunkId(get_u64(b, 8)),
        };
        if s.max_refs == 0 || s.top.is_special() {
            return Err(Error::corrupt("free record names no work"));
        }
        if s.mode == FreeMode::Sweep && !s.top.is_data() {
            return Err(Error::corrupt("free record sweeps a map node"));
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
        if e.chunk.is_data() {
            super::check_stored(e.stored_len, e.flags)
                .map_err(|x| x.with_context(format!("write record entry {i}")))?;
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

/// The fixed part of a Write record body (object, first block, entry
/// count), read without its entries: what a report on a damaged or
/// inapplicable record names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteHead {
    /// The volume written.
    pub object: [u8; 16],
    /// First block written.
    pub first_block: u64,
    /// Number of entries (blocks).
    pub count: u64,
}

impl WriteHead {
    /// Reads the fixed part; `None` when the body is shorter than it.
    pub fn peek(b: &[u8]) -> Option<WriteHead> {
        (b.len() >= WRITE_FIXED).then(|| WriteHead {
            object: b[..16].try_into().expect("16 bytes"),
            first_block: get_u64(b, 16),
            count: u64::from(get_u32(b, 24)),
        })
    }

    /// True when a body of `body_len` bytes holds all the entries.
    pub fn entries_fit(&self, body_len: u64) -> bool {
        (WRITE_FIXED as u64) + self.count * (WRITE_ENTRY as u64) <= body_len
    }
}

/// Length of a Zero record's body.
pub const ZERO_BODY: usize = 40;

/// A Zero record: blocks `first_block .. first_block + blocks` of a volume
/// set to [`ChunkId::HOLE`] (trim) or [`ChunkId::ZERO`] (write zeroes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroBody {
    /// The volume.
    pub object: [u8; 16],
    /// First block of the range.
    pub first_block: u64,
    /// Blocks in the range.
    pub blocks: u64,
    /// HOLE or ZERO (any value, as [`ZeroBody::peek`] reads it).
    pub value: ChunkId,
}

impl ZeroBody {
    /// Encodes the body: object 16 bytes, first u64, blocks u64, value u32,
    /// 0 u32.
    pub fn encode(&self) -> [u8; ZERO_BODY] {
        let mut b = [0u8; ZERO_BODY];
        b[..16].copy_from_slice(&self.object);
        put_u64(&mut b, 16, self.first_block);
        put_u64(&mut b, 24, self.blocks);
        put_u32(&mut b, 32, self.value.0 as u32);
        b
    }

    /// Decodes a Zero record body, refusing a bad length or value.
    pub fn decode(b: &[u8]) -> Result<ZeroBody> {
        let z = Self::peek(b).ok_or_else(|| Error::corrupt("zero record has a bad length"))?;
        if z.value != ChunkId::HOLE && z.value != ChunkId::ZERO {
            return Err(Error::corrupt("zero record has a bad value"));
        }
        Ok(z)
    }

    /// Reads a body of the right length without checking its value (for
    /// describing a damaged record).
    pub fn peek(b: &[u8]) -> Option<ZeroBody> {
        (b.len() == ZERO_BODY).then(|| ZeroBody {
            object: b[..16].try_into().expect("16 bytes"),
            first_block: get_u64(b, 16),
            blocks: get_u64(b, 24),
            value: ChunkId(u64::from(get_u32(b, 32))),
        })
    }
}

/// Length of a Reloc record's fixed part; the payload follows it.
pub const RELOC_FIXED: usize = 24;

/// The fixed part of a Reloc record: the chunk the cleaner moved and its
/// chunk-table fields. The stored payload follows at [`RELOC_FIXED`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelocHead {
    /// The chunk moved.
    pub chunk: ChunkId,
    /// crc32 of the stored payload.
    pub crc: u32,
    /// Stored length of the payload.
    pub stored_len: u32,
    /// The chunk's flags ([`CT_FLAG_COMPRESSED`](super::CT_FLAG_COMPRESSED)).
    pub flags: u32,
}

impl RelocHead {
    /// Encodes the record body: chunk u64, crc u32, stored_len u32, flags
    /// u32, 0 u32, then `payload`.
    pub fn encode(&self, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; RELOC_FIXED];
        put_u64(&mut b, 0, self.chunk.0);
        put_u32(&mut b, 8, self.crc);
        put_u32(&mut b, 12, self.stored_len);
        put_u32(&mut b, 16, self.flags);
        b.extend_from_slice(payload);
        b
    }

    /// Decodes a Reloc record body's fixed part; the payload is
    /// `&b[RELOC_FIXED..]`.
    pub fn decode(b: &[u8]) -> Result<RelocHead> {
        if b.len() < RELOC_FIXED {
            return Err(Error::corrupt("reloc record too short"));
        }
        let h = RelocHead {
            chunk: ChunkId(get_u64(b, 0)),
            crc: get_u32(b, 8),
            stored_len: get_u32(b, 12),
            flags: get_u32(b, 16),
        };
        super::check_stored(h.stored_len, h.flags).map_err(|e| e.with_context("reloc record"))?;
        Ok(h)
    }
}

/// Length of a Seal record's body.
pub const SEAL_BODY: usize = 8;

/// A Seal record: the end of a segment, naming the segment the log
/// continues in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealBody {
    /// The next segment.
    pub next: SegmentNo,
}

impl SealBody {
    /// Encodes the body: the next segment number as u64.
    pub fn encode(&self) -> [u8; SEAL_BODY] {
        u64::from(self.next.0).to_le_bytes()
    }

    /// Decodes a Seal record body.
    pub fn decode(b: &[u8]) -> Result<SealBody> {
        if b.len() != SEAL_BODY {
            return Err(Error::corrupt("seal record has a bad length"));
        }
        let n = u32::try_from(get_u64(b, 0))
            .map_err(|_| Error::corrupt("seal record names no valid segment"))?;
        Ok(SealBody { next: SegmentNo(n) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_step_roundtrip() {
        for (mode, top) in [
            (FreeMode::Release, ChunkId(77)),
            (FreeMode::Gather, ChunkId(77)),
            (FreeMode::Sweep, ChunkId(78)),
        ] {
            let f = FreeStep {
                max_refs: 256,
                mode,
                top,
            };
            assert_eq!(FreeStep::decode(&f.encode()).unwrap(), f);
            assert!(FreeStep::decode(&f.encode()[..8]).is_err());
        }
        let f = FreeStep {
            max_refs: 256,
            mode: FreeMode::Gather,
            top: ChunkId(77),
        };
        let mut bad = f.encode();
        bad[4] = 3;
        assert!(FreeStep::decode(&bad).is_err());
        let z = FreeStep { max_refs: 0, ..f };
        assert!(FreeStep::decode(&z.encode()).is_err());
        let node = FreeStep {
            mode: FreeMode::Sweep,
            top: ChunkId(crate::types::NODE_ID_BASE),
            ..f
        };
        assert!(FreeStep::decode(&node.encode()).is_err());
    }

    /// A Write body of one block entry whose payload is `len` bytes of
    /// `fill` (marked compressed when shorter than a block).
    fn one_entry_write(len: usize, fill: u8) -> (Vec<u8>, WriteEntry, Vec<u8>) {
        let p = vec![fill; len];
        let e = WriteEntry {
            chunk: ChunkId(4),
            crc: crc32fast::hash(&p),
            stored_len: len as u32,
            flags: if len < 4096 {
                super::super::CT_FLAG_COMPRESSED
            } else {
                0
            },
        };
        (encode_write([1; 16], 10, &[e], &[&p]), e, p)
    }

    #[test]
    fn write_body_roundtrip_and_hostile_lengths() {
        let (b, e, p) = one_entry_write(100, 9);
        let d = decode_write(&b).unwrap();
        assert_eq!(d.entries, vec![e]);
        assert_eq!(&b[d.payload_offsets[0]..d.payload_offsets[0] + 100], &p[..]);
        let mut bad = b.clone();
        put_u32(&mut bad, 24, u32::MAX);
        assert!(decode_write(&bad).is_err());
        // A short payload not marked compressed cannot be a chunk.
        let mut plain = b.clone();
        put_u32(&mut plain, WRITE_FIXED + 16, 0);
        let err = decode_write(&plain).unwrap_err();
        assert!(err.to_string().contains("stored length 100"), "{err}");
        let (b, _, _) = one_entry_write(4096, 1);
        assert_eq!(decode_write(&b).unwrap().entries[0].stored_len, 4096);
    }

    #[test]
    fn write_head_peek() {
        let b = encode_write([3; 16], 99, &[], &[]);
        let h = WriteHead::peek(&b).unwrap();
        assert_eq!((h.object, h.first_block, h.count), ([3; 16], 99, 0));
        assert!(h.entries_fit(b.len() as u64));
        let mut lying = b.clone();
        put_u32(&mut lying, 24, 2);
        let h = WriteHead::peek(&lying).unwrap();
        assert!(!h.entries_fit(lying.len() as u64));
        assert!(WriteHead::peek(&b[..WRITE_FIXED - 1]).is_none());
    }

    #[test]
    fn zero_body_roundtrip_and_garbled() {
        for value in [ChunkId::HOLE, ChunkId::ZERO] {
            let z = ZeroBody {
                object: [5; 16],
                first_block: 1 << 40,
                blocks: 510,
                value,
            };
            let b = z.encode();
            // The layout replay and older builds read: object, first
            // block, block count, value as u32, then a zero word.
            assert_eq!(&b[..16], &[5; 16]);
            assert_eq!(&b[16..24], &(1u64 << 40).to_le_bytes());
            assert_eq!(&b[24..32], &510u64.to_le_bytes());
            assert_eq!(&b[32..36], &(value.0 as u32).to_le_bytes());
            assert_eq!(&b[36..40], &[0; 4]);
            assert_eq!(ZeroBody::decode(&b).unwrap(), z);
            assert_eq!(ZeroBody::peek(&b), Some(z));
        }
        let z = ZeroBody {
            object: [5; 16],
            first_block: 0,
            blocks: 1,
            value: ChunkId::ZERO,
        };
        let b = z.encode();
        let e = ZeroBody::decode(&b[..ZERO_BODY - 1]).unwrap_err();
        assert!(e.to_string().contains("bad length"), "{e}");
        let mut long = b.to_vec();
        long.push(0);
        assert!(ZeroBody::decode(&long).is_err() && ZeroBody::peek(&long).is_none());
        let mut bad = b;
        put_u32(&mut bad, 32, 7);
        let e = ZeroBody::decode(&bad).unwrap_err();
        assert!(e.to_string().contains("bad value"), "{e}");
        // peek reads a garbled value as it is.
        assert_eq!(ZeroBody::peek(&bad).unwrap().value, ChunkId(7));
    }

    #[test]
    fn reloc_roundtrip_and_truncated() {
        let p = vec![0xabu8; 300];
        let r = RelocHead {
            chunk: ChunkId(1234),
            crc: crc32fast::hash(&p),
            stored_len: 300,
            flags: 1,
        };
        let b = r.encode(&p);
        assert_eq!(b.len(), RELOC_FIXED + 300);
        assert_eq!(RelocHead::decode(&b).unwrap(), r);
        assert_eq!(&b[RELOC_FIXED..], &p[..]);
        assert_eq!(&b[20..24], &[0; 4]);
        let e = RelocHead::decode(&b[..RELOC_FIXED - 1]).unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
        assert!(RelocHead::decode(&[]).is_err());
    }

    #[test]
    fn seal_roundtrip_and_garbled() {
        let s = SealBody {
            next: SegmentNo(u32::MAX),
        };
        let b = s.encode();
        assert_eq!(b, u64::from(u32::MAX).to_le_bytes());
        assert_eq!(SealBody::decode(&b).unwrap(), s);
        assert!(SealBody::decode(&b[..7]).is_err());
        assert!(SealBody::decode(&[0; 9]).is_err());
        let e = SealBody::decode(&(1u64 << 32).to_le_bytes()).unwrap_err();
        assert!(e.to_string().contains("no valid segment"), "{e}");
    }

    #[test]
    fn write_body_truncated() {
        let (b, _, _) = one_entry_write(64, 1);
        assert!(decode_write(&b[..b.len() - 1]).is_err());
        assert!(decode_write(&b[..WRITE_FIXED - 1]).is_err());
        let mut garbled = b.clone();
        let last = garbled.len() - 1;
        garbled[last] ^= 1;
        let err = decode_write(&garbled).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        assert_eq!(decode_write_salvage(&garbled).unwrap().1, vec![0]);
    }
}
