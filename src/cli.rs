//! Command-line parsing (clap) and the commands, offline or run by a
//! server for its admin socket: the store commands here, the object
//! commands (`volume`, `snapshot`, `image`, `clone`, `import`, `export`)
//! in `objects.rs`, through the API's domain layer ([`api::Operator`]):
//! the same rules (an attached volume is not deleted, quotas when acting
//! for a tenant) and, online, the same API-wide lock as HTTP requests.

use crate::objects;
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use engine::{ByteSize, ErrorKind, Store, StoreOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "blockd",
    version,
    about = "Block storage with instant snapshots and clones"
)]
struct Cli {
    /// The data directory holding the store.
    #[arg(
        long,
        global = true,
        env = "BLOCKD_DATA_DIR",
        default_value = "./blockd-data"
    )]
    data_dir: PathBuf,
    /// Segment file size of a store this command creates (existing stores
    /// keep theirs); 1M to 2G.
    #[arg(
        long,
        global = true,
        env = "BLOCKD_SEGMENT_SIZE",
        default_value = "64M"
    )]
    segment_size: ByteSize,
    /// Memory for cached (clean) map nodes and chunk-table pages; 1M to 1T.
    #[arg(long, global = true, env = "BLOCKD_CACHE_SIZE", default_value = "256M")]
    cache_size: ByteSize,
    /// Dirty metadata kept in memory before a checkpoint writes it out;
    /// 1M to 16G (the disk keeps this much free besides two segments).
    #[arg(long, global = true, env = "BLOCKD_DIRTY_LIMIT", default_value = "64M")]
    dirty_limit: ByteSize,
    /// Write large log records (client writes of 64 KiB and more) with
    /// O_DIRECT, so that flushes do not wait for page-cache writeback;
    /// `false` keeps every append in the page cache.
    #[arg(long, global = true, env = "BLOCKD_DIRECT_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    direct_log: bool,
    /// Act for this tenant of the auth file (object commands and export): see
    /// and change only its objects, make objects it owns, under its quota.
    /// Without it the operator sees everything and makes ownerless objects.
    #[arg(long, global = true, value_name = "ID")]
    tenant: Option<String>,
    /// The object store the store is uploaded to (s3://BUCKET/PREFIX;
    /// file:///DIR): `serve` copies every committed generation there,
    /// `restore` reads from it, and offline commands (`stats`, `check`,
    /// `export`, ...) read segments evicted or lazily restored through it.
    /// Endpoint, region and credentials come from the AWS_* environment or
    /// --object-store-config (docs/design.md, "Object storage").
    #[arg(long, global = true, env = "BLOCKD_OBJECT_STORE", value_name = "URL")]
    object_store: Option<String>,
    /// A TOML file of S3 settings (endpoint, region, access_key_id,
    /// secret_access_key, session_token, allow_http) overriding the AWS_*
    /// environment; keep it mode 0600.
    #[arg(
        long,
        global = true,
        env = "BLOCKD_OBJECT_STORE_CONFIG",
        value_name = "FILE"
    )]
    object_store_config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// How this process opens stores: the segment size of stores it creates
/// (`--segment-size`), and the memory bounds (`--cache-size`,
/// `--dirty-limit`).
#[derive(Clone, Copy)]
struct OpenBounds {
    segment_size: u64,
    cache_bytes: u64,
    dirty_limit_bytes: u64,
    direct_log: bool,
}

/// Set once from the command line, before any store is opened.
static BOUNDS: std::sync::OnceLock<OpenBounds> = std::sync::OnceLock::new();

/// The bucket's range reader, when an offline command was given
/// `--object-store`: stores it opens read remote segments through it.
static SOURCE: std::sync::OnceLock<std::sync::Arc<tier::RemoteSource>> = std::sync::OnceLock::new();

/// How this process opens a store: created when absent if `create`, with
/// the segment size and memory bounds the command line asked for.
pub(crate) fn store_options(create: bool) -> StoreOptions {
    let d = StoreOptions::default();
    let b = BOUNDS.get().copied().unwrap_or(OpenBounds {
        segment_size: d.segment_size,
        cache_bytes: d.cache_bytes,
        dirty_limit_bytes: d.dirty_limit_bytes,
        direct_log: d.direct_log_writes,
    });
    StoreOptions {
        create,
        segment_size: b.segment_size,
        cache_bytes: b.cache_bytes,
        dirty_limit_bytes: b.dirty_limit_bytes,
        direct_log_writes: b.direct_log,
        segment_source: SOURCE
            .get()
            .map(|s| s.clone() as std::sync::Arc<dyn engine::tiering::SegmentSource>),
        ..d
    }
}

