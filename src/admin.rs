//! The admin socket: while `blockd serve` holds a data directory, the other
//! commands (`volume list`, `snapshot create`, `check`, `gc`...) cannot open
//! the store, so they hand their command line to the server instead, which
//! runs the very same command code on its open store and sends back what it
//! printed and its exit code. The object commands run on the server's
//! `ApiState` (`api::Operator`), so they take the API-wide lock HTTP
//! requests take.
//!
//! The socket is `<data-dir>/admin.sock`, owner-only (0600). It is bound in
//! a private (0700) directory, restricted, then renamed into place, so
//! nobody can connect during the window before the permission change.
//!
//! Wire format: one JSON line each way. Request `{"argv": [...], "cwd":
//! "/dir"}` (relative file names are taken from `cwd`); reply `{"stdout":
//! "...", "stderr": "...", "code": N}`.

use crate::cli::{execute, parse_online, Target};
use crate::objects::exit_code;
use anyhow::{bail, Context, Result};
use api::{ApiState, Operator};
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The socket's name inside the data directory.
const SOCKET_NAME: &str = "admin.sock";
/// Largest request line accepted.
const MAX_REQUEST: u64 = 1 << 20;
/// How long a connected client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping server waits for commands still running.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
struct AdminRequest {
    argv: Vec<String>,
    cwd: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct AdminReply {
    stdout: String,
    stderr: String,
    code: i32,
}

/// The admin socket's path for a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Whether a running server answers on `data_dir`'s admin socket.
pub fn is_served(data_dir: &Path) -> bool {
    UnixStream::connect(socket_path(data_dir)).is_ok()
}

/// Client side: when a server answers on `data_dir`'s admin socket, runs
/// this process's command line there, prints what it printed and returns
/// its exit code; `None` when no server is running (work offline).
pub fn forward(data_dir: &Path) -> Result<Option<i32>> {
    let path = socket_path(data_dir);
    if !path.exists() {
        return Ok(None);
    }
    let mut conn = match UnixStream::connect(&path) {
        Ok(c) => c,
        // A socket left by a killed server: nobody answers.
        Err(_) => return Ok(None),
    };
    let req = AdminRequest {
        argv: std::env::args().collect(),
        cwd: std::env::current_dir().context("reading the current directory")?,
    };
    let mut line = serde_json::to_vec(&req)?;
    line.push(b'\n');
    conn.write_all(&line)
        .context("sending the command to the running server")?;
    let mut text = String::new();
    conn.read_to_string(&mut text)
        .context("reading the running server's answer")?;
    let reply: AdminReply = serde_json::from_str(text.trim_end())
        .context("the running server's admin socket sent a malformed answer")?;
    std::io::stdout().write_all(reply.stdout.as_bytes())?;
    std::io::stderr().write_all(reply.stderr.as_bytes())?;
    Ok(Some(reply.code))
}

/// Server side: the accept thread and the commands it runs.
pub struct AdminServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    running: Arc<(Mutex<usize>, Condvar)>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl AdminServer {
    /// Binds `<data_dir>/admin.sock` (replacing a stale one: the caller
    /// holds the store's lock) and serves commands on `state`'s store;
    /// object commands run through the domain under `state`'s API-wide
    /// lock, the one the HTTP requests take.
    pub fn start(state: ApiState, data_dir: &Path) -> Result<AdminServer> {
        let path = socket_path(data_dir);
        let listener = bind_private(data_dir, &path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::new((Mutex::new(0usize), Condvar::new()));
        let (stop2, running2) = (stop.clone(), running.clone());
        let accept = std::thread::Builder::new()
            .name("blockd-admin".into())
            .spawn(move || accept_loop(listener, state, stop2, running2))
            .context("starting the admin socket thread")?;
        Ok(AdminServer {
            path,
            stop,
            running,
            accept: Some(accept),
        })
    }

    /// Stops accepting, waits (bounded) for commands in progress, removes
    /// the socket.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept call.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
        let (count, cv) = &*self.running;
        let mut n = count.lock();
        let deadline = std::time::Instant::now() + DRAIN_TIMEOUT;
        while *n > 0 {
            if cv.wait_until(&mut n, deadline).timed_out() {
                tracing::warn!("{} admin commands still running; stopping anyway", *n);
                break;
            }
        }
    }
}

/// Binds `path` owner-only: in a fresh 0700 directory first, then renamed.
fn bind_private(data_dir: &Path, path: &Path) -> Result<UnixListener> {
    let private = data_dir.join(format!(".admin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .with_context(|| format!("creating {}", private.display()))?;
    let tmp = private.join(SOCKET_NAME);
    let bound = (|| -> Result<UnixListener> {
        let l = UnixListener::bind(&tmp)
            .with_context(|| format!("binding the admin socket {}", tmp.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("placing the admin socket at {}", path.display()))?;
        Ok(l)
    })();
    let _ = std::fs::remove_dir_all(&private);
    bound
}

fn accept_loop(
    listener: UnixListener,
    state: ApiState,
    stop: Arc<AtomicBool>,
    running: Arc<(Mutex<usize>, Condvar)>,
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("admin socket: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        *running.0.lock() += 1;
        let (state, done) = (state.clone(), running.clone());
        let spawned = std::thread::Builder::new()
            .name("blockd-admin-cmd".into())
            .spawn(move || {
                if let Err(e) = serve_one(conn, state) {
                    tracing::warn!("admin socket: {e:#}");
                }
                let (count, cv) = &*done;
                *count.lock() -= 1;
                cv.notify_all();
            });
        if let Err(e) = spawned {
            tracing::error!("admin socket: cannot start a command thread: {e}");
            *running.0.lock() -= 1;
        }
    }
}

/// Reads one request, runs it, answers.
fn serve_one(conn: UnixStream, state: ApiState) -> Result<()> {
    conn.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut line = Vec::new();
    BufReader::new((&conn).take(MAX_REQUEST)).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        // A liveness probe (`is_served`): connected, sent nothing.
        return Ok(());
    }
    if line.last() != Some(&b'\n') {
        bail!("request cut short or longer than {MAX_REQUEST} bytes");
    }
    let reply = match serde_json::from_slice::<AdminRequest>(&line) {
        Ok(req) => run_request(req, state),
        Err(e) => AdminReply {
            stdout: String::new(),
            stderr: format!("blockd: malformed admin request: {e}\n"),
            code: 2,
        },
    };
    let mut text = serde_json::to_vec(&reply)?;
    text.push(b'\n');
    (&conn).write_all(&text)?;
    Ok(())
}

fn run_request(req: AdminRequest, state: ApiState) -> AdminReply {
    let mut stdout = Vec::new();
    let (code, stderr) = match parse_online(&req.argv, &req.cwd) {
        Err(msg) => (2, format!("blockd: {msg}\n")),
        Ok((cmd, tenant)) => {
            tracing::info!(command = ?req.argv.get(1..).unwrap_or_default(), "admin socket: running");
            let target = Target::Online {
                op: Operator::new(state),
                tenant,
            };
            match execute(cmd, &target, &mut stdout) {
                Ok(code) => (code, String::new()),
                Err(e) => (exit_code(&e), format!("blockd: {e:#}\n")),
            }
        }
    };
    AdminReply {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
        code,
    }
}
