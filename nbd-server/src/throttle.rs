//! Per-volume I/O throttling: token buckets on bytes and requests per
//! second (total, read, write), as QEMU and libvirt name them
//! (`total_bytes_sec`, `read_bytes_sec`, `write_bytes_sec`,
//! `total_iops_sec`, `read_iops_sec`, `write_iops_sec`, each with a
//! `_max` burst). The server asks a [`LimitsHook`] for a volume's limits
//! when a connection opens and again at most once a second while requests
//! flow, so a change reaches open connections; every connection to one
//! volume shares its buckets, so opening more connections does not buy
//! more throughput.
//!
//! Each bucket refills at its rate up to its capacity (the `_max` value
//! times one second, else a tenth of a second's worth, as QEMU does). A
//! request takes its cost from every bucket that applies (READ: read and
//! total; WRITE: write and total; TRIM and WRITE_ZEROES one write request
//! and no bytes; the rest free), going into debt if it must; the
//! connection then waits until the deepest debt is repaid before running
//! it, and reads no further request meanwhile (backpressure on the
//! client). The crate knows nothing of where limits come from (the binary
//! wires the hook to the API's QoS specs).

use crate::codec::Command;
use engine::{ObjectId, ObjectInfo};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The function behind a [`LimitsHook`].
pub type LimitsFn = dyn Fn(&ObjectInfo) -> Option<Limits> + Send + Sync;

/// Says a volume's limits (`None` or [`Limits::default`]: none).
#[derive(Clone)]
pub struct LimitsHook(pub Arc<LimitsFn>);

impl std::fmt::Debug for LimitsHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LimitsHook")
    }
}

/// How often an open connection asks the hook again.
const REFRESH: Duration = Duration::from_secs(1);

/// One limit: a sustained rate per second and the burst a full bucket
/// allows (in the same unit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Units (bytes or requests) per second.
    pub per_sec: f64,
    /// Bucket capacity in units.
    pub burst: f64,
}

/// Where a limit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Bytes read and written.
    TotalBytes,
    /// Bytes read.
    ReadBytes,
    /// Bytes written.
    WriteBytes,
    /// Requests (reads and writes).
    TotalIops,
    /// Read requests.
    ReadIops,
    /// Write requests.
    WriteIops,
}

impl Kind {
    /// Every kind, with its key name.
    pub const ALL: [(Kind, &'static str); 6] = [
        (Kind::TotalBytes, "total_bytes_sec"),
        (Kind::ReadBytes, "read_bytes_sec"),
        (Kind::WriteBytes, "write_bytes_sec"),
        (Kind::TotalIops, "total_iops_sec"),
        (Kind::ReadIops, "read_iops_sec"),
        (Kind::WriteIops, "write_iops_sec"),
    ];
}

/// A volume's limits; empty means unthrottled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// The limits set, by kind.
    pub rates: BTreeMap<Kind, Rate>,
}

impl Limits {
    /// The limits named by `specs` (`total_bytes_sec`, ... and their
    /// `_max` bursts; values are whole numbers, 0 or absent for none;
    /// other keys and unreadable values are ignored).
    pub fn from_specs(specs: &BTreeMap<String, String>) -> Limits {
        let num = |k: &str| {
            specs
                .get(k)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|v| *v > 0)
        };
        let mut rates = BTreeMap::new();
        for (kind, key) in Kind::ALL {
            if let Some(rate) = num(key) {
                let burst = num(&format!("{key}_max"))
                    .map(|m| m.max(rate) as f64)
                    .unwrap_or(rate as f64 / 10.0);
                rates.insert(
                    kind,
                    Rate {
                        per_sec: rate as f64,
                        burst,
                    },
                );
            }
        }
        Limits { rates }
    }

    /// No limit is set.
    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }
}

#[derive(Debug)]
struct Bucket {
    rate: Rate,
    level: f64,
}

#[derive(Debug, Default)]
struct State {
    limits: Limits,
    buckets: HashMap<Kind, Bucket>,
    last: Option<Instant>,
}

