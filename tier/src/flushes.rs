//! The `remote` durability mode: a flush (NBD FLUSH, FUA write) returns
//! only once the bucket holds every record before it, and fencing's
//! effect on a running writer (docs/design.md, "Object storage",
//! "Durability modes" and "Fencing").
//!
//! [`flushed`] (the engine's [`engine::tiering::CommitObserver::flushed`],
//! after the local fsync) raises the end the bucket must reach and waits
//! (at most `flush_timeout`) for [`tail_loop`] to get there: each round
//! uploads, as tails (`tail.rs`), the log from where this lease's copy in
//! the bucket ends to the highest end asked for, between two lease checks;
//! so one round serves every flush waiting when it started. A commit point
//! committed meanwhile moves that end too ([`committed`]). A flush that
//! times out fails (EIO) and the upload goes on being retried; the local
//! store is unaffected. Once a newer lease exists ([`fenced`]) the store
//! stops taking writes, and every flush waiting or to come fails.

use crate::upload::{Durability, Shared};
use crate::{Error, Result};
use engine::{ErrorKind, LogAddr};
use std::time::{Duration, Instant};

/// The bucket's copy of this lease's log, and the flushes waiting on it.
#[derive(Debug, Default)]
pub(crate) struct LogState {
    /// Where this lease's copy of the log in the bucket ends: the last
    /// tail's end or the newest commit point's replay point, whichever is
    /// later. [`LogAddr::NONE`] until this lease's first commit point.
    pub uploaded_to: LogAddr,
    /// The highest end a flush asked for.
    pub want: LogAddr,
    /// Set once fenced: why.
    pub fenced: Option<String>,
    /// The uploader is stopping (the store is closing).
    pub stop: bool,
}

/// The engine's flush hook (see the module docs).
pub(crate) fn flushed(shared: &Shared, end: LogAddr) -> engine::Result<()> {
    if shared.opts.durability != Durability::Remote {
        return Ok(());
    }
    let fail = |why: String| {
        shared.stats.lock().remote_flush_failures += 1;
        engine::Error::new(ErrorKind::Io, why)
    };
    let mut l = shared.log.lock();
    let reached = |l: &LogState| !l.uploaded_to.is_none() && end.0 <= l.uploaded_to.0;
    if let Some(f) = &l.fenced {
        return Err(fail(f.clone()));
    }
    if reached(&l) {
        // An earlier round (or commit point) already carried it.
        shared.stats.lock().remote_flushes += 1;
        return Ok(());
    }
    if l.stop {
        return Err(fail(
            "the object store uploader has stopped: the flush is not in the bucket".into(),
        ));
    }
    if end.0 > l.want.0 {
        l.want = end;
    }
    shared.log_cv.notify_all();
    let timeout = shared.opts.flush_timeout;
    let deadline = Instant::now() + timeout;
    loop {
        if reached(&l) {
            shared.stats.lock().remote_flushes += 1;
            return Ok(());
        }
        if let Some(f) = &l.fenced {
            return Err(fail(f.clone()));
        }
        if l.stop {
            return Err(fail(
                "the object store uploader stopped before the flush reached the bucket".into(),
            ));
        }
        if shared.log_cv.wait_until(&mut l, deadline).timed_out() && !reached(&l) {
            let last = shared.stats.lock().last_error.clone();
            return Err(fail(format!(
                "the flush did not reach the object store {} within {:.1}s (durability remote){}",
                shared.remote,
                timeout.as_secs_f64(),
                last.map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            )));
        }
    }
}

/// This lease's commit point `m` is in the bucket: the log up to its
/// replay point is.
pub(crate) fn committed(shared: &Shared, m: &crate::Manifest) {
    if let Some((no, off)) = m.replay_point() {
        let at = LogAddr::new(no, off);
        let mut l = shared.log.lock();
        if at.0 > l.uploaded_to.0 {
            l.uploaded_to = at;
        }
        shared.log_cv.notify_all();
    }
}

