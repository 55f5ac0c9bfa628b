//! Space reclaim by segment cleaning: live chunks and pages are copied out
//! of sealed, mostly-dead segments that lie wholly before the last
//! checkpoint; the segment file is deleted once neither superblock slot
//! names a checkpoint that needs it (after the second checkpoint following
//! the cleaning). Liveness is decided by the chunk table: a data payload
//! is live when its chunk's entry still points at it. An extent moves
//! whole (its crcs and payloads, copied as they are, in one extent Reloc
//! record), and only while its entry still names the crc array read.

use crate::error::{Error, Result};
use crate::fetch::Fetched;
use crate::format::{
    decode_extent_record, decode_extent_reloc, decode_write_salvage, encode_extent_reloc, Node,
    PageKey, RecordKind, RelocHead, CT_INTERIOR_LEVELS, EXTENT_BYTES_PER_BLOCK, EXTENT_RELOC_FIXED,
    HEADER_LEN, RELOC_FIXED,
};
use crate::op_stats::Holder;
use crate::salvage::next_intact_in;
use crate::state::{CtKey, State};
use crate::store::Store;
use crate::types::{ChunkId, LogAddr, SegmentNo, BLOCK_SIZE};
use std::sync::atomic::Ordering;

/// What a reclaim pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReclaimReport {
    /// Segments cleaned and deleted.
    pub segments_freed: u64,
    /// Live bytes copied forward.
    pub bytes_moved: u64,
    /// Disk bytes before and after.
    pub disk_before: u64,
    /// Disk bytes after.
    pub disk_after: u64,
}

/// Most payload bytes the cleaner moves in one hold of the state lock.
const BATCH_BYTES: usize = 2 << 20;
/// Most records' items (chunks, nodes, pages) it handles in one hold.
const BATCH_ITEMS: usize = 512;

/// Something possibly live in a segment being cleaned, read outside the
/// state lock.
enum Item {
    /// A data payload (from a Write or Reloc record) at `loc`.
    Chunk {
        id: ChunkId,
        loc: LogAddr,
        payload: Vec<u8>,
    },
    /// An extent of `n` blocks whose crc array was at `loc`: its crcs and
    /// payloads, as stored.
    Extent {
        id: ChunkId,
        loc: LogAddr,
        n: u8,
        stored: Vec<u8>,
    },
    /// A map node record at `addr`.
    Node {
        id: ChunkId,
        addr: LogAddr,
        body: Vec<u8>,
    },
    /// A chunk-table page record at `addr`.
    Page { key: CtKey, addr: LogAddr, len: u64 },
}

impl State {
    /// Moves extent `id` (crc array read at `loc`) forward if its entry
    /// still names that place: its crcs and payloads are copied as they
    /// are (each block keeps its seeded crc, which a reader checks).
    fn relocate_extent(&mut self, id: ChunkId, loc: LogAddr, n: u8, stored: &[u8]) -> Result<u64> {
        let e = self.ct_get(id)?;
        if !e.is_live() || e.loc != loc || e.nblocks != n {
            return Ok(0);
        }
        let body = encode_extent_reloc(id, n, stored);
        let a = self.append(RecordKind::RelocExtent, &body)?;
        self.apply_extent_reloc(
            id,
            n,
            LogAddr(a.0 + (HEADER_LEN + EXTENT_RELOC_FIXED) as u64),
        )?;
        Ok(stored.len() as u64)
    }

    fn relocate(&mut self, id: ChunkId, loc: LogAddr, payload: &[u8]) -> Result<u64> {
        let e = self.ct_get(id)?;
        if !e.is_live() || e.loc != loc {
            return Ok(0);
        }
        if crc32fast::hash(payload) != e.crc {
            return Err(Error::corrupt(format!(
                "chunk {} fails its checksum while being moved",
                id.0
            )));
        }
        let body = RelocHead {
            chunk: id,
            crc: e.crc,
            stored_len: e.stored_len,
            flags: e.flags,
        }
        .encode(payload);
        let a = self.append(RecordKind::Reloc, &body)?;
        self.apply_reloc(
            id,
            LogAddr(a.0 + (HEADER_LEN + RELOC_FIXED) as u64),
            e.crc,
            e.stored_len,
            e.flags,
        )?;
        Ok(payload.len() as u64)
    }
}

impl Store {
    /// Reclaims space: sealed segments whose live fraction is below
    /// `max_live` (0.0 to 1.0) are cleaned and deleted.
    pub fn reclaim(&self, max_live: f64) -> Result<ReclaimReport> {
        self.reclaim_some(max_live, usize::MAX)
    }

