//! The background uploader: told of each generation the engine commits
//! locally ([`CommitObserver`]), it copies the newest one to the bucket on
//! a thread of its own: the segment objects it lacks, started in log
//! order, then its commit point with a create-only put. Older pending
//! generations are skipped (the newest needs every segment they did and
//! more). A ticker thread checkpoints the store every interval when its
//! log has grown, so the bucket lags the local disk by a bounded time.
//!
//! A segment the cleaner retired while it was being read (the file is no
//! longer the segment it named) makes that generation unusable: the
//! uploader asks the ticker for a fresh checkpoint and uploads that one.
//!
//! After each generation committed in the bucket, on the same thread: the
//! range reader learns where its segments are, the bucket is pruned
//! (`prune.rs`) and, with a cache bound, the data directory is brought
//! under it (`cache.rs`). A segment partly in the bucket already (evicted,
//! or lazily restored) is copied by reading its remote part back.
//!
//! A generation whose upload fails (after the client's own retries of each
//! request, `remote.rs`) is counted and tried again after a backoff
//! (0.25 s doubling to 10 s), the newest generation then; only a fenced
//! writer or a foreign bucket stops uploading. With a cache bound a
//! watcher thread also runs the cache pass every 0.1 s, refusing writes
//! over the bound while uploads fail (docs/design.md, "Failures of the
//! object store").

use crate::layout::{generation_key, segment_key, CommitKey, Manifest};
use crate::remote::Remote;
use crate::source::RemoteSource;
use crate::{Error, Result};
use engine::tiering::SegmentSource;
use engine::tiering::{CommitObserver, Committed, CommittedSegment};
use engine::SegmentNo;
use engine::Store;
use futures_util::StreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the uploader runs.
#[derive(Clone, Debug)]
pub struct UploaderOptions {
    /// Checkpoint the store this often when its log has grown since the
    /// last checkpoint (bounds how far the bucket lags).
    pub checkpoint_interval: Duration,
    /// Segment uploads in flight at once (each holds one segment in
    /// memory).
    pub concurrency: usize,
    /// Keep the data directory's allocated bytes under this by evicting
    /// uploaded sealed segments (`cache.rs`); `None`: keep everything.
    pub cache_bound: Option<u64>,
    /// Commit points kept in the bucket with what they name (at least 2);
    /// older ones and objects only they named are deleted.
    pub keep_generations: usize,
    /// The range reader the store was opened with (its
    /// `StoreOptions::segment_source`); `None`: one is made and set.
    pub source: Option<Arc<RemoteSource>>,
    /// When a flush is acknowledged: once local (`Local`), or once the
    /// bucket holds the log up to it (`Remote`, `flushes.rs`).
    pub durability: Durability,
    /// Remote mode: how long a flush waits for the bucket before it fails
    /// (EIO); the upload goes on being retried.
    pub flush_timeout: Duration,
    /// Take the store's lease even when the bucket's newest lease is not
    /// the one this data directory last held (fencing that writer).
    pub take_over: bool,
}

/// When a flush is acknowledged (`serve --durability`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// After the local fsync; the bucket lags by up to the checkpoint
    /// interval plus an upload, and holds a consistent prefix.
    #[default]
    Local,
    /// Only once every record before the flush is in the bucket.
    Remote,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "local" => Ok(Durability::Local),
            "remote" => Ok(Durability::Remote),
            _ => Err(format!("'{s}': durability is local or remote")),
        }
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Durability::Local => "local",
            Durability::Remote => "remote",
        })
    }
}

impl Default for UploaderOptions {
    fn default() -> Self {
        UploaderOptions {
            checkpoint_interval: Duration::from_secs(10),
            concurrency: 2,
            cache_bound: None,
            keep_generations: 2,
            source: None,
            durability: Durability::Local,
            flush_timeout: Duration::from_secs(30),
            take_over: false,
        }
    }
}