/// A newer lease exists: stop the store's writes, fail every flush.
pub(crate) fn fenced(shared: &Shared, newer: u64, msg: &str) {
    tracing::error!(
        lease = shared.lease(),
        newer,
        "fenced by lease {newer}: {msg}"
    );
    {
        let mut s = shared.stats.lock();
        s.fenced_by = newer;
        s.stopped.get_or_insert_with(|| msg.to_string());
    }
    // The store refuses writes before any waiting flush hears of it.
    if let Some(store) = shared.store.lock().clone() {
        store.stop_writes(msg);
    }
    shared.log.lock().fenced = Some(msg.to_string());
    shared.log_cv.notify_all();
}

/// Stops the tail thread (the store is closing).
pub(crate) fn stop(shared: &Shared) {
    shared.log.lock().stop = true;
    shared.log_cv.notify_all();
}

/// One round: the log `[from, to)` as tails, between two lease checks.
async fn round(shared: &Shared, from: LogAddr, to: LogAddr) -> Result<(u64, u64)> {
    let remote = &shared.remote;
    crate::lease::check(remote, shared.lease()).await?;
    let dir = shared.dir.clone();
    let lease = shared.lease();
    let keys = tokio::task::spawn_blocking(move || crate::tail::plan(&dir, lease, from, to))
        .await
        .map_err(|e| Error::Io("planning tails".into(), std::io::Error::other(e)))??;
    let bytes = crate::tail::put(remote, &shared.dir, &keys).await?;
    crate::lease::check(remote, shared.lease()).await?;
    Ok((keys.len() as u64, bytes))
}

/// The tail uploader's thread (remote mode).
pub(crate) fn tail_loop(shared: std::sync::Arc<Shared>) {
    let rt = match crate::current_thread_runtime("tail uploader") {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tail uploader");
            fenced(&shared, 0, "the tail uploader could not start");
            return;
        }
    };
    let mut backoff = Duration::from_millis(50);
    loop {
        let (from, to) = {
            let mut l = shared.log.lock();
            loop {
                if l.stop || l.fenced.is_some() {
                    return;
                }
                if !l.uploaded_to.is_none() && l.want.0 > l.uploaded_to.0 {
                    break;
                }
                shared.log_cv.wait(&mut l);
            }
            (l.uploaded_to, l.want)
        };
        match rt.block_on(round(&shared, from, to)) {
            Ok((objects, bytes)) => {
                backoff = Duration::from_millis(50);
                {
                    let mut s = shared.stats.lock();
                    s.tail_objects += objects;
                    s.tail_bytes += bytes;
                    s.uploaded_bytes += bytes;
                    s.uploaded_objects += objects;
                }
                let mut l = shared.log.lock();
                if to.0 > l.uploaded_to.0 {
                    l.uploaded_to = to;
                }
                shared.log_cv.notify_all();
            }
            Err(Error::LeaseLost { newer, .. }) => {
                let msg = Error::LeaseLost {
                    held: shared.lease(),
                    newer,
                }
                .to_string();
                fenced(&shared, newer, &msg);
                return;
            }
            Err(e) => {
                if matches!(e, Error::Retired(_)) {
                    // A segment went before its tail was read: a commit
                    // point past it will carry the log instead.
                    crate::upload::want_checkpoint(&shared);
                }
                let msg = e.to_string();
                tracing::warn!(error = %msg, "uploading the log's tail failed; retrying");
                {
                    let mut s = shared.stats.lock();
                    s.errors += 1;
                    s.last_error = Some(msg);
                }
                let mut l = shared.log.lock();
                let until = Instant::now() + backoff;
                while !l.stop && !shared.log_cv.wait_until(&mut l, until).timed_out() {}
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Bytes of log between `from` and `to` in data directory `dir` (segment
/// files' lengths for the segments in between).
pub fn log_distance(dir: &std::path::Path, from: LogAddr, to: LogAddr) -> u64 {
    if to.0 <= from.0 {
        return 0;
    }
    let (fs, fo) = (from.segment(), from.offset());
    let (ts, tof) = (to.segment(), to.offset());
    if fs == ts {
        return tof - fo;
    }
    let len = |no: u32| {
        std::fs::metadata(engine::tiering::segment_file(dir, engine::SegmentNo(no)))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let mut n = len(fs.0).saturating_sub(fo);
    for no in fs.0 + 1..ts.0 {
        n += len(no);
    }
    n + tof
}