/// Checks the global size flags and records them for `store_options`.
fn set_bounds(cli: &Cli) -> Result<()> {
    let seg = cli.segment_size.0;
    if !(1 << 20..=1 << 31).contains(&seg) {
        bail!("--segment-size must be between 1M and 2G");
    }
    let cache = cli.cache_size.0;
    if !(1 << 20..=1 << 40).contains(&cache) {
        bail!(
            "--cache-size must be between 1M and 1T (got {})",
            cli.cache_size
        );
    }
    let dirty = cli.dirty_limit.0;
    if !(1 << 20..=16 << 30).contains(&dirty) {
        bail!(
            "--dirty-limit must be between 1M and 16G (got {})",
            cli.dirty_limit
        );
    }
    let _ = BOUNDS.set(OpenBounds {
        segment_size: seg,
        cache_bytes: cache,
        dirty_limit_bytes: dirty,
        direct_log: cli.direct_log,
    });
    Ok(())
}

#[derive(Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Serve volumes, snapshots and images to front ends.
    Serve(Box<crate::serve::ServeArgs>),
    /// Volumes: create, list, delete, resize.
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Snapshots: create, list, delete.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Images: create from a volume or snapshot, list, delete.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Create a writable volume from a snapshot or image.
    Clone {
        /// Snapshot or image name or id.
        source: String,
        /// Name of the new volume.
        name: String,
    },
    /// Import a raw image file as a new volume (zero runs are not stored).
    Import {
        /// The raw file.
        file: PathBuf,
        /// Name of the new volume.
        name: String,
        /// Compress the volume's data with zstd.
        #[arg(long)]
        compress: bool,
    },
    /// Export a volume, snapshot or image to a raw, sparse file.
    Export {
        /// Object name or id.
        object: String,
        /// Destination file (created or truncated).
        file: PathBuf,
    },
    /// Check the store; exit 0 when clean, 1 when problems are found. A
    /// damaged log record that stops the store from opening is reported
    /// with the objects and blocks it affects.
    Check {
        /// Fix refcounts and free leaked space; salvage a damaged log (skip
        /// the damaged records, keep every intact one after them, list what
        /// was lost) so that the store opens again.
        #[arg(long)]
        repair: bool,
    },
    /// Re-read and verify every live chunk and metadata page; exit 0 when
    /// clean, 1 when damage is found (listed by object and offset).
    Scrub {
        /// Most bytes read per second (like 100M); unthrottled by default.
        #[arg(long)]
        rate: Option<ByteSize>,
    },
    /// Space usage per object and for the store.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reclaim space held by deleted data, and give spare segment files back.
    Gc,
    /// Lay the newest generation committed in an object store down into an
    /// empty (or absent) --data-dir; `serve` then opens it. Endpoint,
    /// region and credentials come from the AWS_* environment.
    ///
    /// By default nothing but the commit point is downloaded: every
    /// segment stays in the bucket (a sparse file marked remote) and is
    /// read by range when needed, so the store must be served (or opened)
    /// with the same --object-store. `--full` downloads every segment.
    Restore {
        /// Download every segment (the store is then independent of the
        /// bucket).
        #[arg(long)]
        full: bool,
        /// Segment downloads in flight at once (with --full).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
    },
    /// Mount the store with FUSE: DIR/volumes, DIR/snapshots, DIR/images
    /// hold one file per object. Runs until SIGTERM or SIGINT.
    Mount {
        /// Mount point (created if absent).
        dir: PathBuf,
        /// FUSE worker threads.
        #[arg(long, default_value_t = 4)]
        threads: usize,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum VolumeCmd {
    /// Create a thin volume; prints its id.
    Create {
        /// Name.
        name: String,
        /// Size, like 10G, 512M or a byte count.
        #[arg(long)]
        size: ByteSize,
        /// Compress data with zstd.
        #[arg(long)]
        compress: bool,
    },
    /// List volumes.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a volume.
    Delete {
        /// Name or id.
        volume: String,
    },
    /// Grow a volume.
    Resize {
        /// Name or id.
        volume: String,
        /// New size.
        #[arg(long)]
        size: ByteSize,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum SnapshotCmd {
    /// Snapshot a volume; prints the snapshot's id.
    Create {
        /// Volume name or id.
        volume: String,
        /// Snapshot name.
        name: String,
    },
    /// List snapshots.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a snapshot.
    Delete {
        /// Name or id.
        snapshot: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ImageCmd {
    /// Capture a volume or snapshot as an image; prints its id.
    Create {
        /// Volume or snapshot name or id.
        source: String,
        /// Image name.
        name: String,
    },
    /// List images.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete an image.
    Delete {
        /// Name or id.
        image: String,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return 0;
            }
            // One clear line: clap's first line, without its usage hints.
            let text = e.render().to_string();
            eprintln!(
                "blockd: {}",
                text.lines()
                    .next()
                    .unwrap_or("invalid arguments")
                    .trim_start_matches("error: ")
            );
            return 2;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BLOCKD_LOG").unwrap_or_else(|_| {
        // rustls warns about every client that sends an IP address as
        // its TLS server name (libnbd does): not worth a line each.
        tracing_subscriber::EnvFilter::new(if matches!(cli.cmd, Cmd::Serve(_)) {
            "info,rustls=error"
        } else {
            "warn,rustls=error"
        })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("blockd: {e:#}");
            objects::exit_code(&e)
        }
    }
}

fn open(dir: &Path, create: bool) -> Result<Store> {
    Store::open(dir, store_options(create))
        .with_context(|| format!("opening store {}", dir.display()))
}

/// Where a command finds its store: opened by this process (offline), or
/// the one a running `blockd serve` holds (online, through its admin
/// socket). Every command runs the same code either way.
pub(crate) enum Target {
    /// Open the store in this data directory, and close it after.
    Offline {
        /// The data directory.
        dir: PathBuf,
        /// `--tenant`: the tenant the object commands act for.
        tenant: Option<String>,
    },
    /// The running server's store and API state (its API-wide lock):
    /// used, never closed.
    Online {
        /// The operator scope over the server's API state.
        op: api::Operator,
        /// `--tenant`: the tenant the object commands act for.
        tenant: Option<String>,
    },
}

impl Target {
    /// The store to work on; an offline store is created when absent if
    /// `create`.
    pub(crate) fn open(&self, create: bool) -> Result<Store> {
        match self {
            Target::Offline { dir, .. } => open(dir, create),
            Target::Online { op, .. } => Ok(op.store().clone()),
        }
    }

    /// The tenant the command acts for, if any.
    pub(crate) fn tenant(&self) -> Option<&str> {
        match self {
            Target::Offline { tenant, .. } | Target::Online { tenant, .. } => tenant.as_deref(),
        }
    }

    /// The domain's handle for an object command, acting for `--tenant`
    /// when given; an offline store is created when absent if `create`.
    /// Offline, the tenants come from `DATA_DIR/auth.toml`.
    pub(crate) fn operator(&self, create: bool) -> Result<api::Operator> {
        let op = match self {
            Target::Online { op, .. } => op.clone(),
            Target::Offline { dir, tenant } => {
                let auth = match tenant {
                    Some(_) => offline_auth(dir)?,
                    None => api::Auth::new(Vec::new())?,
                };
                api::Operator::offline(open(dir, create)?, auth)
            }
        };
        match self.tenant() {
            Some(t) => op.for_tenant(t).map_err(objects::refusal),
            None => Ok(op),
        }
    }

    /// Ends the command's use of `op` (closes an offline store).
    pub(crate) fn done_op(&self, op: api::Operator) -> Result<()> {
        self.done(op.store().clone())
    }

    /// Ends the command's use of `s` (closes an offline store).
    pub(crate) fn done(&self, s: Store) -> Result<()> {
        match self {
            Target::Offline { .. } => Ok(s.close()?),
            Target::Online { .. } => Ok(()),
        }
    }

    /// Whether a store exists (a listing of a directory without one shows
    /// nothing and creates nothing).
    pub(crate) fn has_store(&self) -> bool {
        match self {
            Target::Offline { dir, .. } => dir.join("superblock").exists(),
            Target::Online { .. } => true,
        }
    }
}

/// The tenants of `blockd serve`'s auth file (`BLOCKD_AUTH_FILE`, else
/// `DATA_DIR/auth.toml`), for an offline `--tenant`.
fn offline_auth(dir: &Path) -> Result<api::Auth> {
    let path = std::env::var_os(crate::serve::AUTH_FILE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("auth.toml"));
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "--tenant needs the tenants of the auth file {}",
            path.display()
        )
    })?;
    Ok(api::Auth::parse(&text)?)
}

