//! Deferred freeing: the durable pending-free queue.
//!
//! Releasing the last reference to a map node (deleting an object, reverting
//! a volume away from a diverged map, trimming or zeroing a whole subtree)
//! does not walk and free the subtree under the store lock. The reference
//! is put on the pending-free queue instead, in the same step that removed
//! it (the Catalog or Zero record that the live store and replay both apply
//! the same way), and the queue is worked off in bounded steps: each takes
//! the store lock briefly, appends one Free record and releases at most
//! [`FREE_STEP_REFS`] references. Freeing a node puts its children's
//! references on the queue (a stack, so the queue stays as short as the
//! map is deep times the node fan-out).
//!
//! Crash safety: a queued reference is an ordinary reference (it counts in
//! the chunk's refcount, `check` counts it), the queue is in every
//! checkpoint blob together with the chunk-table pages it agrees with, and
//! a step is logged before it is applied, under the one store lock, so
//! replay (log order equals apply order) redoes exactly the steps that are
//! in the durable log, on exactly the queue they ran on. A step lost in a
//! crash is simply done again; none is done twice.
//!
//! Under `blockd serve` (`StoreOptions::background_free`) a thread runs the
//! steps, checkpointing whenever dirty metadata passes the store's dirty
//! limit (a checkpoint writes its pages in slices, so a large dirty set
//! does not mean a long hold; a lower bound would only multiply the
//! checkpoints, each dirtying the same table leaves again); otherwise the
//! operation that queued work finishes it before returning.

use crate::error::{Error, Result};
use crate::fetch::Fetched;
use crate::format::{FreeStep, RecordKind};
use crate::map::node_children;
use crate::op_stats::Holder;
use crate::state::State;
use crate::store::Store;
use crate::types::ChunkId;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most references one step releases (one Free record, one lock hold).
/// Each may dirty a chunk-table leaf (decoding it, on its first change
/// since a checkpoint): 256 held the lock 1-10 ms per step while a
/// randomly written snapshot was freed; 128 about halves that.
pub const FREE_STEP_REFS: u32 = 128;

/// The free thread's controls, held by the store.
#[derive(Default)]
pub(crate) struct FreeCtl {
    /// The free thread, if one ran.
    thread: Mutex<Option<JoinHandle<()>>>,
    /// True while the free thread runs (or is being started).
    running: AtomicBool,
    /// Set by `close`: the free thread stops after its current step.
    stop: AtomicBool,
    /// References released by free steps since the store was opened.
    freed: AtomicU64,
    /// Tests only: nothing works the queue off unless asked.
    held: AtomicBool,
}

impl State {
    /// Drops one reference to `id`. What is O(1) (a data chunk, or a node
    /// that stays referenced) happens now; the last reference to a node
    /// goes on the pending-free queue.
    pub(crate) fn release(&mut self, id: ChunkId) -> Result<()> {
        if id.is_special() {
            return Ok(());
        }
        if id.is_node() && self.ct_get(id)?.refcount == 1 {
            self.free_queue.push(id);
            return Ok(());
        }
        self.decref(id)
    }

    /// Applies one Free step (live or replayed): releases up to
    /// `step.max_refs` queued references, the first of which must be
    /// `step.top`. Returns how many it released.
    pub(crate) fn apply_free(&mut self, step: FreeStep) -> Result<u32> {
        if self.free_queue.last() != Some(&step.top) {
            return Err(Error::corrupt(format!(
                "free step expects chunk {} on top of the pending-free queue, found {:?}",
                step.top.0,
                self.free_queue.last().map(|c| c.0)
            )));
        }
        let mut n = 0;
        while n < step.max_refs {
            let Some(id) = self.free_queue.pop() else {
                break;
            };
            n += 1;
            let children = self.release_one(id, "queued for freeing")?;
            self.free_queue.extend(children);
        }
        Ok(n)
    }
}

