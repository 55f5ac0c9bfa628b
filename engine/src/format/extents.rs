//! The on-disk pieces of multi-block extents (docs/design.md, "Extents";
//! format version 6): map slot values naming a block of an extent, the
//! block crc seeded with the extent id and block index, the cut of a write
//! into extents of at most 32 blocks, the extent Write record body (per
//! extent: its block crcs, then its payloads) and the extent Reloc body
//! the cleaner writes. An extent's chunk-table entry is a
//! [`CtEntry`](super::CtEntry) with `nblocks` set (`pages.rs`). Decoders
//! refuse bad lengths and values with `Corrupt`, never panic.

use super::{get_u32, get_u64, put_u32, put_u64, PAGE_LEN};
use crate::error::{Error, Result};
use crate::types::{ChunkId, LogAddr, BLOCK_SIZE};

/// Most blocks in one extent.
pub const EXTENT_MAX_BLOCKS: usize = 32;
/// Low bits of an extent's level-0 map slot holding the block's index in
/// its extent.
pub const SLOT_INDEX_BITS: u32 = 5;
/// Bit 63 of a level-0 slot: set, the slot names block `v & 31` of extent
/// `(v & !bit) >> 5`; clear, it names a one-block chunk by its id (format
/// versions 4 and 5, and compressed blocks), or is 0 (hole) or 1 (zero).
pub const SLOT_EXTENT: u64 = 1 << 63;
/// Bytes an extent stores per block: its crc and its payload.
pub const EXTENT_BYTES_PER_BLOCK: u64 = 4 + BLOCK_SIZE;

/// The level-0 map slot naming block `index` of extent `extent`.
pub fn slot_value(extent: ChunkId, index: u8) -> u64 {
    debug_assert!(extent.is_data() && usize::from(index) < EXTENT_MAX_BLOCKS);
    SLOT_EXTENT | extent.0 << SLOT_INDEX_BITS | u64::from(index)
}

/// The chunk a level-0 slot value references: the extent it names a block
/// of, or the one-block chunk (or special value) it holds.
pub fn slot_extent(v: u64) -> ChunkId {
    if v & SLOT_EXTENT != 0 {
        ChunkId((v & !SLOT_EXTENT) >> SLOT_INDEX_BITS)
    } else {
        ChunkId(v)
    }
}

/// The block index in its extent a level-0 slot value names (0 for a
/// one-block chunk).
pub fn slot_index(v: u64) -> u8 {
    if v & SLOT_EXTENT != 0 {
        (v & ((1 << SLOT_INDEX_BITS) - 1)) as u8
    } else {
        0
    }
}

/// The chunk an entry of a node at `level` references: for a leaf, the
/// extent its slot value names; above, the node id it holds.
pub fn slot_chunk(level: u8, v: u64) -> ChunkId {
    if level == 0 {
        slot_extent(v)
    } else {
        ChunkId(v)
    }
}

/// The distinct chunks (extents, one-block chunks) the slots of a leaf
/// reference, special values left out, sorted: the references the leaf
/// holds (one per extent, however many of its blocks the leaf maps).
pub fn leaf_extents(slots: &[u64]) -> Vec<ChunkId> {
    let mut v: Vec<ChunkId> = slots
        .iter()
        .map(|&s| slot_extent(s))
        .filter(|c| !c.is_special())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// crc32 of block `index` of extent `extent`: over the payload, then
/// the extent id (u64 LE) and the index (u8), so that a block of another
/// extent, or a stale block a reused spare segment still holds, never
/// verifies as this one even when its own crc is valid. The seed comes
/// last so that the writer can hash the payload before the id is known,
/// outside the store lock, and finish under it ([`block_crc_of`]).
pub fn block_crc(extent: ChunkId, index: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(payload);
    h.update(&extent.0.to_le_bytes());
    h.update(&[index]);
    h.finalize()
}

/// [`block_crc`] from the plain crc32 of the 4096-byte payload: nine
/// more bytes hashed.
pub fn block_crc_of(extent: ChunkId, index: u8, payload_crc: u32) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial_len(payload_crc, BLOCK_SIZE);
    h.update(&extent.0.to_le_bytes());
    h.update(&[index]);
    h.finalize()
}