/// The uploader's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TierStats {
    /// The durability mode.
    pub durability: Durability,
    /// The lease this writer holds on the prefix.
    pub lease: u64,
    /// Set when a newer lease fenced this writer: that lease.
    pub fenced_by: u64,
    /// Bytes of log written locally past what the bucket holds of it (the
    /// newest commit point's replay point, or the last tail's end): what a
    /// restore now would lack.
    pub unuploaded_log_bytes: u64,
    /// Tail objects uploaded (remote mode).
    pub tail_objects: u64,
    /// Bytes of those.
    pub tail_bytes: u64,
    /// Flushes acknowledged once the bucket held the log up to them.
    pub remote_flushes: u64,
    /// Flushes failed because the bucket did not take the log in time (or
    /// the writer was fenced).
    pub remote_flush_failures: u64,
    /// Newest generation committed locally (0: none seen yet).
    pub local_generation: u64,
    /// Newest generation committed in the bucket by this process or found
    /// there at start (0: none).
    pub remote_generation: u64,
    /// Bytes of the newest local generation's segments not yet in the
    /// bucket (what a restore would lack beyond the remote generation).
    pub pending_bytes: u64,
    /// Bytes uploaded by this process.
    pub uploaded_bytes: u64,
    /// Objects uploaded by this process (segments and commit points).
    pub uploaded_objects: u64,
    /// Generations committed in the bucket by this process.
    pub generations_committed: u64,
    /// Upload attempts that failed (each retried later).
    pub errors: u64,
    /// The last failure, if any (no credentials in it).
    pub last_error: Option<String>,
    /// Set when uploading stopped for good (fenced by another writer, or a
    /// bucket holding something else).
    pub stopped: Option<String>,
    /// Ranged GETs of segment bytes not on the local disk.
    pub range_gets: u64,
    /// Bytes those returned.
    pub range_bytes: u64,
    /// Time spent in them, microseconds.
    pub range_get_micros: u64,
    /// Fetched blocks served again from the in-memory range cache.
    pub range_cache_hits: u64,
    /// The cache bound (`--cache-dir-size`), 0 when none.
    pub cache_bound: u64,
    /// The data directory's allocated bytes at the last cache pass.
    pub cache_dir_bytes: u64,
    /// Client writes needing a new segment are refused: over the bound
    /// with nothing left to evict (uploads lag).
    pub cache_full: bool,
    /// Segments evicted by this process.
    pub evicted_segments: u64,
    /// Bytes those freed locally.
    pub evicted_bytes: u64,
    /// Commit points deleted from the bucket by this process.
    pub deleted_generations: u64,
    /// Segment objects deleted from the bucket by this process.
    pub deleted_objects: u64,
    /// Bytes of those.
    pub deleted_bytes: u64,
}

pub(crate) struct Shared {
    pub(crate) remote: Remote,
    pub(crate) opts: UploaderOptions,
    pub(crate) source: Arc<RemoteSource>,
    /// For cache passes; let go of at detach.
    pub(crate) store: Mutex<Option<Store>>,
    pub(crate) dir: std::path::PathBuf,
    work: Mutex<Work>,
    cv: Condvar,
    pub(crate) stats: Mutex<TierStats>,
    /// The lease this writer holds (`lease.rs`; 0 until taken at start).
    lease: std::sync::atomic::AtomicU64,
    /// The bucket held tails at start (pruning then lists them).
    tails_seen: std::sync::atomic::AtomicBool,
    /// The log in the bucket and the flushes waiting for it (`flushes.rs`).
    pub(crate) log: Mutex<crate::flushes::LogState>,
    pub(crate) log_cv: Condvar,
    /// The newest committed generation's `log_bytes` (what the ticker
    /// compares the log with).
    covered: std::sync::atomic::AtomicU64,
    /// One cache pass at a time (after a commit, and the watcher's).
    cache_pass: Mutex<()>,
    /// The last upload attempt failed (none succeeded since).
    failing: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Work {
    /// The newest committed generation not yet handed to the upload loop.
    newest: Option<Committed>,
    /// The ticker should checkpoint even if the log did not grow.
    want_checkpoint: bool,
    /// Stop the ticker (the store is closing).
    stop_ticker: bool,
    /// Finish: upload what is pending, then exit.
    finish: bool,
    /// The upload loop has exited.
    done: bool,
}

struct Observer(Arc<Shared>);

impl CommitObserver for Observer {
    fn flushed(&self, end: engine::LogAddr) -> engine::Result<()> {
        crate::flushes::flushed(&self.0, end)
    }