    /// Like [`Store::reclaim`], cleaning at most `max_segments` segments
    /// that still hold live data (empty ones cost nothing and all go),
    /// emptiest first.
    pub fn reclaim_some(&self, max_live: f64, max_segments: usize) -> Result<ReclaimReport> {
        let started = std::time::Instant::now();
        let r = self.reclaim_pass(max_live, max_segments);
        let freed = r.as_ref().ok().map(|r| r.segments_freed);
        self.counters().reclaim(started, freed);
        r
    }

    fn reclaim_pass(&self, max_live: f64, max_segments: usize) -> Result<ReclaimReport> {
        let _c = self.checkpoint_guard();
        self.check_live()?;
        self.checkpoint_with(self.state())?;
        let seg_size = self.segment_size();
        let (disk_before, candidates) = {
            let st = self.state();
            let active = st.log.active_no();
            // Never the active segment: records are still being appended there.
            let mut candidates: Vec<(u64, SegmentNo)> = st
                .log
                .segments()
                .keys()
                .copied()
                .filter(|&s| s < active && !st.delete_next.contains(&s))
                .map(|s| (st.usage.get(&s).copied().unwrap_or(0), s))
                .filter(|&(live, _)| (live as f64) < max_live * seg_size as f64)
                .collect();
            candidates.sort();
            (st.log.disk_bytes(), candidates)
        };
        let mut report = ReclaimReport {
            disk_before,
            ..Default::default()
        };
        let mut cleaned = 0;
        for (live, seg) in candidates {
            // Nothing live (the usage table is exact; `check` verifies it):
            // the segment goes without being read. A sealed segment never
            // gains live bytes, so this holds after the lock was released.
            if live == 0 {
                self.state().pending_delete.push(seg);
                report.segments_freed += 1;
                continue;
            }
            if cleaned == max_segments {
                break;
            }
            // A failed append may leave a torn record at the log's tail:
            // nothing more may be appended, so the store fail-stops. A
            // failed read (an evicted segment while the object store is
            // away) leaves the log as it was: the pass just stops.
            let mut appending = false;
            let moved = self.clean_segment(seg, &mut appending).map_err(|e| {
                let e = e.with_context(format!("cleaning segment {}", seg.0));
                if appending {
                    self.fail(e)
                } else {
                    e
                }
            })?;
            report.bytes_moved += moved;
            let mut st = self.state();
            st.reclaim_moved += moved;
            st.pending_delete.push(seg);
            report.segments_freed += 1;
            cleaned += 1;
        }
        if report.segments_freed > 0 {
            // Moved pages are rewritten; the cleaned segments go once a second
            // checkpoint leaves no superblock slot naming one that needs them.
            self.checkpoint_with(self.state())?;
            self.checkpoint_with(self.state())?;
        }
        report.disk_after = self.state().log.disk_bytes();
        if report.segments_freed > 0 {
            tracing::info!(
                segments = report.segments_freed,
                moved = report.bytes_moved,
                "reclaimed segments"
            );
        }
        Ok(report)
    }

