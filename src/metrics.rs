//! `blockd serve --metrics-listen`: Prometheus metrics (text format 0.0.4,
//! with the `prometheus-client` crate) at `/metrics` on their own listener.
//!
//! - HTTP: requests by dialect and status, a latency histogram by dialect
//!   (fed by the API's [`api::RequestObserver`] hook);
//! - NBD: per volume (object id) requests and errors by op, bytes read and
//!   written, a latency histogram, connected clients, requests delayed by
//!   QoS limits and the seconds they waited (read at scrape time from
//!   `nbd_server::metrics`);
//! - engine: metadata cache hits and misses (and whether a miss was read
//!   outside the store lock), a histogram of store-lock hold times with
//!   the longest hold by holder, log bytes, checkpoints, reclaim passes,
//!   failures (read at scrape time from [`engine::Store::op_stats`]);
//! - object store (`--object-store`): bytes not yet uploaded, generations
//!   committed locally and in the bucket, bytes uploaded, failed attempts,
//!   ranged GETs and their bytes, bytes evicted, the data directory size
//!   under --cache-dir-size, objects deleted from the bucket.
//!
//! **Invariant:** the front ends and the engine know nothing of this
//! format: they keep plain atomics; this file maps them at scrape time.

use anyhow::{bail, Context, Result};
use nbd_server::metrics::{LatencySnapshot, NbdMetrics, Op, VolumeSnapshot};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// Upper bounds (seconds) of the HTTP latency histogram.
const HTTP_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<Labels, Counter>,
    http_latency: HistogramFamily,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Metrics over `store` and the NBD server's counters.
    pub fn new(store: engine::Store, nbd: Arc<NbdMetrics>) -> Arc<Metrics> {
        let mut registry = Registry::default();
        let http_requests = Family::<Labels, Counter>::default();
        let http_latency: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(HTTP_BUCKETS));
        registry.register(
            "blockd_http_requests",
            "API requests answered, by dialect and status",
            http_requests.clone(),
        );
        registry.register(
            "blockd_http_request_duration_seconds",
            "API request latency (head received to response ready), by dialect",
            http_latency.clone(),
        );
        registry.register_collector(Box::new(NbdCollector(nbd)));
        registry.register_collector(Box::new(EngineCollector(store)));
        registry.register_collector(Box::new(TierCollector));
        Arc::new(Metrics {
            registry,
            http_requests,
            http_latency,
        })
    }

    /// The metrics now, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

impl api::RequestObserver for Metrics {
    fn observe(&self, r: &api::RequestRecord<'_>) {
        let dialect = r.dialect.name().to_string();
        self.http_requests
            .get_or_create(&vec![
                ("dialect", dialect.clone()),
                ("status", r.status.to_string()),
            ])
            .inc();
        self.http_latency
            .get_or_create(&vec![("dialect", dialect)])
            .observe(r.latency.as_secs_f64());
    }
}

/// A histogram from buckets counted elsewhere.
struct ConstHistogram<'a>(&'a LatencySnapshot);