/// `--tenant` is for the object commands only.
fn check_tenant(cmd: &Cmd, tenant: &Option<String>) -> std::result::Result<(), String> {
    let object = matches!(
        cmd,
        Cmd::Volume(_)
            | Cmd::Snapshot(_)
            | Cmd::Image(_)
            | Cmd::Clone { .. }
            | Cmd::Import { .. }
            | Cmd::Export { .. }
    );
    if tenant.is_some() && !object {
        return Err(
            "--tenant applies to the volume, snapshot, image, clone, import and export commands only"
                .to_string(),
        );
    }
    Ok(())
}

fn run(cli: Cli) -> Result<i32> {
    set_bounds(&cli)?;
    check_tenant(&cli.cmd, &cli.tenant).map_err(anyhow::Error::msg)?;
    let dir = cli.data_dir;
    let tenant = cli.tenant;
    crate::tier::set_config(cli.object_store_config);
    let object_store = cli.object_store;
    match cli.cmd {
        Cmd::Serve(mut args) => {
            args.object_store = object_store;
            crate::serve::run(&dir, *args).map(|_| 0)
        }
        Cmd::Mount { .. } if crate::admin::is_served(&dir) => bail!("{SERVED}"),
        Cmd::Mount { dir: mnt, threads } => mount(&dir, &mnt, threads),
        Cmd::Restore { full, concurrency } => crate::tier::restore(
            &dir,
            object_store
                .as_deref()
                .context("restore needs --object-store URL")?,
            concurrency.into(),
            full,
            &mut std::io::stdout().lock(),
        ),
        cmd => {
            // A running server holds the store: let it do the work.
            if let Some(code) = crate::admin::forward(&dir)? {
                return Ok(code);
            }
            // Offline: segments evicted or lazily restored are read
            // through the bucket.
            if let Some(url) = &object_store {
                let _ = SOURCE.set(crate::tier::source(url)?);
                crate::tier::set_url(url);
            }
            let mut out = std::io::stdout().lock();
            execute(cmd, &Target::Offline { dir, tenant }, &mut out)
        }
    }
}

