//! Deferred freeing: the durable pending-free queue.
//!
//! Releasing the last reference to a map node (deleting an object, reverting
//! a volume away from a diverged map, trimming or zeroing a whole subtree)
//! does not walk and free the subtree under the store lock. The reference
//! is put on the pending-free queue instead, in the same step that removed
//! it (the Catalog or Zero record that the live store and replay both apply
//! the same way), and the queue is worked off in bounded steps: each takes
//! the store lock briefly, appends one Free record and takes a bounded
//! number of references. Freeing a node puts its children's references on
//! the queue (a stack, so the queue stays as short as the map is deep
//! times the node fan-out).
//!
//! Data references are released in chunk-table order, not map order: a
//! *gather* step ([`GATHER_STEP_REFS`] pops) releases the nodes it pops
//! and moves the data references into the sorted set (`free_sorted.rs`);
//! once [`FREE_SORT_REFS`] are sorted, or the queue is empty, *sweep*
//! steps ([`SWEEP_STEP_REFS`] each) release them leaf by leaf until the
//! set is empty. A randomly written snapshot's references then dirty each
//! table leaf once per sweep, instead of once per checkpoint.
//!
//! Crash safety: a queued or sorted reference is an ordinary reference (it
//! counts in the chunk's refcount, `check` counts it), the queue and the
//! sorted set are in every checkpoint blob together with the chunk-table
//! pages they agree with, and a step is logged before it is applied, under
//! the one store lock, so replay (log order equals apply order) redoes
//! exactly the steps that are in the durable log, on exactly the queue
//! they ran on. Each record names its mode (release, gather or sweep) and
//! its first reference, which replay checks; when a sweep starts is the
//! live store's choice, recorded, never recomputed. A step lost in a crash
//! is simply done again; none is done twice.
//!
//! Under `blockd serve` (`StoreOptions::background_free`) a thread runs the
//! steps, checkpointing whenever dirty metadata passes the store's dirty
//! limit (a checkpoint writes its pages in slices, so a large dirty set
//! does not mean a long hold; a lower bound would only multiply the
//! checkpoints, each dirtying the same table leaves again); otherwise the
//! operation that queued work finishes it before returning.

use crate::error::{Error, Result};
use crate::fetch::Fetched;
use crate::format::{FreeMode, FreeStep, RecordKind};
use crate::free_sorted::FREE_SORT_REFS;
use crate::map::node_children;
use crate::op_stats::Holder;
use crate::state::State;
use crate::store::Store;
use crate::types::ChunkId;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most references a gather step pops (one Free record, one lock hold): a
/// data reference only goes into the sorted set, so most pops are cheap;
/// a node's release reads its table entry and node, prefetched.
pub const GATHER_STEP_REFS: u32 = 1024;

/// Most references a sweep step releases. They are ascending, so they
/// dirty one or two chunk-table leaves (release steps, each reference on
/// a leaf of its own, held the lock 1-10 ms at 256 references).
pub const SWEEP_STEP_REFS: u32 = 512;

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
    /// Tests only: sorted references that start a sweep (0: the default,
    /// [`FREE_SORT_REFS`]). Replay follows each record's mode, so a store
    /// may be reopened with any value.
    sort_refs: AtomicUsize,
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

    /// References waiting: on the queue, and in the sorted set.
    pub(crate) fn free_refs_pending(&self) -> u64 {
        (self.free_queue.len() + self.free_sorted.len()) as u64
    }

    /// The step the live store runs next, if any work waits: a sweep while
    /// one is under way, or once `sort_refs` data references are sorted or
    /// the queue has run out; else a gather from the queue's top.
    pub(crate) fn next_free_step(&self, sort_refs: usize) -> Option<FreeStep> {
        let sorted = &self.free_sorted;
        if !sorted.is_empty()
            && (sorted.sweeping || self.free_queue.is_empty() || sorted.len() >= sort_refs)
        {
            return sorted.first().map(|top| FreeStep {
                max_refs: SWEEP_STEP_REFS,
                mode: FreeMode::Sweep,
                top,
            });
        }
        self.free_queue.last().map(|&top| FreeStep {
            max_refs: GATHER_STEP_REFS,
            mode: FreeMode::Gather,
            top,
        })
    }

    /// Applies one Free step (live or replayed): takes up to
    /// `step.max_refs` references, the first of which must be `step.top`,
    /// and releases or sorts them as `step.mode` says. Returns how many it
    /// took, and how many of those it released (a gather step sorts its
    /// data references instead).
    pub(crate) fn apply_free(&mut self, step: FreeStep) -> Result<(u32, u32)> {
        let first = match step.mode {
            FreeMode::Sweep => self.free_sorted.first(),
            FreeMode::Release | FreeMode::Gather => self.free_queue.last().copied(),
        };
        if first != Some(step.top) {
            return Err(Error::corrupt(format!(
                "free step ({:?}) expects chunk {} first, found {:?}",
                step.mode,
                step.top.0,
                first.map(|c| c.0)
            )));
        }
        if step.mode == FreeMode::Sweep {
            self.free_sorted.sweeping = true;
            let ids = self.free_sorted.take(step.max_refs);
            for &id in &ids {
                self.release_one(id, "sorted for freeing")?;
            }
            return Ok((ids.len() as u32, ids.len() as u32));
        }
        let (mut n, mut sorted) = (0, 0);
        while n < step.max_refs {
            let Some(id) = self.free_queue.pop() else {
                break;
            };
            n += 1;
            if step.mode == FreeMode::Gather && id.is_data() {
                self.free_sorted.push(id);
                sorted += 1;
                continue;
            }
            let children = self.release_one(id, "queued for freeing")?;
            self.free_queue.extend(children);
        }
        Ok((n, n - sorted))
    }
}