impl EncodeMetric for ConstHistogram<'_> {
    fn encode(&self, mut e: MetricEncoder) -> Result<(), std::fmt::Error> {
        // The snapshot's buckets are cumulative; the encoder sums the
        // counts it is given, so it gets each bucket's own count (passing
        // the cumulative ones made every bucket past the first overstate,
        // above the total).
        let mut below = 0;
        let own: Vec<(f64, u64)> = self
            .0
            .buckets
            .iter()
            .map(|&(le, n)| {
                let own = n.saturating_sub(below);
                below = n;
                (le, own)
            })
            .collect();
        e.encode_histogram::<NoLabelSet>(
            self.0.sum_secs,
            self.0.count,
            &own,
            None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Encodes one metric family: `(labels, value)` pairs.
fn family<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    items: impl IntoIterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut d = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, m) in items {
        m.encode(d.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One unlabelled counter.
fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// One unlabelled counter of seconds.
fn seconds(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    d: std::time::Duration,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(d.as_secs_f64()).encode(enc.encode_descriptor(
        name,
        help,
        None,
        MetricType::Counter,
    )?)
}

/// One counter per volume and op, picked from each snapshot by `pick`.
fn by_op(
    vols: &[VolumeSnapshot],
    pick: fn(&VolumeSnapshot) -> &[(Op, u64)],
) -> Vec<(Labels, ConstCounter)> {
    let mut out = Vec::new();
    for v in vols {
        for &(op, n) in pick(v) {
            let labels = vec![("volume", v.volume.clone()), ("op", op.name().to_string())];
            out.push((labels, ConstCounter::new(n)));
        }
    }
    out
}

/// NBD counters, read at scrape time.
#[derive(Debug)]
struct NbdCollector(Arc<NbdMetrics>);

impl prometheus_client::collector::Collector for NbdCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let vols = self.0.snapshot();
        let vol = |v: &str| vec![("volume", v.to_string())];
        family(
            &mut enc,
            "blockd_nbd_requests",
            "NBD requests by volume and op (errors included)",
            MetricType::Counter,
            by_op(&vols, |v| v.requests.as_slice()),
        )?;
        family(
            &mut enc,
            "blockd_nbd_errors",
            "NBD requests that failed or were refused, by volume and op",
            MetricType::Counter,
            by_op(&vols, |v| v.errors.as_slice()),
        )?;
        family(
            &mut enc,
            "blockd_nbd_read_bytes",
            "Bytes returned by NBD reads, by volume",
            MetricType::Counter,
            vols.iter()
                .map(|v| (vol(&v.volume), ConstCounter::new(v.bytes_read))),
        )?;
        family(
            &mut enc,
            "blockd_nbd_written_bytes",
            "Bytes stored by NBD writes, by volume",
            MetricType::Counter,
            vols.iter()
                .map(|v| (vol(&v.volume), ConstCounter::new(v.bytes_written))),
        )?;
        family(
            &mut enc,
            "blockd_nbd_clients",
            "NBD clients connected now, by volume",
            MetricType::Gauge,
            vols.iter()
                .map(|v| (vol(&v.volume), ConstGauge::new(v.clients as i64))),
        )?;
        family(
            &mut enc,
            "blockd_nbd_throttled_requests",
            "NBD requests delayed by the volume's I/O limits (QoS), by volume",
            MetricType::Counter,
            vols.iter()
                .map(|v| (vol(&v.volume), ConstCounter::new(v.throttled))),
        )?;
        family(
            &mut enc,
            "blockd_nbd_throttled_seconds",
            "Seconds NBD requests were delayed by the volume's I/O limits, by volume",
            MetricType::Counter,
            vols.iter()
                .map(|v| (vol(&v.volume), ConstCounter::new(v.throttled_secs))),
        )?;
        family(
            &mut enc,
            "blockd_nbd_request_duration_seconds",
            "NBD request latency (parsed to answered), by volume",
            MetricType::Histogram,
            vols.iter()
                .map(|v| (vol(&v.volume), ConstHistogram(&v.latency))),
        )
    }
}

/// The object-storage uploader's counters (`serve --object-store`), read
/// at scrape time; nothing without it.
#[derive(Debug)]
struct TierCollector;

impl prometheus_client::collector::Collector for TierCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = crate::tier::stats() else {
            return Ok(());
        };
        let gauge = |enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64| {
            ConstGauge::new(v as i64).encode(enc.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)
        };
        gauge(
            &mut enc,
            "blockd_tier_pending_bytes",
            "Bytes of the newest locally committed generation not yet in the object store",
            s.pending_bytes,
        )?;
        gauge(
            &mut enc,
            "blockd_tier_local_generation",
            "Newest generation committed locally",
            s.local_generation,
        )?;
        gauge(
            &mut enc,
            "blockd_tier_remote_generation",
            "Newest generation committed in the object store",
            s.remote_generation,
        )?;
        counter(
            &mut enc,
            "blockd_tier_uploaded_bytes",
            "Bytes uploaded to the object store",
            s.uploaded_bytes,
        )?;
        counter(
            &mut enc,
            "blockd_tier_upload_errors",
            "Failed upload attempts (each retried)",
            s.errors,
        )?;
        counter(
            &mut enc,
            "blockd_tier_range_gets",
            "Ranged GETs of segment bytes not on the local disk",
            s.range_gets,
        )?;
        counter(
            &mut enc,
            "blockd_tier_range_bytes",
            "Bytes fetched by ranged GETs",
            s.range_bytes,
        )?;
        counter(
            &mut enc,
            "blockd_tier_evicted_bytes",
            "Local segment bytes evicted (--cache-dir-size)",
            s.evicted_bytes,
        )?;
        gauge(
            &mut enc,
            "blockd_tier_cache_dir_bytes",
            "Data directory bytes at the last cache pass (0 without --cache-dir-size)",
            s.cache_dir_bytes,
        )?;
        gauge(
            &mut enc,
            "blockd_tier_unuploaded_log_bytes",
            "Bytes of log written locally past what the object store holds (what a restore now would lack)",
            s.unuploaded_log_bytes,
        )?;
        gauge(
            &mut enc,
            "blockd_tier_remote_durability",
            "1 when flushes are acknowledged only once in the object store (--durability remote), else 0",
            u64::from(s.durability == tier::Durability::Remote),
        )?;
        gauge(
            &mut enc,
            "blockd_tier_lease",
            "The object store lease this server holds",
            s.lease,
        )?;
        gauge(
            &mut enc,
            "blockd_tier_fenced_by_lease",
            "The newer lease that fenced this server (0: not fenced)",
            s.fenced_by,
        )?;
        counter(
            &mut enc,
            "blockd_tier_tail_bytes",
            "Log bytes uploaded as tail objects (remote durability)",
            s.tail_bytes,
        )?;
        counter(
            &mut enc,
            "blockd_tier_remote_flushes",
            "Flushes acknowledged once the object store held the log up to them",
            s.remote_flushes,
        )?;
        counter(
            &mut enc,
            "blockd_tier_remote_flush_failures",
            "Flushes failed because the object store did not take the log in time, or the server was fenced",
            s.remote_flush_failures,
        )?;
        counter(
            &mut enc,
            "blockd_tier_deleted_objects",
            "Objects deleted from the object store (old commit points and segment objects)",
            s.deleted_objects + s.deleted_generations,
        )
    }
}

