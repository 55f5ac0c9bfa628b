//! One NBD connection on tokio: the fixed newstyle handshake, then
//! transmission. In transmission a reader task parses requests (validated by
//! the codec) and runs them on tokio's blocking pool (bounded by a
//! server-wide semaphore, so engine file I/O never runs on the reactor):
//! each large or slow request on its own blocking task; small reads and
//! writes that arrive together (already buffered) in batches, one blocking
//! task running a batch in order, so that a deep queue of 4 KiB requests
//! does not pay a thread handoff each. A short read that needs nothing to
//! wait (the engine's `Store::read_if_cached`: state lock free, its pages
//! and blocks in memory or in the OS page cache, read with `RWF_NOWAIT`)
//! is answered on the event loop without any handoff, unless a write or
//! other command is batched ahead of it. A writer task serializes replies in
//! completion order: out of order with respect to requests, never
//! interleaved. A volume with I/O limits (`throttle.rs`) has each read
//! and write wait its turn before it starts.

use crate::access::Client;
use crate::bufpool::BufPool;
use crate::codec::{self, errno, ClientOption, Command, ExportParams, ReplyMode, ReplyTo, Verdict};
use crate::export::Export;
use crate::metrics::{Op, VolumeCounters};
use crate::server::Shared;
use crate::tls::TlsMode;
use crate::Error;
use engine::{AlignedBuf, ErrorKind, ExtentKind, ObjectId, Store};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

/// Socket buffer size for each direction.
const IO_BUFFER: usize = 256 * 1024;
/// Most extents in a BLOCK_STATUS reply without REQ_ONE (keeps the chunk
/// under 1000 bytes, which qemu insists on for non-data chunks).
const MAX_STATUS_EXTENTS: usize = 120;
/// The same bound with extended headers (16-byte descriptors and an
/// 8-byte prefix: 968 bytes).
const MAX_STATUS_EXTENTS_EXT: usize = 60;
/// Most extents a READ is split into before the rest is sent as data.
const MAX_READ_EXTENTS: usize = 64;
/// Reads shorter than this are answered with one data chunk without
/// looking at the allocation map first (holes only pay off when large).
const SMALL_READ: u32 = 64 * 1024;
/// Reads and writes up to this length may be batched.
const BATCH_LEN: u32 = 64 * 1024;
/// Most requests in one batch.
const MAX_BATCH: usize = 32;

/// A byte stream the server can serve: TCP or Unix, split into owned halves
/// for transmission.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Read half.
    type R: AsyncRead + Unpin + Send + 'static;
    /// Write half.
    type W: AsyncWrite + Unpin + Send + 'static;
    /// Splits the stream.
    fn split_owned(self) -> (Self::R, Self::W);
}

impl Stream for tokio::net::TcpStream {
    type R = tokio::net::tcp::OwnedReadHalf;
    type W = tokio::net::tcp::OwnedWriteHalf;
    fn split_owned(self) -> (Self::R, Self::W) {
        self.into_split()
    }
}

impl Stream for tokio::net::UnixStream {
    type R = tokio::net::unix::OwnedReadHalf;
    type W = tokio::net::unix::OwnedWriteHalf;
    fn split_owned(self) -> (Self::R, Self::W) {
        self.into_split()
    }
}

/// What negotiation ended with.
pub(crate) enum Negotiated {
    /// Enter transmission on this export.
    Transmit(Export, ExportParams),
    /// STARTTLS was acknowledged: upgrade the stream, then negotiate again
    /// from a clean state.
    StartTls,
    /// The client aborted or broke the protocol: close.
    Close,
}

/// A connection after STARTTLS (its halves share the TLS session).
impl<S: Stream> Stream for tokio_rustls::server::TlsStream<S> {
    type R = tokio::io::ReadHalf<Self>;
    type W = tokio::io::WriteHalf<Self>;
    fn split_owned(self) -> (Self::R, Self::W) {
        tokio::io::split(self)
    }
}

