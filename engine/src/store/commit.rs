//! The checkpoint commit: when housekeeping calls for a checkpoint, and
//! the protocol itself (write dirty pages and the blob under the state
//! lock, `fdatasync` the log without it, then write and sync the superblock
//! slot the new generation names); reading the newest valid slot on open.
//!
//! Invariants: one checkpoint at a time (the checkpoint lock, taken before
//! the state lock); a superblock is written only after every record it and
//! its replay point rely on is durable; the slot written is never the one
//! the last checkpoint named; segments emptied by the cleaner are deleted
//! only once neither slot names a checkpoint that needs them; any failure
//! fail-stops the store. docs/design.md, "Commit protocol", argues it.

use super::Store;
use crate::error::{Error, ErrorKind, Result};
use crate::fault::IoOp;
use crate::format::{Superblock, FORMAT_VERSION, SUPER_SLOT_LEN};
use crate::log::{bury, sync_segments};
use crate::state::State;
use crate::tiering::{segment_file, store_id_string, CommitObserver, Committed, CommittedSegment};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Passes of node slices a checkpoint makes over its dirty set (each over
/// the nodes dirty when it starts) before the final hold writes whatever
/// is left, however much: under writes faster than slices, the final hold
/// grows rather than the checkpoint never ending.
const SLICE_PASSES: usize = 16;

impl Store {
    /// Runs the housekeeping a write may call for: a checkpoint when dirty
    /// metadata or the log since the last one passes its bound, and, each
    /// time the log grows by a segment while over half of it is dead, a
    /// bounded reclaim. Skipped when another thread is already doing it.
    pub(crate) fn maybe_checkpoint(&self) -> Result<()> {
        let (need, n_segs) = {
            let st = self.inner.state.lock();
            let opts = &self.inner.opts;
            let need = st.checkpoint_due(opts.dirty_limit_bytes, opts.checkpoint_log_bytes);
            let n_segs = st.log.segments().len() as u64;
            self.ready_next_segment(st);
            (need, n_segs)
        };
        if need {
            if let Some(_c) = self.inner.ckpt_lock.try_lock() {
                self.check_live()?;
                self.checkpoint_with(self.inner.state.lock())?;
            }
        }
        let last = self.inner.segs_seen.swap(n_segs, Ordering::AcqRel);
        if n_segs > last && self.garbage_high() {
            self.light_reclaim()?;
        }
        Ok(())
    }

    /// Makes the next segment file ready for the log's next roll, if it
    /// is not and one is due: planned in the hold of the state lock `st`,
    /// made (created or renamed, directories synced) outside it
    /// (`log/ready.rs`). While file operations are recorded (power-cut
    /// tests) it is made in that hold, so that a recording depends only on
    /// the workload.
    pub(crate) fn ready_next_segment<'a>(&'a self, mut st: parking_lot::MutexGuard<'a, State>) {
        let Some(plan) = st.log.plan_next() else {
            return;
        };
        if !st.log.faults.recording() {
            drop(st);
            let made = plan.make();
            st = self.inner.state.lock();
            st.log.install_next(made);
            return;
        }
        st.log.install_next(plan.make());
    }

    /// Writes all dirty metadata and flips the superblock: afterwards a
    /// reopen replays nothing.
    pub fn checkpoint(&self) -> Result<()> {
        let _c = self.inner.ckpt_lock.lock();
        self.check_live()?;
        let st = self.inner.state.lock();
        self.checkpoint_with(st)
    }

    /// The checkpoint protocol; the caller holds the checkpoint lock and
    /// hands over the state lock. The dirty map nodes, then the dirty
    /// chunk-table leaves, are written in slices, each in a short hold of
    /// the state lock; the final hold writes what is left (pages dirtied
    /// again meanwhile), the interior chunk-table pages and the blob. The `fdatasync`s and the superblock switch run
    /// without it, so client I/O goes on meanwhile (what it does lands
    /// after the new replay point, and dirties pages for the next
    /// checkpoint).
    pub(crate) fn checkpoint_with(&self, st: parking_lot::MutexGuard<'_, State>) -> Result<()> {
        let started = std::time::Instant::now();
        let r = self.checkpoint_protocol(st);
        self.inner.counters.checkpoint(started, r.is_ok());
        r
    }

    /// Writes the dirty map nodes in slices of at most
    /// `checkpoint_slice_pages`, from a snapshot sorted by id and encoded
    /// (per slice) without the lock, each slice in its own hold
    /// ([`State::write_node_slice`]). A node changed or freed after the
    /// snapshot is skipped and stays dirty; one written and then dirtied
    /// again is dirty again. Up to [`SLICE_PASSES`] passes run while more
    /// than a slice is dirty; returns the state lock for the final hold,
    /// which writes whatever is dirty then. Slices commit nothing (see
    /// docs/design.md, "Commit protocol").
    fn write_node_slices<'a>(
        &'a self,
        st: parking_lot::MutexGuard<'a, State>,
    ) -> Result<parking_lot::MutexGuard<'a, State>> {
        self.slice_passes(
            st,
            |st| st.nodes_dirty.len(),
            |st, per, faults| {
                let mut snapshot = st.dirty_nodes();
                drop(st);
                // Descending, so that each slice is split off the end, in id
                // order once reversed, and its `Arc`s go when it is written
                // (a node still held by the snapshot is copied when modified).
                snapshot.sort_unstable_by_key(|n| std::cmp::Reverse(n.0));
                while !snapshot.is_empty() {
                    let mut part = snapshot.split_off(snapshot.len().saturating_sub(per));
                    part.reverse();
                    let pre = crate::checkpoint::Encoded::new(part);
                    self.slice_hold(faults, |st| st.write_node_slice(pre))?;
                }
                Ok(())
            },
        )
    }

    /// Writes the dirty chunk-table leaves in slices of at most
    /// `checkpoint_slice_pages`, like the node slices (after them: writing
    /// a node dirties the leaf of its table entry): the indices are taken
    /// in one short hold, then for each slice its leaves (`Arc` clones) in
    /// one, encoded without the lock, and written in a third
    /// ([`State::write_leaf_slice`]). A leaf changed after it was taken is
    /// skipped and stays dirty. Up to [`SLICE_PASSES`] passes while more
    /// than a slice is dirty; returns the state lock for the final hold.
    fn write_leaf_slices<'a>(
        &'a self,
        st: parking_lot::MutexGuard<'a, State>,
    ) -> Result<parking_lot::MutexGuard<'a, State>> {
        self.slice_passes(
            st,
            |st| st.ct_dirty.len(),
            |st, per, faults| {
                let mut idxs = st.dirty_leaf_indices();
                drop(st);
                idxs.sort_unstable();
                for part in idxs.chunks(per) {
                    self.check_live()?;
                    let leaves = self.inner.state.lock().dirty_leaves(part);
                    let pre = crate::checkpoint::EncodedLeaves::new(leaves);
                    self.slice_hold(faults, |st| st.write_leaf_slice(pre))?;
                }
                Ok(())
            },
        )
    }

    /// Runs `pass` (given the lock, to release once it has taken what it
    /// writes, the slice size and the fault hooks) while `dirty` counts
    /// more than a slice, at most [`SLICE_PASSES`] times: under writes
    /// faster than the slices, the final hold grows rather than the
    /// checkpoint never ending. Returns the lock for what comes next.
    fn slice_passes<'a>(
        &'a self,
        mut st: parking_lot::MutexGuard<'a, State>,
        dirty: impl Fn(&State) -> usize,
        mut pass: impl FnMut(
            parking_lot::MutexGuard<'a, State>,
            usize,
            &crate::fault::Faults,
        ) -> Result<()>,
    ) -> Result<parking_lot::MutexGuard<'a, State>> {
        let per = self.inner.opts.checkpoint_slice_pages.max(1);
        let faults = st.log.faults.clone();
        for _ in 0..SLICE_PASSES {
            if dirty(&st) <= per {
                break;
            }
            pass(st, per, &faults)?;
            st = self.inner.state.lock();
        }
        Ok(st)
    }

    /// One slice's hold of the state lock: `write` runs under it (a
    /// failure fail-stops the store); the lock then goes straight to a
    /// waiting client, if any, before this thread's next slice; the log
    /// writer is woken only once it is free; then the test hook runs.
    fn slice_hold(
        &self,
        faults: &crate::fault::Faults,
        write: impl FnOnce(&mut State) -> Result<usize>,
    ) -> Result<()> {
        self.check_live()?;
        let mut st = self.inner.state.lock();
        let r = write(&mut st);
        parking_lot::MutexGuard::unlock_fair(st);
        self.inner.queue.wake();
        r.map_err(|e| self.fail(e))?;
        faults.checkpoint_slice();
        // A slice's pages fill segments fast: the next roll should not
        // make its file under a later slice's hold.
        self.ready_next_segment(self.inner.state.lock());
        Ok(())
    }

    fn checkpoint_protocol(&self, st: parking_lot::MutexGuard<'_, State>) -> Result<()> {
        let st = self.write_node_slices(st)?;
        let mut st = self.write_leaf_slices(st)?;
        let per = self.inner.opts.checkpoint_slice_pages.max(1);
        let faults = st.log.faults.clone();
        // The nodes left (most of a small checkpoint's pages) are encoded
        // and checksummed without the lock too; the final hold only frames
        // and queues them (re-encoding those changed meanwhile) and writes
        // the chunk-table pages and the blob. What is committed is the
        // state at that hold: the snapshots only save work. Should more
        // than a slice have been dirtied while they were encoded (the lock
        // is contended), they go as one more slice and the final hold is
        // tried again, a bounded number of times.
        // The dirty leaves left are framed outside the lock the same way
        // (those unchanged at the final hold go as a slice would), so that
        // the hold does not copy and checksum the pages requests dirtied
        // during the slices (some 15,000 past a 16 GiB random fill).
        // The pending-free sorted set's blob form (megabytes while a big
        // snapshot is freed) is encoded outside the lock too.
        let mut tries = 0;
        let mut sorted_before = Default::default();
        let (mut st, pre) = loop {
            let mut snapshot = st.dirty_nodes();
            let mut leaves = st.all_dirty_leaves();
            let sorted = st.free_sorted.snapshot();
            drop(st);
            snapshot.sort_unstable_by_key(|n| n.0);
            leaves.sort_unstable_by_key(|l| l.0);
            let pre = crate::checkpoint::PreEncoded {
                nodes: crate::checkpoint::Encoded::new(snapshot),
                leaves: crate::checkpoint::EncodedLeaves::new(leaves),
                sorted: sorted.encode_after(sorted_before),
            };
            faults.checkpoint_slice();
            st = self.inner.state.lock();
            self.check_live()?;
            tries += 1;
            if st.nodes_dirty.len() <= pre.nodes.len() + per || tries == SLICE_PASSES {
                break (st, pre);
            }
            sorted_before = pre.sorted;
            let r = st
                .write_node_slice(pre.nodes)
                .and_then(|_| st.write_leaf_slice(pre.leaves));
            drop(st);
            self.inner.queue.wake();
            r.map_err(|e| self.fail(e))?;
            st = self.inner.state.lock();
        };
        let (ct_root, blob) = match st.write_checkpoint(pre) {
            Ok(r) => r,
            Err(e) => {
                drop(st);
                self.inner.queue.wake();
                return Err(self.fail(e));
            }
        };
        let replay_start = st.log.tail();
        let replay_seq = st.log.next_seq();
        let log_bytes = st.counters.log_bytes();
        let faults = st.log.faults.clone();
        let pending = std::mem::take(&mut st.pending_delete);
        drop(st);
        self.inner.queue.wake();
        // The pages and the blob reach the segment files from the log's
        // write queue; the superblock may name them only once they are
        // written and synced.
        self.inner
            .queue
            .drain(replay_seq)
            .map_err(|e| self.fail(e))?;
        let to_sync = self.inner.state.lock().log.unsynced();
        sync_segments(&faults, &to_sync.segs).map_err(|e| self.fail(e))?;
        self.inner.state.lock().log.mark_synced(&to_sync);
        self.inner
            .durable_seq
            .fetch_max(to_sync.upto(), Ordering::AcqRel);
        let mut sb = self.inner.sb.lock();
        // Never reached: client operations stop at `GENERATION_LIMIT`.
        let generation = sb.generation.checked_add(1).ok_or_else(|| {
            self.fail(Error::new(
                ErrorKind::Exhausted,
                "superblock generations are used up",
            ))
        })?;
        let new = Superblock {
            generation,
            segment_size: sb.segment_size,
            ct_root,
            blob,
            replay_start,
            replay_seq,
            store_id: sb.store_id,
            version: FORMAT_VERSION,
        };
        let slot = new.generation % 2;
        faults
            .check(crate::fault::FaultPoint::SuperblockWrite)
            .and_then(|_| {
                sb.file
                    .write_all_at(&new.encode(), slot * SUPER_SLOT_LEN as u64)
            })
            .and_then(|_| sb.file.sync_data())
            .map_err(|e| self.fail(Error::io("writing the superblock", e)))?;
        faults.record(|| IoOp::Write {
            file: "superblock".into(),
            offset: slot * SUPER_SLOT_LEN as u64,
            data: new.encode(),
        });
        faults.record(|| IoOp::Sync {
            file: "superblock".into(),
        });
        sb.generation = new.generation;
        drop(sb);
        // Segments the cleaner emptied before the previous checkpoint go only
        // now that neither superblock slot names a checkpoint needing them;
        // those emptied before this one wait for the next.
        let mut st = self.inner.state.lock();
        let held = std::time::Instant::now();
        st.generation = generation;
        for seg in std::mem::replace(&mut st.delete_next, pending) {
            st.log.remove_segment(seg)?;
            st.usage.remove(&seg);
        }
        let committed = self.inner.observer.lock().is_some().then(|| {
            // What this generation needs: every segment up to the replay
            // point's but those the cleaner emptied (which only the
            // previous generation may still need).
            let segments = st
                .log
                .segments()
                .keys()
                .filter(|&&no| no <= replay_start.segment() && !st.delete_next.contains(&no))
                .map(|&no| CommittedSegment {
                    no,
                    path: segment_file(&self.inner.dir, no),
                    len: (no == replay_start.segment()).then_some(replay_start.offset()),
                })
                .collect();
            Committed {
                generation,
                store_id: store_id_string(&new.store_id),
                superblock: new.encode(),
                segments,
                log_bytes,
            }
        });
        let doomed = st.log.take_doomed();
        st.counters.held_in(
            crate::op_stats::Holder::Checkpoint,
            "checkpoint: retiring segments after the superblock",
            held.elapsed(),
        );
        drop(st);
        if let Some(c) = committed {
            let observer = self.inner.observer.lock().clone();
            if let Some(o) = observer {
                o.committed(c);
            }
        }
        bury(doomed)
    }

    /// Sets the observer told of each committed generation from now on
    /// (`tiering.rs`); a [`Store::checkpoint`] right after gives it the
    /// current one.
    pub fn set_commit_observer(&self, o: Option<Arc<dyn CommitObserver>>) {
        *self.inner.observer.lock() = o;
    }

    /// Takes the checkpoint lock (before any state lock).
    pub(crate) fn checkpoint_guard(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.inner.ckpt_lock.lock()
    }

    /// Tests only: the next checkpoint writes generation `g + 1` (if higher).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn skip_generation_to(&self, g: u64) {
        let mut sb = self.inner.sb.lock();
        sb.generation = sb.generation.max(g);
    }
}

/// Reads the superblock slot with the highest generation.
pub(crate) fn read_superblock(sb_file: &File, sb_path: &Path) -> Result<Superblock> {
    let mut best: Option<Superblock> = None;
    for slot in 0..2u64 {
        let mut b = vec![0u8; SUPER_SLOT_LEN];
        if sb_file
            .read_exact_at(&mut b, slot * SUPER_SLOT_LEN as u64)
            .is_ok()
        {
            if let Some(s) = Superblock::decode(&b)? {
                if best.is_none_or(|b| s.generation > b.generation) {
                    best = Some(s);
                }
            }
        }
    }
    best.ok_or_else(|| Error::corrupt(format!("no valid superblock in {}", sb_path.display())))
}