/// Engine counters, read at scrape time.
struct EngineCollector(engine::Store);

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineCollector")
    }
}

impl prometheus_client::collector::Collector for EngineCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.op_stats();
        let cache = |kind: &str, result: &str| {
            vec![("cache", kind.to_string()), ("result", result.to_string())]
        };
        family(
            &mut enc,
            "blockd_engine_cache_lookups",
            "Metadata cache lookups by cache (node, table) and result (hit, miss)",
            MetricType::Counter,
            [
                (cache("node", "hit"), ConstCounter::new(s.node_cache_hits)),
                (
                    cache("node", "miss"),
                    ConstCounter::new(s.node_cache_misses),
                ),
                (cache("table", "hit"), ConstCounter::new(s.table_cache_hits)),
                (
                    cache("table", "miss"),
                    ConstCounter::new(s.table_cache_misses),
                ),
            ],
        )?;
        let place = |p: &str| vec![("lock", p.to_string())];
        family(
            &mut enc,
            "blockd_engine_metadata_reads",
            "Metadata pages read from disk: outside the store lock (client I/O), under it from the page cache without waiting (client I/O), or under it (replay, checkpoints, frees, fallbacks)",
            MetricType::Counter,
            [
                (place("outside"), ConstCounter::new(s.metadata_reads_unlocked)),
                (place("held"), ConstCounter::new(s.metadata_reads_locked)),
                (place("cached"), ConstCounter::new(s.metadata_reads_cached)),
            ],
        )?;
        let holder = |h: &str| vec![("holder", h.to_string())];
        let holds: Vec<_> = s
            .holds_by_holder
            .iter()
            .map(|h| (holder(h.holder), lock_holds(h)))
            .collect();
        family(
            &mut enc,
            "blockd_engine_state_lock_hold_seconds",
            "Store-lock hold times by holder: client I/O, checkpoints, cleaner batches, free steps",
            MetricType::Histogram,
            holds.iter().map(|(l, h)| (l.clone(), ConstHistogram(h))),
        )?;
        family(
            &mut enc,
            "blockd_engine_state_lock_longest_hold_seconds",
            "Longest store-lock hold since the store opened, by holder",
            MetricType::Gauge,
            [
                (
                    holder("io"),
                    ConstGauge::new(s.longest_io_hold.as_secs_f64()),
                ),
                (
                    holder("checkpoint"),
                    ConstGauge::new(s.longest_checkpoint_hold.as_secs_f64()),
                ),
                (
                    holder("reclaim"),
                    ConstGauge::new(s.longest_reclaim_hold.as_secs_f64()),
                ),
                (
                    holder("free"),
                    ConstGauge::new(s.longest_free_hold.as_secs_f64()),
                ),
            ],
        )?;
        let e = &mut enc;
        counter(
            e,
            "blockd_engine_client_metadata_reads_locked",
            "Metadata pages a client operation read under the store lock (0 unless a prefetch missed one)",
            s.io_metadata_reads_locked,
        )?;
        counter(
            e,
            "blockd_engine_fetch_retries",
            "Pages fetched outside the store lock that had moved meanwhile (refetched)",
            s.fetch_retries,
        )?;
        counter(
            e,
            "blockd_engine_checkpoint_table_leaves_sliced",
            "Chunk-table leaves checkpoints wrote in slices, before their final hold",
            s.table_leaves_sliced,
        )?;
        counter(
            e,
            "blockd_engine_checkpoint_table_leaves_written",
            "Chunk-table leaves checkpoints wrote, in slices and final holds",
            s.table_leaves_written,
        )?;
        counter(
            e,
            "blockd_engine_log_bytes",
            "Bytes of records appended to the log",
            s.log_bytes,
        )?;
        counter(
            e,
            "blockd_engine_checkpoints",
            "Checkpoints run",
            s.checkpoints,
        )?;
        seconds(
            e,
            "blockd_engine_checkpoint_seconds",
            "Time spent in checkpoints",
            s.checkpoint_time,
        )?;
        counter(
            e,
            "blockd_engine_checkpoint_errors",
            "Checkpoints that failed",
            s.checkpoint_errors,
        )?;
        counter(
            e,
            "blockd_engine_reclaims",
            "Reclaim passes run",
            s.reclaims,
        )?;
        seconds(
            e,
            "blockd_engine_reclaim_seconds",
            "Time spent in reclaim passes",
            s.reclaim_time,
        )?;
        counter(
            e,
            "blockd_engine_reclaim_errors",
            "Reclaim passes that failed",
            s.reclaim_errors,
        )?;
        counter(
            e,
            "blockd_engine_segments_freed",
            "Log segments freed by reclaim",
            s.segments_freed,
        )?;
        counter(
            e,
            "blockd_engine_fail_stops",
            "Times the store failed and stopped taking writes",
            s.fail_stops,
        )
    }
}

