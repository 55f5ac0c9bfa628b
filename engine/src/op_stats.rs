//! Operation counters of an open store: metadata cache hits and misses
//! (and whether a miss was read outside the state lock or under it), how
//! long the state lock was held, log bytes appended, checkpoints, reclaim
//! passes and fail-stops, with their durations and failures. Relaxed atomics, updated where the work
//! happens; [`Store::op_stats`] copies them into an [`OpStats`] snapshot.
//!
//! The engine knows no metrics format: the binary maps the snapshot to
//! whatever it exposes. Counters start at zero with each open.

use crate::store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The live counters (one per open store, shared with its state).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    node_hits: AtomicU64,
    node_misses: AtomicU64,
    table_hits: AtomicU64,
    table_misses: AtomicU64,
    log_bytes: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_ns: AtomicU64,
    checkpoint_errors: AtomicU64,
    reclaims: AtomicU64,
    reclaim_ns: AtomicU64,
    reclaim_errors: AtomicU64,
    segments_freed: AtomicU64,
    fail_stops: AtomicU64,
    pages_unlocked: AtomicU64,
    pages_locked: AtomicU64,
    pages_cached: AtomicU64,
    fetch_retries: AtomicU64,
    leaves_sliced: AtomicU64,
    leaves_written: AtomicU64,
    io_pages_locked: AtomicU64,
    /// Per holder: hold counts per bucket of [`HOLD_BOUNDS_US`].
    hold_buckets: [[AtomicU64; HOLD_BOUNDS_US.len() + 1]; HOLDERS],
    /// Per holder: total hold time.
    hold_ns: [AtomicU64; HOLDERS],
    hold_max_ns: [AtomicU64; HOLDERS],
}

/// Upper bounds (microseconds) of the state-lock hold-time histogram; a
/// last bucket counts longer holds.
pub const HOLD_BOUNDS_US: [u64; 6] = [10, 100, 1_000, 10_000, 100_000, 1_000_000];

/// How many kinds of [`Holder`] there are.
const HOLDERS: usize = 4;

/// Who held the state lock, for the hold figures.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Holder {
    /// Client I/O (read, write, write-zeroes).
    Io = 0,
    /// The part of a checkpoint run under the lock.
    Checkpoint = 1,
    /// One batch of the cleaner.
    Reclaim = 2,
    /// One step of the pending-free queue (`free.rs`).
    Free = 3,
}

/// Store-lock holds this long are logged (`OpStats::held_in`): every
/// other request waits for them.
pub(crate) const SLOW_HOLD: Duration = Duration::from_millis(20);

impl Holder {
    /// The holder's name in [`HolderHolds`] and metric labels.
    fn name(self) -> &'static str {
        match self {
            Holder::Io => "io",
            Holder::Checkpoint => "checkpoint",
            Holder::Reclaim => "reclaim",
            Holder::Free => "free",
        }
    }
}

/// Which metadata cache a lookup went to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cache {
    /// Map nodes.
    Node,
    /// Chunk-table pages.
    Table,
}

fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// One cache lookup: found in memory, or read from the log.
    pub(crate) fn lookup(&self, cache: Cache, hit: bool) {
        let a = match (cache, hit) {
            (Cache::Node, true) => &self.node_hits,
            (Cache::Node, false) => &self.node_misses,
            (Cache::Table, true) => &self.table_hits,
            (Cache::Table, false) => &self.table_misses,
        };
        add(a, 1);
    }

    /// A metadata page was read from disk: outside the state lock
    /// (`unlocked`), or under it (replay, checkpoints, fallbacks).
    pub(crate) fn page_read_cached(&self) {
        add(&self.pages_cached, 1);
    }

    pub(crate) fn page_read(&self, unlocked: bool) {
        add(
            if unlocked {
                &self.pages_unlocked
            } else {
                &self.pages_locked
            },
            1,
        );
    }

    /// Metadata pages read under the lock so far (all holders).
    pub(crate) fn pages_locked(&self) -> u64 {
        self.pages_locked.load(Ordering::Relaxed)
    }

    /// A client operation's lock hold read `n` metadata pages under the
    /// lock (should not happen: its misses are read outside).
    pub(crate) fn io_pages_locked(&self, n: u64) {
        add(&self.io_pages_locked, n);
    }

    /// A page fetched outside the lock had moved by the time the lock was
    /// taken again (a checkpoint or the cleaner rewrote it): not installed.
    pub(crate) fn fetch_retry(&self) {
        add(&self.fetch_retries, 1);
    }

    /// A checkpoint's slice wrote `n` chunk-table leaves.
    pub(crate) fn leaves_sliced(&self, n: usize) {
        add(&self.leaves_sliced, n as u64);
    }

    /// A checkpoint wrote `n` chunk-table leaves (in a slice or its final
    /// hold).
    pub(crate) fn leaves_written(&self, n: usize) {
        add(&self.leaves_written, n as u64);
    }

    /// The state lock was held for `d` by `who`.
    pub(crate) fn held(&self, who: Holder, d: Duration) {
        let ns = nanos(d);
        let us = ns / 1000;
        let i = HOLD_BOUNDS_US
            .iter()
            .position(|&b| us < b)
            .unwrap_or(HOLD_BOUNDS_US.len());
        add(&self.hold_buckets[who as usize][i], 1);
        add(&self.hold_ns[who as usize], ns);
        self.hold_max_ns[who as usize].fetch_max(ns, Ordering::Relaxed);
    }

    /// [`OpStats::held`] for a hold by `who` doing `what`; a hold of
    /// [`SLOW_HOLD`] or more is also logged, naming it.
    pub(crate) fn held_in(&self, who: Holder, what: &'static str, d: Duration) {
        self.held(who, d);
        if d >= SLOW_HOLD {
            tracing::warn!(
                holder = who.name(),
                what,
                ms = d.as_millis() as u64,
                "long store-lock hold"
            );
        }
    }

    /// Bytes appended to the log by a record.
    pub(crate) fn appended(&self, bytes: u64) {
        add(&self.log_bytes, bytes);
    }

    /// Bytes appended to the log so far ([`OpStats::log_bytes`]).
    pub(crate) fn log_bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed)
    }

    /// A checkpoint that started at `since` ended with `ok`.
    pub(crate) fn checkpoint(&self, since: Instant, ok: bool) {
        add(&self.checkpoints, 1);
        add(&self.checkpoint_ns, nanos(since.elapsed()));
        if !ok {
            add(&self.checkpoint_errors, 1);
        }
    }

    /// A reclaim pass that started at `since` freed `freed` segments, or
    /// failed (`None`).
    pub(crate) fn reclaim(&self, since: Instant, freed: Option<u64>) {
        add(&self.reclaims, 1);
        add(&self.reclaim_ns, nanos(since.elapsed()));
        match freed {
            Some(n) => add(&self.segments_freed, n),
            None => add(&self.reclaim_errors, 1),
        }
    }

    /// The store failed and stopped taking writes.
    pub(crate) fn fail_stop(&self) {
        add(&self.fail_stops, 1);
    }

    fn snapshot(&self) -> OpStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let secs = |a: &AtomicU64| Duration::from_nanos(l(a));
        OpStats {
            node_cache_hits: l(&self.node_hits),
            node_cache_misses: l(&self.node_misses),
            table_cache_hits: l(&self.table_hits),
            table_cache_misses: l(&self.table_misses),
            log_bytes: l(&self.log_bytes),
            checkpoints: l(&self.checkpoints),
            checkpoint_time: secs(&self.checkpoint_ns),
            checkpoint_errors: l(&self.checkpoint_errors),
            reclaims: l(&self.reclaims),
            reclaim_time: secs(&self.reclaim_ns),
            reclaim_errors: l(&self.reclaim_errors),
            segments_freed: l(&self.segments_freed),
            fail_stops: l(&self.fail_stops),
            metadata_reads_unlocked: l(&self.pages_unlocked),
            metadata_reads_locked: l(&self.pages_locked),
            metadata_reads_cached: l(&self.pages_cached),
            fetch_retries: l(&self.fetch_retries),
            table_leaves_sliced: l(&self.leaves_sliced),
            table_leaves_written: l(&self.leaves_written),
            io_metadata_reads_locked: l(&self.io_pages_locked),
            lock_holds: (0..=HOLD_BOUNDS_US.len())
                .map(|i| self.hold_buckets.iter().map(|h| l(&h[i])).sum())
                .collect(),
            lock_hold_time: self.hold_ns.iter().map(secs).sum(),
            holds_by_holder: [
                Holder::Io,
                Holder::Checkpoint,
                Holder::Reclaim,
                Holder::Free,
            ]
            .into_iter()
            .map(|h| HolderHolds {
                holder: h.name(),
                buckets: self.hold_buckets[h as usize].iter().map(l).collect(),
                time: secs(&self.hold_ns[h as usize]),
            })
            .collect(),
            longest_io_hold: secs(&self.hold_max_ns[Holder::Io as usize]),
            longest_checkpoint_hold: secs(&self.hold_max_ns[Holder::Checkpoint as usize]),
            longest_reclaim_hold: secs(&self.hold_max_ns[Holder::Reclaim as usize]),
            longest_free_hold: secs(&self.hold_max_ns[Holder::Free as usize]),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A snapshot of a store's operation counters since it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpStats {
    /// Map node lookups served from memory.
    pub node_cache_hits: u64,
    /// Map node lookups read from the log.
    pub node_cache_misses: u64,
    /// Chunk-table page lookups served from memory.
    pub table_cache_hits: u64,
    /// Chunk-table page lookups read from disk.
    pub table_cache_misses: u64,
    /// Bytes of records appended to the log.
    pub log_bytes: u64,
    /// Checkpoints run (failed ones included).
    pub checkpoints: u64,
    /// Time spent in checkpoints.
    pub checkpoint_time: Duration,
    /// Checkpoints that failed.
    pub checkpoint_errors: u64,
    /// Reclaim passes run (cleaning and empty-segment drops).
    pub reclaims: u64,
    /// Time spent in reclaim passes.
    pub reclaim_time: Duration,
    /// Reclaim passes that failed.
    pub reclaim_errors: u64,
    /// Segments freed by reclaim.
    pub segments_freed: u64,
    /// Times the store failed and stopped taking writes.
    pub fail_stops: u64,
    /// Metadata pages read from disk outside the state lock (client I/O).
    pub metadata_reads_unlocked: u64,
    /// Metadata pages read from disk under the state lock (replay,
    /// checkpoints, the cleaner, pending frees).
    pub metadata_reads_locked: u64,
    /// Metadata pages a client operation read under the state lock from
    /// the OS page cache without waiting for the device (`RWF_NOWAIT`).
    pub metadata_reads_cached: u64,
    /// Pages fetched outside the lock that had moved meanwhile (retried).
    pub fetch_retries: u64,
    /// Chunk-table leaves checkpoints wrote in slices, before their final
    /// hold.
    pub table_leaves_sliced: u64,
    /// Chunk-table leaves checkpoints wrote, in slices and final holds.
    pub table_leaves_written: u64,
    /// Of `metadata_reads_locked`, those made while a client read, write
    /// or write-zeroes held the lock: 0 unless a prefetch missed a page.
    pub io_metadata_reads_locked: u64,
    /// State-lock holds (client I/O, checkpoints, cleaner batches, free
    /// steps) per
    /// bucket of [`HOLD_BOUNDS_US`], not cumulative; the last counts
    /// longer ones.
    pub lock_holds: Vec<u64>,
    /// Total time of those holds.
    pub lock_hold_time: Duration,
    /// Longest hold by a client operation.
    pub longest_io_hold: Duration,
    /// Longest hold by a checkpoint.
    pub longest_checkpoint_hold: Duration,
    /// Longest hold by one cleaner batch.
    pub longest_reclaim_hold: Duration,
    /// Longest hold by one step of the pending-free queue.
    pub longest_free_hold: Duration,
    /// The holds of `lock_holds` split by who held the lock.
    pub holds_by_holder: Vec<HolderHolds>,
}

