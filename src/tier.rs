//! The binary's side of the object-storage tier (`blockd-tier`): the
//! bucket client from `--object-store` and `--object-store-config`, the
//! range reader a store with remote segments opens with, starting the
//! uploader for `serve --object-store` (with `--cache-dir-size`), waiting
//! for it at stop, its counters for `blockd stats` and /metrics, and
//! `blockd restore` (lazy, or `--full`).

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

/// The S3 settings file (`--object-store-config`), set once at start.
static CONFIG: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();

/// Records the `--object-store-config` file for [`remote`].
pub(crate) fn set_config(path: Option<std::path::PathBuf>) {
    let _ = CONFIG.set(path);
}

/// The client of `url`, with the config file's settings if one was given.
pub(crate) fn remote(url: &str) -> Result<tier::Remote> {
    let cfg = config()?;
    Ok(tier::Remote::from_url_with(url, cfg.as_ref())?)
}

/// The config file's settings, if one was given.
fn config() -> Result<Option<tier::S3Config>> {
    Ok(match CONFIG.get().and_then(|p| p.as_deref()) {
        Some(p) => Some(tier::S3Config::load(p)?),
        None => None,
    })
}

/// The global `--object-store` of an offline command, set once.
static URL: OnceLock<String> = OnceLock::new();

/// Records the offline command's `--object-store` for [`offline_summary`].
pub(crate) fn set_url(url: &str) {
    let _ = URL.set(url.to_string());
}

/// For `stats --object-store` on a store no server holds: what the bucket
/// holds (newest commit point and tails, newest lease) and, when this data
/// directory holds the lease that wrote them, how many bytes of its log
/// are past what a restore would lay (JSON, `object_store`).
pub(crate) fn offline_summary(
    dir: &Path,
    store: &engine::Store,
) -> Result<Option<serde_json::Value>> {
    let Some(url) = URL.get() else {
        return Ok(None);
    };
    let remote = remote(url)?;
    let s = tier::summary(&remote).with_context(|| format!("reading {url}"))?;
    let mut v = serde_json::to_value(&s)?;
    let mine = tier::lease::local(dir)?;
    v["local_lease"] = serde_json::json!(mine);
    let same = s.newest_commit_point.map(|k| k.lease) == mine;
    if let (Some((no, off)), true) = (s.log_end, same) {
        let end = store.log_written_end();
        let from = engine::LogAddr::new(engine::SegmentNo(no), off);
        v["unuploaded_log_bytes"] = serde_json::json!(tier::log_distance(dir, from, end));
    }
    Ok(Some(v))
}

/// One line for `blockd stats` from [`offline_summary`]'s value.
pub(crate) fn describe_bucket(v: &serde_json::Value) -> String {
    let ck = &v["newest_commit_point"];
    let mut line = match ck.get("generation") {
        Some(g) => format!(
            "object store: newest commit point generation {g} (lease {}) plus {} tail objects ({})",
            ck["lease"],
            v["tails"],
            engine::ByteSize(v["tail_bytes"].as_u64().unwrap_or(0))
        ),
        None => "object store: no commit point".to_string(),
    };
    line.push_str(&format!(
        "; newest lease {} ({}), this directory's {}",
        v["newest_lease"],
        v["lease_holder"].as_str().unwrap_or("-"),
        v["local_lease"]
    ));
    if let Some(n) = v["unuploaded_log_bytes"].as_u64() {
        line.push_str(&format!(
            "; {} of this directory's log not in the bucket",
            engine::ByteSize(n)
        ));
    }
    line
}

/// Memory for fetched segment ranges.
const RANGE_CACHE: u64 = 64 << 20;

/// The range reader of `url`'s segments, knowing its newest commit point:
/// what a store with remote segments (evicted, or lazily restored) opens
/// with.
pub(crate) fn source(url: &str) -> Result<Arc<tier::RemoteSource>> {
    let src = tier::RemoteSource::new(remote(url)?, RANGE_CACHE)?;
    src.load_newest()
        .with_context(|| format!("reading the newest commit point of {url}"))?;
    Ok(src)
}

/// How `serve` runs the uploader.
pub(crate) struct StartOptions {
    /// `--object-store-interval`.
    pub interval: Duration,
    /// `--cache-dir-size`.
    pub cache_bound: Option<u64>,
    /// `--durability` (else the config file's `durability`, else local).
    pub durability: Option<tier::Durability>,
    /// `--remote-flush-timeout`.
    pub flush_timeout: Duration,
    /// `--take-over`.
    pub take_over: bool,
}

/// Starts uploading `store`'s committed generations to `url` (taking the
/// store's lease), reading remote segment bytes through `source` (the one
/// `store` opened with), keeping the data directory under the cache bound
/// when given.
pub(crate) fn start(
    store: &engine::Store,
    url: &str,
    o: StartOptions,
    source: Arc<tier::RemoteSource>,
) -> Result<tier::Uploader> {
    let durability = match o.durability {
        Some(d) => d,
        None => match config()?.and_then(|c| c.durability) {
            Some(d) => d
                .parse()
                .map_err(|e: String| anyhow::anyhow!("object store config: {e}"))?,
            None => tier::Durability::Local,
        },
    };
    let up = tier::Uploader::start(
        store,
        remote(url)?,
        tier::UploaderOptions {
            checkpoint_interval: o.interval,
            cache_bound: o.cache_bound,
            source: Some(source),
            durability,
            flush_timeout: o.flush_timeout,
            take_over: o.take_over,
            ..Default::default()
        },
    )
    .with_context(|| format!("starting the upload to {url}"))?;
    let _ = STATS.set(Arc::new(up.stats_source()));
    Ok(up)
}

