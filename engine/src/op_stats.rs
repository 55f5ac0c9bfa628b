//! Operation counters of an open store: metadata cache hits and misses,
//! log bytes appended, checkpoints, reclaim passes and fail-stops, with
//! their durations and failures. Relaxed atomics, updated where the work
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

    /// Bytes appended to the log by a record.
    pub(crate) fn appended(&self, bytes: u64) {
        add(&self.log_bytes, bytes);
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
        let s = c.snapshot();
        assert_eq!((s.node_cache_hits, s.table_cache_misses), (1, 1));
        assert_eq!(s.log_bytes, 100);
        assert_eq!((s.checkpoints, s.checkpoint_errors), (2, 1));
        assert_eq!((s.reclaims, s.reclaim_errors, s.segments_freed), (2, 1, 3));
        assert_eq!(s.fail_stops, 1);
    }
}