    fn committed(&self, c: Committed) {
        let mut w = self.0.work.lock();
        {
            let mut s = self.0.stats.lock();
            if c.generation > s.local_generation {
                s.local_generation = c.generation;
                self.0.covered.store(c.log_bytes, Ordering::Relaxed);
            }
        }
        if w.newest
            .as_ref()
            .is_none_or(|n| n.generation < c.generation)
        {
            w.newest = Some(c);
        }
        self.0.cv.notify_all();
    }
}

/// A running uploader, attached to a store.
pub struct Uploader {
    shared: Arc<Shared>,
    store: Store,
    upload: Option<std::thread::JoinHandle<()>>,
    ticker: Option<std::thread::JoinHandle<()>>,
    watcher: Option<std::thread::JoinHandle<()>>,
    tails: Option<std::thread::JoinHandle<()>>,
}

/// Segment objects in the bucket this writer's log may name, by segment
/// and prefix length (`None`: whole): key, length, crc32. At start, those
/// the newest commit point names (when this data directory's log is the
/// one it commits); then each one uploaded.
type Known = HashMap<(u32, Option<u64>), (String, u64, u32)>;

impl Uploader {
    /// Attaches an uploader to `store`: commits a generation to start
    /// from, checks the bucket holds no other store's generations, takes
    /// the prefix's lease (`lease.rs`; refused when another writer took it
    /// since this data directory held it, unless `take_over`), and starts
    /// the upload and ticker threads (and, in remote mode, the tail
    /// uploader, returning once the first generation is in the bucket).
    pub fn start(store: &Store, remote: Remote, opts: UploaderOptions) -> Result<Uploader> {
        let rt = crate::current_thread_runtime("upload")?;
        let durability = opts.durability;
        let source = match &opts.source {
            Some(s) => s.clone(),
            None => {
                let s = RemoteSource::new(remote.clone(), 32 << 20)?;
                store.set_segment_source(Some(s.clone()));
                s
            }
        };
        let shared = Arc::new(Shared {
            remote,
            opts,
            source,
            store: Mutex::new(Some(store.clone())),
            dir: store.dir().to_path_buf(),
            work: Mutex::new(Work::default()),
            cv: Condvar::new(),
            stats: Mutex::new(TierStats {
                durability,
                ..Default::default()
            }),
            lease: std::sync::atomic::AtomicU64::new(0),
            tails_seen: std::sync::atomic::AtomicBool::new(false),
            log: Mutex::new(Default::default()),
            log_cv: Condvar::new(),
            covered: std::sync::atomic::AtomicU64::new(0),
            cache_pass: Mutex::new(()),
            failing: std::sync::atomic::AtomicBool::new(false),
        });
        store.set_commit_observer(Some(Arc::new(Observer(shared.clone()))));
        let first = store.checkpoint().map_err(Error::from).and_then(|_| {
            shared
                .work
                .lock()
                .newest
                .clone()
                .ok_or_else(|| Error::Bucket("the first checkpoint was not observed".into()))
        });
        // One writer per prefix: the lease (once the bucket is known to
        // hold this store), before anything is read from the bucket for
        // uploading or written to it.
        let known = first.and_then(|first| {
            rt.block_on(async {
                check_store(&shared.remote, &first).await?;
                let (lease, took_over) =
                    crate::lease::take(&shared.remote, &shared.dir, shared.opts.take_over).await?;
                shared
                    .lease
                    .store(lease, std::sync::atomic::Ordering::Release);
                shared.stats.lock().lease = lease;
                survey(&shared, !took_over).await
            })
            .map(|k| (k, first.generation))
        });
        let (known, first_generation) = match known {
            Ok(k) => k,
            Err(e) => {
                store.set_commit_observer(None);
                return Err(e);
            }
        };
        let s2 = shared.clone();
        let upload = std::thread::Builder::new()
            .name("blockd-upload".into())
            .spawn(move || upload_loop(s2, rt, known))
            .map_err(|e| Error::Io("starting the upload thread".into(), e))?;
        let s3 = shared.clone();
        let st = store.clone();
        let ticker = std::thread::Builder::new()
            .name("blockd-upload-tick".into())
            .spawn(move || ticker_loop(s3, st))
            .map_err(|e| Error::Io("starting the upload ticker".into(), e))?;
        let watcher = match shared.opts.cache_bound {
            Some(_) => {
                let s4 = shared.clone();
                Some(
                    std::thread::Builder::new()
                        .name("blockd-cache".into())
                        .spawn(move || cache_watch_loop(s4))
                        .map_err(|e| Error::Io("starting the cache watcher".into(), e))?,
                )
            }
            None => None,
        };
        let tails = if shared.opts.durability == Durability::Remote {
            let s4 = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("blockd-tails".into())
                    .spawn(move || crate::flushes::tail_loop(s4))
                    .map_err(|e| Error::Io("starting the tail uploader".into(), e))?,
            )
        } else {
            None
        };
        let up = Uploader {
            shared,
            store: store.clone(),
            upload: Some(upload),
            ticker: Some(ticker),
            watcher,
            tails,
        };
        if up.shared.opts.durability == Durability::Remote {
            // Remote mode serves nothing before this lease's first commit
            // point is in the bucket: every tail it uploads chains from it.
            up.wait_remote(
                first_generation,
                up.shared.opts.flush_timeout.max(Duration::from_secs(60)),
            )?;
        }
        tracing::info!(remote = %up.shared.remote, lease = up.shared.lease(), durability = %up.shared.opts.durability, "uploading committed generations");
        Ok(up)
    }