/// Why `serve` and `mount` cannot run beside a running server.
const SERVED: &str =
    "the data directory is served by a running `blockd serve`; stop it first (or use its --fuse-mount)";

/// Parses `argv` (as the admin socket received it, relative paths already
/// made absolute against the client's directory) for an online run: the
/// command and the `--tenant` it acts for.
pub(crate) fn parse_online(
    argv: &[String],
    cwd: &Path,
) -> std::result::Result<(Cmd, Option<String>), String> {
    let cli = Cli::try_parse_from(argv).map_err(|e| {
        e.render()
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid arguments")
            .trim_start_matches("error: ")
            .to_string()
    })?;
    let mut cmd = cli.cmd;
    match &mut cmd {
        Cmd::Serve(_) | Cmd::Mount { .. } | Cmd::Restore { .. } => return Err(SERVED.to_string()),
        Cmd::Import { file, .. } | Cmd::Export { file, .. } => *file = cwd.join(&*file),
        _ => {}
    }
    check_tenant(&cmd, &cli.tenant)?;
    Ok((cmd, cli.tenant))
}

/// Runs one command (not `serve` or `mount`) on `target`, writing what it
/// prints to `out`; returns the exit code.
pub(crate) fn execute(cmd: Cmd, target: &Target, out: &mut dyn Write) -> Result<i32> {
    match cmd {
        Cmd::Serve(_) | Cmd::Mount { .. } | Cmd::Restore { .. } => bail!("not a store command"),
        Cmd::Volume(c) => objects::volume(target, c, out),
        Cmd::Snapshot(c) => objects::snapshot(target, c, out),
        Cmd::Image(c) => objects::image(target, c, out),
        Cmd::Clone { source, name } => objects::clone(target, &source, &name, out),
        Cmd::Import {
            file,
            name,
            compress,
        } => objects::import(target, &file, &name, compress, out),
        Cmd::Export { object, file } => objects::export(target, &object, &file),
        Cmd::Check { repair } => check(target, repair, out),
        Cmd::Stats { json } => stats(target, json, out),
        Cmd::Scrub { rate } => {
            let s = target.open(false)?;
            let r = s.scrub(rate.map(|r| r.0))?;
            for e in &r.errors {
                writeln!(out, "damaged: {e}")?;
            }
            writeln!(
                out,
                "scrubbed {} data chunks and {} metadata pages ({}): {} errors",
                r.chunks_verified,
                r.pages_verified,
                ByteSize(r.bytes_read),
                r.errors.len()
            )?;
            target.done(s)?;
            Ok(if r.errors.is_empty() { 0 } else { 1 })
        }
        Cmd::Gc => {
            let s = target.open(false)?;
            // Deleted and trimmed data still on the pending-free queue
            // is freed first, so that its segments can go.
            let freed = s.free_pending()?;
            if freed > 0 {
                writeln!(out, "finished freeing: released {freed} pending references")?;
            }
            let r = s.reclaim(0.5)?;
            let spare = s.release_spares()?;
            writeln!(
                out,
                "freed {} segments, moved {}, disk {} -> {}, released {} of spare segments",
                r.segments_freed,
                ByteSize(r.bytes_moved),
                ByteSize(r.disk_before),
                ByteSize(r.disk_after),
                ByteSize(spare)
            )?;
            target.done(s)?;
            Ok(0)
        }
    }
}