impl State {
    /// Sets new limits: buckets of unchanged rates keep their level, new
    /// ones start full.
    fn set(&mut self, limits: Limits) {
        if limits == self.limits {
            return;
        }
        self.buckets
            .retain(|k, b| limits.rates.get(k) == Some(&b.rate));
        for (k, r) in &limits.rates {
            self.buckets.entry(*k).or_insert(Bucket {
                rate: *r,
                level: r.burst,
            });
        }
        self.limits = limits;
    }

    /// Charges `costs` at `now`; the wait until every debt is repaid.
    fn charge(&mut self, now: Instant, costs: &[(Kind, f64)]) -> Duration {
        let dt = self
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.last = Some(now);
        let mut wait: f64 = 0.0;
        for b in self.buckets.values_mut() {
            b.level = (b.level + dt * b.rate.per_sec).min(b.rate.burst);
        }
        for (k, cost) in costs {
            if let Some(b) = self.buckets.get_mut(k) {
                b.level -= cost;
                if b.level < 0.0 {
                    wait = wait.max(-b.level / b.rate.per_sec);
                }
            }
        }
        // At most a day: a request never waits for ever on a tiny rate.
        Duration::from_secs_f64(wait.min(86_400.0))
    }
}

/// One volume's buckets, shared by its connections.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    state: Mutex<State>,
    /// Whether any limit is set (read without the lock, so unlimited
    /// volumes pay one atomic load per request).
    limited: AtomicBool,
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the limits.
    pub(crate) fn set(&self, limits: Limits) {
        let mut s = self.lock();
        s.set(limits);
        self.limited.store(!s.limits.is_empty(), Ordering::Relaxed);
    }

    /// Charges `cmd`; how long to wait before running it.
    pub(crate) fn charge(&self, cmd: &Command) -> Duration {
        if !self.limited.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let costs: &[(Kind, f64)] = match *cmd {
            Command::Read { len, .. } => &[
                (Kind::ReadBytes, f64::from(len)),
                (Kind::TotalBytes, f64::from(len)),
                (Kind::ReadIops, 1.0),
                (Kind::TotalIops, 1.0),
            ],
            Command::Write { len, .. } => &[
                (Kind::WriteBytes, f64::from(len)),
                (Kind::TotalBytes, f64::from(len)),
                (Kind::WriteIops, 1.0),
                (Kind::TotalIops, 1.0),
            ],
            Command::Trim { .. } | Command::WriteZeroes { .. } => {
                &[(Kind::WriteIops, 1.0), (Kind::TotalIops, 1.0)]
            }
            _ => return Duration::ZERO,
        };
        let mut s = self.lock();
        if s.limits.is_empty() {
            return Duration::ZERO;
        }
        s.charge(Instant::now(), costs)
    }
}

/// The throttles of every volume with a connection open since the server
/// started, and the hook that says their limits.
#[derive(Default)]
pub(crate) struct Throttles {
    hook: Option<LimitsHook>,
    volumes: Mutex<HashMap<ObjectId, Arc<Throttle>>>,
}

impl Throttles {
    pub(crate) fn new(hook: Option<LimitsHook>) -> Throttles {
        Throttles {
            hook,
            volumes: Mutex::default(),
        }
    }

