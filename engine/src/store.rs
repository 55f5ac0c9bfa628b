//! [`Store`]: the engine's public handle. It owns a data directory (locked
//! against other processes), serializes metadata changes behind one lock,
//! runs data reads and checksum work outside it, group-commits flushes, and
//! fail-stops after any durability failure.
//!
//! This file holds the handle itself and its data path: `read`, `write`,
//! `write_zeroes`, `trim`, `flush`, `block_status` and the fail-stop state.
//! The rest of the handle is split by concern into `store/`: `open.rs`
//! (options, open, close), `catalog.rs` (catalogue operations) and
//! `commit.rs` (the checkpoint commit and the superblock switch).
//!
//! Invariants: metadata changes happen under the state lock in log order
//! (append, then apply); a flush returns only after an `fdatasync` covers
//! every write completed before it; after a failed append or sync the store
//! refuses writes until reopened.

mod catalog;
mod commit;
mod open;
mod owned;

pub(crate) use commit::read_superblock;
pub use open::StoreOptions;

use crate::error::{Error, ErrorKind, Result};
use crate::fetch::Fetched;
use crate::format::{
    block_crc_of, encode_extent_write_head, encode_write_head, plan_extents, ExtentIn, RecordKind,
    WriteEntry, ZeroBody, BLOCK_DATA, BLOCK_ZERO, HEADER_LEN, WRITE_ENTRY, WRITE_FIXED,
};
use crate::io::{fetch_blocks, fetch_blocks_as, prepare, ExtentAt, Prepared};
use crate::log::sync_segments;
use crate::state::State;
use crate::types::{ChunkId, LogAddr, ObjectId, BLOCK_SIZE};
use parking_lot::Mutex;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// One extent of an allocation map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Byte offset.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// What the range holds.
    pub kind: ExtentKind,
}

/// What an extent holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentKind {
    /// Stored data.
    Data,
    /// Reads as zero, nothing stored, but not a hole (written zeroes).
    Zero,
    /// Unallocated: reads as zero.
    Hole,
}

struct SuperState {
    file: File,
    generation: u64,
    store_id: [u8; 16],
    segment_size: u32,
}

struct Inner {
    dir: PathBuf,
    state: Mutex<State>,
    sb: Mutex<SuperState>,
    failed: AtomicBool,
    sync_lock: Mutex<()>,
    /// Serializes checkpoints (and reclaim and check, which checkpoint):
    /// taken before the state lock.
    ckpt_lock: Mutex<()>,
    /// Segment count when housekeeping last looked.
    segs_seen: AtomicU64,
    /// The background reclaim thread, if one ran.
    reclaimer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Live bytes after the last disk-full reclaim (`u64::MAX`: none yet);
    /// another is tried only once live data has shrunk below it.
    room_live: AtomicU64,
    durable_seq: AtomicU64,
    /// The log's write queue (`log_queue.rs`), also reachable through the
    /// state; flushes and writers wait on it without the state lock.
    queue: Arc<crate::log_queue::LogQueue>,
    /// The free thread's controls (`free.rs`).
    free: crate::free::FreeCtl,
    record_blocks: u64,
    /// Buffers for large writes handed over whole (`owned.rs`).
    aligned: Arc<crate::aligned::AlignedPool>,
    opts: StoreOptions,
    /// Operation counters (the state holds them too).
    counters: Arc<crate::op_stats::Counters>,
    /// Told of each committed generation (`tiering.rs`), when set.
    observer: Mutex<Option<Arc<dyn crate::tiering::CommitObserver>>>,
    _lock: File,
}