impl State {
    /// A read-only walk over every page the next free step of at most
    /// `max_refs` references will look up: it mirrors `apply_free` and
    /// `release_one` (the table entry of each reference released, and the
    /// node whose last reference it is) without changing anything. Run in
    /// no-I/O mode it notes every page not in memory (going on past each)
    /// and then fails if there was one; when it succeeds, the step applied
    /// in the same hold reads nothing.
    pub(crate) fn prefetch_free(&mut self, max_refs: u32) -> Result<()> {
        // At most `max_refs` pops, each from the top: the rest of the queue
        // is never reached.
        let keep = self.free_queue.len().saturating_sub(max_refs as usize);
        let mut stack = self.free_queue[keep..].to_vec();
        // References this step drops before each one's own release, for
        // a chunk queued more than once.
        let mut dropped: FxHashMap<ChunkId, u32> = FxHashMap::default();
        for _ in 0..max_refs {
            let Some(id) = stack.pop() else {
                break;
            };
            // Past a miss the walk goes on (a node missed is not expanded),
            // so that one pass notes most of what the step needs.
            let Some(e) = self.noting_miss(|st| st.ct_get(id))? else {
                continue;
            };
            let d = dropped.entry(id).or_default();
            *d += 1;
            if id.is_node() && e.is_live() && e.refcount == *d {
                if let Some(n) = self.noting_miss(|st| st.node_get(id))? {
                    stack.extend(node_children(&n));
                }
            }
        }
        if self.fetch.misses.is_empty() {
            Ok(())
        } else {
            Err(crate::fetch::miss_error())
        }
    }