/// Where block `k` of an extent of `nblocks` blocks whose crc array lies
/// at `loc` is stored: its crc and its payload. The one function every
/// reader of extents (reads, the cleaner, replay, salvage, check, scrub,
/// stats) locates blocks with. `gap` is the entry's: 0 for the layout of
/// kind 10 and 11 records (payloads right after the crc array), else the
/// number of 4 KiB pages from the page holding the crc array to the first
/// payload (kind 12, whose payloads are 4 KiB-aligned in the file).
pub fn extent_block(loc: LogAddr, nblocks: u8, gap: u16, k: u8) -> (LogAddr, LogAddr) {
    let n = u64::from(nblocks);
    let k = u64::from(k);
    let payload = if gap == 0 {
        loc.0 + 4 * n + BLOCK_SIZE * k
    } else {
        loc.0 / ALIGNED_PAGE * ALIGNED_PAGE + ALIGNED_PAGE * u64::from(gap) + BLOCK_SIZE * k
    };
    (LogAddr(loc.0 + 4 * k), LogAddr(payload))
}

/// The `gap` (see [`extent_block`]) of an extent of `nblocks` blocks whose
/// crc array lies at `crcs` and first payload at `payload`: 0 when the
/// payloads follow the crcs, else the pages to the payloads, which must
/// then start at a 4 KiB-aligned offset after the crcs, within 2¹⁶ pages.
pub fn extent_gap(crcs: LogAddr, nblocks: u8, payload: LogAddr) -> Result<u16> {
    if payload.0 == crcs.0 + 4 * u64::from(nblocks) {
        return Ok(0);
    }
    let page = crcs.0 / ALIGNED_PAGE * ALIGNED_PAGE;
    let gap = (payload.0.is_multiple_of(ALIGNED_PAGE) && payload.0 > page)
        .then(|| (payload.0 - page) / ALIGNED_PAGE)
        .and_then(|g| u16::try_from(g).ok())
        .filter(|&g| payload.segment() == crcs.segment() && g > 0);
    gap.ok_or_else(|| {
        Error::corrupt(format!(
            "extent payloads at {:#x} are not 4 KiB-aligned pages after its crcs at {:#x}",
            payload.0, crcs.0
        ))
    })
}

/// Alignment of the payloads of a kind 12 record in its segment file.
pub const ALIGNED_PAGE: u64 = 4096;

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
/// write, and its blocks' payloads (4096 bytes each).
#[derive(Clone, Debug)]
pub struct ExtentIn<'a> {
    /// The extent's id (a data id).
    pub id: ChunkId,
    /// Its first block, as an index into the write.
    pub first: u32,
    /// The payloads, one per block.
    pub payloads: Vec<&'a [u8]>,
}

/// One extent of a decoded Write record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtentOut {
    /// The extent's id.
    pub id: ChunkId,
    /// Its first block, as an index into the write.
    pub first: u32,
    /// Offset in the body of its crc array (the table's `loc` points there).
    pub crcs_at: usize,
    /// Offset in the body of its first payload (the others follow it).
    pub payload_at: usize,
    /// Its number of blocks.
    pub count: u8,
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
}

fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Bytes of an extent Write body the record header's crc covers: its fixed
/// part, kinds and extent descriptors (the blocks carry their own crcs).
/// `None` when the body is too short to say.
pub fn extent_write_covered(b: &[u8]) -> Option<usize> {
    if b.len() < EXTENT_WRITE_FIXED {
        return None;
    }
    let (n, m) = (get_u32(b, 24) as usize, get_u32(b, 28) as usize);
    m.checked_mul(EXTENT_DESC_LEN)?
        .checked_add(EXTENT_WRITE_FIXED.checked_add(pad8(n))?)
}