async fn send_reply<S: AsyncWrite + Unpin>(
    s: &mut S,
    option: u32,
    reply: u32,
    data: &[u8],
) -> Result<(), Error> {
    let mut b = Vec::with_capacity(20 + data.len());
    codec::option_reply(&mut b, option, reply, data);
    s.write_all(&b).await?;
    Ok(())
}

/// Sends the greeting and reads the client's flags: `Some(no_zeroes)`, or
/// `None` when the client's flags are unknown (close).
pub(crate) async fn greet<S: Stream>(s: &mut S) -> Result<Option<bool>, Error> {
    s.write_all(&codec::greeting()).await?;
    let client_flags = s.read_u32().await?;
    if client_flags & !(codec::C_FIXED_NEWSTYLE | codec::C_NO_ZEROES) != 0 {
        tracing::debug!(client_flags, "unknown client flags: closing");
        return Ok(None);
    }
    Ok(Some(client_flags & codec::C_NO_ZEROES != 0))
}

/// Runs option haggling up to transmission, on a plaintext stream
/// (`tls_on` false) or on the stream upgraded by STARTTLS; `no_zeroes` is
/// the client's flag from the greeting.
pub(crate) async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    shared: &Shared,
    no_zeroes: bool,
    tls_on: bool,
    client: &Client,
) -> Result<Negotiated, Error> {
    // FORCEDTLS: nothing but STARTTLS and ABORT before the upgrade.
    let forced = !tls_on
        && shared
            .config
            .tls
            .as_ref()
            .is_some_and(|t| t.mode == TlsMode::Require);
    let mut structured = false;
    // Extended headers negotiated (implies structured replies).
    let mut extended = false;
    // Export name the metadata context was set for, and whether
    // base:allocation was selected.
    let mut meta: Option<(String, bool)> = None;
    loop {
        let mut hdr = [0u8; codec::OPTION_HEADER_LEN];
        s.read_exact(&mut hdr).await?;
        let Some(h) = codec::parse_option_header(&hdr) else {
            tracing::debug!("bad option magic: closing");
            return Ok(Negotiated::Close);
        };
        if h.length > codec::MAX_OPTION_LEN {
            // Too large to drain: refuse and close.
            if h.option != codec::opt::EXPORT_NAME {
                send_reply(s, h.option, codec::rep::ERR_TOO_BIG, b"option too long").await?;
            }
            return Ok(Negotiated::Close);
        }
        let mut data = vec![0u8; h.length as usize];
        s.read_exact(&mut data).await?;
        if forced && h.option != codec::opt::STARTTLS && h.option != codec::opt::ABORT {
            if h.option == codec::opt::EXPORT_NAME {
                // No error reply exists for EXPORT_NAME: close.
                tracing::info!("EXPORT_NAME before STARTTLS while TLS is required: closing");
                return Ok(Negotiated::Close);
            }
            let msg = b"TLS required: send STARTTLS first";
            send_reply(s, h.option, codec::rep::ERR_TLS_REQD, msg).await?;
            continue;
        }
        let parsed = match codec::parse_option(h.option, &data) {
            Ok(o) => o,
            Err(e) => {
                if h.option == codec::opt::EXPORT_NAME {
                    return Ok(Negotiated::Close);
                }
                send_reply(s, h.option, e.reply, e.message.as_bytes()).await?;
                continue;
            }
        };
        match parsed {
            ClientOption::ExportName(_) if extended => {
                // The spec forbids EXPORT_NAME after extended headers, and
                // EXPORT_NAME has no error reply: hard disconnect.
                tracing::debug!("EXPORT_NAME after extended headers: closing");
                return Ok(Negotiated::Close);
            }
            ClientOption::ExportName(name) => {
                let Some(e) = shared.exports.lookup(&name, client) else {
                    tracing::info!(export = %name, "EXPORT_NAME of an unknown export: closing");
                    return Ok(Negotiated::Close);
                };
                let p = params(&e, structured, extended, &meta);
                s.write_all(&codec::export_name_reply(
                    e.size,
                    p.transmission_flags(),
                    no_zeroes,
                ))
                .await?;
                return Ok(Negotiated::Transmit(e, p));
            }
            ClientOption::Abort => {
                let _ = send_reply(s, h.option, codec::rep::ACK, &[]).await;
                return Ok(Negotiated::Close);
            }
            ClientOption::List => {
                let mut b = Vec::new();
                for (name, desc) in shared.exports.list(client) {
                    codec::option_reply(
                        &mut b,
                        h.option,
                        codec::rep::SERVER,
                        &codec::server_entry(&name, &desc),
                    );
                }
                codec::option_reply(&mut b, h.option, codec::rep::ACK, &[]);
                s.write_all(&b).await?;
            }
            ClientOption::Info(req) | ClientOption::Go(req) => {
                let Some(e) = shared.exports.lookup(&req.name, client) else {
                    send_reply(s, h.option, codec::rep::ERR_UNKNOWN, b"no such export").await?;
                    continue;
                };
                let p = params(&e, structured, extended, &meta);
                let mut b = Vec::new();
                let o = h.option;
                let info = codec::rep::INFO;
                codec::option_reply(
                    &mut b,
                    o,
                    info,
                    &codec::info_export(e.size, p.transmission_flags()),
                );
                codec::option_reply(&mut b, o, info, &codec::info_block_size());
                if req.items.contains(&codec::info::NAME) {
                    let name = codec::info_string(codec::info::NAME, &e.name);
                    codec::option_reply(&mut b, o, info, &name);
                }
                if req.items.contains(&codec::info::DESCRIPTION) {
                    let d = codec::info_string(codec::info::DESCRIPTION, &e.description);
                    codec::option_reply(&mut b, o, info, &d);
                }
                codec::option_reply(&mut b, o, codec::rep::ACK, &[]);
                s.write_all(&b).await?;
                if h.option == codec::opt::GO {
                    return Ok(Negotiated::Transmit(e, p));
                }
            }
            ClientOption::StructuredReply if extended => {
                // No downgrade from extended headers.
                let msg = b"extended headers already negotiated";
                send_reply(s, h.option, codec::rep::ERR_EXT_HEADER_REQD, msg).await?;
            }
            ClientOption::StructuredReply => {
                structured = true;
                send_reply(s, h.option, codec::rep::ACK, &[]).await?;
            }
            ClientOption::ExtendedHeaders => {
                // Also after STRUCTURED_REPLY, and again when already on
                // (the spec forbids neither; nothing changes then).
                extended = true;
                structured = true;
                send_reply(s, h.option, codec::rep::ACK, &[]).await?;
            }
            ClientOption::ListMetaContext(req) | ClientOption::SetMetaContext(req) => {
                let set = h.option == codec::opt::SET_META_CONTEXT;
                if !structured {
                    let msg = b"structured replies not negotiated";
                    send_reply(s, h.option, codec::rep::ERR_INVALID, msg).await?;
                    continue;
                }
                if shared.exports.lookup(&req.name, client).is_none() {
                    send_reply(s, h.option, codec::rep::ERR_UNKNOWN, b"no such export").await?;
                    continue;
                }
                let selected = if set {
                    req.queries.iter().any(|q| q == codec::BASE_ALLOCATION)
                } else {
                    req.queries.is_empty()
                        || req
                            .queries
                            .iter()
                            .any(|q| codec::query_matches_base_allocation(q))
                };
                let mut b = Vec::new();
                if selected {
                    let id = if set { codec::BASE_ALLOCATION_ID } else { 0 };
                    let m = codec::meta_context(id, codec::BASE_ALLOCATION);
                    codec::option_reply(&mut b, h.option, codec::rep::META_CONTEXT, &m);
                }
                codec::option_reply(&mut b, h.option, codec::rep::ACK, &[]);
                s.write_all(&b).await?;
                if set {
                    meta = Some((req.name, selected));
                }
            }
            ClientOption::StartTls if tls_on => {
                let msg = b"TLS already negotiated";
                send_reply(s, h.option, codec::rep::ERR_INVALID, msg).await?;
            }
            ClientOption::StartTls if shared.config.tls.is_none() => {
                let msg = b"TLS is not configured on this server";
                send_reply(s, h.option, codec::rep::ERR_POLICY, msg).await?;
            }
            ClientOption::StartTls => {
                send_reply(s, h.option, codec::rep::ACK, &[]).await?;
                return Ok(Negotiated::StartTls);
            }
            ClientOption::Unsupported(o) => {
                tracing::debug!(option = o, "unsupported option");
                send_reply(s, o, codec::rep::ERR_UNSUP, b"unsupported option").await?;
            }
        }
    }
}