    /// `f`'s value, or `None` when it failed on a page not in memory (in
    /// no-I/O mode; the page is noted for fetching).
    fn noting_miss<T>(&mut self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<Option<T>> {
        let before = self.fetch.misses.len();
        match f(self) {
            Ok(v) => Ok(Some(v)),
            Err(_) if self.fetch.misses.len() > before => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Store {
    /// References waiting on the pending-free queue.
    pub fn pending_free_refs(&self) -> u64 {
        self.state().free_queue.len() as u64
    }

    /// True while the free thread runs.
    pub(crate) fn frees_running(&self) -> bool {
        self.free_ctl().running.load(Ordering::Acquire)
    }

    /// References released by free steps since the store was opened.
    pub fn freed_total(&self) -> u64 {
        self.free_ctl().freed.load(Ordering::Acquire)
    }

    /// Tests only: while `hold`, queued references wait until
    /// [`Store::free_step`] or [`Store::free_pending`] is called (a crash
    /// in the middle of freeing can then be staged exactly).
    #[cfg(feature = "fault-injection")]
    pub fn hold_frees(&self, hold: bool) {
        self.free_ctl().held.store(hold, Ordering::Release);
    }

    /// Runs one bounded free step; returns the references it released (0
    /// when the queue is empty). The pages the step will touch are read
    /// outside the store lock first ([`State::prefetch_free`]), as client
    /// I/O reads its misses: a step does not hold the lock while a node of
    /// a cold snapshot, or a table leaf, comes from the device.
    pub fn free_step(&self) -> Result<u32> {
        self.check_live()?;
        self.wait_queue_room()?;
        let mut fetched = Fetched::for_apply();
        let (mut st, top) = self.lock_resolved_as(Holder::Free, &mut fetched, |st| {
            let Some(&top) = st.free_queue.last() else {
                return Ok(None);
            };
            st.prefetch_free(FREE_STEP_REFS)?;
            Ok(Some(top))
        })?;
        let Some(top) = top else {
            return Ok(0);
        };
        let step = FreeStep {
            max_refs: FREE_STEP_REFS,
            top,
        };
        st.append(RecordKind::Free, &step.encode())
            .map_err(|e| self.fail_append(e))?;
        let n = st.apply_free(step).map_err(|e| self.fail(e))?;
        // Handed straight to a waiting client, if any: released plainly,
        // the lock is mostly taken again by this thread's next step before
        // a woken waiter runs, and a read waits several steps.
        st.unlock_fair();
        self.free_ctl()
            .freed
            .fetch_add(u64::from(n), Ordering::AcqRel);
        Ok(n)
    }

    /// Works the pending-free queue off in this thread, checkpointing as
    /// dirty metadata grows; returns the references released.
    pub fn free_pending(&self) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let n = self.free_step()?;
            if n == 0 {
                return Ok(total);
            }
            total += u64::from(n);
            self.free_housekeeping()?;
        }
    }

    /// Waits until the pending-free queue is empty, as long as it keeps
    /// shrinking or being worked on: gives up (returning false) after
    /// `stall` without progress. Without a free thread running, does the
    /// work itself.
    pub fn wait_free(&self, stall: Duration) -> Result<bool> {
        let mut last = (self.pending_free_refs(), self.freed_total());
        let mut since = Instant::now();
        loop {
            if last.0 == 0 {
                return Ok(true);
            }
            if !self.free_ctl().running.load(Ordering::Acquire) {
                self.free_pending()?;
                return Ok(self.pending_free_refs() == 0);
            }
            std::thread::sleep(Duration::from_millis(5));
            let now = (self.pending_free_refs(), self.freed_total());
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= stall {
                return Ok(false);
            }
        }
    }

    /// After a step: a checkpoint when dirty metadata passes the dirty
    /// limit (waiting for one another thread runs), and the housekeeping
    /// any log growth calls for.
    fn free_housekeeping(&self) -> Result<()> {
        let bound = self.dirty_limit();
        let dirty = self.state().dirty_bytes();
        if dirty > bound {
            let _c = self.checkpoint_guard();
            self.check_live()?;
            self.checkpoint_with(self.state())?;
        }
        self.maybe_checkpoint()
    }

    /// Called after anything that may have queued references: starts the
    /// free thread (with `background_free`), or frees them now.
    pub(crate) fn kick_free(&self) -> Result<()> {
        if self.free_ctl().held.load(Ordering::Acquire) || self.state().free_queue.is_empty() {
            return Ok(());
        }
        if !self.background_free() {
            return self.free_pending().map(drop);
        }
        if self.free_ctl().running.swap(true, Ordering::AcqRel) {
            // The running thread looks at the queue again before it exits.
            return Ok(());
        }
        let mut slot = self.free_ctl().thread.lock();
        if let Some(done) = slot.take() {
            let _ = done.join();
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("blockd-free".into())
            .spawn(move || me.free_thread());
        match spawned {
            Ok(h) => {
                *slot = Some(h);
                Ok(())
            }
            Err(_) => {
                drop(slot);
                self.free_ctl().running.store(false, Ordering::Release);
                self.free_pending().map(drop)
            }
        }
    }

    /// The free thread: steps until the queue is empty or the store closes.
    fn free_thread(&self) {
        let started = Instant::now();
        let mut total = 0u64;
        loop {
            while !self.free_ctl().stop.load(Ordering::Acquire) {
                // Not while another thread checkpoints (the cleaner's
                // thread retiring the segments the frees empty): each step
                // dirties table leaves all over the table, so the slices
                // would never catch up and the checkpoint's final hold
                // would write some 10,000 leaves (180 ms with the lock
                // held). Waiting here lets the checkpoint finish in one
                // pass; the frees are background work.
                drop(self.checkpoint_guard());
                match self.free_step().and_then(|n| {
                    if n > 0 {
                        self.free_housekeeping()?;
                    }
                    Ok(n)
                }) {
                    Ok(0) => {
                        tracing::info!(
                            refs = total,
                            ms = started.elapsed().as_millis() as u64,
                            "pending frees done"
                        );
                        break;
                    }
                    Ok(n) => total += u64::from(n),
                    Err(e) => {
                        tracing::error!(error = %e, "background free failed");
                        self.free_ctl().running.store(false, Ordering::Release);
                        return;
                    }
                }
            }
            self.free_ctl().running.store(false, Ordering::Release);
            // While this thread ran, the cleaner only queued the segments
            // the frees emptied (`Store::queue_empty_only`): now a full
            // pass retires them and any others.
            if !self.free_ctl().stop.load(Ordering::Acquire) && self.garbage_high() {
                if let Err(e) = self.light_reclaim() {
                    tracing::error!(error = %e, "reclaim after the frees failed");
                }
            }
            // A reference queued after the last step but before the flag
            // dropped found the thread running: look once more.
            if self.free_ctl().stop.load(Ordering::Acquire)
                || self.state().free_queue.is_empty()
                || self.free_ctl().running.swap(true, Ordering::AcqRel)
            {
                return;
            }
        }
    }

    /// Stops the free thread (after its current step) and waits for it.
    pub(crate) fn stop_free(&self) {
        self.free_ctl().stop.store(true, Ordering::Release);
        let running = self.free_ctl().thread.lock().take();
        if let Some(h) = running {
            let _ = h.join();
        }
    }
}
