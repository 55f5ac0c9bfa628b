//! Block I/O helpers shared by the live write path and replay: preparing
//! blocks (zero detection, checksum, optional zstd), applying Write (one
//! chunk per block), extent Write and Zero records to the maps, and
//! fetching payloads with verification (an extent's block against its
//! seeded crc beside it in the log, a one-block chunk's against the crc in
//! its entry).

use crate::catalog::ObjectKind;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{block_crc, slot_value, CtEntry, WriteEntry, CT_FLAG_COMPRESSED, NODE_FANOUT};
use crate::log::Segment;
use crate::map::{Fill, Run};
use crate::state::State;
use crate::types::{ChunkId, LogAddr, ObjectId, BLOCK_SIZE};
use std::borrow::Cow;
use std::sync::Arc;

/// A block ready to be logged.
pub(crate) struct Prepared<'a> {
    pub zero: bool,
    pub stored: Cow<'a, [u8]>,
    pub crc: u32,
    pub flags: u32,
}

/// True when every byte is zero.
pub(crate) fn is_zero(b: &[u8]) -> bool {
    let mut words = b.chunks_exact(8);
    words.all(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")) == 0)
        && words.remainder().iter().all(|&x| x == 0)
}

/// Prepares one 4 KiB block: zero blocks store nothing; with `compress`,
/// zstd level 1, kept only when it shrinks the block.
pub(crate) fn prepare(block: &[u8], compress: bool) -> Prepared<'_> {
    if is_zero(block) {
        return Prepared {
            zero: true,
            stored: Cow::Borrowed(&[]),
            crc: 0,
            flags: 0,
        };
    }
    if compress {
        if let Ok(c) = zstd::bulk::compress(block, 1) {
            if c.len() < block.len() {
                let crc = crc32fast::hash(&c);
                return Prepared {
                    zero: false,
                    stored: Cow::Owned(c),
                    crc,
                    flags: CT_FLAG_COMPRESSED,
                };
            }
        }
    }
    Prepared {
        zero: false,
        stored: Cow::Borrowed(block),
        crc: crc32fast::hash(block),
        flags: 0,
    }
}

/// Where one block's bytes come from.
pub(crate) enum BlockSrc {
    Zero,
    /// Block `index` of `chunk` (an extent, or a one-block chunk with
    /// index 0), whose payload lies at `offset` of `seg`.
    Data {
        seg: Arc<Segment>,
        offset: u64,
        entry: CtEntry,
        chunk: ChunkId,
        index: u8,
    },
}

/// One extent of an extent Write record, as applied: its id, first block
/// (an index into the write), block count and crc array's address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExtentAt {
    pub id: ChunkId,
    pub first: u32,
    pub count: u8,
    pub loc: LogAddr,
    /// The entry's `gap` ([`crate::format::extent_block`]): 0 for a kind
    /// 10 record.
    pub gap: u16,
}

/// The source of block `index` of `chunk`, whose entry is `entry`, in
/// `seg`; `None` when the index lies outside the chunk.
pub(crate) fn block_src(
    seg: Arc<Segment>,
    chunk: ChunkId,
    entry: CtEntry,
    index: u8,
) -> Option<BlockSrc> {
    let offset = if entry.nblocks > 0 {
        if index >= entry.nblocks {
            return None;
        }
        entry.extent_block(index).1.offset()
    } else {
        if index != 0 {
            return None;
        }
        entry.loc.offset()
    };
    Some(BlockSrc::Data {
        seg,
        offset,
        entry,
        chunk,
        index,
    })
}