/// One holder's state-lock holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolderHolds {
    /// "io", "checkpoint", "reclaim" or "free".
    pub holder: &'static str,
    /// Holds per bucket of [`HOLD_BOUNDS_US`], not cumulative.
    pub buckets: Vec<u64>,
    /// Their total time.
    pub time: Duration,
}

impl Store {
    /// The store's operation counters since it was opened.
    pub fn op_stats(&self) -> OpStats {
        self.counters().snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_updates() {
        let c = Counters::default();
        c.lookup(Cache::Node, true);
        c.lookup(Cache::Table, false);
        c.appended(100);
        c.checkpoint(Instant::now(), true);
        c.checkpoint(Instant::now(), false);
        c.reclaim(Instant::now(), Some(3));
        c.reclaim(Instant::now(), None);
        c.fail_stop();
        c.held(Holder::Io, Duration::from_micros(50));
        c.held(Holder::Checkpoint, Duration::from_secs(3));
        c.page_read(true);
        let s = c.snapshot();
        assert_eq!(s.lock_holds, vec![0, 1, 0, 0, 0, 0, 1]);
        assert_eq!(s.holds_by_holder[0].holder, "io");
        assert_eq!(s.holds_by_holder[0].buckets, vec![0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(s.holds_by_holder[1].buckets, vec![0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(s.holds_by_holder[1].time, Duration::from_secs(3));
        assert_eq!(s.longest_checkpoint_hold, Duration::from_secs(3));
        assert_eq!(s.longest_io_hold, Duration::from_micros(50));
        assert_eq!((s.metadata_reads_unlocked, s.metadata_reads_locked), (1, 0));
        assert_eq!((s.node_cache_hits, s.table_cache_misses), (1, 1));
        assert_eq!(s.log_bytes, 100);
        assert_eq!((s.checkpoints, s.checkpoint_errors), (2, 1));
        assert_eq!((s.reclaims, s.reclaim_errors, s.segments_freed), (2, 1, 3));
        assert_eq!(s.fail_stops, 1);
    }
}
