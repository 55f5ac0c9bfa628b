//! The on-disk pieces of multi-block extents (docs/extents.md, step 2b),
//! encoded and decoded here but **not yet used by the store**: map slot
//! values naming a block of an extent, the block crc seeded with the
//! extent id, the extent's chunk-table entry (block count and flags in
//! place of the crc), and the Write record body that stores extents (per
//! extent: its block crcs, compressed lengths, payloads). Decoders refuse
//! bad lengths and values with `Corrupt`, never panic.

use super::{get_u32, get_u64, put_u32, put_u64, PAGE_LEN};
use crate::error::{Error, Result};
use crate::types::{ChunkId, LogAddr, BLOCK_SIZE};

/// Most blocks in one extent (decision 1).
pub const EXTENT_MAX_BLOCKS: usize = 32;
/// Low bits of a level-0 map slot holding the block's index in its extent.
pub const SLOT_INDEX_BITS: u32 = 5;
/// The extent's blocks are stored zstd-compressed (each block on its own;
/// its stored length follows the crcs).
pub const EXTENT_FLAG_COMPRESSED: u16 = 1;

/// The level-0 map slot naming block `index` of extent `extent`.
pub fn slot_value(extent: ChunkId, index: u8) -> u64 {
    debug_assert!(extent.is_data() && usize::from(index) < EXTENT_MAX_BLOCKS);
    extent.0 << SLOT_INDEX_BITS | u64::from(index)
}

/// The extent a level-0 slot value names (not special: 0 and 1 stay hole
/// and zero).
pub fn slot_extent(v: u64) -> ChunkId {
    ChunkId(v >> SLOT_INDEX_BITS)
}

/// The block index in its extent a level-0 slot value names.
pub fn slot_index(v: u64) -> u8 {
    (v & ((1 << SLOT_INDEX_BITS) - 1)) as u8
}

/// crc32 of block `index` of extent `extent`: over the extent id (u64
/// LE), the index (u8) and the stored payload, so that a block of another
/// extent, or a stale block a reused spare segment still holds, never
/// verifies as this one even when its own crc is valid (decision 5).
pub fn block_crc(extent: ChunkId, index: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&extent.0.to_le_bytes());
    h.update(&[index]);
    h.update(payload);
    h.finalize()
}

/// The chunk-table entry of an extent: 16 bytes, `loc` u64 (its crc array
/// in the Write or Reloc record), refcount u32, block count u8, flags u8,
/// 0 u16. The full 32-bit refcount: one reference per map leaf (or queued
/// reference) naming the extent, whatever the number of its slots there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtentEntry {
    /// The extent's crc array inside its record.
    pub loc: LogAddr,
    /// References: leaves naming the extent, catalogue roots never, queued
    /// references; 0 = free.
    pub refcount: u32,
    /// Blocks in the extent, 1 to [`EXTENT_MAX_BLOCKS`].
    pub nblocks: u8,
    /// [`EXTENT_FLAG_COMPRESSED`] (as a u8).
    pub flags: u8,
}

/// Bytes of an extent entry.
pub const EXTENT_ENTRY_LEN: usize = 16;

impl ExtentEntry {
    /// Encodes the entry into its 16 bytes.
    pub fn encode_into(&self, b: &mut [u8]) {
        put_u64(b, 0, self.loc.0);
        put_u32(b, 8, self.refcount);
        b[12] = self.nblocks;
        b[13] = self.flags;
        b[14] = 0;
        b[15] = 0;
    }

    /// Decodes extent `id`'s 16 bytes: all zero is a free entry; a live one
    /// has a location, references, 1 to 32 blocks and known flags.
    pub fn decode(id: u64, b: &[u8]) -> Result<ExtentEntry> {
        let e = ExtentEntry {
            loc: LogAddr(get_u64(b, 0)),
            refcount: get_u32(b, 8),
            nblocks: b[12],
            flags: b[13],
        };
        if e == ExtentEntry::default() && b[14] == 0 && b[15] == 0 {
            return Ok(e);
        }
        let ok = !e.loc.is_none()
            && e.refcount > 0
            && (1..=EXTENT_MAX_BLOCKS).contains(&usize::from(e.nblocks))
            && u16::from(e.flags) & !EXTENT_FLAG_COMPRESSED == 0
            && b[14] == 0
            && b[15] == 0;
        if ok {
            Ok(e)
        } else {
            Err(Error::corrupt(format!(
                "chunk-table entry of extent {id} is malformed ({e:?})"
            )))
        }
    }