impl State {
    /// Checks that `id` is a volume accepting I/O over `[offset, offset+len)`.
    pub(crate) fn check_io(
        &self,
        id: ObjectId,
        offset: u64,
        len: u64,
        write: bool,
    ) -> Result<(u64, u8, bool)> {
        let e = self.catalog.get(id)?;
        if write && e.info.kind != ObjectKind::Volume {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                format!("{} {id} is read-only", e.info.kind),
            ));
        }
        let end = offset
            .checked_add(len)
            .ok_or_else(|| Error::new(ErrorKind::OutOfRange, "offset + length overflows"))?;
        if end > e.info.size {
            return Err(Error::new(
                ErrorKind::OutOfRange,
                format!(
                    "range {offset}+{len} beyond the end of {} {id} ({} bytes)",
                    e.info.kind, e.info.size
                ),
            ));
        }
        Ok((e.info.size, e.depth, e.info.compress))
    }

    /// Checks that blocks `[first, first+n)` of writable `id` exist (the
    /// last block of a volume may extend past its size); returns the depth.
    fn check_blocks(&self, id: ObjectId, first: u64, n: u64) -> Result<u8> {
        let e = self.catalog.get(id)?;
        if e.info.kind != ObjectKind::Volume {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                format!("{} {id} is read-only", e.info.kind),
            ));
        }
        if first
            .checked_add(n)
            .is_none_or(|end| end > e.info.size.div_ceil(BLOCK_SIZE))
        {
            return Err(Error::new(
                ErrorKind::OutOfRange,
                format!("blocks {first}+{n} beyond the end of volume {id}"),
            ));
        }
        Ok(e.depth)
    }

    /// The runs of `n` blocks from `first` in object `id`.
    pub(crate) fn runs(
        &mut self,
        id: ObjectId,
        first: u64,
        n: u64,
        max_runs: usize,
    ) -> Result<Vec<Run>> {
        let e = self.catalog.get(id)?;
        let (root, depth) = (e.root(), e.depth);
        let mut out = Vec::new();
        self.map_runs(root, depth - 1, 0, first..first + n, &mut out, max_runs)
            .map_err(|err| {
                err.with_context(format!("object {id} at offset {}", first * BLOCK_SIZE))
            })?;
        Ok(out)
    }

    /// Resolves blocks `[first, first+n)` of `id` to their sources.
    pub(crate) fn resolve_blocks(
        &mut self,
        id: ObjectId,
        first: u64,
        n: u64,
    ) -> Result<Vec<BlockSrc>> {
        let runs = self.runs(id, first, n, usize::MAX)?;
        let mut out = Vec::with_capacity(n as usize);
        for r in runs {
            if r.value.is_special() {
                out.extend((0..r.n).map(|_| BlockSrc::Zero));
                continue;
            }
            let entry = self.ct_get(r.value).map_err(|err| {
                err.with_context(format!("object {id} at offset {}", r.first * BLOCK_SIZE))
            })?;
            if !entry.is_live() || entry.loc.is_none() {
                return Err(Error::corrupt(format!(
                    "object {id} at offset {} maps to chunk {} which is not stored",
                    r.first * BLOCK_SIZE,
                    r.value.0
                )));
            }
            let seg = self.log.segment(entry.loc.segment()).ok_or_else(|| {
                Error::corrupt(format!(
                    "object {id} at offset {}: chunk {} lies in missing segment {}",
                    r.first * BLOCK_SIZE,
                    r.value.0,
                    entry.loc.segment().0
                ))
            })?;
            let src = block_src(seg, r.value, entry, r.index).ok_or_else(|| {
                Error::corrupt(format!(
                    "object {id} at offset {} maps to block {} of chunk {}, which has {}",
                    r.first * BLOCK_SIZE,
                    r.index,
                    r.value.0,
                    entry.blocks()
                ))
            })?;
            out.push(src);
        }
        Ok(out)
    }

    /// Applies a Write record: registers its chunks and maps them.
    pub(crate) fn apply_write(
        &mut self,
        id: ObjectId,
        first: u64,
        entries: &[WriteEntry],
        locs: &[LogAddr],
    ) -> Result<()> {
        let depth = self.check_blocks(id, first, entries.len() as u64)?;
        let mut values = Vec::with_capacity(entries.len());
        for (e, &loc) in entries.iter().zip(locs) {
            if e.chunk.is_data() {
                self.ct_set(
                    e.chunk,
                    CtEntry {
                        loc,
                        refcount: 1,
                        crc: e.crc,
                        stored_len: e.stored_len,
                        flags: e.flags,
                        nblocks: 0,
                        gap: 0,
                    },
                )?;
                self.account(loc, u64::from(e.stored_len), true);
                self.next_data = self.next_data.max(e.chunk.data_index() + 1);
                self.live_data_chunks += 1;
                self.live_data_bytes += u64::from(e.stored_len);
            }
            values.push(e.chunk.0);
        }
        let mut root = self.catalog.get(id)?.root();
        let end = first + entries.len() as u64;
        let r = self.map_update(&mut root, depth - 1, 0, first, end, &Fill::Values(&values));
        self.catalog.get_mut(id)?.root = root.0;
        r
    }

    /// Applies an extent Write record of blocks `kinds` (data or zero) from
    /// `first`, leaving out the blocks `skip` (indices into the write,
    /// which keep their earlier mapping: damaged ones a salvaging replay
    /// drops). Each extent's entry counts one reference per map leaf its
    /// mapped blocks land in; an extent none of whose blocks is mapped
    /// gets no entry.
    pub(crate) fn apply_extent_write(
        &mut self,
        id: ObjectId,
        first: u64,
        kinds: &[u8],
        extents: &[ExtentAt],
        skip: &[usize],
    ) -> Result<()> {
        let n = kinds.len();
        let depth = self.check_blocks(id, first, n as u64)?;
        let mut values = vec![ChunkId::ZERO.0; n];
        for x in extents {
            let mut leaves = 0u32;
            let mut last = None;
            for k in 0..x.count {
                let i = x.first as usize + usize::from(k);
                values[i] = slot_value(x.id, k);
                if skip.contains(&i) {
                    continue;
                }
                let leaf = (first + i as u64) / NODE_FANOUT;
                if last != Some(leaf) {
                    leaves += 1;
                    last = Some(leaf);
                }
            }
            self.next_data = self.next_data.max(x.id.data_index() + 1);
            if leaves == 0 {
                continue;
            }
            let e = CtEntry::extent(x.loc, x.count, x.gap, leaves);
            self.ct_set(x.id, e)?;
            self.account(x.loc, u64::from(e.stored_len), true);
            self.live_data_chunks += u64::from(x.count);
            self.live_data_bytes += u64::from(e.stored_len);
        }
        let mut root = self.catalog.get(id)?.root();
        let mut r = Ok(());
        let mut i = 0;
        while i < n && r.is_ok() {
            if skip.contains(&i) {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < n && !skip.contains(&j) {
                j += 1;
            }
            let (s, e) = (first + i as u64, first + j as u64);
            r = self.map_update(&mut root, depth - 1, 0, s, e, &Fill::Values(&values[i..j]));
            i = j;
        }
        self.catalog.get_mut(id)?.root = root.0;
        r
    }

    /// Applies a Zero record: blocks `[first, first+n)` become `value`.
    pub(crate) fn apply_zero(
        &mut self,
        id: ObjectId,
        first: u64,
        n: u64,
        value: ChunkId,
    ) -> Result<()> {
        let depth = self.check_blocks(id, first, n)?;
        let mut root = self.catalog.get(id)?.root();
        let r = self.map_update(
            &mut root,
            depth - 1,
            0,
            first,
            first + n,
            &Fill::Uniform(value),
        );
        self.catalog.get_mut(id)?.root = root.0;
        r
    }
}

