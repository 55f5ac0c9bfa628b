//! `blockd serve`: opens the store and serves it to front ends (NBD over TCP
//! and a Unix socket, the REST API, optionally the FUSE export) until SIGTERM or SIGINT; then stops accepting,
//! finishes the requests in flight, flushes, checkpoints and exits 0.

use anyhow::{Context, Result};
use engine::{ByteSize, Store, StoreOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where the REST API listens unless told otherwise.
const DEFAULT_API_LISTEN: &str = "127.0.0.1:8776";
/// The environment variable naming the auth file (`serve --auth-file`,
/// and the offline `--tenant`).
pub(crate) const AUTH_FILE_ENV: &str = "BLOCKD_AUTH_FILE";

/// Whether NBD clients must use TLS (when a certificate is given).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsChoice {
    /// Every client must send STARTTLS first.
    Require,
    /// STARTTLS is offered; plaintext clients are served too.
    Allow,
}

/// Whether NBD clients must prove they may open an export.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NbdAuth {
    /// On when the API is served and the NBD TCP listener is not
    /// loopback-only.
    Auto,
    /// Only attachment secrets and tenants' client certificates open exports.
    On,
    /// Every object is open to whoever reaches a listener.
    Off,
}

/// The metadata keys NBD authorization reads (the API writes them);
/// attachment secrets work either way, `enforce` makes them necessary.
fn access_policy(enforce: bool) -> nbd_server::AccessPolicy {
    nbd_server::AccessPolicy {
        secret_key: api::meta::NBD_SECRET.to_string(),
        tenant_key: api::meta::TENANT.to_string(),
        enforce,
    }
}

/// Whether `--nbd-auth` turns authorization on, given the API and the NBD
/// TCP listener's bound address (`None`: Unix socket only).
fn nbd_auth_on(choice: NbdAuth, api: bool, tcp: Option<std::net::SocketAddr>) -> bool {
    match choice {
        NbdAuth::On => true,
        NbdAuth::Off => false,
        NbdAuth::Auto => api && tcp.is_some_and(|a| !a.ip().is_loopback()),
    }
}

/// Loads the NBD TLS material named by the options, if any.
fn nbd_tls(args: &ServeArgs) -> Result<Option<nbd_server::Tls>> {
    let (Some(cert), Some(key)) = (&args.nbd_tls_cert, &args.nbd_tls_key) else {
        return Ok(None);
    };
    let files = nbd_server::TlsFiles {
        cert,
        key,
        client_ca: args.nbd_tls_client_ca.as_deref(),
    };
    let mode = match args.nbd_tls {
        TlsChoice::Require => nbd_server::TlsMode::Require,
        TlsChoice::Allow => nbd_server::TlsMode::Allow,
    };
    let tls = nbd_server::Tls::load(&files, mode).context("loading the NBD TLS certificate")?;
    tracing::info!(
        required = mode == nbd_server::TlsMode::Require,
        client_certificates = tls.client_auth(),
        "NBD STARTTLS on"
    );
    Ok(Some(tls))
}