/// One holder's lock-hold buckets as a cumulative histogram.
fn lock_holds(h: &engine::HolderHolds) -> LatencySnapshot {
    let mut buckets = Vec::new();
    let mut total = 0;
    for (&bound_us, &n) in engine::HOLD_BOUNDS_US.iter().zip(&h.buckets) {
        total += n;
        buckets.push((bound_us as f64 / 1e6, total));
    }
    LatencySnapshot {
        buckets,
        count: h.buckets.iter().sum(),
        sum_secs: h.time.as_secs_f64(),
    }
}

/// Serves `/metrics` on `addr` (a loopback address unless `allow_remote`)
/// until `shutdown` resolves; returns the bound address and the server
/// future.
pub fn bind(
    metrics: Arc<Metrics>,
    addr: &str,
    allow_remote: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()>)> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("bad --metrics-listen address {addr} (want IP:PORT)"))?;
    if !addr.ip().is_loopback() && !allow_remote {
        bail!(
            "--metrics-listen {addr} is not a loopback address: add --metrics-allow-remote to serve metrics to other hosts"
        );
    }
    use warp::Filter;
    let route = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || {
            let mut r = warp::http::Response::new(metrics.render());
            r.headers_mut().insert(
                "content-type",
                warp::http::HeaderValue::from_static(
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                ),
            );
            r
        });
    warp::serve(route)
        .try_bind_with_graceful_shutdown(addr, shutdown)
        .with_context(|| format!("cannot listen on {addr} for metrics"))
}