/// Reads the blocks of `srcs` into `out` (a multiple of the block size),
/// verifying every checksum. `id` and `first` name the object and block for
/// error messages.
pub(crate) fn fetch_blocks(
    srcs: &[BlockSrc],
    out: &mut [u8],
    id: ObjectId,
    first: u64,
) -> Result<()> {
    fetch_blocks_as(srcs, out, id, first, false).map(|_| ())
}

/// [`fetch_blocks`]; with `nowait`, only from the OS page cache
/// ([`Segment::read_cached_at`]): `Ok(false)` when a block would have
/// waited for the device (`out` then holds part of the blocks).
pub(crate) fn fetch_blocks_as(
    srcs: &[BlockSrc],
    out: &mut [u8],
    id: ObjectId,
    first: u64,
    nowait: bool,
) -> Result<bool> {
    let read = |seg: &Segment, buf: &mut [u8], offset: u64| -> Result<bool> {
        if nowait {
            Ok(seg.read_cached_at(buf, offset))
        } else {
            seg.read_exact_at(buf, offset).map(|()| true)
        }
    };
    let bs = BLOCK_SIZE as usize;
    let mut i = 0;
    while i < srcs.len() {
        match &srcs[i] {
            BlockSrc::Zero => {
                out[i * bs..(i + 1) * bs].fill(0);
                i += 1;
            }
            BlockSrc::Data {
                seg,
                offset,
                entry,
                chunk,
                index,
            } if entry.nblocks > 0 => {
                // Consecutive blocks of one extent: their crcs and their
                // payloads are each contiguous, read in one go.
                let mut j = i + 1;
                while j < srcs.len() {
                    match &srcs[j] {
                        BlockSrc::Data {
                            seg: s2,
                            chunk: c2,
                            index: k2,
                            ..
                        } if Arc::ptr_eq(seg, s2)
                            && c2 == chunk
                            && usize::from(*k2) == usize::from(*index) + (j - i) =>
                        {
                            j += 1
                        }
                        _ => break,
                    }
                }
                let mut crcs = vec![0u8; 4 * (j - i)];
                let at = entry.extent_block(*index).0.offset();
                if !read(seg, &mut crcs, at)? || !read(seg, &mut out[i * bs..j * bs], *offset)? {
                    return Ok(false);
                }
                for k in i..j {
                    let idx = *index + (k - i) as u8;
                    let want = u32::from_le_bytes(
                        crcs[4 * (k - i)..4 * (k - i) + 4]
                            .try_into()
                            .expect("4 bytes"),
                    );
                    if block_crc(*chunk, idx, &out[k * bs..(k + 1) * bs]) != want {
                        let off = *offset + (k - i) as u64 * BLOCK_SIZE;
                        return Err(checksum_error(id, first + k as u64, *chunk, seg, off));
                    }
                }
                i = j;
            }
            BlockSrc::Data {
                seg, offset, entry, ..
            } if entry.flags & CT_FLAG_COMPRESSED == 0 => {
                // Coalesce a run of contiguous uncompressed chunks into one read.
                let mut j = i + 1;
                while j < srcs.len() {
                    match &srcs[j] {
                        BlockSrc::Data {
                            seg: s2,
                            offset: o2,
                            entry: e2,
                            ..
                        } if Arc::ptr_eq(seg, s2)
                            && e2.nblocks == 0
                            && e2.flags & CT_FLAG_COMPRESSED == 0
                            && *o2 == offset + (j - i) as u64 * BLOCK_SIZE
                            && e2.stored_len as u64 == BLOCK_SIZE =>
                        {
                            j += 1
                        }
                        _ => break,
                    }
                }
                if entry.stored_len as u64 != BLOCK_SIZE {
                    return Err(Error::corrupt(format!(
                        "object {id} block {} has stored length {}",
                        first + i as u64,
                        entry.stored_len
                    )));
                }
                if !read(seg, &mut out[i * bs..j * bs], *offset)? {
                    return Ok(false);
                }
                for k in i..j {
                    if let BlockSrc::Data {
                        entry,
                        chunk,
                        seg,
                        offset,
                        ..
                    } = &srcs[k]
                    {
                        if crc32fast::hash(&out[k * bs..(k + 1) * bs]) != entry.crc {
                            return Err(checksum_error(id, first + k as u64, *chunk, seg, *offset));
                        }
                    }
                }
                i = j;
            }
            BlockSrc::Data {
                seg,
                offset,
                entry,
                chunk,
                ..
            } => {
                let mut buf = vec![0u8; entry.stored_len as usize];
                if !read(seg, &mut buf, *offset)? {
                    return Ok(false);
                }
                if crc32fast::hash(&buf) != entry.crc {
                    return Err(checksum_error(id, first + i as u64, *chunk, seg, *offset));
                }
                let dst = &mut out[i * bs..(i + 1) * bs];
                match zstd::bulk::decompress_to_buffer(&buf, dst) {
                    Ok(n) if n == bs => {}
                    _ => {
                        return Err(Error::corrupt(format!(
                        "object {id} offset {}: compressed chunk {} does not decompress to a block",
                        (first + i as u64) * BLOCK_SIZE,
                        chunk.0
                    )))
                    }
                }
                i += 1;
            }
        }
    }
    Ok(true)
}

fn checksum_error(id: ObjectId, block: u64, chunk: ChunkId, seg: &Segment, offset: u64) -> Error {
    Error::corrupt(format!(
        "checksum mismatch in object {id} at offset {} (chunk {}, segment {} offset {offset})",
        block * BLOCK_SIZE,
        chunk.0,
        seg.no.0
    ))
}