fn params(
    e: &Export,
    structured: bool,
    extended: bool,
    meta: &Option<(String, bool)>,
) -> ExportParams {
    ExportParams {
        size: e.size,
        read_only: e.read_only,
        structured,
        extended,
        base_allocation: structured && matches!(meta, Some((name, true)) if *name == e.name),
    }
}

/// A reply ready to send, holding its in-flight slot until written.
struct Reply {
    parts: Vec<Vec<u8>>,
    _slot: OwnedSemaphorePermit,
}

/// Serves requests until the client disconnects, breaks the protocol, or
/// the server shuts down; every accepted request is answered (if the client
/// still listens) before this returns.
pub(crate) async fn transmit<S: Stream>(
    stream: S,
    export: Export,
    params: ExportParams,
    shared: Arc<Shared>,
) -> Result<(), Error> {
    let (r, w) = stream.split_owned();
    let (tx, rx) = mpsc::unbounded_channel::<Reply>();
    let writer_failed = Arc::new(Notify::new());
    let writer = tokio::spawn(write_replies(
        w,
        rx,
        writer_failed.clone(),
        shared.bufs.clone(),
    ));
    let slots = Arc::new(Semaphore::new(shared.config.max_in_flight.max(1)));
    let mut reader = BufReader::with_capacity(IO_BUFFER, r);
    let mut shutdown = shared.shutdown.clone();
    let id = export.id;
    // Counted as connected until this returns.
    let client = shared.metrics.connect(id);
    let run = Runner {
        counters: client.counters().clone(),
        store: shared.store.clone(),
        bufs: shared.bufs.clone(),
        engine_slots: shared.engine_slots.clone(),
        tx: tx.clone(),
        id,
        mode: params.reply_mode(),
    };
    let hdr_len = codec::request_len(params.extended);
    // The volume's I/O limits (`throttle.rs`), if the server has any.
    let mut throttle = if export.read_only {
        None
    } else {
        shared.throttles.open(&shared.store, id).await
    };
    // Small requests parsed but not yet started. Every await that may
    // block (on the client or on a slot) first starts them.
    let mut batch: Vec<Job> = Vec::new();
    let result = loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                run.start(&mut batch).await;
                slots.clone().acquire_owned().await.expect("never closed")
            }
        };
        if reader.buffer().len() < hdr_len {
            run.start(&mut batch).await;
        }
        let mut hdr = [0u8; codec::EXT_REQUEST_LEN];
        let hdr = &mut hdr[..hdr_len];
        tokio::select! {
            biased;
            _ = crate::server::stopped(&mut shutdown) => break Ok(()),
            _ = writer_failed.notified() => break Ok(()),
            r = reader.read_exact(hdr) => {
                if let Err(e) = r {
                    break if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        Ok(())
                    } else {
                        Err(e.into())
                    };
                }
            }
        }
        let Some(h) = codec::parse_header(hdr, params.extended) else {
            tracing::warn!(export = %export.name, "bad request magic: disconnecting");
            break Ok(());
        };
        let cmd = match codec::validate(&h, &params) {
            Verdict::Run(c) => c,
            Verdict::Disconnect(reason) => {
                tracing::warn!(export = %export.name, reason, "disconnecting client");
                break Ok(());
            }
            Verdict::Reject {
                errno,
                drain,
                reason,
            } => {
                tracing::debug!(cookie = h.cookie, errno, reason, "request refused");
                run.counters.refused(Op::of_command(h.command));
                if drain > 0 {
                    run.start(&mut batch).await;
                    let mut take = (&mut reader).take(u64::from(drain));
                    match tokio::io::copy(&mut take, &mut tokio::io::sink()).await {
                        Ok(n) if n == u64::from(drain) => {}
                        _ => break Ok(()),
                    }
                }
                let to = ReplyTo::new(run.mode, h.cookie, h.offset);
                let parts = vec![to.error(chunked_errors(h.command), errno, reason)];
                let _ = tx.send(Reply { parts, _slot: slot });
                continue;
            }
        };
        let mut owned = None;
        let payload = match cmd {
            Command::Disconnect => break Ok(()),
            Command::Write { offset, len, .. } if takes_owned(offset, len) => {
                if reader.buffer().len() < len as usize {
                    run.start(&mut batch).await;
                }
                // Read straight into a 4 KiB-aligned buffer the engine
                // takes as it is (`Store::write_owned`): written to disk
                // from there, with no copy.
                let mut buf = shared.store.aligned_buf(len as usize);
                if reader.read_exact(&mut buf).await.is_err() {
                    // The client vanished mid-payload: nothing was written.
                    break Ok(());
                }
                owned = Some(buf);
                Vec::new()
            }
            Command::Write { len, .. } => {
                if reader.buffer().len() < len as usize {
                    run.start(&mut batch).await;
                }
                // Filled straight into spare capacity: no zeroing first
                // (through `take`: a pooled buffer may have more room).
                let mut buf = shared.bufs.take(len as usize);
                let mut complete = true;
                let mut body = (&mut reader).take(u64::from(len));
                while buf.len() < len as usize {
                    match body.read_buf(&mut buf).await {
                        Ok(n) if n > 0 => {}
                        _ => {
                            complete = false;
                            break;
                        }
                    }
                }
                if !complete {
                    // The client vanished mid-payload: nothing was written.
                    break Ok(());
                }
                buf
            }
            _ => Vec::new(),
        };
        let small = match cmd {
            Command::Read { len, .. } | Command::Write { len, .. } => len <= BATCH_LEN,
            _ => false,
        };
        let job = Job {
            accepted: Instant::now(),
            to: ReplyTo::new(run.mode, h.cookie, h.offset),
            cmd,
            payload,
            owned,
            slot,
        };
        if let Some(t) = throttle.as_mut() {
            shared.throttles.refresh(&shared.store, id, t).await;
            let wait = t.throttle.charge(&job.cmd);
            if !wait.is_zero() {
                // Earlier requests run meanwhile; no further request is
                // read until this one may run.
                run.start(&mut batch).await;
                run.counters.throttled(wait);
                tokio::select! {
                    biased;
                    _ = crate::server::stopped(&mut shutdown) => {
                        batch.push(job);
                        break Ok(());
                    }
                    _ = writer_failed.notified() => break Ok(()),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        if small {
            // A small read finding everything cached is answered here,
            // without a hand-off to the blocking pool.
            let Some(job) = run.try_inline(job, &batch) else {
                continue;
            };
            batch.push(job);
            if batch.len() >= MAX_BATCH {
                run.start(&mut batch).await;
            }
        } else {
            // Earlier requests start first (a flush then finds them begun).
            run.start(&mut batch).await;
            run.start(&mut vec![job]).await;
        }
    };
    // Every accepted request is answered.
    run.start(&mut batch).await;
    // In-flight requests hold clones of `tx`: the writer ends after the last
    // of them is answered.
    drop(run);
    drop(tx);
    let _ = writer.await;
    drop(client);
    result
}

/// One accepted request, waiting to run.
struct Job {
    /// When the request was parsed (latency is measured from here).
    accepted: Instant,
    to: ReplyTo,
    cmd: Command,
    payload: Vec<u8>,
    /// A large aligned write's payload, handed to the engine whole.
    owned: Option<AlignedBuf>,
    slot: OwnedSemaphorePermit,
}

/// Writes at least this long, at a 4 KiB-aligned offset and of whole
/// 4 KiB blocks, are read into an engine-owned aligned buffer.
const OWNED_WRITE_MIN: u32 = 64 << 10;

/// True when a write is read into an [`AlignedBuf`] for
/// [`Store::write_owned`].
fn takes_owned(offset: u64, len: u32) -> bool {
    len >= OWNED_WRITE_MIN && offset.is_multiple_of(4096) && len.is_multiple_of(4096)
}

/// Runs jobs: batches on the blocking pool, short cached reads in place.
struct Runner {
    counters: Arc<VolumeCounters>,
    store: Store,
    bufs: Arc<BufPool>,
    engine_slots: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Reply>,
    id: ObjectId,
    mode: ReplyMode,
}

impl Runner {
    /// Runs `jobs` (emptying it), in order, on one blocking task holding
    /// one engine slot; each reply is sent as soon as its job is done.
    async fn start(&self, jobs: &mut Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let jobs = std::mem::take(jobs);
        let engine_slot = self
            .engine_slots
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let store = self.store.clone();
        let bufs = self.bufs.clone();
        let tx = self.tx.clone();
        let id = self.id;
        let counters = self.counters.clone();
        tokio::task::spawn_blocking(move || {
            for j in jobs {
                let (op, bytes) = op_bytes(&j.cmd);
                let (parts, ok) = execute(&store, &bufs, id, j.to, j.cmd, &j.payload, j.owned);
                counters.request(op, bytes, j.accepted.elapsed(), ok);
                bufs.give(j.payload);
                let _ = tx.send(Reply {
                    parts,
                    _slot: j.slot,
                });
            }
            drop(engine_slot);
        });
    }

    /// Answers `j` here, on the event loop, if it is a short read (one
    /// data chunk) that needs nothing to wait: the engine's
    /// [`Store::read_if_cached`] (state lock free, every page and block in
    /// memory or in the OS page cache, nothing read from the device), and
    /// no write or other command is waiting in `batch` ahead of it (a read
    /// never overtakes a write the client sent before it and that has not
    /// started). Else gives `j` back, to be batched for the blocking pool.
    fn try_inline(&self, j: Job, batch: &[Job]) -> Option<Job> {
        let Command::Read { offset, len, .. } = j.cmd else {
            return Some(j);
        };
        if len >= SMALL_READ || batch.iter().any(|b| !matches!(b.cmd, Command::Read { .. })) {
            return Some(j);
        }
        let fill = |buf: &mut [u8]| self.store.read_if_cached(self.id, offset, buf);
        let (parts, ok) = match one_chunk_read(&self.bufs, j.to, offset, len, fill) {
            Ok(None) => return Some(j),
            Ok(Some(b)) => (vec![b], true),
            Err(e) => (read_failed(j.to, &e), false),
        };
        self.counters
            .request(Op::Read, u64::from(len), j.accepted.elapsed(), ok);
        let _ = self.tx.send(Reply {
            parts,
            _slot: j.slot,
        });
        None
    }
}

async fn write_replies<W: AsyncWrite + Unpin>(
    w: W,
    mut rx: mpsc::UnboundedReceiver<Reply>,
    failed: Arc<Notify>,
    bufs: Arc<BufPool>,
) {
    let mut w = BufWriter::with_capacity(IO_BUFFER, w);
    let mut ok = true;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(mut r) = next {
            for p in std::mem::take(&mut r.parts) {
                if ok && w.write_all(&p).await.is_err() {
                    ok = false;
                    failed.notify_one();
                }
                bufs.give(p);
            }
            drop(r);
            next = rx.try_recv().ok();
        }
        if ok && w.flush().await.is_err() {
            ok = false;
            failed.notify_one();
        }
    }
    if ok {
        let _ = w.shutdown().await;
    }
}