fn mount(dir: &Path, mnt: &Path, threads: usize) -> Result<i32> {
    fuse_export::check_available()?;
    let s = open(dir, true)?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])?;
    let m = fuse_export::mount(s.clone(), mnt, threads)?;
    tracing::info!(mount = %mnt.display(), data_dir = %dir.display(), "serving the store over FUSE");
    eprintln!("blockd: mounted {} at {}", dir.display(), mnt.display());
    let _ = signals.forever().next();
    m.unmount()?;
    s.close()?;
    Ok(0)
}

fn check(target: &Target, repair: bool, out: &mut dyn Write) -> Result<i32> {
    let dir = match target {
        // Online: the server's store is open, so its log replayed cleanly.
        Target::Online { op, .. } => {
            return check_open(target, op.store().clone(), Vec::new(), repair, out)
        }
        Target::Offline { dir, .. } => dir,
    };
    let (s, lost) = if repair {
        Store::open_salvaging(dir, store_options(true))
            .with_context(|| format!("opening store {}", dir.display()))?
    } else {
        match Store::open(dir, store_options(false)) {
            Ok(s) => (s, Vec::new()),
            Err(e) if e.kind() == ErrorKind::Corrupt => return check_damaged_log(dir, e, out),
            Err(e) => return Err(e).with_context(|| format!("opening store {}", dir.display())),
        }
    };
    check_open(target, s, lost, repair, out)
}

/// `check` on an open store: what a salvage lost, then the tree check.
fn check_open(
    target: &Target,
    s: Store,
    lost: Vec<engine::LostRecord>,
    repair: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    for l in &lost {
        writeln!(out, "lost: {l}")?;
    }
    if !lost.is_empty() {
        writeln!(out,
            "salvaged the log: {} damaged or inapplicable records skipped, every intact record kept",
            lost.len()
        )?;
    }
    let r = s.check(repair)?;
    for c in &r.corruption {
        writeln!(out, "corruption: {c}")?;
    }
    for l in &r.leaks {
        writeln!(out, "leak: {l}")?;
    }
    writeln!(
        out,
        "checked {} objects, {} map nodes, {} data chunks: {} corruption, {} leaks{}",
        r.objects_checked,
        r.nodes_checked,
        r.chunks_checked,
        r.corruption.len(),
        r.leaks.len(),
        if r.repaired { " (repaired)" } else { "" }
    )?;
    target.done(s)?;
    let clean = lost.is_empty() && r.corruption.is_empty() && (r.leaks.is_empty() || r.repaired);
    Ok(if clean { 0 } else { 1 })
}