/// Appends an extent Write body's checksummed head to `out`:
///
/// ```text
///  0 object (16) | 16 first block u64 | 24 n blocks u32 | 28 n extents u32
///  n blocks × kind u8 (0 data, 1 zero), zero-padded to 8
///  n extents × { id u64 · first u32 · count u16 · 0 u16 }
/// ```
///
/// The extents follow it, each as [`extent_crcs`] then its payloads.
pub fn encode_extent_write_head(
    out: &mut Vec<u8>,
    object: [u8; 16],
    first_block: u64,
    kinds: &[u8],
    extents: &[ExtentIn<'_>],
) {
    let base = out.len();
    let head = EXTENT_WRITE_FIXED + pad8(kinds.len()) + EXTENT_DESC_LEN * extents.len();
    out.resize(base + head, 0);
    let b = &mut out[base..];
    b[..16].copy_from_slice(&object);
    put_u64(b, 16, first_block);
    put_u32(b, 24, kinds.len() as u32);
    put_u32(b, 28, extents.len() as u32);
    b[EXTENT_WRITE_FIXED..EXTENT_WRITE_FIXED + kinds.len()].copy_from_slice(kinds);
    let descs = EXTENT_WRITE_FIXED + pad8(kinds.len());
    for (i, x) in extents.iter().enumerate() {
        let o = descs + EXTENT_DESC_LEN * i;
        put_u64(b, o, x.id.0);
        put_u32(b, o + 8, x.first);
        b[o + 12..o + 14].copy_from_slice(&(x.payloads.len() as u16).to_le_bytes());
    }
}

/// The crc array of an extent: each block's [`block_crc`].
#[cfg(test)]
pub fn extent_crcs(x: &ExtentIn<'_>) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 * x.payloads.len());
    for (k, p) in x.payloads.iter().enumerate() {
        b.extend_from_slice(&block_crc(x.id, k as u8, p).to_le_bytes());
    }
    b
}

/// Encodes a whole extent Write record body (head, then per extent its
/// crcs and payloads).
#[cfg(test)]
pub fn encode_extent_write(
    object: [u8; 16],
    first_block: u64,
    kinds: &[u8],
    extents: &[ExtentIn<'_>],
) -> Vec<u8> {
    let mut b = Vec::new();
    encode_extent_write_head(&mut b, object, first_block, kinds, extents);
    for x in extents {
        b.extend_from_slice(&extent_crcs(x));
        for p in &x.payloads {
            b.extend_from_slice(p);
        }
    }
    b
}

/// The validated descriptors of an extent Write body (kind 10 or 12)
/// whose fixed part is `fixed` bytes: its kinds, its extents as (id,
/// first block, count), and where the descriptors end.
#[allow(clippy::type_complexity)]
fn decode_descs(b: &[u8], fixed: usize) -> Result<(Vec<u8>, Vec<(ChunkId, usize, usize)>, usize)> {
    let bad = |why: String| Error::corrupt(format!("extent write record {why}"));
    if b.len() < fixed {
        return Err(bad("is too short".into()));
    }
    let (n, m) = (get_u32(b, 24) as usize, get_u32(b, 28) as usize);
    let descs = fixed
        .checked_add(pad8(n))
        .filter(|&x| x <= b.len())
        .ok_or_else(|| bad(format!("has {n} blocks in {} bytes", b.len())))?;
    let head = m
        .checked_mul(EXTENT_DESC_LEN)
        .and_then(|x| x.checked_add(descs))
        .filter(|&x| x <= b.len())
        .ok_or_else(|| bad(format!("has {m} extents in {} bytes", b.len())))?;
    let kinds = b[fixed..fixed + n].to_vec();
    if kinds.iter().any(|&k| k > BLOCK_ZERO) || b[fixed + n..descs].iter().any(|&x| x != 0) {
        return Err(bad("has a bad block kind".into()));
    }
    let mut out = Vec::with_capacity(m.min(n));
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
            && flags == 0
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
        out.push((id, first, count));
        next_block = first + count;
    }
    if kinds[next_block..].contains(&BLOCK_DATA) {
        return Err(bad("leaves data blocks in no extent".into()));
    }
    Ok((kinds, out, head))
}

/// Checks each block of the decoded extents against its seeded crc:
/// the blocks (indices into the write) that fail.
fn failed_blocks(b: &[u8], extents: &[ExtentOut]) -> Vec<usize> {
    let mut failed = Vec::new();
    for x in extents {
        for k in 0..usize::from(x.count) {
            let p = x.payload_at + PAGE_LEN * k;
            if block_crc(x.id, k as u8, &b[p..p + PAGE_LEN]) != get_u32(b, x.crcs_at + 4 * k) {
                failed.push(x.first as usize + k);
            }
        }
    }
    failed
}

/// The decoded extent Write body `b` (either layout, shape checked) with
/// its `kinds` and `extents`, and the blocks failing their crcs.
fn decoded(b: &[u8], kinds: Vec<u8>, extents: Vec<ExtentOut>) -> (ExtentWrite, Vec<usize>) {
    let failed = failed_blocks(b, &extents);
    let mut object = [0u8; 16];
    object.copy_from_slice(&b[..16]);
    let w = ExtentWrite {
        object,
        first_block: get_u64(b, 16),
        kinds,
        extents,
    };
    (w, failed)
}

/// Decodes an extent Write record body, checking its shape (kinds, the
/// extents covering exactly the data blocks in order, 1 to 32 blocks
/// each, lengths) but not the block crcs: returns the body and the blocks
/// (as indices into the write) whose payload fails its seeded crc (what a
/// salvaging replay leaves out).
pub fn decode_extent_write(b: &[u8]) -> Result<(ExtentWrite, Vec<usize>)> {
    let (kinds, descs, head) = decode_descs(b, EXTENT_WRITE_FIXED)?;
    let mut extents = Vec::with_capacity(descs.len());
    let mut at = head;
    for (i, &(id, first, count)) in descs.iter().enumerate() {
        let crcs_at = at;
        at = (EXTENT_BYTES_PER_BLOCK as usize)
            .checked_mul(count)
            .and_then(|x| x.checked_add(at))
            .filter(|&e| e <= b.len())
            .ok_or_else(|| {
                Error::corrupt(format!("extent write record extent {i} exceeds the record"))
            })?;
        extents.push(ExtentOut {
            id,
            first: first as u32,
            crcs_at,
            payload_at: crcs_at + 4 * count,
            count: count as u8,
        });
    }
    if at != b.len() {
        return Err(Error::corrupt(format!(
            "extent write record has {} bytes after its extents",
            b.len() - at
        )));
    }
    Ok(decoded(b, kinds, extents))
}

/// Bytes of an aligned extent Write body's fixed part (kind 12).
pub const ALIGNED_WRITE_FIXED: usize = 40;
/// Writes with at least this many bytes of data blocks are written as
/// aligned extent Write records (kind 12).
pub const ALIGNED_WRITE_MIN: u64 = 64 << 10;

/// Bytes of an aligned extent Write body the record header's crc covers:
/// everything before the payloads (fixed part, kinds, descriptors, crc
/// arrays and padding). `None` when the body is too short to say.
pub fn aligned_write_covered(b: &[u8]) -> Option<usize> {
    (b.len() >= ALIGNED_WRITE_FIXED).then(|| get_u32(b, 32) as usize)
}

/// Appends an aligned extent Write body's head to `out`, all but its
/// padding (see [`finish_aligned_write_head`]):
///
/// ```text
///  0 object (16) | 16 first block u64 | 24 n blocks u32 | 28 n extents u32
///  32 payloads_at u32 | 36 0 u32
///  n blocks × kind u8 (0 data, 1 zero), zero-padded to 8
///  n extents × { id u64 · first u32 · count u16 · 0 u16 }
///  per extent, count × crc u32 (`crcs`, the extents' arrays back to back)
/// ```
pub fn encode_aligned_write_head(
    out: &mut Vec<u8>,
    object: [u8; 16],
    first_block: u64,
    kinds: &[u8],
    extents: &[ExtentIn<'_>],
    crcs: &[u8],
) {
    let base = out.len();
    encode_extent_write_head(out, object, first_block, kinds, extents);
    // The kind 10 head with 8 more fixed bytes (payloads_at, 0) before
    // the kinds.
    out.splice(
        base + EXTENT_WRITE_FIXED..base + EXTENT_WRITE_FIXED,
        [0u8; 8],
    );
    out.extend_from_slice(crcs);
}

/// Pads the head of an aligned extent Write record, `record` from its
/// first byte (its body starting at `body_at`), so that the record, at
/// file offset `offset`, has its payloads start at a multiple of 4096, and
/// sets `payloads_at`. Returns the padding's length.
pub fn finish_aligned_write_head(record: &mut Vec<u8>, body_at: usize, offset: u64) -> usize {
    let end = offset + record.len() as u64;
    let pad = (end.next_multiple_of(ALIGNED_PAGE) - end) as usize;
    record.resize(record.len() + pad, 0);
    let at = (record.len() - body_at) as u32;
    put_u32(&mut record[body_at..], 32, at);
    pad
}

/// Decodes an aligned extent Write record body (kind 12), as
/// [`decode_extent_write`] does a kind 10 one; also checks `payloads_at`
/// (after the crc arrays, padding under 4096 zero bytes, the payloads
/// filling the rest of the body exactly). That the payloads start at a
/// 4 KiB-aligned file offset is for the reader, who knows where the
/// record lies, to check ([`extent_gap`]).
pub fn decode_aligned_write(b: &[u8]) -> Result<(ExtentWrite, Vec<usize>)> {
    let bad = |why: String| Error::corrupt(format!("aligned extent write record {why}"));
    let (kinds, descs, head) = decode_descs(b, ALIGNED_WRITE_FIXED)?;
    if get_u32(b, 36) != 0 {
        return Err(bad("has non-zero reserved bytes".into()));
    }
    let data: usize = descs.iter().map(|d| d.2).sum();
    let crcs_end = head + 4 * data;
    let pat = get_u32(b, 32) as usize;
    let ok = crcs_end <= pat
        && pat - crcs_end < ALIGNED_PAGE as usize
        && (PAGE_LEN * data).checked_add(pat) == Some(b.len());
    if !ok {
        return Err(bad(format!(
            "has payloads at {pat} after crcs ending at {crcs_end}, {} bytes in all",
            b.len()
        )));
    }
    if b[crcs_end..pat].iter().any(|&x| x != 0) {
        return Err(bad("has non-zero padding".into()));
    }
    let mut extents = Vec::with_capacity(descs.len());
    let mut done = 0usize;
    for &(id, first, count) in &descs {
        extents.push(ExtentOut {
            id,
            first: first as u32,
            crcs_at: head + 4 * done,
            payload_at: pat + PAGE_LEN * done,
            count: count as u8,
        });
        done += count;
    }
    Ok(decoded(b, kinds, extents))
}

/// Decodes the body of an extent Write record of either layout: kind 10
/// ([`decode_extent_write`]) or 12 ([`decode_aligned_write`]).
pub fn decode_extent_record(
    kind: super::RecordKind,
    b: &[u8],
) -> Result<(ExtentWrite, Vec<usize>)> {
    match kind {
        super::RecordKind::WriteExtents => decode_extent_write(b),
        super::RecordKind::WriteAligned => decode_aligned_write(b),
        _ => Err(Error::corrupt("not an extent write record")),
    }
}

/// Bytes of an extent Reloc body's fixed part; the crcs follow it.
pub const EXTENT_RELOC_FIXED: usize = 16;

/// Encodes an extent Reloc body: extent id u64, block count u32, 0 u32,
/// then the extent's crc array and payloads exactly as they were read
/// (`stored`: `4 × n` crc bytes, then `4096 × n` payload bytes). The
/// cleaner copies the bytes as they are: each block stays covered by its
/// seeded crc, which does not depend on where it lies.
pub fn encode_extent_reloc(id: ChunkId, nblocks: u8, stored: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; EXTENT_RELOC_FIXED];
    put_u64(&mut b, 0, id.0);
    put_u32(&mut b, 8, u32::from(nblocks));
    b.extend_from_slice(stored);
    b
}

/// Decodes an extent Reloc body: the extent moved and its block count
/// (its crc array lies at [`EXTENT_RELOC_FIXED`]).
pub fn decode_extent_reloc(b: &[u8]) -> Result<(ChunkId, u8)> {
    let bad = || Error::corrupt("extent reloc record is malformed");
    if b.len() < EXTENT_RELOC_FIXED {
        return Err(bad());
    }
    let (id, n) = (ChunkId(get_u64(b, 0)), get_u32(b, 8) as usize);
    let ok = id.is_data()
        && (1..=EXTENT_MAX_BLOCKS).contains(&n)
        && get_u32(b, 12) == 0
        && b.len() == EXTENT_RELOC_FIXED + EXTENT_BYTES_PER_BLOCK as usize * n;
    if !ok {
        return Err(bad());
    }
    Ok((id, n as u8))
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
        // run of a runs-encoded leaf), and so are the last block of a full
        // extent and the first of the next.
        assert_eq!(slot_value(e, 1), slot_value(e, 0) + 1);
        assert_eq!(slot_value(ChunkId::data(41), 0), v + 1);
        // One-block chunks of older stores and the special values read as
        // themselves.
        for raw in [0, 1, 2, 77, (1 << 57) - 1] {
            assert_eq!((slot_extent(raw), slot_index(raw)), (ChunkId(raw), 0));
        }
        assert_eq!(slot_chunk(1, v), ChunkId(v));
        assert_eq!(slot_chunk(0, v), e);
        let mut slots = vec![slot_value(e, 0), slot_value(e, 5), 1, 0, 9, 9];
        slots.push(slot_value(ChunkId::data(3), 2));
        assert_eq!(leaf_extents(&slots), [ChunkId(5), ChunkId(9), e]);
    }

    #[test]
    fn block_crc_is_seeded_with_extent_and_index() {
        let p = [7u8; 4096];
        let c = block_crc(ChunkId::data(1), 0, &p);
        assert_ne!(c, block_crc(ChunkId::data(2), 0, &p));
        assert_ne!(c, block_crc(ChunkId::data(1), 1, &p));
        assert_ne!(c, crc32fast::hash(&p));
        assert_eq!(block_crc_of(ChunkId::data(1), 0, crc32fast::hash(&p)), c);
    }

    #[test]
    fn writes_are_cut_into_extents_of_32() {
        let mut kinds = vec![BLOCK_DATA; 70];
        kinds[5] = BLOCK_ZERO;
        assert_eq!(plan_extents(&kinds), [(0, 5), (6, 32), (38, 32)]);
        assert_eq!(plan_extents(&[BLOCK_ZERO; 3]), []);
        assert_eq!(plan_extents(&[BLOCK_DATA; 64]), [(0, 32), (32, 32)]);
    }

    /// The extents `plan_extents` cuts `kinds` into, with data ids from
    /// `id0` on and their payloads from `blocks`.
    fn sample_extents<'a>(kinds: &[u8], blocks: &'a [Vec<u8>], id0: u64) -> Vec<ExtentIn<'a>> {
        plan_extents(kinds)
            .iter()
            .enumerate()
            .map(|(i, &(first, count))| ExtentIn {
                id: ChunkId::data(id0 + i as u64),
                first,
                payloads: blocks[first as usize..first as usize + count as usize]
                    .iter()
                    .map(|p| &p[..])
                    .collect(),
            })
            .collect()
    }

    fn encode_sample(kinds: &[u8], blocks: &[Vec<u8>]) -> Vec<u8> {
        let extents = sample_extents(kinds, blocks, 10);
        encode_extent_write([9; 16], 1000, kinds, &extents)
    }

    #[test]
    fn extent_write_roundtrip_and_garbled() {
        let mut kinds = vec![BLOCK_DATA; 40];
        kinds[3] = BLOCK_ZERO;
        let blocks: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 4096]).collect();
        let body = encode_sample(&kinds, &blocks);
        let (w, failed) = decode_extent_write(&body).unwrap();
        assert!(failed.is_empty());
        assert_eq!(extent_write_covered(&body), Some(32 + 40 + 3 * 16));
        assert_eq!(
            (w.object, w.first_block, w.kinds.clone()),
            ([9; 16], 1000, kinds.clone())
        );
        let shape: Vec<(u32, u8)> = w.extents.iter().map(|x| (x.first, x.count)).collect();
        assert_eq!(shape, [(0, 3), (4, 32), (36, 4)]);
        // Blocks lie where `extent_block` says, from the crc array.
        let x = &w.extents[2];
        let (c, p) = extent_block(LogAddr(x.crcs_at as u64), 4, 0, 3);
        assert_eq!(&body[p.0 as usize..p.0 as usize + 4096], &blocks[39][..]);
        assert_eq!(
            get_u32(&body, c.0 as usize),
            block_crc(x.id, 3, &blocks[39])
        );
        // A flipped payload byte fails that block's crc only.
        let mut d = body.clone();
        d[p.0 as usize - 4096 * 2 + 7] ^= 1;
        assert_eq!(decode_extent_write(&d).unwrap().1, [37]);
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
        // An extent of 33 blocks, with flags, or naming a node id.
        let descs = EXTENT_WRITE_FIXED + 40;
        let mut d = body.clone();
        d[descs + EXTENT_DESC_LEN + 12] = 33;
        assert!(decode_extent_write(&d).is_err());
        let mut d = body.clone();
        d[descs + 14] = 1;
        assert!(decode_extent_write(&d).is_err());
        let mut d = body;
        put_u64(&mut d, descs, ChunkId::node(0).0);
        assert!(decode_extent_write(&d).is_err());
    }

    /// An aligned extent Write record of `blocks` (all data), framed as
    /// the log frames it at file offset `offset` of segment 1: the whole
    /// record (header, head, padding, payloads).
    fn aligned_record(offset: u64, blocks: &[Vec<u8>]) -> Vec<u8> {
        let kinds = vec![BLOCK_DATA; blocks.len()];
        let extents = sample_extents(&kinds, blocks, 50);
        let crcs: Vec<u8> = extents.iter().flat_map(extent_crcs).collect();
        let mut rec = vec![0u8; super::super::HEADER_LEN];
        encode_aligned_write_head(&mut rec, [4; 16], 77, &kinds, &extents, &crcs);
        let pad = finish_aligned_write_head(&mut rec, super::super::HEADER_LEN, offset);
        assert!(pad < 4096);
        assert_eq!(
            (offset + rec.len() as u64) % 4096,
            0,
            "payloads not aligned"
        );
        let body_head = rec.len() - super::super::HEADER_LEN;
        for b in blocks {
            rec.extend_from_slice(b);
        }
        let h = super::super::RecordHeader::encode_covered(
            super::super::RecordKind::WriteAligned,
            9,
            &rec[super::super::HEADER_LEN..][..body_head],
            (rec.len() - super::super::HEADER_LEN) as u32,
        );
        rec[..super::super::HEADER_LEN].copy_from_slice(&h);
        rec
    }

    #[test]
    fn aligned_write_roundtrip_and_locate() {
        use super::super::{RecordHeader, HEADER_LEN};
        let blocks: Vec<Vec<u8>> = (0..70u8).map(|i| vec![i ^ 0x5a; 4096]).collect();
        for offset in [0u64, 32, 4000, 4096, 123_456, (1 << 26) - 9000] {
            let rec = aligned_record(offset, &blocks);
            let h = RecordHeader::decode(&rec).unwrap();
            let body = &rec[HEADER_LEN..];
            // The header's crc covers the head, crcs and padding.
            assert!(h.body_ok(body));
            assert_eq!(Some(h.crc_len as usize), aligned_write_covered(body));
            let (w, failed) = decode_aligned_write(body).unwrap();
            assert!(failed.is_empty());
            assert_eq!((w.object, w.first_block, w.kinds.len()), ([4; 16], 77, 70));
            let shape: Vec<(u32, u8)> = w.extents.iter().map(|x| (x.first, x.count)).collect();
            assert_eq!(shape, [(0, 32), (32, 32), (64, 6)]);
            assert_eq!(
                decode_extent_record(super::super::RecordKind::WriteAligned, body)
                    .unwrap()
                    .0,
                w
            );
            // Every block is found through the gap replay derives, as a
            // reader finds it from the chunk-table entry.
            let base = LogAddr::new(crate::types::SegmentNo(1), offset + HEADER_LEN as u64);
            for x in &w.extents {
                let loc = LogAddr(base.0 + x.crcs_at as u64);
                let gap = extent_gap(loc, x.count, LogAddr(base.0 + x.payload_at as u64)).unwrap();
                assert!(gap > 0);
                for k in 0..x.count {
                    let (c, p) = extent_block(loc, x.count, gap, k);
                    assert_eq!(p.offset() % 4096, 0);
                    let (c, p) = (
                        (c.offset() - offset) as usize,
                        (p.offset() - offset) as usize,
                    );
                    let i = x.first as usize + usize::from(k);
                    assert_eq!(&rec[p..p + 4096], &blocks[i][..]);
                    assert_eq!(get_u32(&rec, c), block_crc(x.id, k, &blocks[i]));
                }
            }
            // A flipped payload byte fails that block alone; a flipped
            // crc or padding byte fails the record's body crc.
            let mut d = rec.clone();
            let last = d.len() - 1;
            d[last] ^= 1;
            assert!(RecordHeader::decode(&d).unwrap().body_ok(&d[HEADER_LEN..]));
            assert_eq!(decode_aligned_write(&d[HEADER_LEN..]).unwrap().1, [69]);
            let mut d = rec.clone();
            d[HEADER_LEN + w.extents[1].crcs_at] ^= 1;
            assert!(!RecordHeader::decode(&d).unwrap().body_ok(&d[HEADER_LEN..]));
            let pat = w.extents[0].payload_at;
            if pat > w.extents[2].crcs_at + 4 * 6 {
                let mut d = rec.clone();
                d[HEADER_LEN + pat - 1] = 1;
                assert!(!RecordHeader::decode(&d).unwrap().body_ok(&d[HEADER_LEN..]));
                assert!(
                    decode_aligned_write(&d[HEADER_LEN..]).is_err(),
                    "padding must be zero"
                );
            }
        }
    }

    #[test]
    fn aligned_write_garbled() {
        let blocks: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 4096]).collect();
        let rec = aligned_record(100, &blocks);
        let body = &rec[super::super::HEADER_LEN..];
        assert!(decode_aligned_write(body).is_ok());
        // Truncated, a byte too many, a reserved word, payloads_at moved
        // into the crcs, past a page of padding, or past the end.
        assert!(decode_aligned_write(&body[..body.len() - 1]).is_err());
        let mut d = body.to_vec();
        d.push(0);
        assert!(decode_aligned_write(&d).is_err());
        let mut d = body.to_vec();
        d[37] = 1;
        assert!(decode_aligned_write(&d).is_err());
        let pat = get_u32(body, 32);
        for bad in [pat - 4, 44, pat + 4096, u32::MAX] {
            let mut d = body.to_vec();
            put_u32(&mut d, 32, bad);
            assert!(decode_aligned_write(&d).is_err(), "payloads_at {bad}");
        }
        // A kind 10 body is not a kind 12 one, nor the reverse.
        assert!(decode_extent_write(body).is_err());
        assert!(decode_aligned_write(&[]).is_err());
        assert!(decode_extent_record(super::super::RecordKind::Zero, body).is_err());
    }

    #[test]
    fn extent_gap_and_locate() {
        let seg = |o: u64| LogAddr::new(crate::types::SegmentNo(3), o);
        // Payloads right after the crcs: gap 0, the kind 10 layout.
        assert_eq!(extent_gap(seg(100), 4, seg(116)).unwrap(), 0);
        assert_eq!(extent_block(seg(100), 4, 0, 2), (seg(108), seg(116 + 8192)));
        // Aligned payloads two pages on from the crcs' page.
        assert_eq!(extent_gap(seg(4100), 4, seg(12288)).unwrap(), 2);
        assert_eq!(
            extent_block(seg(4100), 4, 2, 1),
            (seg(4104), seg(12288 + 4096))
        );
        // Unaligned, before the crcs, in another segment, too far.
        assert!(extent_gap(seg(4100), 4, seg(12289)).is_err());
        assert!(extent_gap(seg(8192), 4, seg(4096)).is_err());
        assert!(extent_gap(seg(4100), 4, LogAddr::new(crate::types::SegmentNo(4), 8192)).is_err());
        assert!(extent_gap(seg(0), 4, seg(4096 << 16)).is_err());
        assert_eq!(extent_gap(seg(0), 4, seg(4096 * 65535)).unwrap(), 65535);
    }

    #[test]
    fn extent_reloc_roundtrip_and_garbled() {
        let stored = vec![3u8; 2 * EXTENT_BYTES_PER_BLOCK as usize];
        let b = encode_extent_reloc(ChunkId::data(7), 2, &stored);
        assert_eq!(decode_extent_reloc(&b).unwrap(), (ChunkId::data(7), 2));
        assert!(decode_extent_reloc(&b[..b.len() - 1]).is_err());
        let mut d = b.clone();
        d[12] = 1;
        assert!(decode_extent_reloc(&d).is_err());
        let mut d = b;
        put_u32(&mut d, 8, 33);
        assert!(decode_extent_reloc(&d).is_err());
        assert!(decode_extent_reloc(&[]).is_err());
    }

    proptest::proptest! {
        /// Any bytes: an error or a decoded body, never a panic.
        #[test]
        fn extent_write_decoder_survives_garbage(
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
        ) {
            let _ = decode_extent_write(&b);
            let _ = decode_aligned_write(&b);
            let _ = aligned_write_covered(&b);
            let _ = decode_extent_reloc(&b);
            let _ = extent_write_covered(&b);
        }

        /// Any mix of data and zero blocks round-trips.
        #[test]
        fn extent_write_roundtrip(zeros in proptest::collection::vec(proptest::bool::ANY, 0..100)) {
            let kinds: Vec<u8> = zeros.iter().map(|&z| if z { BLOCK_ZERO } else { BLOCK_DATA }).collect();
            let blocks: Vec<Vec<u8>> = (0..kinds.len()).map(|i| vec![i as u8; 4096]).collect();
            let body = encode_sample(&kinds, &blocks);
            let (w, failed) = decode_extent_write(&body).unwrap();
            proptest::prop_assert!(failed.is_empty());
            proptest::prop_assert_eq!(w.kinds, kinds.clone());
            let data = kinds.iter().filter(|&&k| k == BLOCK_DATA).count();
            proptest::prop_assert_eq!(w.extents.iter().map(|x| usize::from(x.count)).sum::<usize>(), data);
            proptest::prop_assert_eq!(w.extents.len(), plan_extents(&kinds).len());
        }
    }
}