    /// Where block `k` of an uncompressed extent lies: its crc and its
    /// payload (two `pread`s, decision 5's layout).
    pub fn plain_block(&self, k: u8) -> (LogAddr, LogAddr) {
        let n = u64::from(self.nblocks);
        let k = u64::from(k);
        (
            LogAddr(self.loc.0 + 4 * k),
            LogAddr(self.loc.0 + 4 * n + BLOCK_SIZE * k),
        )
    }
}

/// How a Write of `kinds` (one per block: 0 data, 1 zero) is cut into
/// extents: each run of contiguous data blocks becomes ceil(N/32)
/// extents, as (first block in the write, count).
pub fn plan_extents(kinds: &[u8]) -> Vec<(u32, u16)> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < kinds.len() {
        if kinds[i] != BLOCK_DATA {
            i += 1;
            continue;
        }
        let start = i;
        while i < kinds.len() && kinds[i] == BLOCK_DATA && i - start < EXTENT_MAX_BLOCKS {
            i += 1;
        }
        out.push((start as u32, (i - start) as u16));
    }
    out
}

/// A block of a Write holding data (in an extent).
pub const BLOCK_DATA: u8 = 0;
/// A block of a Write that is all zero (in no extent, not stored).
pub const BLOCK_ZERO: u8 = 1;

/// Bytes of an extent Write body's fixed part.
pub const EXTENT_WRITE_FIXED: usize = 32;
/// Bytes of one extent descriptor.
pub const EXTENT_DESC_LEN: usize = 16;

/// One extent of a Write record to encode: its id, its first block in the
/// write, and its blocks' stored payloads (each compressed on its own when
/// `compressed`).
#[derive(Clone, Debug)]
pub struct ExtentIn<'a> {
    /// The extent's id (a data id).
    pub id: ChunkId,
    /// Its first block, as an index into the write.
    pub first: u32,
    /// Each block's payload is zstd-compressed.
    pub compressed: bool,
    /// The stored payloads, one per block.
    pub payloads: Vec<&'a [u8]>,
}

/// One extent of a decoded Write record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtentOut {
    /// The extent's id.
    pub id: ChunkId,
    /// Its first block, as an index into the write.
    pub first: u32,
    /// [`EXTENT_FLAG_COMPRESSED`] or 0.
    pub flags: u16,
    /// Offset in the body of its crc array (the table's `loc` points there).
    pub crcs_at: usize,
    /// Per block: the offset of its stored payload in the body, and its
    /// length.
    pub blocks: Vec<(usize, usize)>,
}

/// A decoded extent Write record body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtentWrite {
    /// The volume written.
    pub object: [u8; 16],
    /// First block written.
    pub first_block: u64,
    /// One kind per block ([`BLOCK_DATA`] or [`BLOCK_ZERO`]).
    pub kinds: Vec<u8>,
    /// The extents, in block order.
    pub extents: Vec<ExtentOut>,
    /// Bytes of the body the record header's crc covers: all before the
    /// first extent's crcs.
    pub covered: usize,
}

fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Encodes an extent Write record body:
///
/// ```text
///  0 object (16) | 16 first block u64 | 24 n blocks u32 | 28 n extents u32
///  n blocks × kind u8 (0 data, 1 zero), zero-padded to 8
///  n extents × { id u64 · first u32 · count u16 · flags u16 }
///  per extent: count × crc u32 · [compressed: count × stored_len u32] · payloads
/// ```
pub fn encode_extent_write(
    object: [u8; 16],
    first_block: u64,
    kinds: &[u8],
    extents: &[ExtentIn<'_>],
) -> Vec<u8> {
    let head = EXTENT_WRITE_FIXED + pad8(kinds.len()) + EXTENT_DESC_LEN * extents.len();
    let mut b = vec![0u8; head];
    b[..16].copy_from_slice(&object);
    put_u64(&mut b, 16, first_block);
    put_u32(&mut b, 24, kinds.len() as u32);
    put_u32(&mut b, 28, extents.len() as u32);
    b[EXTENT_WRITE_FIXED..EXTENT_WRITE_FIXED + kinds.len()].copy_from_slice(kinds);
    let descs = EXTENT_WRITE_FIXED + pad8(kinds.len());
    for (i, x) in extents.iter().enumerate() {
        let o = descs + EXTENT_DESC_LEN * i;
        put_u64(&mut b, o, x.id.0);
        put_u32(&mut b, o + 8, x.first);
        b[o + 12..o + 14].copy_from_slice(&(x.payloads.len() as u16).to_le_bytes());
        let flags = if x.compressed {
            EXTENT_FLAG_COMPRESSED
        } else {
            0
        };
        b[o + 14..o + 16].copy_from_slice(&flags.to_le_bytes());
    }
    for x in extents {
        for (k, p) in x.payloads.iter().enumerate() {
            b.extend_from_slice(&block_crc(x.id, k as u8, p).to_le_bytes());
        }
        if x.compressed {
            for p in &x.payloads {
                b.extend_from_slice(&(p.len() as u32).to_le_bytes());
            }
        }
        for p in &x.payloads {
            b.extend_from_slice(p);
        }
    }
    b
}

/// Decodes an extent Write record body, checking its shape (kinds, the
/// extents covering exactly the data blocks in order, 1 to 32 blocks
/// each, lengths) but not the block crcs: returns the body and the
/// (extent, block) pairs whose payload fails its seeded crc (what a
/// salvaging replay leaves out).
pub fn decode_extent_write(b: &[u8]) -> Result<(ExtentWrite, Vec<(usize, u8)>)> {
    let bad = |why: String| Error::corrupt(format!("extent write record {why}"));
    if b.len() < EXTENT_WRITE_FIXED {
        return Err(bad("is too short".into()));
    }
    let (n, m) = (get_u32(b, 24) as usize, get_u32(b, 28) as usize);
    let descs = EXTENT_WRITE_FIXED
        .checked_add(pad8(n))
        .filter(|&x| x <= b.len())
        .ok_or_else(|| bad(format!("has {n} blocks in {} bytes", b.len())))?;
    let head = m
        .checked_mul(EXTENT_DESC_LEN)
        .and_then(|x| x.checked_add(descs))
        .filter(|&x| x <= b.len())
        .ok_or_else(|| bad(format!("has {m} extents in {} bytes", b.len())))?;
    let kinds = b[EXTENT_WRITE_FIXED..EXTENT_WRITE_FIXED + n].to_vec();
    if kinds.iter().any(|&k| k > BLOCK_ZERO)
        || b[EXTENT_WRITE_FIXED + n..descs].iter().any(|&x| x != 0)
    {
        return Err(bad("has a bad block kind".into()));
    }
    let mut extents = Vec::with_capacity(m.min(n));
    let mut failed = Vec::new();
    let mut at = head;
    let mut next_block = 0usize;
    for i in 0..m {
        let o = descs + EXTENT_DESC_LEN * i;
        let id = ChunkId(get_u64(b, o));
        let first = get_u32(b, o + 8) as usize;
        let count = usize::from(u16::from_le_bytes([b[o + 12], b[o + 13]]));
        let flags = u16::from_le_bytes([b[o + 14], b[o + 15]]);
        // In order, within the write, over data blocks only, and every
        // data block before `first` in an earlier extent.
        let ok = id.is_data()
            && (1..=EXTENT_MAX_BLOCKS).contains(&count)
            && flags & !EXTENT_FLAG_COMPRESSED == 0
            && first >= next_block
            && first + count <= n
            && kinds[next_block..first].iter().all(|&k| k == BLOCK_ZERO)
            && kinds[first..first + count].iter().all(|&k| k == BLOCK_DATA);
        if !ok {
            return Err(bad(format!(
                "has a malformed extent {i} (id {}, blocks {first}+{count}, flags {flags:#x})",
                id.0
            )));
        }
        let compressed = flags & EXTENT_FLAG_COMPRESSED != 0;
        let crcs_at = at;
        let lens_at = crcs_at + 4 * count;
        let payload_at = if compressed {
            lens_at + 4 * count
        } else {
            lens_at
        };
        if payload_at > b.len() {
            return Err(bad(format!("extent {i} exceeds the record")));
        }
        let mut blocks = Vec::with_capacity(count);
        let mut p = payload_at;
        for k in 0..count {
            let len = if compressed {
                get_u32(b, lens_at + 4 * k) as usize
            } else {
                PAGE_LEN
            };
            if len == 0 || len > PAGE_LEN || (compressed && len == PAGE_LEN) {
                return Err(bad(format!("extent {i} block {k} has stored length {len}")));
            }
            let end = p
                .checked_add(len)
                .filter(|&e| e <= b.len())
                .ok_or_else(|| bad(format!("extent {i} block {k} exceeds the record")))?;
            if block_crc(id, k as u8, &b[p..end]) != get_u32(b, crcs_at + 4 * k) {
                failed.push((i, k as u8));
            }
            blocks.push((p, len));
            p = end;
        }
        extents.push(ExtentOut {
            id,
            first: first as u32,
            flags,
            crcs_at,
            blocks,
        });
        at = p;
        next_block = first + count;
    }
    if kinds[next_block..].contains(&BLOCK_DATA) {
        return Err(bad("leaves data blocks in no extent".into()));
    }
    if at != b.len() {
        return Err(bad(format!("has {} bytes after its extents", b.len() - at)));
    }
    let mut object = [0u8; 16];
    object.copy_from_slice(&b[..16]);
    Ok((
        ExtentWrite {
            object,
            first_block: get_u64(b, 16),
            kinds,
            extents,
            covered: head,
        },
        failed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_name_a_block_of_an_extent() {
        let e = ChunkId::data(40);
        let v = slot_value(e, 31);
        assert_eq!((slot_extent(v), slot_index(v)), (e, 31));
        // Consecutive blocks of an extent are consecutive slot values (one
        // run of a runs-encoded leaf); the next extent starts another.
        assert_eq!(slot_value(e, 1), slot_value(e, 0) + 1);
        assert!(slot_value(ChunkId::data(0), 0) > ChunkId::ZERO.0);
    }

    #[test]
    fn block_crc_is_seeded_with_extent_and_index() {
        let p = [7u8; 4096];
        let c = block_crc(ChunkId::data(1), 0, &p);
        assert_ne!(c, block_crc(ChunkId::data(2), 0, &p));
        assert_ne!(c, block_crc(ChunkId::data(1), 1, &p));
        assert_ne!(c, crc32fast::hash(&p));
    }

    #[test]
    fn extent_entries() {
        let e = ExtentEntry {
            loc: LogAddr(1 << 33 | 96),
            refcount: u32::MAX,
            nblocks: 32,
            flags: 1,
        };
        let mut b = [0u8; EXTENT_ENTRY_LEN];
        e.encode_into(&mut b);
        assert_eq!(ExtentEntry::decode(5, &b).unwrap(), e);
        assert_eq!(
            ExtentEntry::decode(5, &[0; 16]).unwrap(),
            ExtentEntry::default()
        );
        for (at, v) in [(12, 0u8), (12, 33), (13, 2), (14, 1)] {
            let mut x = b;
            x[at] = v;
            assert!(ExtentEntry::decode(5, &x).is_err(), "byte {at} = {v}");
        }
        let (crc, payload) = ExtentEntry { nblocks: 4, ..e }.plain_block(2);
        assert_eq!(crc.0, e.loc.0 + 8);
        assert_eq!(payload.0, e.loc.0 + 16 + 8192);
    }

    #[test]
    fn writes_are_cut_into_extents_of_32() {
        let mut kinds = vec![BLOCK_DATA; 70];
        kinds[5] = BLOCK_ZERO;
        assert_eq!(plan_extents(&kinds), [(0, 5), (6, 32), (38, 32)]);
        assert_eq!(plan_extents(&[BLOCK_ZERO; 3]), []);
        assert_eq!(plan_extents(&[BLOCK_DATA; 64]), [(0, 32), (32, 32)]);
    }

    fn sample() -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut kinds = vec![BLOCK_DATA; 40];
        kinds[3] = BLOCK_ZERO;
        // Blocks 4..36 form the compressed extent: short stored payloads.
        let blocks: Vec<Vec<u8>> = (0..40u8)
            .map(|i| {
                if (4..36).contains(&i) {
                    vec![i; 50 + usize::from(i)]
                } else {
                    vec![i; 4096]
                }
            })
            .collect();
        (kinds, blocks)
    }

    fn encode_sample(kinds: &[u8], blocks: &[Vec<u8>]) -> Vec<u8> {
        let plan = plan_extents(kinds);
        let extents: Vec<ExtentIn<'_>> = plan
            .iter()
            .enumerate()
            .map(|(i, &(first, count))| {
                let r = first as usize..first as usize + count as usize;
                // The 32-block extent is compressed.
                let compressed = count == 32;
                ExtentIn {
                    id: ChunkId::data(10 + i as u64),
                    first,
                    compressed,
                    payloads: blocks[r].iter().map(|p| &p[..]).collect(),
                }
            })
            .collect();
        encode_extent_write([9; 16], 1000, kinds, &extents)
    }

    #[test]
    fn extent_write_roundtrip_and_garbled() {
        let (kinds, blocks) = sample();
        let body = encode_sample(&kinds, &blocks);
        let (w, failed) = decode_extent_write(&body).unwrap();
        assert!(failed.is_empty());
        assert_eq!(
            (w.object, w.first_block, w.kinds.clone()),
            ([9; 16], 1000, kinds.clone())
        );
        let shape: Vec<(u32, usize, u16)> = w
            .extents
            .iter()
            .map(|x| (x.first, x.blocks.len(), x.flags))
            .collect();
        assert_eq!(shape, [(0, 3, 0), (4, 32, 1), (36, 4, 0)]);
        for x in &w.extents {
            for (k, &(at, len)) in x.blocks.iter().enumerate() {
                assert_eq!(&body[at..at + len], &blocks[x.first as usize + k][..]);
            }
        }
        // An uncompressed extent's blocks lie where its entry says.
        let x = &w.extents[2];
        let e = ExtentEntry {
            loc: LogAddr(x.crcs_at as u64),
            refcount: 1,
            nblocks: 4,
            flags: 0,
        };
        let (c, p) = e.plain_block(3);
        assert_eq!(p.0 as usize, x.blocks[3].0);
        assert_eq!(
            get_u32(&body, c.0 as usize),
            block_crc(x.id, 3, &blocks[39])
        );
        // A flipped payload byte fails that block's crc only.
        let mut d = body.clone();
        d[x.blocks[1].0 + 7] ^= 1;
        assert_eq!(decode_extent_write(&d).unwrap().1, [(2, 1)]);
        // Truncated, trailing bytes, a bad kind, a data block in no extent.
        assert!(decode_extent_write(&body[..body.len() - 1]).is_err());
        let mut d = body.clone();
        d.push(0);
        assert!(decode_extent_write(&d).is_err());
        let mut d = body.clone();
        d[EXTENT_WRITE_FIXED + 3] = 2;
        assert!(decode_extent_write(&d).is_err());
        let mut d = body.clone();
        d[EXTENT_WRITE_FIXED + 3] = BLOCK_DATA;
        assert!(decode_extent_write(&d).is_err());
        // An extent of 33 blocks, or naming a node id.
        let descs = EXTENT_WRITE_FIXED + 40;
        let mut d = body.clone();
        d[descs + EXTENT_DESC_LEN + 12] = 33;
        assert!(decode_extent_write(&d).is_err());
        let mut d = body;
        put_u64(&mut d, descs, ChunkId::node(0).0);
        assert!(decode_extent_write(&d).is_err());
    }

    proptest::proptest! {
        /// Any bytes: an error or a decoded body, never a panic.
        #[test]
        fn extent_write_decoder_survives_garbage(
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
        ) {
            let _ = decode_extent_write(&b);
        }

        /// Any mix of data and zero blocks round-trips.
        #[test]
        fn extent_write_roundtrip(zeros in proptest::collection::vec(proptest::bool::ANY, 0..100)) {
            let kinds: Vec<u8> = zeros.iter().map(|&z| if z { BLOCK_ZERO } else { BLOCK_DATA }).collect();
            let blocks: Vec<Vec<u8>> = (0..kinds.len()).map(|i| vec![i as u8; 4096]).collect();
            let plan = plan_extents(&kinds);
            let extents: Vec<ExtentIn<'_>> = plan.iter().enumerate().map(|(i, &(first, count))| ExtentIn {
                id: ChunkId::data(i as u64),
                first,
                compressed: false,
                payloads: blocks[first as usize..first as usize + count as usize].iter().map(|p| &p[..]).collect(),
            }).collect();
            let body = encode_extent_write([1; 16], 5, &kinds, &extents);
            let (w, failed) = decode_extent_write(&body).unwrap();
            proptest::prop_assert!(failed.is_empty());
            proptest::prop_assert_eq!(w.kinds, kinds.clone());
            let data = kinds.iter().filter(|&&k| k == BLOCK_DATA).count();
            proptest::prop_assert_eq!(w.extents.iter().map(|x| x.blocks.len()).sum::<usize>(), data);
            proptest::prop_assert_eq!(w.extents.len(), plan.len());
        }
    }
}