/// Whether a command's errors are chunks once structured replies are on
/// (READ must never get a simple reply then; BLOCK_STATUS needs chunks).
/// With extended headers every error is a chunk anyway.
fn chunked_errors(command: u16) -> bool {
    matches!(command, codec::cmd::READ | codec::cmd::BLOCK_STATUS)
}

/// Maps an engine error to an NBD errno. A deleted object (NotFound) gives
/// EIO: the connection stays open but every request on it fails.
pub fn errno_of(e: &engine::Error, writing: bool) -> u32 {
    match e.kind() {
        ErrorKind::ReadOnly => errno::EPERM,
        ErrorKind::OutOfRange if writing => errno::ENOSPC,
        ErrorKind::OutOfRange | ErrorKind::InvalidArgument => errno::EINVAL,
        // A counter near its limit: no new chunk can be allocated.
        ErrorKind::NoSpace | ErrorKind::Exhausted => errno::ENOSPC,
        ErrorKind::Unsupported => errno::ENOTSUP,
        _ => errno::EIO,
    }
}

/// The metrics op of a command, and the payload bytes it moves.
fn op_bytes(cmd: &Command) -> (Op, u64) {
    match *cmd {
        Command::Read { len, .. } => (Op::Read, u64::from(len)),
        Command::Write { len, .. } => (Op::Write, u64::from(len)),
        Command::Flush => (Op::Flush, 0),
        Command::Trim { .. } => (Op::Trim, 0),
        Command::WriteZeroes { .. } => (Op::WriteZeroes, 0),
        Command::Cache { .. } => (Op::Cache, 0),
        Command::BlockStatus { .. } => (Op::BlockStatus, 0),
        Command::Disconnect => (Op::Other, 0),
    }
}