/// Options of `blockd serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// TCP address for NBD ("" to serve on the Unix socket only).
    #[arg(long, default_value = "127.0.0.1:10809")]
    nbd_listen: String,
    /// Unix socket for NBD [default: <data-dir>/nbd.sock].
    #[arg(long)]
    nbd_socket: Option<PathBuf>,
    /// Object (name or id) served to clients asking for the empty export
    /// name; without it there is no default export.
    #[arg(long)]
    default_export: Option<String>,
    /// Most NBD connections at once; more are closed on accept.
    #[arg(long, default_value_t = 256)]
    nbd_max_connections: usize,
    /// Seconds a client may take to negotiate.
    #[arg(long, default_value_t = 10)]
    nbd_handshake_timeout: u64,
    /// Most requests in flight per NBD connection.
    #[arg(long, default_value_t = 128)]
    nbd_max_in_flight: usize,
    /// Most engine calls running at once for NBD (a bounded pool of
    /// blocking threads shared by all connections).
    #[arg(long, default_value_t = 64)]
    nbd_engine_threads: usize,
    /// PEM certificate chain for NBD STARTTLS (with --nbd-tls-key).
    #[arg(long, requires = "nbd_tls_key")]
    nbd_tls_cert: Option<PathBuf>,
    /// PEM private key for NBD STARTTLS (with --nbd-tls-cert).
    #[arg(long, requires = "nbd_tls_cert")]
    nbd_tls_key: Option<PathBuf>,
    /// PEM CA certificates NBD clients' certificates must chain to; without
    /// it clients are not asked for a certificate.
    #[arg(long, requires = "nbd_tls_cert")]
    nbd_tls_client_ca: Option<PathBuf>,
    /// With a certificate: "require" refuses every NBD option but STARTTLS
    /// until the client upgrades; "allow" serves plaintext clients too.
    #[arg(long, value_enum, default_value_t = TlsChoice::Require)]
    nbd_tls: TlsChoice,
    /// NBD authorization: with it, a client opens a volume only through the
    /// export name its attachment returned (revoked on detach) or as the
    /// tenant its verified TLS client certificate names (subject CN).
    /// "auto": on when the API is served and the NBD TCP listener is not
    /// loopback-only.
    #[arg(long, value_enum, default_value_t = NbdAuth::Auto)]
    nbd_auth: NbdAuth,
    /// Also mount the FUSE export here (volumes/, snapshots/, images/).
    #[arg(long)]
    fuse_mount: Option<PathBuf>,
    /// FUSE worker threads.
    #[arg(long, default_value_t = 4)]
    fuse_threads: usize,
    /// Seconds between online scrubs (0: only on demand, with SIGUSR1).
    #[arg(long, default_value_t = 86_400)]
    scrub_interval: u64,
    /// Most bytes per second an online scrub reads.
    #[arg(long, default_value = "64M")]
    scrub_rate: engine::ByteSize,
    /// TCP address of the REST API ("" for none) [default: 127.0.0.1:8776].
    #[arg(long)]
    api_listen: Option<String>,
    /// API tenants and secrets (TOML) [default: <data-dir>/auth.toml,
    /// created with tenant "demo" and random secrets when absent]. The
    /// offline `--tenant` reads the same file.
    #[arg(long, env = AUTH_FILE_ENV)]
    auth_file: Option<PathBuf>,
    /// The only directory the Danube Cloud image import may read `file://`
    /// manifests and files from [default: <data-dir>/import].
    #[arg(long)]
    image_import_dir: Option<PathBuf>,
    /// Largest image file the Danube Cloud image import accepts.
    #[arg(long, default_value = "64G")]
    image_import_max: engine::ByteSize,
    /// A host (HOST or HOST:PORT; without a port, the scheme's default)
    /// the image import may fetch http(s) URLs from; repeatable. Without
    /// it remote imports are refused. Loopback, private, link-local and
    /// other non-public addresses are refused even for listed hosts.
    #[arg(long, value_name = "HOST[:PORT]")]
    image_import_allow: Vec<api::AllowedHost>,
    /// Most HTTP connections to the API at once; more wait in the accept
    /// queue until one closes.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    http_max_connections: u32,
    /// Seconds a client may take to send a whole request head (fractions
    /// allowed); slower connections are closed.
    #[arg(long, default_value = "10", value_name = "SECONDS")]
    http_header_timeout: Seconds,
    /// Seconds an API connection may sit with no request in flight and no
    /// bytes moving before it is closed.
    #[arg(long, default_value = "60", value_name = "SECONDS")]
    http_idle_timeout: Seconds,
    /// Seconds a client may take to send a whole request body once the
    /// server reads it; slower ones get 408.
    #[arg(long, default_value = "30", value_name = "SECONDS")]
    http_body_timeout: Seconds,
    /// Most API requests reading their bodies at once (each holds at most
    /// 1 MiB); others wait.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    http_max_body_readers: u32,
    /// TCP address serving Prometheus metrics at /metrics (none without it).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Let --metrics-listen be a non-loopback address.
    #[arg(long, requires = "metrics_listen")]
    metrics_allow_remote: bool,
    /// The global --object-store (s3://BUCKET/PREFIX; file:///DIR): copy
    /// every committed generation there (sealed segments in log order, then
    /// a create-only commit point per generation; docs/design.md, "Object
    /// storage").
    #[arg(skip)]
    pub(crate) object_store: Option<String>,
    /// With --object-store: checkpoint this often when the log has grown,
    /// so the bucket lags by at most about this long plus the upload.
    #[arg(long, default_value = "10", value_name = "SECONDS")]
    object_store_interval: Seconds,
    /// With --object-store: at stop, how long to wait for the final
    /// generation to reach the bucket (the exit status is 2 when it did not).
    #[arg(long, default_value = "300", value_name = "SECONDS")]
    object_store_wait: Seconds,
    /// With --object-store: keep the data directory's disk use under this
    /// (like 20G) by evicting sealed segments committed in the bucket,
    /// least recently read first, and reading them back by range when
    /// needed; writes needing a new segment get ENOSPC while it cannot be
    /// kept (uploads lag). Without it the disk keeps everything.
    #[arg(long, value_name = "BYTES")]
    cache_dir_size: Option<ByteSize>,
    /// With --object-store: when an NBD FLUSH (or FUA write) is
    /// acknowledged. `local` (the default): after the local fsync; the
    /// bucket lags by up to --object-store-interval plus an upload and holds
    /// a consistent prefix. `remote`: only once every record before it is
    /// in the bucket (uploaded as tail objects). Also `durability` in the
    /// --object-store-config file.
    #[arg(long, value_name = "local|remote")]
    durability: Option<tier::Durability>,
    /// With --durability remote: how long a flush waits for the bucket
    /// before it fails with EIO (the upload is retried meanwhile).
    #[arg(long, default_value = "30", value_name = "SECONDS")]
    remote_flush_timeout: Seconds,
    /// With --object-store: take the store's lease even when another
    /// server took it since this data directory last held it, fencing that
    /// server (its writes and flushes fail from then on); this directory's
    /// state is committed over the bucket's.
    #[arg(long)]
    take_over: bool,
}