    /// Copies the live contents of sealed segment `seg` forward, in
    /// batches: records are read outside the state lock (the segment never
    /// changes, and the handle held keeps its file from being reused);
    /// each batch of at most [`BATCH_ITEMS`] items or [`BATCH_BYTES`]
    /// bytes is then checked and moved in one hold, each item only if its
    /// entry still names the place it was read from. The caller holds the
    /// checkpoint lock, so no checkpoint runs between batches.
    fn clean_segment(&self, seg: SegmentNo, appending: &mut bool) -> Result<u64> {
        let (segment, seg_size) = {
            let st = self.state();
            (st.log.segment(seg), st.log.seg_size)
        };
        let Some(segment) = segment else {
            return Ok(0);
        };
        let mut addr = LogAddr::new(seg, 0);
        let mut moved = 0u64;
        let mut batch: Vec<Item> = Vec::new();
        let mut bytes = 0usize;
        // Records follow one another by sequence number; a reused segment
        // file may hold stale records past its seal, which this never reaches.
        let mut expect = None;
        loop {
            let Some(rec) = segment.read_record(addr.offset(), expect, seg_size)? else {
                // A damaged record (one `check --repair` salvaged past, or
                // damaged since) does not end a sealed segment: live data
                // after it must still be moved before the file goes.
                match next_intact_in(&segment, seg_size, addr, expect)? {
                    Some((a, s)) => {
                        tracing::warn!(
                            segment = seg.0,
                            offset = addr.offset(),
                            "cleaning past a damaged record"
                        );
                        (addr, expect) = (a, Some(s));
                        continue;
                    }
                    None => break,
                }
            };
            expect = Some(rec.header.seq + 1);
            match rec.header.kind {
                RecordKind::Write => {
                    // A payload failing its crc is moved only if live,
                    // and `relocate` refuses a live one.
                    let (w, _) = decode_write_salvage(&rec.body)?;
                    for (e, &o) in w.entries.iter().zip(&w.payload_offsets) {
                        if e.chunk.is_data() {
                            let payload = rec.body[o..o + e.stored_len as usize].to_vec();
                            bytes += payload.len();
                            batch.push(Item::Chunk {
                                id: e.chunk,
                                loc: LogAddr(addr.0 + (HEADER_LEN + o) as u64),
                                payload,
                            });
                        }
                    }
                }
                RecordKind::WriteExtents | RecordKind::WriteAligned => {
                    // Blocks failing their crc move with their extent;
                    // either layout moves as crcs then payloads (kind 11).
                    let (w, _) = decode_extent_record(rec.header.kind, &rec.body)?;
                    for x in &w.extents {
                        let n = usize::from(x.count);
                        let mut stored = Vec::with_capacity(EXTENT_BYTES_PER_BLOCK as usize * n);
                        stored.extend_from_slice(&rec.body[x.crcs_at..x.crcs_at + 4 * n]);
                        stored.extend_from_slice(
                            &rec.body[x.payload_at..x.payload_at + BLOCK_SIZE as usize * n],
                        );
                        bytes += stored.len();
                        batch.push(Item::Extent {
                            id: x.id,
                            loc: LogAddr(addr.0 + (HEADER_LEN + x.crcs_at) as u64),
                            n: x.count,
                            stored,
                        });
                    }
                }
                RecordKind::RelocExtent => {
                    let (id, n) = decode_extent_reloc(&rec.body)?;
                    bytes += rec.body.len();
                    batch.push(Item::Extent {
                        id,
                        loc: LogAddr(addr.0 + (HEADER_LEN + EXTENT_RELOC_FIXED) as u64),
                        n,
                        stored: rec.body[EXTENT_RELOC_FIXED..].to_vec(),
                    });
                }
                RecordKind::Reloc => {
                    let r = RelocHead::decode(&rec.body)?;
                    bytes += rec.body.len();
                    batch.push(Item::Chunk {
                        id: r.chunk,
                        loc: LogAddr(addr.0 + (HEADER_LEN + RELOC_FIXED) as u64),
                        payload: rec.body[RELOC_FIXED..].to_vec(),
                    });
                }
                RecordKind::Node => {
                    bytes += rec.body.len();
                    batch.push(Item::Node {
                        id: ChunkId(PageKey::peek(&rec.body)?.index),
                        addr,
                        body: rec.body.clone(),
                    });
                }
                RecordKind::CtPage => {
                    let PageKey { level, index } = PageKey::peek(&rec.body)?;
                    if level <= CT_INTERIOR_LEVELS {
                        batch.push(Item::Page {
                            key: (level, index),
                            addr,
                            len: rec.body.len() as u64,
                        });
                    }
                }
                RecordKind::Seal => break,
                _ => {}
            }
            if batch.len() >= BATCH_ITEMS || bytes >= BATCH_BYTES {
                moved += self.clean_batch(&mut batch, appending)?;
                bytes = 0;
            }
            if rec.next.segment() != seg {
                break;
            }
            addr = rec.next;
        }
        moved += self.clean_batch(&mut batch, appending)?;
        Ok(moved)
    }