/// Runs one validated command against the store (blocking) and encodes
/// its reply; true when it succeeded.
fn execute(
    store: &Store,
    bufs: &BufPool,
    id: ObjectId,
    to: ReplyTo,
    cmd: Command,
    payload: &[u8],
    owned: Option<AlignedBuf>,
) -> (Vec<Vec<u8>>, bool) {
    let done = |r: engine::Result<()>, writing: bool| match r {
        Ok(()) => (vec![to.ok()], true),
        Err(e) => {
            tracing::debug!(error = %e, "request failed");
            let msg = if e.kind() == ErrorKind::NotFound {
                "export deleted"
            } else {
                "engine error"
            };
            (vec![to.error(false, errno_of(&e, writing), msg)], false)
        }
    };
    match cmd {
        Command::Read { offset, len, df } => read_reply(store, bufs, id, to, offset, len, df)
            .map(|parts| (parts, true))
            .unwrap_or_else(|e| (read_failed(to, &e), false)),
        Command::Write { offset, fua, .. } => done(
            match owned {
                Some(b) => store.write_owned(id, offset, b, fua),
                None => store.write(id, offset, payload, fua),
            },
            true,
        ),
        Command::Flush => done(store.flush(), true),
        // Trim and zeroing are one metadata record whatever the length
        // (at most two edge blocks are rewritten), so 64-bit lengths from
        // extended headers cost no more than 32-bit ones.
        Command::Trim { offset, len, fua } => done(store.trim(id, offset, len, fua), true),
        Command::WriteZeroes {
            offset,
            len,
            fua,
            no_hole,
            fast: _,
        } => {
            // FAST_ZERO is therefore always honoured.
            done(store.write_zeroes(id, offset, len, !no_hole, fua), true)
        }
        Command::Cache { .. } => done(store.get(id).map(|_| ()), false),
        Command::BlockStatus {
            offset,
            len,
            req_one,
        } => {
            let max = match (req_one, to.mode) {
                (true, _) => 1,
                (false, ReplyMode::Extended) => MAX_STATUS_EXTENTS_EXT,
                (false, _) => MAX_STATUS_EXTENTS,
            };
            // The engine bounds its walk by `max` extents, so a 64-bit
            // length costs no more than a short one.
            match store.block_status(id, offset, len, max) {
                Ok(exts) => {
                    let mut d: Vec<(u64, u32)> = exts
                        .iter()
                        .map(|e| {
                            let f = match e.kind {
                                ExtentKind::Data => 0,
                                ExtentKind::Zero => codec::alloc::ZERO,
                                ExtentKind::Hole => codec::alloc::HOLE | codec::alloc::ZERO,
                            };
                            (e.length, f)
                        })
                        .collect();
                    if d.is_empty() {
                        d.push((len, 0));
                    }
                    let mut b = Vec::with_capacity(to.header_len() + 8 + 16 * d.len());
                    to.block_status(&mut b, &d);
                    (vec![b], true)
                }
                Err(e) => (
                    vec![to.error(true, errno_of(&e, false), "block status failed")],
                    false,
                ),
            }
        }
        Command::Disconnect => (Vec::new(), true),
    }
}