/// A timeout given in seconds on the command line: 0.001 to 86,400,
/// fractions allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub Duration);

impl std::str::FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a number of seconds"))?;
        if !(0.001..=86_400.0).contains(&v) {
            return Err(format!("'{s}': give 0.001 to 86400 seconds"));
        }
        Ok(Seconds(Duration::from_secs_f64(v)))
    }
}

impl ServeArgs {
    /// The API listener's limits the options ask for.
    fn http_limits(&self) -> api::HttpLimits {
        api::HttpLimits {
            max_connections: self.http_max_connections as usize,
            header_timeout: self.http_header_timeout.0,
            idle_timeout: self.http_idle_timeout.0,
            body_timeout: self.http_body_timeout.0,
            max_body_readers: self.http_max_body_readers as usize,
        }
    }
}

/// Set (in debug builds only) to let image imports connect to loopback
/// addresses: for the test suite's local file server, never for use.
const TEST_IMPORT_LOOPBACK: &str = "BLOCKD_TEST_IMPORT_LOOPBACK";

/// The remote image import policy the options ask for.
fn import_policy(args: &ServeArgs) -> api::ImportPolicy {
    let policy = api::ImportPolicy::new(args.image_import_allow.clone());
    if cfg!(debug_assertions) && std::env::var_os(TEST_IMPORT_LOOPBACK).is_some() {
        tracing::warn!("{TEST_IMPORT_LOOPBACK} set: image imports may reach loopback (tests only)");
        return policy.allow_loopback_for_tests();
    }
    policy
}

