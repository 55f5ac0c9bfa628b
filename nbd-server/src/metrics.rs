//! Per-volume NBD counters the sessions update and anyone may read:
//! requests and errors by command, bytes read and written, a latency
//! histogram, connected clients, requests delayed by I/O limits and for
//! how long ([`NbdMetrics`], one per server).
//!
//! Plain atomics: updating costs a few relaxed adds per request, and a
//! connection looks its volume's counters up once, at negotiation. The
//! crate knows no metrics format; [`NbdMetrics::snapshot`] hands out plain
//! values for the binary to expose.

use engine::ObjectId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The NBD commands counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// NBD_CMD_READ.
    Read,
    /// NBD_CMD_WRITE.
    Write,
    /// NBD_CMD_FLUSH.
    Flush,
    /// NBD_CMD_TRIM.
    Trim,
    /// NBD_CMD_WRITE_ZEROES.
    WriteZeroes,
    /// NBD_CMD_CACHE.
    Cache,
    /// NBD_CMD_BLOCK_STATUS.
    BlockStatus,
    /// Anything else (refused).
    Other,
}

impl Op {
    /// Every op, in label order.
    pub const ALL: [Op; 8] = [
        Op::Read,
        Op::Write,
        Op::Flush,
        Op::Trim,
        Op::WriteZeroes,
        Op::Cache,
        Op::BlockStatus,
        Op::Other,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Flush => "flush",
            Op::Trim => "trim",
            Op::WriteZeroes => "write_zeroes",
            Op::Cache => "cache",
            Op::BlockStatus => "block_status",
            Op::Other => "other",
        }
    }

    /// The op of a raw command number.
    pub fn of_command(command: u16) -> Op {
        use crate::codec::cmd;
        match command {
            cmd::READ => Op::Read,
            cmd::WRITE => Op::Write,
            cmd::FLUSH => Op::Flush,
            cmd::TRIM => Op::Trim,
            cmd::WRITE_ZEROES => Op::WriteZeroes,
            cmd::CACHE => Op::Cache,
            cmd::BLOCK_STATUS => Op::BlockStatus,
            _ => Op::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds (seconds) of the latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
];

/// One volume's counters.
#[derive(Debug, Default)]
pub struct VolumeCounters {
    requests: [AtomicU64; 8],
    errors: [AtomicU64; 8],
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    clients: AtomicI64,
    /// Per bucket (not cumulative); the last one is +Inf.
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_ns: AtomicU64,
    /// Requests delayed by the volume's I/O limits, and the total delay.
    throttled: AtomicU64,
    throttled_ns: AtomicU64,
}

impl VolumeCounters {
    /// One request done: its op, payload bytes moved, time from accepted to
    /// answered, and whether it succeeded.
    pub fn request(&self, op: Op, bytes: u64, took: Duration, ok: bool) {
        self.requests[op.index()].fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors[op.index()].fetch_add(1, Ordering::Relaxed);
        } else if op == Op::Read {
            self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        } else if op == Op::Write {
            self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        }
        let secs = took.as_secs_f64();
        let b = LATENCY_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[b].fetch_add(1, Ordering::Relaxed);
        self.latency_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// A request delayed by `wait` by the volume's I/O limits.
    pub fn throttled(&self, wait: Duration) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.throttled_ns
            .fetch_add(wait.as_nanos() as u64, Ordering::Relaxed);
    }

    /// A request refused before it ran (bad range, read-only export...).
    pub fn refused(&self, op: Op) {
        self.requests[op.index()].fetch_add(1, Ordering::Relaxed);
        self.errors[op.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self, volume: String) -> VolumeSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(LATENCY_BUCKETS.len());
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += load(&self.latency[i]);
            buckets.push((*le, cumulative));
        }
        let count = cumulative + load(&self.latency[LATENCY_BUCKETS.len()]);
        VolumeSnapshot {
            volume,
            requests: Op::ALL
                .iter()
                .map(|&op| (op, load(&self.requests[op.index()])))
                .collect(),
            errors: Op::ALL
                .iter()
                .map(|&op| (op, load(&self.errors[op.index()])))
                .collect(),
            bytes_read: load(&self.bytes_read),
            bytes_written: load(&self.bytes_written),
            clients: self.clients.load(Ordering::Relaxed).max(0) as u64,
            throttled: load(&self.throttled),
            throttled_secs: load(&self.throttled_ns) as f64 / 1e9,
            latency: LatencySnapshot {
                buckets,
                count,
                sum_secs: load(&self.latency_ns) as f64 / 1e9,
            },
        }
    }
}