/// The error reply to a failed READ.
fn read_failed(to: ReplyTo, e: &engine::Error) -> Vec<Vec<u8>> {
    tracing::debug!(error = %e, "read failed");
    let msg = if e.kind() == ErrorKind::NotFound {
        "export deleted"
    } else {
        "read failed"
    };
    vec![to.error(true, errno_of(e, false), msg)]
}

/// A READ reply that is one buffer: a simple reply (header + data), or one
/// data chunk, its data filled by `fill`; `None` when `fill` declined
/// (returned false: the buffer goes back to the pool).
fn one_chunk_read(
    bufs: &BufPool,
    to: ReplyTo,
    offset: u64,
    len: u32,
    fill: impl FnOnce(&mut [u8]) -> engine::Result<bool>,
) -> engine::Result<Option<Vec<u8>>> {
    let prefix = if to.mode == ReplyMode::Simple {
        codec::SIMPLE_REPLY_LEN
    } else {
        to.data_prefix()
    };
    let mut b = bufs.take_overwritten(prefix + len as usize);
    match fill(&mut b[prefix..]) {
        Ok(true) => {}
        r => {
            bufs.give(b);
            return r.map(|_| None);
        }
    }
    if to.mode == ReplyMode::Simple {
        b[..prefix].copy_from_slice(&codec::simple_reply(to.cookie, 0));
    } else {
        to.offset_data_prefix(&mut b, true, offset, len);
    }
    Ok(Some(b))
}