/// Runs the server on the store in `data_dir`.
pub fn run(data_dir: &Path, args: ServeArgs) -> Result<()> {
    if args.object_store.is_none() && args.cache_dir_size.is_some() {
        anyhow::bail!("--cache-dir-size needs --object-store");
    }
    if args.object_store.is_none() && (args.durability.is_some() || args.take_over) {
        anyhow::bail!("--durability and --take-over need --object-store");
    }
    if let Some(b) = args.cache_dir_size {
        if b.0 < 16 << 20 {
            anyhow::bail!("--cache-dir-size must be at least 16M (got {b})");
        }
    }
    // A store with remote segments (evicted, or lazily restored) reads
    // them through the bucket from the moment it opens.
    let source = match &args.object_store {
        Some(url) => Some(crate::tier::source(url)?),
        None => None,
    };
    let store = Store::open(
        data_dir,
        StoreOptions {
            // Client writes never wait for housekeeping's checkpoints.
            background_reclaim: true,
            // Deletes, reverts and trims return at once; a thread frees.
            background_free: true,
            segment_source: source
                .clone()
                .map(|s| s as Arc<dyn engine::tiering::SegmentSource>),
            ..crate::cli::store_options(true)
        },
    )
    .with_context(|| format!("opening store {}", data_dir.display()))?;
    let mut uploader = match &args.object_store {
        Some(url) => Some(crate::tier::start(
            &store,
            url,
            crate::tier::StartOptions {
                interval: args.object_store_interval.0,
                cache_bound: args.cache_dir_size.map(|b| b.0),
                durability: args.durability,
                flush_timeout: args.remote_flush_timeout.0,
                take_over: args.take_over,
            },
            source.clone().expect("made with the URL"),
        )?),
        None => None,
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(128)
        .thread_name("blockd")
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let socket = args
        .nbd_socket
        .clone()
        .unwrap_or_else(|| data_dir.join("nbd.sock"));
    let fuse = match &args.fuse_mount {
        Some(dir) => Some(
            fuse_export::mount(store.clone(), dir, args.fuse_threads)
                .with_context(|| format!("mounting the FUSE export at {}", dir.display()))?,
        ),
        None => None,
    };
    let api = if args.api_listen.as_deref() == Some("") {
        None
    } else {
        let path = args
            .auth_file
            .clone()
            .unwrap_or_else(|| data_dir.join("auth.toml"));
        let (auth, created) = api::Auth::load_or_create(&path)?;
        if created {
            tracing::info!("API credentials created in {}", path.display());
        } else {
            tracing::info!("API credentials from {}", path.display());
        }
        let import_dir = args
            .image_import_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("import"));
        Some(
            api::ApiState::new(store.clone(), auth)
                .with_image_import(import_dir, args.image_import_max.0)
                .with_import_policy(import_policy(&args)),
        )
    };
    // The other commands reach the store through the server meanwhile.
    // (A data directory whose path is too long for a socket name still
    // serves; the commands then wait for the server to stop.)
    // Its object commands share the API's state (and lock); without an
    // API, a state of their own, with no tenants.
    let admin_state = match &api {
        Some(state) => state.clone(),
        None => api::ApiState::new(store.clone(), api::Auth::new(Vec::new())?),
    };
    let admin = match crate::admin::AdminServer::start(admin_state, data_dir) {
        Ok(a) => {
            let path = crate::admin::socket_path(data_dir);
            tracing::info!("admin socket {}", path.display());
            Some(a)
        }
        Err(e) => {
            tracing::warn!("no admin socket: {e:#}");
            None
        }
    };
    let interval = (args.scrub_interval > 0).then(|| Duration::from_secs(args.scrub_interval));
    let scrubber = crate::scrubber::Scrubber::start(store.clone(), interval, args.scrub_rate.0);
    let served = rt.block_on(serve(store.clone(), &args, &socket, api, &scrubber));
    drop(scrubber);
    drop(rt);
    if let Some(a) = admin {
        a.shutdown();
    }
    if let Some(m) = fuse {
        m.unmount().context("unmounting the FUSE export")?;
    }
    let _ = std::fs::remove_file(&socket);
    served?;
    store.flush().context("flushing the store")?;
    if let Some(u) = uploader.as_mut() {
        u.detach();
    }
    store.close().context("closing the store")?;
    if let Some(u) = uploader {
        tracing::info!("waiting for the upload of the final generation");
        let started = std::time::Instant::now();
        let s = u
            .finish(args.object_store_wait.0)
            .context("uploading the final generation")?;
        tracing::info!(
            "the bucket holds the final generation {} ({} bytes uploaded since start, \
             {:.3}s waited at stop)",
            s.remote_generation,
            s.uploaded_bytes,
            started.elapsed().as_secs_f64()
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// The NBD server's limits hook: a volume's Cinder QoS spec (consumer
/// `back-end` or `both`, through its volume type) as token buckets.
fn qos_hook(store: Store) -> nbd_server::LimitsHook {
    nbd_server::LimitsHook(Arc::new(move |o| {
        api::qos_back_end_specs(&store, o).map(|s| nbd_server::Limits::from_specs(&s))
    }))
}

async fn serve(
    store: Store,
    args: &ServeArgs,
    socket: &Path,
    api: Option<api::ApiState>,
    scrubber: &crate::scrubber::Scrubber,
) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing SIGUSR1 handler")?;
    // Bind first: "auto" authorization depends on where TCP listens.
    let tcp = if args.nbd_listen.is_empty() {
        None
    } else {
        Some(nbd_server::Server::bind_tcp(&args.nbd_listen).await?)
    };
    let tcp_addr = tcp.as_ref().map(|l| l.local_addr()).transpose()?;
    let auth = nbd_auth_on(args.nbd_auth, api.is_some(), tcp_addr);
    let tls = nbd_tls(args)?;
    let tls_required = tls
        .as_ref()
        .is_some_and(|t| t.mode() == nbd_server::TlsMode::Require);
    let config = nbd_server::Config {
        max_connections: args.nbd_max_connections,
        handshake_timeout: Duration::from_secs(args.nbd_handshake_timeout),
        max_in_flight: args.nbd_max_in_flight,
        default_export: args.default_export.clone(),
        engine_threads: args.nbd_engine_threads,
        tls,
        access: Some(access_policy(auth)),
        limits: api.as_ref().map(|_| qos_hook(store.clone())),
    };
    if auth {
        tracing::info!("NBD authorization on: attachment secrets and tenant certificates only");
    } else if tcp_addr.is_some_and(|a| !a.ip().is_loopback()) {
        tracing::warn!("NBD authorization off on a non-loopback listener: every volume is open to every client");
    }
    let server = nbd_server::Server::new(store.clone(), config);
    let mut tasks = Vec::new();
    let metrics = args
        .metrics_listen
        .as_ref()
        .map(|_| crate::metrics::Metrics::new(store, server.metrics()));
    let (metrics_stop, metrics_task) = match (&metrics, &args.metrics_listen) {
        (Some(m), Some(listen)) => {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let (bound, fut) =
                crate::metrics::bind(m.clone(), listen, args.metrics_allow_remote, async move {
                    let _ = rx.await;
                })?;
            tracing::info!("metrics on http://{bound}/metrics");
            (Some(tx), Some(tokio::spawn(fut)))
        }
        _ => (None, None),
    };
    let metrics = metrics.as_ref();
    if let Some(l) = tcp {
        tracing::info!("NBD listening on tcp {}", l.local_addr()?);
        tasks.push(server.serve_tcp(l));
    }
    let l = nbd_server::Server::bind_unix(socket)?;
    tracing::info!("NBD listening on unix {}", socket.display());
    tasks.push(server.serve_unix(l));
    let revoker = server.revoker();
    let api = api.map(|state| {
        state.with_nbd(api::NbdAccess {
            tcp: tcp_addr,
            unix: Some(socket.to_path_buf()),
            tls_required,
            auth,
            revoke: std::sync::Arc::new(move |id| {
                let n = revoker.revoke(id);
                tracing::info!(volume = %id, connections = n, "NBD attachment revoked");
            }),
        })
    });
    let (api_stop, api_task) = match api {
        Some(state) => {
            let listen = args.api_listen.as_deref().unwrap_or(DEFAULT_API_LISTEN);
            let addr = tokio::net::lookup_host(listen)
                .await
                .ok()
                .and_then(|mut a| a.next())
                .with_context(|| format!("bad --api-listen address {listen}"))?;
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let observer = metrics.map(|m| m.clone() as Arc<dyn api::RequestObserver>);
            match api::bind_limited(state, addr, args.http_limits(), observer, async move {
                let _ = rx.await;
            }) {
                Ok((bound, fut)) => {
                    tracing::info!("API listening on http://{bound}");
                    (Some(tx), Some(tokio::spawn(fut)))
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => (None, None),
    };
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM: finishing requests in flight");
                break;
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: finishing requests in flight");
                break;
            }
            _ = usr1.recv() => {
                tracing::info!("SIGUSR1: scrub requested");
                scrubber.trigger();
            }
        }
    }
    if let Some(tx) = api_stop {
        let _ = tx.send(());
    }
    if let Some(tx) = metrics_stop {
        let _ = tx.send(());
    }
    server.shutdown(Duration::from_secs(30)).await;
    if let Some(t) = api_task {
        if tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .is_err()
        {
            tracing::warn!("API requests still open after 30 s; stopping anyway");
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    if let Some(t) = metrics_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_authorization_follows_the_listeners() {
        let lo = Some("127.0.0.1:10809".parse().unwrap());
        let lo6 = Some("[::1]:10809".parse().unwrap());
        let any = Some("0.0.0.0:10809".parse().unwrap());
        assert!(!nbd_auth_on(NbdAuth::Auto, true, lo));
        assert!(!nbd_auth_on(NbdAuth::Auto, true, lo6));
        assert!(!nbd_auth_on(NbdAuth::Auto, true, None));
        assert!(nbd_auth_on(NbdAuth::Auto, true, any));
        assert!(!nbd_auth_on(NbdAuth::Auto, false, any));
        assert!(nbd_auth_on(NbdAuth::On, false, lo));
        assert!(!nbd_auth_on(NbdAuth::Off, true, any));
    }
}