/// A connected client, counted until dropped.
#[derive(Debug)]
pub(crate) struct Client(Arc<VolumeCounters>);

impl Client {
    pub(crate) fn counters(&self) -> &Arc<VolumeCounters> {
        &self.0
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The counters of every volume served so far, by object id.
#[derive(Debug, Default)]
pub struct NbdMetrics {
    volumes: Mutex<BTreeMap<ObjectId, Arc<VolumeCounters>>>,
}

impl NbdMetrics {
    /// The counters of volume `id` (created on first use).
    pub fn volume(&self, id: ObjectId) -> Arc<VolumeCounters> {
        let mut v = self.volumes.lock().unwrap_or_else(|e| e.into_inner());
        v.entry(id).or_default().clone()
    }

    /// Counts a client connected to `id` until the result is dropped.
    pub(crate) fn connect(&self, id: ObjectId) -> Client {
        let c = self.volume(id);
        c.clients.fetch_add(1, Ordering::Relaxed);
        Client(c)
    }

    /// Every volume's counters now.
    pub fn snapshot(&self) -> Vec<VolumeSnapshot> {
        let v = self.volumes.lock().unwrap_or_else(|e| e.into_inner());
        v.iter().map(|(id, c)| c.snapshot(id.to_string())).collect()
    }
}

/// One volume's counters at one moment.
#[derive(Debug, Clone)]
pub struct VolumeSnapshot {
    /// The object id.
    pub volume: String,
    /// Requests by op (errors included).
    pub requests: Vec<(Op, u64)>,
    /// Failed or refused requests by op.
    pub errors: Vec<(Op, u64)>,
    /// Bytes returned by successful reads.
    pub bytes_read: u64,
    /// Bytes stored by successful writes.
    pub bytes_written: u64,
    /// Clients connected now.
    pub clients: u64,
    /// Requests delayed by I/O limits.
    pub throttled: u64,
    /// Seconds requests were delayed by I/O limits.
    pub throttled_secs: f64,
    /// Request latency.
    pub latency: LatencySnapshot,
}

/// A latency histogram at one moment.
#[derive(Debug, Clone)]
pub struct LatencySnapshot {
    /// (upper bound in seconds, requests at or under it): cumulative.
    pub buckets: Vec<(f64, u64)>,
    /// All requests (the +Inf bucket).
    pub count: u64,
    /// Total seconds.
    pub sum_secs: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets() {
        let m = NbdMetrics::default();
        let id = ObjectId::new_random();
        let c = m.connect(id);
        let v = m.volume(id);
        v.request(Op::Read, 4096, Duration::from_micros(80), true);
        v.request(Op::Write, 512, Duration::from_secs(9), true);
        v.request(Op::Write, 512, Duration::from_millis(1), false);
        v.refused(Op::Trim);
        let s = &m.snapshot()[0];
        assert_eq!(s.clients, 1);
        assert_eq!(s.bytes_read, 4096);
        assert_eq!(s.bytes_written, 512);
        assert_eq!(s.requests[1], (Op::Write, 2));
        assert_eq!(s.errors[1], (Op::Write, 1));
        assert_eq!(s.errors[3], (Op::Trim, 1));
        assert_eq!(s.latency.count, 3);
        assert_eq!(s.latency.buckets[0], (0.000_05, 0));
        assert_eq!(s.latency.buckets[1], (0.000_1, 1));
        assert_eq!(s.latency.buckets.last().unwrap().1, 2);
        drop(c);
        assert_eq!(m.snapshot()[0].clients, 0);
    }
}