/// A READ reply: simple (header + data), or chunked (structured or
/// extended) with OFFSET_HOLE chunks for unallocated or zero ranges and
/// OFFSET_DATA for the rest.
fn read_reply(
    store: &Store,
    bufs: &BufPool,
    id: ObjectId,
    to: ReplyTo,
    offset: u64,
    len: u32,
    df: bool,
) -> engine::Result<Vec<Vec<u8>>> {
    if to.mode == ReplyMode::Simple || len < SMALL_READ || df {
        // One data chunk; not worth a map lookup first.
        let fill = |buf: &mut [u8]| store.read(id, offset, buf).map(|()| true);
        let b = one_chunk_read(bufs, to, offset, len, fill)?.expect("filled");
        return Ok(vec![b]);
    }
    let prefix = to.data_prefix();
    let end = offset + u64::from(len);
    let exts = store.block_status(id, offset, u64::from(len), MAX_READ_EXTENTS)?;
    // (offset, length, is_data) pieces covering the whole request.
    let mut pieces: Vec<(u64, u64, bool)> = Vec::with_capacity(exts.len() + 1);
    let mut pos = offset;
    for e in &exts {
        if e.offset != pos || e.offset + e.length > end {
            break;
        }
        let data = e.kind == ExtentKind::Data;
        match pieces.last_mut() {
            Some(last) if last.2 == data => last.1 += e.length,
            _ => pieces.push((e.offset, e.length, data)),
        }
        pos += e.length;
    }
    if pos < end {
        match pieces.last_mut() {
            Some(last) if last.2 => last.1 += end - pos,
            _ => pieces.push((pos, end - pos, true)),
        }
    }
    let n = pieces.len();
    let mut parts = Vec::with_capacity(n);
    let mut holes: Vec<u8> = Vec::new();
    for (i, (off, l, data)) in pieces.into_iter().enumerate() {
        let last = i + 1 == n;
        if data {
            if !holes.is_empty() {
                parts.push(std::mem::take(&mut holes));
            }
            let mut b = bufs.take_overwritten(prefix + l as usize);
            store.read(id, off, &mut b[prefix..])?;
            to.offset_data_prefix(&mut b, last, off, l as u32);
            parts.push(b);
        } else {
            to.offset_hole(&mut holes, last, off, l as u32);
        }
    }
    if !holes.is_empty() {
        parts.push(holes);
    }
    Ok(parts)
}
