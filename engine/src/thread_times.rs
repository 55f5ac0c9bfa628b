//! Where the calling thread's time went, from Linux's per-thread
//! accounting (`/proc/thread-self/schedstat` and `stat`): time on a CPU,
//! time runnable but waiting for one, and page faults. A long store-lock
//! hold is logged with the difference across it, which tells a holder that
//! worked (CPU) from one that was descheduled (run queue), stalled in
//! memory reclaim (faults) or slept on the device (the rest).
//!
//! Reading costs two small file reads, so it is only done around holds
//! that are rare and long-ish (a checkpoint's final hold). Where the files
//! are missing or unreadable, every figure is `None`, and nothing fails.

use std::time::Duration;

/// One sample of the calling thread's times.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThreadTimes {
    on_cpu_ns: u64,
    runq_ns: u64,
    minflt: u64,
    majflt: u64,
}

/// The difference between two samples, in loggable units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThreadDelta {
    /// Milliseconds on a CPU.
    pub cpu_ms: f64,
    /// Milliseconds runnable but not running (descheduled).
    pub runq_ms: f64,
    /// Minor page faults (memory allocated or mapped in).
    pub minflt: u64,
    /// Major page faults (read from the device).
    pub majflt: u64,
}

impl ThreadTimes {
    /// The calling thread's times now, or `None` where Linux does not say.
    pub fn now() -> Option<ThreadTimes> {
        let sched = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let mut f = sched.split_whitespace().map(|x| x.parse::<u64>().ok());
        let on_cpu_ns = f.next()??;
        let runq_ns = f.next()??;
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        // Fields after the command name (which may hold spaces): state is
        // the first, minflt the 8th, majflt the 10th.
        let rest = &stat[stat.rfind(')')? + 1..];
        let v: Vec<&str> = rest.split_whitespace().collect();
        Some(ThreadTimes {
            on_cpu_ns,
            runq_ns,
            minflt: v.get(7)?.parse().ok()?,
            majflt: v.get(9)?.parse().ok()?,
        })
    }

    /// What happened between `self` (earlier) and `later`.
    pub fn since(self, later: ThreadTimes) -> ThreadDelta {
        let ms = |a: u64, b: u64| Duration::from_nanos(b.saturating_sub(a)).as_secs_f64() * 1e3;
        ThreadDelta {
            cpu_ms: ms(self.on_cpu_ns, later.on_cpu_ns),
            runq_ms: ms(self.runq_ns, later.runq_ns),
            minflt: later.minflt.saturating_sub(self.minflt),
            majflt: later.majflt.saturating_sub(self.majflt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ThreadTimes;

    #[test]
    fn work_shows_as_cpu_time_and_faults() {
        let Some(a) = ThreadTimes::now() else {
            return; // not Linux, or /proc not mounted
        };
        let mut v = vec![0u8; 64 << 20];
        let mut x = 0u64;
        for i in (0..v.len()).step_by(4096) {
            v[i] = i as u8;
            x = x.wrapping_add(v[i] as u64);
        }
        std::hint::black_box(x);
        let d = a.since(ThreadTimes::now().unwrap());
        assert!(d.cpu_ms > 0.0, "{d:?}");
        assert!(d.minflt >= 1000, "touching 64 MiB faults pages in: {d:?}");
    }
}