    /// The limits the hook gives volume `id` now (none when the object is
    /// gone), asked on the blocking pool: the hook reads the store.
    async fn limits(hook: &LimitsHook, store: &engine::Store, id: ObjectId) -> Limits {
        let (hook, store) = (hook.clone(), store.clone());
        tokio::task::spawn_blocking(move || {
            let info = store.get(id).ok()?;
            (hook.0)(&info)
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
    }

    /// The throttle of a connection to `id` (none without a hook),
    /// with the limits of now.
    pub(crate) async fn open(&self, store: &engine::Store, id: ObjectId) -> Option<Conn> {
        let hook = self.hook.as_ref()?;
        let t = {
            let mut v = self.volumes.lock().unwrap_or_else(|e| e.into_inner());
            v.entry(id).or_default().clone()
        };
        t.set(Self::limits(hook, store, id).await);
        Some(Conn {
            throttle: t,
            checked: Instant::now(),
        })
    }

    /// Asks the hook again for `c`'s volume if a second has passed.
    pub(crate) async fn refresh(&self, store: &engine::Store, id: ObjectId, c: &mut Conn) {
        let Some(hook) = self.hook.as_ref() else {
            return;
        };
        if c.checked.elapsed() >= REFRESH {
            c.checked = Instant::now();
            c.throttle.set(Self::limits(hook, store, id).await);
        }
    }
}

/// A connection's handle on its volume's throttle.
pub(crate) struct Conn {
    pub(crate) throttle: Arc<Throttle>,
    checked: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn specs_parse_rates_and_bursts() {
        let l = Limits::from_specs(&specs(&[
            ("write_bytes_sec", "1000"),
            ("write_bytes_sec_max", "5000"),
            ("read_iops_sec", "20"),
            ("total_iops_sec", "0"),
            ("total_bytes_sec", "lots"),
            ("iops_bytes", "500"),
        ]));
        assert_eq!(l.rates.len(), 2);
        assert_eq!(
            l.rates[&Kind::WriteBytes],
            Rate {
                per_sec: 1000.0,
                burst: 5000.0
            }
        );
        assert_eq!(l.rates[&Kind::ReadIops].burst, 2.0);
        assert!(Limits::from_specs(&specs(&[("x", "1")])).is_empty());
    }

    #[test]
    fn debt_is_waited_off_at_the_rate() {
        let mut s = State::default();
        s.set(Limits::from_specs(&specs(&[("write_bytes_sec", "1000")])));
        let t0 = Instant::now();
        // The bucket holds 100 (a tenth of a second): 1100 bytes owe 1 s.
        let w = s.charge(t0, &[(Kind::WriteBytes, 1100.0)]);
        assert!((w.as_secs_f64() - 1.0).abs() < 1e-6, "{w:?}");
        // Half a second later 500 are repaid; 500 more owe 1 s again.
        let w = s.charge(
            t0 + Duration::from_millis(500),
            &[(Kind::WriteBytes, 500.0)],
        );
        assert!((w.as_secs_f64() - 1.0).abs() < 1e-6, "{w:?}");
        // Reads are not limited by a write limit.
        let w = s.charge(t0 + Duration::from_secs(10), &[(Kind::ReadBytes, 1e9)]);
        assert_eq!(w, Duration::ZERO);
    }

    #[test]
    fn commands_are_charged_only_against_limits_that_apply() {
        let t = Throttle::default();
        let write = Command::Write {
            offset: 0,
            len: 1 << 20,
            fua: false,
        };
        let read = Command::Read {
            offset: 0,
            len: 1 << 20,
            df: false,
        };
        assert_eq!(t.charge(&write), Duration::ZERO);
        t.set(Limits::from_specs(&specs(&[(
            "write_bytes_sec",
            "1048576",
        )])));
        // A tenth of a second's burst: a 1 MiB write owes 0.9 s.
        let w = t.charge(&write);
        assert!(w >= Duration::from_millis(850), "{w:?}");
        assert_eq!(t.charge(&read), Duration::ZERO);
        assert_eq!(t.charge(&Command::Flush), Duration::ZERO);
        t.set(Limits::default());
        assert_eq!(t.charge(&write), Duration::ZERO);
    }

    #[test]
    fn the_deepest_debt_sets_the_wait_and_refill_is_capped() {
        let mut s = State::default();
        s.set(Limits::from_specs(&specs(&[
            ("total_iops_sec", "10"),
            ("total_bytes_sec", "100"),
            ("total_bytes_sec_max", "100"),
        ])));
        let t0 = Instant::now();
        // Long idle: the bucket stays at its capacity.
        s.charge(t0, &[]);
        let w = s.charge(
            t0 + Duration::from_secs(60),
            &[(Kind::TotalBytes, 300.0), (Kind::TotalIops, 1.0)],
        );
        assert!((w.as_secs_f64() - 2.0).abs() < 1e-6, "{w:?}");
        // Unchanged limits keep the debt; removed ones drop it.
        s.set(Limits::from_specs(&specs(&[
            ("total_iops_sec", "10"),
            ("total_bytes_sec", "100"),
            ("total_bytes_sec_max", "100"),
        ])));
        assert!(s.buckets[&Kind::TotalBytes].level < 0.0);
        s.set(Limits::default());
        assert!(s.buckets.is_empty());
    }
}