/// A handle on an open store; cheap to clone and share between threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub(crate) fn check_live(&self) -> Result<()> {
        if self.inner.failed.load(Ordering::Acquire) {
            return Err(Error::new(
                ErrorKind::FailStopped,
                "an earlier write or fsync failed; the store refuses writes until reopened",
            ));
        }
        Ok(())
    }

    /// For a failed append of a client record: ENOSPC is a clean failure
    /// (the log's tail did not move, so the next append overwrites any
    /// partial bytes, and nothing was applied); anything else fail-stops.
    pub(crate) fn fail_append(&self, e: Error) -> Error {
        if e.kind() == ErrorKind::Exhausted {
            return e;
        }
        if e.kind() == ErrorKind::NoSpace {
            tracing::warn!(error = %e, "write refused: no space left");
            return e;
        }
        self.fail(e)
    }

    /// Marks the store failed and passes the error on.
    pub(crate) fn fail(&self, e: Error) -> Error {
        tracing::error!(error = %e, "store failed: refusing further writes until reopened");
        self.inner.counters.fail_stop();
        self.inner.failed.store(true, Ordering::Release);
        e
    }

    // ---- I/O ----

    /// Reads `buf.len()` bytes at `offset` of any object.
    pub fn read(&self, id: ObjectId, offset: u64, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let bs = BLOCK_SIZE;
        let first = offset / bs;
        let last = (offset + buf.len() as u64 - 1) / bs;
        let n = last - first + 1;
        // Misses are read outside the lock (`fetch.rs`).
        let mut fetched = Fetched::default();
        let (st, srcs) = self.lock_resolved(&mut fetched, |st| {
            st.check_io(id, offset, buf.len() as u64, false)?;
            st.resolve_blocks(id, first, n)
        })?;
        drop(st);
        if offset.is_multiple_of(bs) && (buf.len() as u64).is_multiple_of(bs) {
            return fetch_blocks(&srcs, buf, id, first);
        }
        let mut tmp = vec![0u8; (n * bs) as usize];
        fetch_blocks(&srcs, &mut tmp, id, first)?;
        let skip = (offset - first * bs) as usize;
        buf.copy_from_slice(&tmp[skip..skip + buf.len()]);
        Ok(())
    }

    /// [`Store::read`] only if nothing has to wait: the state lock free
    /// now, every metadata page in memory or in the OS page cache, every
    /// data block in the OS page cache (read with `RWF_NOWAIT`). For
    /// callers that must not block, such as an event loop: `Ok(false)`
    /// when something would have waited (nothing was read from the
    /// device; `buf` holds nothing meaningful): read with [`Store::read`]
    /// where blocking is allowed. Errors are those found without waiting.
    pub fn read_if_cached(&self, id: ObjectId, offset: u64, buf: &mut [u8]) -> Result<bool> {
        let bs = BLOCK_SIZE;
        if buf.is_empty() || !offset.is_multiple_of(bs) || !(buf.len() as u64).is_multiple_of(bs) {
            // Unaligned reads (rare) take the blocking path.
            return Ok(buf.is_empty());
        }
        let first = offset / bs;
        let n = buf.len() as u64 / bs;
        let Some(r) = self.try_resolved(|st| {
            st.check_io(id, offset, buf.len() as u64, false)?;
            st.resolve_blocks(id, first, n)
        }) else {
            return Ok(false);
        };
        let (st, srcs) = r?;
        drop(st);
        fetch_blocks_as(&srcs, buf, id, first, true)
    }

    /// Runs a client write; when it meets a full disk, frees what space
    /// reclaim can and tries once more. The write's answer stays "no
    /// space" when reclaim fails (say, it could not read an evicted
    /// segment while the object store is away).
    fn with_room(&self, op: impl Fn() -> Result<()>) -> Result<()> {
        match op() {
            Err(e) if e.kind() == ErrorKind::NoSpace => match self.make_room() {
                Ok(true) => op(),
                Ok(false) => Err(e),
                Err(r) => {
                    tracing::warn!(error = %r, "making room for a write failed");
                    Err(e)
                }
            },
            r => r,
        }
    }

    /// Writes `data` at `offset` of a volume; with `fua`, durable on return.
    /// On a full disk the write fails with [`ErrorKind::NoSpace`] (some of
    /// its blocks may have landed, as with any failed write) and the store
    /// stays usable.
    pub fn write(&self, id: ObjectId, offset: u64, data: &[u8], fua: bool) -> Result<()> {
        self.with_room(|| self.write_once(id, offset, data, fua))
    }

    /// What every write does around its pieces: refuses a failed store,
    /// and a range or object the write may not touch (an empty write is
    /// only a flush, with `fua`); splits the `len` bytes at `offset` into
    /// pieces of at most one record's worth of blocks, handing each to
    /// `piece` (its offset, its bytes' range within the write, whether the
    /// volume compresses); then the flush `fua` asks for and the
    /// housekeeping writes call for.
    pub(crate) fn write_pieces(
        &self,
        id: ObjectId,
        offset: u64,
        len: usize,
        fua: bool,
        mut piece: impl FnMut(u64, std::ops::Range<usize>, bool) -> Result<()>,
    ) -> Result<()> {
        self.check_live()?;
        if len == 0 {
            return if fua { self.flush() } else { Ok(()) };
        }
        let compress = {
            let st = self.inner.state.lock();
            st.check_io(id, offset, len as u64, true)?.2
        };
        let bs = BLOCK_SIZE;
        let end = offset + len as u64;
        let mut pos = offset;
        while pos < end {
            let first = pos / bs;
            let last = ((end - 1) / bs).min(first + self.inner.record_blocks - 1);
            let piece_end = ((last + 1) * bs).min(end);
            piece(
                pos,
                (pos - offset) as usize..(piece_end - offset) as usize,
                compress,
            )?;
            pos = piece_end;
        }
        if fua {
            self.flush()?;
        }
        self.maybe_checkpoint()
    }

    fn write_once(&self, id: ObjectId, offset: u64, data: &[u8], fua: bool) -> Result<()> {
        self.write_pieces(id, offset, data.len(), fua, |pos, r, compress| {
            self.write_piece(id, pos, &data[r], compress)
        })
    }

    /// Writes a range within one record's worth of blocks.
    fn write_piece(&self, id: ObjectId, offset: u64, data: &[u8], compress: bool) -> Result<()> {
        let bs = BLOCK_SIZE as usize;
        let first = offset / BLOCK_SIZE;
        let head = (offset % BLOCK_SIZE) as usize;
        let n = (head + data.len()).div_ceil(bs);
        let tail_partial = !(head + data.len()).is_multiple_of(bs);
        // Whole blocks are prepared outside the lock.
        let mut prepared: Vec<Option<Prepared<'_>>> = (0..n)
            .map(|i| {
                let start = (i * bs) as isize - head as isize;
                if start < 0 || (i == n - 1 && tail_partial) {
                    None
                } else {
                    Some(prepare(
                        &data[start as usize..start as usize + bs],
                        compress,
                    ))
                }
            })
            .collect();
        // Room in the log's write queue is waited for before the lock.
        self.wait_queue_room()?;
        // Everything the apply will look up is brought into memory first,
        // misses read outside the lock (`fetch.rs`); the record is appended
        // and applied in the same hold that found it all in memory.
        let mut fetched = Fetched::for_apply();
        let (mut st, ()) = self.lock_resolved(&mut fetched, |st| {
            self.check_live()?;
            st.check_io(id, offset, data.len() as u64, true)?;
            for (i, p) in prepared.iter().enumerate() {
                if p.is_none() {
                    st.resolve_blocks(id, first + i as u64, 1)?;
                }
            }
            st.prefetch_update(id, first, n as u64, None, n as u64)
        })?;
        // Partial blocks: read-modify-write of that one block, under the lock
        // so that concurrent sub-block writes to one block both land.
        let mut merged: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, p) in prepared.iter().enumerate() {
            if p.is_none() {
                let mut blk = vec![0u8; bs];
                let srcs = st.resolve_blocks(id, first + i as u64, 1)?;
                fetch_blocks(&srcs, &mut blk, id, first + i as u64)?;
                let lo = if i == 0 { head } else { 0 };
                let src_start = (i * bs + lo) - head;
                let len = (bs - lo).min(data.len() - src_start);
                blk[lo..lo + len].copy_from_slice(&data[src_start..src_start + len]);
                merged.push((i, blk));
            }
        }
        for (i, blk) in &merged {
            let p = prepare(blk, compress);
            prepared[*i] = Some(Prepared {
                zero: p.zero,
                stored: std::borrow::Cow::Owned(p.stored.into_owned()),
                crc: p.crc,
                flags: p.flags,
            });
        }
        let prepared: Vec<Prepared<'_>> = prepared
            .into_iter()
            .map(|p| p.expect("every block prepared"))
            .collect();
        if compress {
            return self.append_chunks(&mut st, id, first, &prepared);
        }
        // Uncompressed blocks are stored as extents of up to 32 blocks.
        let kinds: Vec<u8> = prepared
            .iter()
            .map(|p| if p.zero { BLOCK_ZERO } else { BLOCK_DATA })
            .collect();
        let plan = plan_extents(&kinds);
        st.admit(plan.len() as u64, true)?;
        let mut extents = Vec::with_capacity(plan.len());
        for &(at, count) in &plan {
            let x = ChunkId::data(st.next_data);
            st.next_data += 1;
            let r = at as usize..at as usize + usize::from(count);
            extents.push(ExtentIn {
                id: x,
                first: at,
                payloads: prepared[r].iter().map(|p| &p.stored[..]).collect(),
            });
        }
        let crcs: Vec<Vec<u8>> = plan
            .iter()
            .zip(&extents)
            .map(|(&(at, count), x)| {
                (0..count as usize)
                    .flat_map(|k| {
                        let p = &prepared[at as usize + k];
                        block_crc_of(x.id, k as u8, p.crc).to_le_bytes()
                    })
                    .collect()
            })
            .collect();
        let mut head = Vec::with_capacity(HEADER_LEN + 64 + n + 16 * extents.len());
        head.resize(HEADER_LEN, 0);
        encode_extent_write_head(&mut head, id.to_bytes(), first, &kinds, &extents);
        let mut parts: Vec<&[u8]> = Vec::with_capacity(n + extents.len());
        for (x, c) in extents.iter().zip(&crcs) {
            parts.push(c);
            parts.extend(x.payloads.iter().copied());
        }
        let addr = st
            .append_write(RecordKind::WriteExtents, &mut head, &parts)
            .map_err(|e| self.fail_append(e))?;
        let mut at = addr.0 + head.len() as u64;
        let placed: Vec<ExtentAt> = extents
            .iter()
            .map(|x| {
                let count = x.payloads.len() as u8;
                let loc = LogAddr(at);
                at += crate::format::EXTENT_BYTES_PER_BLOCK * u64::from(count);
                ExtentAt {
                    id: x.id,
                    first: x.first,
                    count,
                    loc,
                    gap: 0,
                }
            })
            .collect();
        st.apply_extent_write(id, first, &kinds, &placed, &[])
            .map_err(|e| self.fail(e))
    }

    /// Appends and applies a Write record of one-block chunks (each
    /// compressed block has its own id and its crc in its table entry).
    fn append_chunks(
        &self,
        st: &mut crate::fetch::Held<'_>,
        id: ObjectId,
        first: u64,
        prepared: &[Prepared<'_>],
    ) -> Result<()> {
        let n = prepared.len();
        st.admit(prepared.iter().filter(|p| !p.zero).count() as u64, true)?;
        let mut entries = Vec::with_capacity(n);
        let mut payloads: Vec<&[u8]> = Vec::with_capacity(n);
        for p in prepared {
            if p.zero {
                entries.push(WriteEntry {
                    chunk: ChunkId::ZERO,
                    crc: 0,
                    stored_len: 0,
                    flags: 0,
                });
            } else {
                let c = ChunkId::data(st.next_data);
                st.next_data += 1;
                entries.push(WriteEntry {
                    chunk: c,
                    crc: p.crc,
                    stored_len: p.stored.len() as u32,
                    flags: p.flags,
                });
                payloads.push(&p.stored);
            }
        }
        let mut head = Vec::with_capacity(HEADER_LEN + WRITE_FIXED + WRITE_ENTRY * n);
        head.resize(HEADER_LEN, 0);
        encode_write_head(&mut head, id.to_bytes(), first, &entries);
        let addr = st
            .append_write(RecordKind::Write, &mut head, &payloads)
            .map_err(|e| self.fail_append(e))?;
        let mut locs = Vec::with_capacity(n);
        let mut off = (HEADER_LEN + WRITE_FIXED + WRITE_ENTRY * n) as u64;
        for e in &entries {
            locs.push(LogAddr(addr.0 + off));
            off += u64::from(e.stored_len);
        }
        st.apply_write(id, first, &entries, &locs)
            .map_err(|e| self.fail(e))
    }

    /// Makes `[offset, offset+len)` read as zero without storing data. With
    /// `punch`, the range becomes a hole (space released, as trim); without,
    /// it is recorded as written zeroes. Partial blocks at the edges are
    /// zeroed by read-modify-write.
    pub fn write_zeroes(
        &self,
        id: ObjectId,
        offset: u64,
        len: u64,
        punch: bool,
        fua: bool,
    ) -> Result<()> {
        self.with_room(|| self.write_zeroes_once(id, offset, len, punch, fua))
    }

    fn write_zeroes_once(
        &self,
        id: ObjectId,
        offset: u64,
        len: u64,
        punch: bool,
        fua: bool,
    ) -> Result<()> {
        self.check_live()?;
        if len == 0 {
            return if fua { self.flush() } else { Ok(()) };
        }
        {
            let st = self.inner.state.lock();
            st.check_io(id, offset, len, true)?;
        }
        let bs = BLOCK_SIZE;
        let end = offset + len;
        let first_full = offset.div_ceil(bs);
        let end_full = end / bs;
        if first_full >= end_full {
            // No whole block: zero the bytes.
            self.write_zero_bytes(id, offset, end)?;
        } else {
            if offset < first_full * bs {
                self.write_zero_bytes(id, offset, first_full * bs)?;
            }
            {
                let value = if punch { ChunkId::HOLE } else { ChunkId::ZERO };
                let blocks = end_full - first_full;
                let mut fetched = Fetched::for_apply();
                let (mut st, ()) = self.lock_resolved(&mut fetched, |st| {
                    self.check_live()?;
                    st.check_io(id, offset, len, true)?;
                    st.admit(0, true)?;
                    st.prefetch_update(id, first_full, blocks, Some(value), 0)
                })?;
                let body = ZeroBody {
                    object: id.to_bytes(),
                    first_block: first_full,
                    blocks,
                    value,
                }
                .encode();
                st.append(RecordKind::Zero, &body)
                    .map_err(|e| self.fail_append(e))?;
                st.apply_zero(id, first_full, end_full - first_full, value)
                    .map_err(|e| self.fail(e))?;
            }
            if end > end_full * bs {
                self.write_zero_bytes(id, end_full * bs, end)?;
            }
        }
        if fua {
            self.flush()?;
        }
        self.maybe_checkpoint()?;
        self.kick_free()
    }

    fn write_zero_bytes(&self, id: ObjectId, start: u64, end: u64) -> Result<()> {
        let zeros = vec![0u8; (end - start) as usize];
        self.write_piece(id, start, &zeros, false)
    }

    /// Releases `[offset, offset+len)`: it reads as zero afterwards.
    pub fn trim(&self, id: ObjectId, offset: u64, len: u64, fua: bool) -> Result<()> {
        self.write_zeroes(id, offset, len, true, fua)
    }

    /// Makes every completed write durable: waits until the log's write
    /// queue has written every record appended before the call, then
    /// syncs (group commit: one fdatasync serves every flush waiting
    /// behind it, and each covers every record written by then).
    pub fn flush(&self) -> Result<()> {
        self.flush_local()?;
        // The object-storage tier (`tiering.rs`) may want the log in its
        // bucket too before the flush is acknowledged.
        let observer = self.inner.observer.lock().clone();
        if let Some(o) = observer {
            o.flushed(self.inner.queue.written().1)?;
            self.check_live()?;
        }
        Ok(())
    }

    /// Where the records written to the segment files so far end: every
    /// record before it is in its file. For the object-storage tier.
    pub fn log_written_end(&self) -> crate::types::LogAddr {
        self.inner.queue.written().1
    }

    /// [`Store::flush`] on the local disk.
    fn flush_local(&self) -> Result<()> {
        self.check_live()?;
        let target = self.inner.state.lock().log.next_seq();
        self.inner.queue.drain(target).map_err(|e| self.fail(e))?;
        let _g = self.inner.sync_lock.lock();
        self.check_live()?;
        if self.inner.durable_seq.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let (to_sync, faults) = {
            let st = self.inner.state.lock();
            (st.log.unsynced(), st.log.faults.clone())
        };
        sync_segments(&faults, &to_sync.segs).map_err(|e| self.fail(e))?;
        self.inner.state.lock().log.mark_synced(&to_sync);
        self.inner
            .durable_seq
            .fetch_max(to_sync.upto(), Ordering::AcqRel);
        Ok(())
    }

    /// The allocation map of `[offset, offset+len)`, at most `max_extents`
    /// extents (the last one may end before `offset+len`).
    pub fn block_status(
        &self,
        id: ObjectId,
        offset: u64,
        len: u64,
        max_extents: usize,
    ) -> Result<Vec<Extent>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bs = BLOCK_SIZE;
        let mut st = self.inner.state.lock();
        let (size, _, _) = st.check_io(id, offset, len, false)?;
        let first = offset / bs;
        let n = (offset + len).div_ceil(bs) - first;
        let runs = st.runs(
            id,
            first,
            n,
            max_extents.max(1).saturating_mul(4).min(1 << 20),
        )?;
        drop(st);
        let mut out: Vec<Extent> = Vec::new();
        for r in runs {
            let kind = match r.value {
                ChunkId::HOLE => ExtentKind::Hole,
                ChunkId::ZERO => ExtentKind::Zero,
                _ => ExtentKind::Data,
            };
            let s = (r.first * bs).max(offset);
            let e = ((r.first + r.n) * bs).min(offset + len).min(size);
            if e <= s {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.kind == kind && last.offset + last.length == s => {
                    last.length += e - s
                }
                _ => {
                    if out.len() == max_extents {
                        break;
                    }
                    out.push(Extent {
                        offset: s,
                        length: e - s,
                        kind,
                    });
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn counters(&self) -> &crate::op_stats::Counters {
        &self.inner.counters
    }

    pub(crate) fn state(&self) -> parking_lot::MutexGuard<'_, State> {
        self.inner.state.lock()
    }

    /// The state lock, if it is free now.
    pub(crate) fn try_state(&self) -> Option<parking_lot::MutexGuard<'_, State>> {
        self.inner.state.try_lock()
    }

    pub(crate) fn reclaimer(&self) -> &Mutex<Option<std::thread::JoinHandle<()>>> {
        &self.inner.reclaimer
    }

    pub(crate) fn background_reclaim(&self) -> bool {
        self.inner.opts.background_reclaim
    }

    pub(crate) fn background_free(&self) -> bool {
        self.inner.opts.background_free
    }

    /// Waits, before taking the store lock, until the log's write queue
    /// holds at most `QUEUE_LIMIT` bytes: how client writes, the cleaner's
    /// batches and free steps are bounded (`Log::make_room` does not wait
    /// for them with the lock held).
    pub(crate) fn wait_queue_room(&self) -> Result<()> {
        self.inner
            .queue
            .wait_room(crate::log_queue::QUEUE_LIMIT)
            .map_err(|e| self.fail(e))
    }

    pub(crate) fn dirty_limit(&self) -> u64 {
        self.inner.opts.dirty_limit_bytes
    }

    pub(crate) fn free_ctl(&self) -> &crate::free::FreeCtl {
        &self.inner.free
    }

    /// Live bytes after the last disk-full reclaim (see `make_room`).
    pub(crate) fn room_live(&self) -> &AtomicU64 {
        &self.inner.room_live
    }

    pub(crate) fn segment_size(&self) -> u64 {
        u64::from(self.inner.sb.lock().segment_size)
    }

    /// True after a durability failure (until reopened).
    pub fn is_failed(&self) -> bool {
        self.inner.failed.load(Ordering::Acquire)
    }
}