    /// Moves what is still live of `batch` in one hold of the state lock,
    /// after bringing the entries it looks up into memory (misses read
    /// outside the lock, as client I/O does: `fetch.rs`).
    /// `appending` is set while its records are appended (a failure then
    /// may have torn the log's tail).
    fn clean_batch(&self, batch: &mut Vec<Item>, appending: &mut bool) -> Result<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        self.wait_queue_room()?;
        let mut fetched = Fetched::for_apply();
        let (mut st, ()) = self.lock_resolved_as(Holder::Reclaim, &mut fetched, |st| {
            self.check_live()?;
            for item in batch.iter() {
                match item {
                    Item::Chunk { id, .. } | Item::Node { id, .. } | Item::Extent { id, .. } => {
                        st.touch_ids([*id])?
                    }
                    Item::Page { key, .. } => drop(st.ct_page_ref(key.0, key.1)?),
                }
            }
            Ok(())
        })?;
        *appending = true;
        // The batch's records are queued together, whatever happens.
        let mine = st.log.hold_appends();
        let r = move_batch(&mut st, batch);
        let queued = if mine { st.log.queue_held() } else { Ok(()) };
        // The writer thread is woken only once the lock is free.
        let queue = st.log.queue();
        drop(st);
        queue.wake();
        queued?;
        let moved = r?;
        *appending = false;
        Ok(moved)
    }

    /// Housekeeping's cheap reclaim (writes run it when the log holds more
    /// than twice the live data): queues every wholly dead sealed
    /// segment for deletion and commits the queue with one checkpoint. The
    /// files go at the next checkpoint, when neither superblock slot can
    /// need them: both then name checkpoints taken after they were found
    /// dead, whose pages lie and whose replay starts in later segments.
    /// Returns how many segments were queued or deleted (0: nothing to do).
    pub fn drop_empty_segments(&self) -> Result<usize> {
        let started = std::time::Instant::now();
        let r = self.drop_empty_pass();
        self.counters()
            .reclaim(started, r.as_ref().ok().map(|&n| n as u64));
        r
    }

    fn drop_empty_pass(&self) -> Result<usize> {
        let _c = self.checkpoint_guard();
        self.check_live()?;
        let mut st = self.state();
        let queued = queue_empty_segments(&mut st);
        // Segments queued by the previous call go at this checkpoint.
        let waiting = st.delete_next.len();
        if queued == 0 && waiting == 0 {
            return Ok(0);
        }
        self.checkpoint_with(st)?;
        tracing::debug!(queued, deleted = waiting, "dropped empty segments");
        Ok(queued + waiting)
    }

    /// While the free thread runs: queues the wholly dead segments for
    /// deletion without a checkpoint of its own. Frees empty segments by
    /// the dozen, and a checkpoint per reclaim pass (each writing the table
    /// leaves the frees dirtied) fed itself: its pages filled segments,
    /// which started the next pass (117 checkpoints, 3.2 GB of pages, while
    /// a 16 GiB snapshot was freed). The free thread's own checkpoints (at
    /// the dirty limit) retire what is queued, so space still returns as
    /// the frees go; when they are done, a normal pass runs.
    fn queue_empty_only(&self) -> Result<()> {
        let _c = self.checkpoint_guard();
        self.check_live()?;
        let queued = queue_empty_segments(&mut self.state());
        tracing::debug!(queued, "queued empty segments while frees run");
        Ok(())
    }

    /// Housekeeping's reclaim, for a write that grew the log by a segment
    /// while over half of it is dead. While some segment is wholly dead,
    /// only such segments go (one checkpoint): under a steady overwrite,
    /// partly live ones soon empty by themselves, and moving their data now
    /// would be wasted; else a bounded clean. With
    /// [`StoreOptions::background_reclaim`](crate::StoreOptions) it runs on
    /// its own thread, one at a time, so the write does not wait for the
    /// checkpoint's syncs; a full disk still reclaims in the write that
    /// meets it, and [`Store::close`] waits for it.
    pub(crate) fn light_reclaim(&self) -> Result<()> {
        if !self.background_reclaim() {
            return self.drop_or_clean().map(drop);
        }
        let mut slot = self.reclaimer().lock();
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            drop(slot);
            // The thread is busy; writes help only when it fell far
            // behind: 32 segments beyond twice the live data (backpressure
            // instead of an unbounded log).
            if self.garbage_beyond(32) {
                self.drop_or_clean()?;
            }
            return Ok(());
        }
        if let Some(done) = slot.take() {
            let _ = done.join();
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("blockd-reclaim".into())
            .spawn(move || {
                let pass = || -> Result<()> {
                    if me.frees_running() {
                        return me.queue_empty_only();
                    }
                    if !me.garbage_high() || me.drop_or_clean()? == 0 {
                        return Ok(());
                    }
                    // Catch up with the writes: segments that emptied
                    // meanwhile go too (and those the pass above queued
                    // are retired); data is moved only by the first pass.
                    for _ in 0..4 {
                        if !me.garbage_high() || me.drop_empty_segments()? == 0 {
                            break;
                        }
                    }
                    Ok(())
                };
                if let Err(e) = pass() {
                    tracing::error!(error = %e, "background reclaim failed");
                }
            });
        match spawned {
            Ok(h) => {
                *slot = Some(h);
                Ok(())
            }
            Err(_) => {
                drop(slot);
                self.drop_or_clean().map(drop)
            }
        }
    }

    /// One pass: drops the wholly dead segments, or when there are none
    /// cleans a bounded few; returns how many segments it freed.
    fn drop_or_clean(&self) -> Result<usize> {
        match self.drop_empty_segments()? {
            0 => Ok(self.reclaim_some(0.5, 2)?.segments_freed as usize),
            n => Ok(n),
        }
    }

    /// True when more than half of the segment files' space is dead (and
    /// there are more than four segments): time to reclaim.
    pub(crate) fn garbage_high(&self) -> bool {
        self.garbage_beyond(0)
    }

    /// True when the segment files hold more than `segs` segments beyond
    /// twice the live data (and there are more than four segments).
    fn garbage_beyond(&self, segs: u64) -> bool {
        let st = self.state();
        let n = st.log.segments().len() as u64;
        let live: u64 = st.usage.values().sum();
        n > 4 && n * st.log.seg_size > live.saturating_mul(2) + segs * st.log.seg_size
    }

    /// Waits until a background reclaim in progress (if any) is done.
    pub fn wait_reclaim(&self) {
        let running = self.reclaimer().lock().take();
        if let Some(h) = running {
            let _ = h.join();
        }
    }

    /// Deletes the spare segment files (retired segments kept for reuse),
    /// giving their space back to the filesystem; returns their bytes.
    pub fn release_spares(&self) -> Result<u64> {
        self.state().log.release_spares()
    }

    /// After a client write met a full disk: reclaims dead segments (empty
    /// ones, and a few mostly dead ones, moved into the reserve) when live
    /// data shrank since the last attempt. True when a segment was freed.
    pub(crate) fn make_room(&self) -> Result<bool> {
        // Space still being freed counts: finish that first.
        self.free_pending()?;
        let live: u64 = self.state().usage.values().sum();
        let last = self.room_live().load(Ordering::Acquire);
        if live >= last {
            return Ok(false);
        }
        let report = self.reclaim_some(0.5, 2)?;
        let live: u64 = self.state().usage.values().sum();
        self.room_live().store(live, Ordering::Release);
        tracing::info!(
            freed = report.segments_freed,
            moved = report.bytes_moved,
            "disk full: reclaimed space"
        );
        Ok(report.segments_freed > 0)
    }
}

