//! The binary's side of the object-storage tier (`blockd-tier`): starting
//! the uploader for `serve --object-store`, waiting for it at stop, its
//! counters for `blockd stats` and /metrics, and `blockd restore`.

use anyhow::{Context, Result};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Reads the uploader's counters (set once by `serve --object-store`).
type StatsSource = Arc<dyn Fn() -> tier::TierStats + Send + Sync>;

static STATS: OnceLock<StatsSource> = OnceLock::new();

/// The uploader's counters, when this process serves with an object store.
pub(crate) fn stats() -> Option<tier::TierStats> {
    STATS.get().map(|f| f())
}

/// Starts uploading `store`'s committed generations to `url`.
pub(crate) fn start(
    store: &engine::Store,
    url: &str,
    interval: Duration,
) -> Result<tier::Uploader> {
    let remote = tier::Remote::from_url(url)?;
    let up = tier::Uploader::start(
        store,
        remote,
        tier::UploaderOptions {
            checkpoint_interval: interval,
            ..Default::default()
        },
    )
    .with_context(|| format!("starting the upload to {url}"))?;
    let _ = STATS.set(Arc::new(up.stats_source()));
    Ok(up)
}

/// `blockd restore`: the newest committed generation into `dir`.
pub(crate) fn restore(
    dir: &Path,
    url: &str,
    concurrency: usize,
    out: &mut dyn std::io::Write,
) -> Result<i32> {
    let remote = tier::Remote::from_url(url)?;
    let r = tier::restore(&remote, dir, concurrency)
        .with_context(|| format!("restoring {url} into {}", dir.display()))?;
    writeln!(
        out,
        "restored generation {} of store {} into {}: {} segments, {} in {:.1}s",
        r.generation,
        r.store_id,
        dir.display(),
        r.segments,
        engine::ByteSize(r.bytes),
        r.elapsed.as_secs_f64()
    )?;
    Ok(0)
}

/// One line for `blockd stats`.
pub(crate) fn describe(s: &tier::TierStats) -> String {
    let mut line = format!(
        "object store: generation {} committed locally, {} in the bucket; {} not yet uploaded; uploaded {} in {} objects ({} generations), {} errors",
        s.local_generation,
        s.remote_generation,
        engine::ByteSize(s.pending_bytes),
        engine::ByteSize(s.uploaded_bytes),
        s.uploaded_objects,
        s.generations_committed,
        s.errors
    );
    if let Some(e) = &s.stopped {
        line.push_str(&format!("; STOPPED: {e}"));
    } else if let Some(e) = &s.last_error {
        line.push_str(&format!("; last error: {e}"));
    }
    line
}