    /// Waits until this lease's first commit point, generation `g`, is in
    /// the bucket (or uploading stopped).
    fn wait_remote(&self, g: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stats();
            if let Some(e) = s.stopped {
                return Err(Error::Refused(e));
            }
            if s.generations_committed >= 1 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Refused(format!(
                    "the first generation ({g}) did not reach {} within {:.0}s{}",
                    self.shared.remote,
                    timeout.as_secs_f64(),
                    s.last_error
                        .map(|e| format!("; last error: {e}"))
                        .unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TierStats {
        self.shared.snapshot()
    }

    /// A handle on the counters that outlives the uploader's threads.
    pub fn stats_source(&self) -> impl Fn() -> TierStats + Send + Sync + 'static {
        let s = self.shared.clone();
        move || s.snapshot()
    }

    /// Stops the ticker's checkpoints and lets go of the store (call before
    /// closing it; its final checkpoint is still observed and uploaded).
    pub fn detach(&mut self) {
        self.shared.store.lock().take();
        crate::flushes::stop(&self.shared);
        if let Some(t) = self.tails.take() {
            let _ = t.join();
        }
        self.shared.work.lock().stop_ticker = true;
        self.shared.cv.notify_all();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if let Some(t) = self.watcher.take() {
            let _ = t.join();
        }
    }

    /// Uploads what is pending (the store's final generation when it was
    /// closed), waiting at most `timeout`, then stops. Returns the final
    /// counters; an error when the newest local generation did not reach
    /// the bucket.
    pub fn finish(mut self, timeout: Duration) -> Result<TierStats> {
        self.detach();
        self.store.set_commit_observer(None);
        {
            let mut w = self.shared.work.lock();
            w.finish = true;
            self.shared.cv.notify_all();
            let deadline = Instant::now() + timeout;
            while !w.done {
                if self.shared.cv.wait_until(&mut w, deadline).timed_out() {
                    break;
                }
            }
        }
        let s = self.stats();
        if let Some(t) = self.upload.take() {
            if self.shared.work.lock().done {
                let _ = t.join();
            }
        }
        if s.remote_generation < s.local_generation {
            return Err(Error::Refused(format!(
                "the bucket has generation {} of {} committed locally ({} bytes not uploaded){}",
                s.remote_generation,
                s.local_generation,
                s.pending_bytes,
                s.last_error
                    .as_deref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            )));
        }
        Ok(s)
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        self.detach();
        self.store.set_commit_observer(None);
        let mut w = self.shared.work.lock();
        w.finish = true;
        w.newest = None;
        self.shared.cv.notify_all();
    }
}

/// Checks the bucket holds no other store's commit points.
async fn check_store(remote: &Remote, first: &Committed) -> Result<()> {
    if let Some(newest) = crate::restore::newest_generation(remote).await? {
        let m = crate::restore::fetch_manifest(remote, newest).await?;
        if m.store_id != first.store_id {
            return Err(Error::Bucket(format!(
                "{remote} holds store {}, not this store ({})",
                m.store_id, first.store_id
            )));
        }
    }
    Ok(())
}

/// Learns, at start (after [`check_store`] and the lease), where the
/// newest commit point's segments are. `trust`: this data directory's log
/// is the one that commit point copies (it last held the lease, or was
/// restored from it), so its segment objects stand for the local segments
/// of the same number and length; otherwise (a take-over) none does.
async fn survey(shared: &Shared, trust: bool) -> Result<Known> {
    let remote = &shared.remote;
    let mut known = Known::new();
    if !crate::tail::list(remote).await?.is_empty() {
        shared
            .tails_seen
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(newest) = crate::restore::newest_generation(remote).await? {
        let m = crate::restore::fetch_manifest(remote, newest).await?;
        if trust {
            shared.stats.lock().remote_generation = newest.generation;
            shared.source.learn(&m);
            for s in m.segments {
                if let Some((no, _, upto)) = crate::layout::parse_segment_key(&s.key) {
                    known.insert((no.0, upto), (s.key, s.len, s.crc32));
                }
            }
        }
    }
    Ok(known)
}

/// The first wait before a failed generation is tried again; it doubles
/// with each failure in a row, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between tries of a failed generation.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often the cache watcher measures the data directory (a walk of a
/// few hundred files at most): while uploads fail, the directory exceeds
/// its bound by at most what clients write in this time, plus the active
/// segment.
const CACHE_WATCH: Duration = Duration::from_millis(100);

fn upload_loop(shared: Arc<Shared>, rt: tokio::runtime::Runtime, mut known: Known) {
    let mut backoff = FIRST_BACKOFF;
    let mut current: Option<Committed> = None;
    loop {
        {
            let mut w = shared.work.lock();
            loop {
                if let Some(n) = w.newest.take() {
                    current = Some(n);
                }
                if current.is_some() || w.finish {
                    break;
                }
                shared.cv.wait(&mut w);
            }
            if current.is_none() {
                w.done = true;
                shared.cv.notify_all();
                return;
            }
        }
        let c = current.clone().expect("set above");
        match rt.block_on(upload_generation(&shared, &c, &mut known)) {
            Ok(m) => {
                backoff = FIRST_BACKOFF;
                shared.failing.store(false, Ordering::Relaxed);
                current = None;
                {
                    let mut s = shared.stats.lock();
                    s.remote_generation = s.remote_generation.max(c.generation);
                    s.generations_committed += 1;
                    if s.local_generation == c.generation {
                        s.pending_bytes = 0;
                    }
                }
                shared.source.learn(&m);
                crate::flushes::committed(&shared, &m);
                after_commit(&shared, &rt, &mut known);
            }
            Err(Error::Retired(seg)) => {
                // That generation can no longer be copied; a newer one can.
                tracing::debug!(segment = %seg, generation = c.generation, "generation skipped: a segment was retired");
                current = None;
                let mut w = shared.work.lock();
                w.want_checkpoint = true;
                shared.cv.notify_all();
            }
            Err(e) => {
                shared.failing.store(true, Ordering::Relaxed);
                let fatal = matches!(
                    e,
                    Error::Fenced(_) | Error::Bucket(_) | Error::LeaseLost { .. }
                );
                let msg = describe(&e);
                {
                    let mut s = shared.stats.lock();
                    s.errors += 1;
                    s.last_error = Some(msg.clone());
                    if fatal {
                        s.stopped = Some(msg.clone());
                    }
                }
                if let Error::LeaseLost { newer, .. } = e {
                    crate::flushes::fenced(&shared, newer, &msg);
                }
                if fatal {
                    tracing::error!(error = %msg, "uploading stopped");
                    let mut w = shared.work.lock();
                    w.done = true;
                    shared.cv.notify_all();
                    return;
                }
                tracing::warn!(
                    error = %msg,
                    generation = c.generation,
                    retry_in = ?backoff,
                    "upload failed; retrying"
                );
                // The whole backoff, even when a newer generation comes
                // meanwhile (it is picked up after): a failing store is
                // not hammered at the ticker's pace.
                let mut w = shared.work.lock();
                let until = Instant::now() + backoff;
                while !shared.cv.wait_until(&mut w, until).timed_out() {}
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// A failure as the counters and the log show it: the error with its
/// causes (a refused connection, a reset, a timeout are only in those),
/// and what a full bucket means for the writer. Every failure but
/// [`Error::Fenced`], [`Error::LeaseLost`] and [`Error::Bucket`] is
/// retried: 5xx, throttling,
/// transport errors, and 4xx too (a quota raised, a policy fixed, a
/// clock set right bring the uploads back without a restart).
fn describe(e: &Error) -> String {
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let t = c.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        cause = c.source();
    }
    if msg.contains("QuotaExceeded") {
        msg.insert_str(
            0,
            "the bucket is over its quota (uploads retry until it has room; \
             writes are held locally up to --cache-dir-size, then get ENOSPC): ",
        );
    }
    msg
}

/// What happens between generations: the bucket pruned, the cache kept
/// under its bound. Failures are counted and retried after the next one.
fn after_commit(shared: &Shared, rt: &tokio::runtime::Runtime, known: &mut Known) {
    match rt.block_on(crate::prune::prune(
        &shared.remote,
        shared.opts.keep_generations,
        shared.lease(),
        shared.opts.durability == Durability::Remote
            || shared.tails_seen.load(std::sync::atomic::Ordering::Relaxed),
    )) {
        Ok(p) => {
            known.retain(|_, (key, _, _)| !p.segments.contains(key));
            let mut s = shared.stats.lock();
            s.deleted_generations += p.generations;
            s.deleted_objects += p.segments.len() as u64;
            s.deleted_bytes += p.bytes;
        }
        Err(e) => {
            let msg = describe(&e);
            tracing::warn!(error = %msg, "pruning the bucket failed; retried after the next generation");
            let mut s = shared.stats.lock();
            s.errors += 1;
            s.last_error = Some(msg);
        }
    }
    cache_pass(shared, true);
}

/// Brings the data directory under the cache bound, if there is one and
/// the store is still attached. Still over it, client writes needing a new
/// segment are refused when `settled` (the pass after a commit in the
/// bucket: what could be uploaded was) or while uploads fail; otherwise
/// (the watcher's pass while uploads go on) they are left as they were,
/// so a burst the uploads will absorb is not refused between commits.
fn cache_pass(shared: &Shared, settled: bool) {
    let Some(bound) = shared.opts.cache_bound else {
        return;
    };
    let Some(store) = shared.store.lock().clone() else {
        return;
    };
    let src = shared.source.clone();
    let _one = shared.cache_pass.lock();
    let refuse = settled || shared.failing.load(Ordering::Relaxed);
    match crate::cache::enforce(&store, &shared.dir, bound, &|no| src.is_whole(no), refuse) {
        Ok(mut p) => {
            let mut s = shared.stats.lock();
            p.full = p.full && (refuse || s.cache_full);
            if p.full && !s.cache_full {
                tracing::warn!(
                    usage = p.usage,
                    bound,
                    "the data directory is at its --cache-dir-size bound with nothing \
                     uploaded left to evict: writes needing a new segment get ENOSPC \
                     until uploads catch up"
                );
            } else if !p.full && s.cache_full {
                tracing::info!(
                    usage = p.usage,
                    bound,
                    "under the cache bound again: writes resume"
                );
            }
            s.cache_dir_bytes = p.usage;
            s.cache_full = p.full;
            s.evicted_segments += p.evicted;
            s.evicted_bytes += p.evicted_bytes;
            // Over the bound with nothing evictable and the bucket holding
            // every generation: the next one names the segments sealed
            // since, which its upload makes evictable. (While a generation
            // is pending, its commit brings the next pass.)
            let checkpoint = p.full && s.remote_generation >= s.local_generation;
            drop(s);
            if checkpoint {
                shared.work.lock().want_checkpoint = true;
                shared.cv.notify_all();
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "evicting segments failed");
            let mut s = shared.stats.lock();
            s.errors += 1;
            s.last_error = Some(e.to_string());
        }
    }
}

impl Shared {
    /// The lease this writer holds.
    pub(crate) fn lease(&self) -> u64 {
        self.lease.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Asks the ticker for a checkpoint now (a generation to upload).
pub(crate) fn want_checkpoint(shared: &Shared) {
    shared.work.lock().want_checkpoint = true;
    shared.cv.notify_all();
}

impl Shared {
    /// The counters, the range reader's included.
    fn snapshot(&self) -> TierStats {
        let mut s = self.stats.lock().clone();
        let uploaded = self.log.lock().uploaded_to;
        let store = self.store.lock().clone();
        if let Some(store) = store {
            let end = store.log_written_end();
            s.unuploaded_log_bytes = if uploaded.is_none() {
                // Nothing of this lease's log in the bucket yet.
                crate::flushes::log_distance(&self.dir, engine::LogAddr::new(SegmentNo(0), 0), end)
            } else {
                crate::flushes::log_distance(&self.dir, uploaded, end)
            };
        }
        let f = self.source.stats();
        s.range_gets = f.range_gets;
        s.range_bytes = f.range_bytes;
        s.range_get_micros = f.range_get_micros;
        s.range_cache_hits = f.cache_hits;
        s.cache_bound = self.opts.cache_bound.unwrap_or(0);
        s
    }
}

/// How far segment `no` of data directory `dir` is remote (its marker;
/// 0: wholly local).
fn remote_below(dir: &std::path::Path, no: SegmentNo) -> u64 {
    std::fs::read_to_string(dir.join("remote").join(format!("seg-{:08}.log", no.0)))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads what generation `c` needs of segment `s` (see [`read_local`]),
/// its remote part from the bucket when it has one.
fn read_segment(s: &CommittedSegment, source: &RemoteSource) -> Result<bytes::Bytes> {
    let dir = s
        .path
        .parent()
        .and_then(|p| p.parent())
        .unwrap_or(std::path::Path::new("."));
    let below = remote_below(dir, s.no);
    if below == 0 {
        return read_local(s);
    }
    let local = read_local(s)?;
    let mut buf = local.to_vec();
    let split = below.min(buf.len() as u64) as usize;
    let n = source
        .read_at(s.no, 0, &mut buf[..split])
        .map_err(|e| Error::Io(format!("reading segment {} back", s.no.0), e))?;
    if n != split {
        return Err(Error::Bucket(format!(
            "segment {}: {n} of its first {split} bytes in the bucket",
            s.no.0
        )));
    }
    Ok(buf.into())
}

/// Reads what generation `c` needs of segment `s`: the whole file, or its
/// first `len` bytes. The file must still be that segment afterwards (a
/// retired segment is renamed away, and a reused one overwritten).
fn read_local(s: &CommittedSegment) -> Result<bytes::Bytes> {
    let p = &s.path;
    let what = || p.display().to_string();
    let retired = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let f = match std::fs::File::open(p) {
        Ok(f) => f,
        Err(e) if retired(&e) => return Err(Error::Retired(what())),
        Err(e) => return Err(Error::Io(format!("opening {}", what()), e)),
    };
    let meta = f
        .metadata()
        .map_err(|e| Error::Io(format!("reading {}", what()), e))?;
    let want = s.len.unwrap_or(meta.len());
    let mut buf = vec![0u8; want as usize];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, 0)
        .map_err(|e| Error::Io(format!("reading {} bytes of {}", want, what()), e))?;
    match std::fs::metadata(p) {
        Ok(m) if m.ino() == meta.ino() && m.dev() == meta.dev() => Ok(buf.into()),
        Ok(_) => Err(Error::Retired(what())),
        Err(e) if retired(&e) => Err(Error::Retired(what())),
        Err(e) => Err(Error::Io(format!("checking {}", what()), e)),
    }
}

/// Puts `data` at `key` create-only; an object already there counts as
/// this one when `same` says so (an earlier attempt whose answer was lost,
/// or an earlier process's upload of the same immutable bytes).
pub(crate) async fn put_once(
    remote: &Remote,
    rel: &str,
    data: bytes::Bytes,
    same: impl AsyncFnOnce(&Remote, &object_store::path::Path) -> Result<bool>,
) -> Result<bool> {
    let key = remote.key(rel);
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match remote
        .store()
        .put_opts(&key, PutPayload::from_bytes(data), opts)
        .await
    {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => {
            if same(remote, &key).await? {
                Ok(false)
            } else {
                Err(Error::Bucket(format!("{rel} exists with other contents")))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Uploads generation `c`: its missing segment objects (started in log
/// order, a few at once), then its commit point.
async fn upload_generation(shared: &Shared, c: &Committed, known: &mut Known) -> Result<Manifest> {
    let remote = &shared.remote;
    let missing: u64 = c
        .segments
        .iter()
        .filter(|s| !known.contains_key(&(s.no.0, s.len)))
        .map(|s| s.len.unwrap_or_else(|| seg_len_hint(s)))
        .sum();
    {
        let mut st = shared.stats.lock();
        if c.generation >= st.local_generation {
            st.pending_bytes = missing;
        }
    }
    let plan: Vec<_> = c
        .segments
        .iter()
        .map(|s| {
            let have = known.get(&(s.no.0, s.len)).cloned();
            let key = have
                .as_ref()
                .map(|(k, _, _)| k.clone())
                .unwrap_or_else(|| segment_key(s.no, shared.lease(), s.len));
            (s, key, have)
        })
        .collect();
    let jobs = plan.into_iter().map(|(s, key, have)| async move {
        if let Some((_, len, crc)) = have {
            return Ok::<_, Error>((s.clone(), key, len, crc, false));
        }
        let s2 = s.clone();
        let src = shared.source.clone();
        let data = tokio::task::spawn_blocking(move || read_segment(&s2, &src))
            .await
            .map_err(|e| Error::Io("reading a segment".into(), std::io::Error::other(e)))??;
        let (len, crc) = (data.len() as u64, crc32fast_hash(&data));
        let put = put_once(
            remote,
            &key,
            data,
            async |r: &Remote, k: &object_store::path::Path| {
                Ok(r.store().head(k).await?.size == len)
            },
        )
        .await?;
        Ok((s.clone(), key, len, crc, put))
    });
    let mut objects = Vec::with_capacity(c.segments.len());
    let mut done = futures_util::stream::iter(jobs).buffered(shared.opts.concurrency.max(1));
    while let Some(r) = done.next().await {
        let (s, key, len, crc, put) = r?;
        known.insert((s.no.0, s.len), (key.clone(), len, crc));
        {
            let mut st = shared.stats.lock();
            if put {
                st.uploaded_bytes += len;
                st.uploaded_objects += 1;
            }
            if c.generation >= st.local_generation {
                st.pending_bytes = st.pending_bytes.saturating_sub(len);
            }
        }
        objects.push((s, key, len, crc));
    }
    drop(done);
    let m = Manifest::new(c, shared.lease(), &objects);
    let manifest = m.encode();
    let mlen = manifest.len() as u64;
    let expected = manifest.clone();
    // Fencing: no commit point once a newer lease exists; and (remote
    // mode) none counts for flushes waiting on it unless the lease still
    // held after it.
    crate::lease::check(remote, shared.lease()).await?;
    let put = put_once(
        remote,
        &generation_key(CommitKey {
            lease: shared.lease(),
            generation: c.generation,
        }),
        manifest.into(),
        async |r: &Remote, k: &object_store::path::Path| {
            Ok(r.store().get(k).await?.bytes().await?.as_ref() == expected.as_slice())
        },
    )
    .await
    .map_err(|e| match e {
        Error::Bucket(_) => Error::Fenced(c.generation),
        e => e,
    })?;
    if put {
        let mut st = shared.stats.lock();
        st.uploaded_bytes += mlen;
        st.uploaded_objects += 1;
    }
    if shared.opts.durability == Durability::Remote {
        // Flushes waiting may be answered by this commit point.
        crate::lease::check(remote, shared.lease()).await?;
    }
    tracing::debug!(
        generation = c.generation,
        "generation committed in the bucket"
    );
    Ok(m)
}

/// A sealed segment's size on disk (for the pending-bytes counter before
/// it is read); 0 when it cannot be seen.
fn seg_len_hint(s: &CommittedSegment) -> u64 {
    std::fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0)
}

fn crc32fast_hash(b: &[u8]) -> u32 {
    crc32fast::hash(b)
}

/// With a cache bound: a cache pass every [`CACHE_WATCH`] besides the one
/// after each commit, so that while uploads fail (no generation commits)
/// the directory is still measured and, over the bound, writes needing a
/// new segment are refused instead of filling the disk.
fn cache_watch_loop(shared: Arc<Shared>) {
    loop {
        {
            let mut w = shared.work.lock();
            let until = Instant::now() + CACHE_WATCH;
            while !w.stop_ticker && !shared.cv.wait_until(&mut w, until).timed_out() {}
            if w.stop_ticker {
                return;
            }
        }
        cache_pass(&shared, false);
    }
}

/// Checkpoints the store every interval when its log holds records the
/// newest generation lacks (compared at that generation's replay point,
/// so records appended while it was committed count), or when the upload
/// loop asks (a generation it could not copy).
fn ticker_loop(shared: Arc<Shared>, store: Store) {
    loop {
        let forced = {
            let mut w = shared.work.lock();
            let until = Instant::now() + shared.opts.checkpoint_interval;
            while !w.stop_ticker && !w.want_checkpoint {
                if shared.cv.wait_until(&mut w, until).timed_out() {
                    break;
                }
            }
            if w.stop_ticker {
                return;
            }
            std::mem::take(&mut w.want_checkpoint)
        };
        if forced || store.op_stats().log_bytes != shared.covered.load(Ordering::Relaxed) {
            if let Err(e) = store.checkpoint() {
                tracing::warn!(error = %e, "checkpoint for the object store failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error sending request")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn failures_are_described_with_their_causes() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = Error::Remote(object_store::Error::Generic {
            store: "S3",
            source: Box::new(Outer(refused)),
        });
        let m = describe(&e);
        assert!(
            m.contains("error sending request: Connection refused"),
            "{m}"
        );
        // A cause already in the message is not repeated.
        let e = Error::Io("reading x".into(), std::io::Error::other("gone"));
        assert_eq!(describe(&e), "reading x: gone");
        let quota =
            std::io::Error::other("403 Forbidden: <Error><Code>QuotaExceeded</Code></Error>");
        let m = describe(&Error::Remote(object_store::Error::Generic {
            store: "S3",
            source: Box::new(quota),
        }));
        assert!(m.starts_with("the bucket is over its quota"), "{m}");
    }
}