/// Moves what is still live of `batch` (see [`Store::clean_batch`]);
/// returns the bytes moved.
fn move_batch(st: &mut State, batch: &mut Vec<Item>) -> Result<u64> {
    let mut moved = 0;
    for item in batch.drain(..) {
        match item {
            Item::Chunk { id, loc, payload } => moved += st.relocate(id, loc, &payload)?,
            Item::Extent { id, loc, n, stored } => {
                moved += st.relocate_extent(id, loc, n, &stored)?
            }
            Item::Node { id, addr, body } => {
                let e = st.ct_get(id)?;
                if e.is_live() && e.loc == addr && !st.nodes_dirty.contains_key(&id) {
                    // The record read is the node's current version.
                    if crc32fast::hash(&body) != e.crc {
                        return Err(Error::corrupt(format!(
                            "map node {} fails its checksum",
                            id.0
                        )));
                    }
                    let n = Node::decode(&body, id)?;
                    st.node_put(id, std::sync::Arc::new(n));
                    moved += body.len() as u64;
                }
            }
            Item::Page { key, addr, len } => {
                if st.ct_page_ref(key.0, key.1)?.loc == addr {
                    st.ct_force.insert(key);
                    moved += len;
                }
            }
        }
    }
    Ok(moved)
}

/// Queues every wholly dead sealed segment not queued yet for deletion at
/// the next checkpoint (`pending_delete`); returns how many.
fn queue_empty_segments(st: &mut crate::state::State) -> usize {
    let active = st.log.active_no();
    let empty: Vec<SegmentNo> = st
        .log
        .segments()
        .keys()
        .copied()
        .filter(|&s| {
            s < active
                && st.usage.get(&s).copied().unwrap_or(0) == 0
                && !st.delete_next.contains(&s)
                && !st.pending_delete.contains(&s)
        })
        .collect();
    st.pending_delete.extend(&empty);
    empty.len()
}