impl State {
    /// A read-only walk over every page `step` will look up: it mirrors
    /// `apply_free` and `release_one` (the table entry of each reference
    /// released, and the node whose last reference it is) without changing
    /// anything. Run in no-I/O mode it notes every page not in memory
    /// (going on past each) and then fails if there was one; when it
    /// succeeds, the step applied in the same hold reads nothing.
    pub(crate) fn prefetch_free(&mut self, step: &FreeStep) -> Result<()> {
        if step.mode == FreeMode::Sweep {
            // Ascending ids: one lookup per leaf loads it.
            for id in self.free_sorted.leaves_ahead(step.max_refs) {
                self.noting_miss(|st| st.ct_get(id))?;
            }
            return self.misses_noted();
        }
        // At most `max_refs` pops, each from the top: the rest of the queue
        // is never reached.
        let keep = self.free_queue.len().saturating_sub(step.max_refs as usize);
        let mut stack = self.free_queue[keep..].to_vec();
        // References this step drops before each one's own release, for
        // a chunk queued more than once.
        let mut dropped: FxHashMap<ChunkId, u32> = FxHashMap::default();
        for _ in 0..step.max_refs {
            let Some(id) = stack.pop() else {
                break;
            };
            if step.mode == FreeMode::Gather && id.is_data() {
                continue;
            }
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
        self.misses_noted()
    }

    /// Fails (to be fetched and retried) when a walk noted a miss.
    fn misses_noted(&self) -> Result<()> {
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
        self.state().free_refs_pending()
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

    /// Tests only: sweeps start once `refs` data references are sorted
    /// (instead of [`FREE_SORT_REFS`]), so that small stores reach the
    /// gather-sweep alternation of big deletes.
    #[cfg(feature = "fault-injection")]
    pub fn set_free_sort_refs(&self, refs: usize) {
        self.free_ctl().sort_refs.store(refs, Ordering::Release);
    }

    /// Runs one bounded free step; returns the references it took (0 when
    /// nothing is pending): released, or sorted to be released in order.
    /// The pages the step will touch are read outside the store lock first
    /// ([`State::prefetch_free`]), as client I/O reads its misses: a step
    /// does not hold the lock while a node of a cold snapshot, or a table
    /// leaf, comes from the device.
    pub fn free_step(&self) -> Result<u32> {
        self.free_step_counted().map(|(taken, _)| taken)
    }

    /// [`Store::free_step`], also returning how many references it
    /// released.
    fn free_step_counted(&self) -> Result<(u32, u32)> {
        self.check_live()?;
        self.wait_queue_room()?;
        let mut fetched = Fetched::for_apply();
        let sort_refs = match self.free_ctl().sort_refs.load(Ordering::Acquire) {
            0 => FREE_SORT_REFS,
            n => n,
        };
        let (mut st, step) = self.lock_resolved_as(Holder::Free, &mut fetched, |st| {
            let Some(step) = st.next_free_step(sort_refs) else {
                return Ok(None);
            };
            st.prefetch_free(&step)?;
            Ok(Some(step))
        })?;
        let Some(step) = step else {
            return Ok((0, 0));
        };
        st.append(RecordKind::Free, &step.encode())
            .map_err(|e| self.fail_append(e))?;
        let (n, released) = st.apply_free(step).map_err(|e| self.fail(e))?;
        // Handed straight to a waiting client, if any: released plainly,
        // the lock is mostly taken again by this thread's next step before
        // a woken waiter runs, and a read waits several steps.
        st.unlock_fair();
        self.free_ctl()
            .freed
            .fetch_add(u64::from(released), Ordering::AcqRel);
        Ok((n, released))
    }

    /// Works the pending-free queue off in this thread, checkpointing as
    /// dirty metadata grows; returns the references released.
    pub fn free_pending(&self) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let (taken, released) = self.free_step_counted()?;
            if taken == 0 {
                return Ok(total);
            }
            total += u64::from(released);
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
        if self.free_ctl().held.load(Ordering::Acquire) || self.pending_free_refs() == 0 {
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
                match self.free_step_counted().and_then(|(n, released)| {
                    if n > 0 {
                        self.free_housekeeping()?;
                    }
                    Ok((n, released))
                }) {
                    Ok((0, _)) => {
                        tracing::info!(
                            refs = total,
                            ms = started.elapsed().as_millis() as u64,
                            "pending frees done"
                        );
                        break;
                    }
                    Ok((_, released)) => total += u64::from(released),
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
                || self.pending_free_refs() == 0
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