/// `check` on a store that refuses to open as corrupt: when the damage is
/// in the log, lists what a salvage would lose (changing nothing).
fn check_damaged_log(dir: &Path, open_err: engine::Error, out: &mut dyn Write) -> Result<i32> {
    let lost = match Store::survey_log(dir) {
        Ok(l) if !l.is_empty() => l,
        // Not (only) log damage: report the open's error.
        _ => {
            return Err(open_err).with_context(|| format!("opening store {}", dir.display()));
        }
    };
    writeln!(out, "corruption: {open_err}")?;
    for l in &lost {
        writeln!(out, "lost: {l}")?;
    }
    writeln!(out,
        "the log holds {} damaged or inapplicable records; `blockd check --repair` salvages every intact record and lets the store open",
        lost.len()
    )?;
    Ok(1)
}

fn stats(target: &Target, json: bool, out: &mut dyn Write) -> Result<i32> {
    let s = target.open(false)?;
    let st = s.stats()?;
    let tier = crate::tier::stats();
    // Offline with --object-store: what the bucket holds, and how much of
    // this directory's log is past it.
    let bucket = match (&tier, &target) {
        (None, Target::Offline { dir, .. }) => crate::tier::offline_summary(dir, &s)?,
        _ => None,
    };
    if json {
        let mut v = serde_json::to_value(&st)?;
        if let (Some(t), Some(o)) = (&tier, v.as_object_mut()) {
            o.insert("object_store".into(), serde_json::to_value(t)?);
        }
        if let (Some(b), Some(o)) = (&bucket, v.as_object_mut()) {
            o.insert("object_store".into(), b.clone());
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        writeln!(
            out,
            "{:<9} {:<36} {:<20} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "KIND", "ID", "NAME", "LOGICAL", "ALLOCATED", "UNIQUE", "SHARED", "METADATA"
        )?;
        for o in &st.objects {
            writeln!(
                out,
                "{:<9} {:<36} {:<20} {:>10} {:>10} {:>10} {:>10} {:>10}",
                o.kind.map(|k| k.to_string()).unwrap_or_default(),
                o.id.map(|i| i.to_string()).unwrap_or_default(),
                o.name.as_deref().unwrap_or("-"),
                ByteSize(o.logical_bytes).to_string(),
                ByteSize(o.allocated_bytes).to_string(),
                ByteSize(o.unique_bytes).to_string(),
                ByteSize(o.shared_bytes).to_string(),
                ByteSize(o.metadata_bytes).to_string()
            )?;
        }
        writeln!(out,
            "store: logical {}, allocated {}, unique {}, shared {}, live {}, on disk {} in {} segments (+{} spare), moved by reclaim since open {}",
            ByteSize(st.logical_bytes),
            ByteSize(st.allocated_bytes),
            ByteSize(st.unique_bytes),
            ByteSize(st.shared_bytes),
            ByteSize(st.live_bytes),
            ByteSize(st.disk_bytes),
            st.segments,
            ByteSize(st.spare_bytes),
            ByteSize(st.reclaim_moved_bytes)
        )?;
        writeln!(
            out,
            "metadata: {} live, {:.1} bytes per written block ({:.2}% of the data blocks)",
            ByteSize(st.metadata_bytes),
            st.metadata_bytes_per_block,
            st.metadata_bytes_per_block * 100.0 / 4096.0
        )?;
        if st.pending_free_refs > 0 {
            writeln!(
                out,
                "pending free: {} references still being given back (freed {} since open)",
                st.pending_free_refs, st.freed_refs
            )?;
        }
        // Counters that must never wrap: how much of each is used.
        let used: Vec<String> = st
            .counters
            .iter()
            .map(|c| {
                let p = c.used_percent();
                let p = if p > 0.0 && p < 0.01 {
                    "<0.01%".to_string()
                } else {
                    format!("{p:.2}%")
                };
                format!("{} {p} ({} left)", c.name.replace('_', " "), c.remaining)
            })
            .collect();
        writeln!(out, "counters used: {}", used.join(", "))?;
        if let Some(t) = &tier {
            writeln!(out, "{}", crate::tier::describe(t))?;
        }
        if let Some(b) = &bucket {
            writeln!(out, "{}", crate::tier::describe_bucket(b))?;
        }
    }
    target.done(s)?;
    Ok(0)
}