/// `blockd restore`: the newest committed generation into `dir`; lazily
/// (no segment downloaded, then the store opened through the bucket to
/// check it, which reads its metadata), or with `full` every segment.
pub(crate) fn restore(
    dir: &Path,
    url: &str,
    concurrency: usize,
    full: bool,
    out: &mut dyn std::io::Write,
) -> Result<i32> {
    let remote = remote(url)?;
    if !full {
        let r = tier::restore_lazy(&remote, dir)
            .with_context(|| format!("restoring {url} into {}", dir.display()))?;
        let src = tier::RemoteSource::new(remote, RANGE_CACHE)?;
        src.load_newest()?;
        let opened = std::time::Instant::now();
        let store = engine::Store::open(
            dir,
            engine::StoreOptions {
                create: false,
                segment_source: Some(src.clone()),
                ..crate::cli::store_options(false)
            },
        )
        .with_context(|| format!("opening the restored store in {}", dir.display()))?;
        let objects = store.list().len();
        let open_time = opened.elapsed();
        drop(store);
        let f = src.stats();
        writeln!(
            out,
            "restored generation {} of store {} into {} lazily (lease {}, then {} tail objects, {}; this directory now holds lease {}): {} segments ({} left in the bucket, read on demand), {} downloaded in {:.2}s; opened in {:.2}s reading {} of metadata in {} ranged GETs: {} objects",
            r.generation,
            r.store_id,
            dir.display(),
            r.from_lease,
            r.tails,
            engine::ByteSize(r.tail_bytes),
            r.lease,
            r.segments,
            engine::ByteSize(r.remote_bytes),
            engine::ByteSize(r.bytes),
            r.elapsed.as_secs_f64(),
            open_time.as_secs_f64(),
            engine::ByteSize(f.range_bytes),
            f.range_gets,
            objects
        )?;
        return Ok(0);
    }
    let r = tier::restore(&remote, dir, concurrency)
        .with_context(|| format!("restoring {url} into {}", dir.display()))?;
    writeln!(
        out,
        "restored generation {} of store {} into {} (lease {}, then {} tail objects, {}; this directory now holds lease {}): {} segments, {} in {:.1}s",
        r.generation,
        r.store_id,
        dir.display(),
        r.from_lease,
        r.tails,
        engine::ByteSize(r.tail_bytes),
        r.lease,
        r.segments,
        engine::ByteSize(r.bytes),
        r.elapsed.as_secs_f64()
    )?;
    Ok(0)
}

/// One line for `blockd stats`.
pub(crate) fn describe(s: &tier::TierStats) -> String {
    let mut line = format!(
        "object store: generation {} committed locally, {} in the bucket (durability {}, lease {}); {} of log not yet in the bucket ({} of the newest local generation); uploaded {} in {} objects ({} generations), {} errors",
        s.local_generation,
        s.remote_generation,
        s.durability,
        s.lease,
        engine::ByteSize(s.unuploaded_log_bytes),
        engine::ByteSize(s.pending_bytes),
        engine::ByteSize(s.uploaded_bytes),
        s.uploaded_objects,
        s.generations_committed,
        s.errors
    );
    if s.tail_objects + s.remote_flushes + s.remote_flush_failures > 0 {
        line.push_str(&format!(
            "; {} flushes acknowledged from the bucket, {} failed; {} tail objects ({})",
            s.remote_flushes,
            s.remote_flush_failures,
            s.tail_objects,
            engine::ByteSize(s.tail_bytes)
        ));
    }
    if s.range_gets > 0 {
        line.push_str(&format!(
            "; fetched {} in {} ranged GETs ({:.1} ms mean), {} range-cache hits",
            engine::ByteSize(s.range_bytes),
            s.range_gets,
            s.range_get_micros as f64 / 1000.0 / s.range_gets as f64,
            s.range_cache_hits
        ));
    }
    if s.cache_bound > 0 {
        line.push_str(&format!(
            "; data dir {} of {} bound{}, {} segments evicted ({})",
            engine::ByteSize(s.cache_dir_bytes),
            engine::ByteSize(s.cache_bound),
            if s.cache_full {
                " (FULL: writes refused until uploads catch up)"
            } else {
                ""
            },
            s.evicted_segments,
            engine::ByteSize(s.evicted_bytes)
        ));
    }
    if s.deleted_objects + s.deleted_generations > 0 {
        line.push_str(&format!(
            "; deleted {} commit points and {} segment objects ({}) from the bucket",
            s.deleted_generations,
            s.deleted_objects,
            engine::ByteSize(s.deleted_bytes)
        ));
    }
    if let Some(e) = &s.stopped {
        line.push_str(&format!("; STOPPED: {e}"));
    } else if let Some(e) = &s.last_error {
        line.push_str(&format!("; last error: {e}"));
    }
    line
}
