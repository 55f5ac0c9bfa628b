//! Shared helpers of the NBD black-box tests: a `blockd serve` process on a
//! temporary data directory (killed when dropped), the offline CLI, running
//! external clients (qemu-io, nbdinfo, nbdsh...), and a tiny raw NBD client
//! over the Unix socket for the malformed traffic no real client sends.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The blockd binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_blockd")
}

/// Runs the offline CLI on `dir`; returns its output whatever the status.
pub fn blockd_output(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run blockd")
}

/// Runs the offline CLI; panics on failure; returns stdout.
pub fn blockd(dir: &Path, args: &[&str]) -> String {
    let o = blockd_output(dir, args);
    assert!(
        o.status.success(),
        "blockd {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs a program; returns its output whatever the status.
pub fn run(prog: &str, args: &[&str]) -> Output {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"))
}

/// qemu-io's arguments: `image` names the image (`-f raw`, or `--object
/// ... --image-opts OPTIONS`), then `-c CMD` for each command.
pub fn qemu_io_args<'a>(image: &[&'a str], cmds: &[&'a str]) -> Vec<&'a str> {
    let mut args = image.to_vec();
    for c in cmds {
        args.push("-c");
        args.push(c);
    }
    args
}

/// Runs a program and asserts success; returns stdout.
pub fn ok(prog: &str, args: &[&str]) -> String {
    let o = run(prog, args);
    assert!(
        o.status.success(),
        "{prog} {args:?} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a Python snippet with libnbd's binding (`import nbd` done; `uri`
/// and `sock` defined); returns stdout.
pub fn nbdsh(srv: &Serve, export: &str, code: &str) -> String {
    let prelude = format!(
        "import nbd, os, sys\nsock = {:?}\nuri = {:?}\n",
        srv.socket.display().to_string(),
        srv.uri(export)
    );
    ok("/usr/bin/python3", &["-c", &(prelude + code)])
}

/// `blockd serve` on `dir` without the API, NBD on `dir/nbd.sock`, with
/// `args` before that (not yet spawned).
pub fn serve_command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("--data-dir")
        .arg(dir)
        .args(["serve", "--api-listen", ""])
        .args(args)
        .arg("--nbd-socket")
        .arg(dir.join("nbd.sock"));
    c
}

/// A running `blockd serve`.
pub struct Serve {
    /// Owns the data directory (unless given).
    pub tmp: Option<tempfile::TempDir>,
    /// The data directory.
    pub dir: PathBuf,
    /// The Unix socket.
    pub socket: PathBuf,
    /// The TCP address.
    pub tcp: String,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

/// A fresh temporary data directory (inside a TempDir).
pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("data");
    (t, d)
}

impl Serve {
    /// Starts `blockd serve` on `dir` with extra arguments; waits until it
    /// listens.
    pub fn start(dir: &Path, extra: &[&str]) -> Serve {
        let socket = dir.join("nbd.sock");
        let mut child = serve_command(dir, &["--nbd-listen", "127.0.0.1:0"])
            .args(extra)
            .env("BLOCKD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn blockd serve");
        let log = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        let mut s = Serve {
            tmp: None,
            dir: dir.to_path_buf(),
            socket,
            tcp: String::new(),
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let lines = s.log.lock().unwrap().clone();
            let tcp = lines
                .iter()
                .find_map(|l| l.split("NBD listening on tcp ").nth(1).map(str::to_string));
            let unix = lines.iter().any(|l| l.contains("NBD listening on unix"));
            if let (Some(t), true) = (tcp, unix) {
                s.tcp = t.trim().to_string();
                break;
            }
            if let Some(st) = s.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("blockd serve exited early ({st}): {lines:#?}");
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {lines:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    /// A new data directory with volumes created offline by `setup`, served.
    pub fn with(setup: impl FnOnce(&Path), extra: &[&str]) -> Serve {
        let (t, d) = data_dir();
        setup(&d);
        let mut s = Serve::start(&d, extra);
        s.tmp = Some(t);
        s
    }

    /// URI of an export over the Unix socket.
    pub fn uri(&self, export: &str) -> String {
        format!("nbd+unix:///{export}?socket={}", self.socket.display())
    }

    /// URI of an export over TCP.
    pub fn tcp_uri(&self, export: &str) -> String {
        format!("nbd://{}/{export}", self.tcp)
    }

    /// The server's log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// True when a log line containing `needle` arrives within `wait` (the
    /// server's stderr is collected by another thread, so a line can trail
    /// what the client observed).
    pub fn wait_log(&self, needle: &str, wait: Duration) -> bool {
        let end = std::time::Instant::now() + wait;
        loop {
            if self.log().iter().any(|l| l.contains(needle)) {
                return true;
            }
            if std::time::Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// Sends a signal and waits for the exit.
    pub fn signal(&mut self, sig: &str) -> ExitStatus {
        ok("kill", &[&format!("-{sig}"), &self.pid().to_string()]);
        let st = self.child.as_mut().unwrap().wait().unwrap();
        self.child = None;
        st
    }

    /// SIGKILL, then wait.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Deterministic test data.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---- raw client ----

/// Appends one compact NBD request (header, then `data` for writes) to `b`.
pub fn push_request(
    b: &mut Vec<u8>,
    cmd: u16,
    flags: u16,
    cookie: u64,
    offset: u64,
    len: u32,
    data: &[u8],
) {
    b.extend_from_slice(&REQ_MAGIC.to_be_bytes());
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&cmd.to_be_bytes());
    b.extend_from_slice(&cookie.to_be_bytes());
    b.extend_from_slice(&offset.to_be_bytes());
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(data);
}

pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
pub const IHAVEOPT: u64 = 0x4948_4156_454F_5054;
pub const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
pub const REQ_MAGIC: u32 = 0x2560_9513;
pub const SIMPLE_MAGIC: u32 = 0x6744_6698;
pub const STRUCT_MAGIC: u32 = 0x668e_33ef;
pub const OPT_EXPORT_NAME: u32 = 1;
pub const OPT_ABORT: u32 = 2;
pub const OPT_LIST: u32 = 3;
pub const OPT_GO: u32 = 7;
pub const OPT_STRUCTURED: u32 = 8;
pub const OPT_LIST_META: u32 = 9;
pub const OPT_SET_META: u32 = 10;
pub const REP_ACK: u32 = 1;
pub const REP_SERVER: u32 = 2;
pub const REP_INFO: u32 = 3;
pub const REP_META: u32 = 4;
pub const ERR_UNSUP: u32 = (1 << 31) + 1;
pub const ERR_INVALID: u32 = (1 << 31) + 3;
pub const ERR_UNKNOWN: u32 = (1 << 31) + 6;
pub const ERR_TOO_BIG: u32 = (1 << 31) + 9;
pub const CMD_READ: u16 = 0;
pub const CMD_WRITE: u16 = 1;
pub const CMD_FLUSH: u16 = 3;
pub const CMD_TRIM: u16 = 4;
pub const CMD_WRITE_ZEROES: u16 = 6;
pub const CMD_BLOCK_STATUS: u16 = 7;
pub const FLAG_FUA: u16 = 1;
pub const EPERM: u32 = 1;
pub const EIO: u32 = 5;
pub const EINVAL: u32 = 22;
pub const ENOSPC: u32 = 28;

/// A raw NBD client speaking bytes over the Unix socket (or, after
/// STARTTLS, over a TLS session on it).
pub struct Raw<S = UnixStream> {
    pub s: S,
}

/// One option reply.
#[derive(Debug)]
pub struct OptReply {
    pub option: u32,
    pub reply: u32,
    pub data: Vec<u8>,
}

/// One reply (simple, or one structured chunk).
#[derive(Debug)]
pub struct Chunk {
    pub structured: bool,
    pub flags: u16,
    pub ty: u16,
    pub cookie: u64,
    /// Simple reply: the error; structured: 0.
    pub error: u32,
    pub payload: Vec<u8>,
}

impl Raw {
    /// Connects and reads the greeting; sends client flags (fixed newstyle,
    /// no zeroes).
    pub fn connect(sock: &Path) -> Raw {
        let s = UnixStream::connect(sock).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut r = Raw { s };
        let mut g = [0u8; 18];
        r.s.read_exact(&mut g).unwrap();
        assert_eq!(u64::from_be_bytes(g[..8].try_into().unwrap()), NBDMAGIC);
        assert_eq!(u64::from_be_bytes(g[8..16].try_into().unwrap()), IHAVEOPT);
        assert_eq!(u16::from_be_bytes([g[16], g[17]]), 3);
        r.s.write_all(&3u32.to_be_bytes()).unwrap();
        r
    }

    /// GO payload for `name` with the given info requests.
    pub fn go_payload(name: &str, infos: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(name.len() as u32).to_be_bytes());
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(&(infos.len() as u16).to_be_bytes());
        for i in infos {
            b.extend_from_slice(&i.to_be_bytes());
        }
        b
    }

    /// Meta-context payload.
    pub fn meta_payload(name: &str, queries: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(name.len() as u32).to_be_bytes());
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(&(queries.len() as u32).to_be_bytes());
        for q in queries {
            b.extend_from_slice(&(q.len() as u32).to_be_bytes());
            b.extend_from_slice(q.as_bytes());
        }
        b
    }

    /// The errno of a reply: simple error, or a structured ERROR chunk's.
    pub fn errno_of(c: &Chunk) -> u32 {
        if c.structured && c.ty >= 0x8000 {
            u32::from_be_bytes(c.payload[..4].try_into().unwrap())
        } else {
            c.error
        }
    }

    /// Reads until the connection closes (true) or `wait` passes (false).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.s.set_read_timeout(Some(wait)).unwrap();
        let mut b = [0u8; 4096];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

impl<S: Read + Write> Raw<S> {
    /// Sends an option with an explicit length field and payload.
    pub fn send_opt_raw(&mut self, option: u32, len: u32, data: &[u8]) {
        let mut b = Vec::new();
        b.extend_from_slice(&IHAVEOPT.to_be_bytes());
        b.extend_from_slice(&option.to_be_bytes());
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(data);
        self.s.write_all(&b).unwrap();
    }

    /// Sends an option.
    pub fn send_opt(&mut self, option: u32, data: &[u8]) {
        self.send_opt_raw(option, data.len() as u32, data);
    }

    /// Reads one option reply; `None` on EOF.
    pub fn opt_reply(&mut self) -> Option<OptReply> {
        let mut h = [0u8; 20];
        self.s.read_exact(&mut h).ok()?;
        assert_eq!(u64::from_be_bytes(h[..8].try_into().unwrap()), REPLY_MAGIC);
        let len = u32::from_be_bytes(h[16..20].try_into().unwrap());
        let mut data = vec![0u8; len as usize];
        self.s.read_exact(&mut data).unwrap();
        Some(OptReply {
            option: u32::from_be_bytes(h[8..12].try_into().unwrap()),
            reply: u32::from_be_bytes(h[12..16].try_into().unwrap()),
            data,
        })
    }

    /// Reads replies until ACK or an error reply; returns them all.
    pub fn opt_replies(&mut self) -> Vec<OptReply> {
        let mut v = Vec::new();
        loop {
            let r = self.opt_reply().expect("option reply");
            let end = r.reply == REP_ACK || r.reply >= 1 << 31;
            v.push(r);
            if end {
                return v;
            }
        }
    }

    /// Negotiates structured replies (optional), base:allocation, and GO on
    /// `name`; returns (size, transmission flags).
    pub fn go(&mut self, name: &str, structured: bool) -> (u64, u16) {
        if structured {
            self.send_opt(OPT_STRUCTURED, &[]);
            assert_eq!(self.opt_replies()[0].reply, REP_ACK);
            self.send_opt(
                OPT_SET_META,
                &Raw::<UnixStream>::meta_payload(name, &["base:allocation"]),
            );
            let r = self.opt_replies();
            assert_eq!(r[0].reply, REP_META, "{r:?}");
        }
        self.send_opt(OPT_GO, &Raw::<UnixStream>::go_payload(name, &[]));
        let r = self.opt_replies();
        let info = r
            .iter()
            .find(|x| x.reply == REP_INFO && x.data[..2] == [0, 0])
            .unwrap_or_else(|| panic!("GO {name}: {r:?}"));
        assert_eq!(r.last().unwrap().reply, REP_ACK);
        (
            u64::from_be_bytes(info.data[2..10].try_into().unwrap()),
            u16::from_be_bytes([info.data[10], info.data[11]]),
        )
    }

    /// Sends one request (with payload for writes).
    pub fn request(
        &mut self,
        cmd: u16,
        flags: u16,
        cookie: u64,
        offset: u64,
        len: u32,
        data: &[u8],
    ) {
        let mut b = Vec::with_capacity(28 + data.len());
        push_request(&mut b, cmd, flags, cookie, offset, len, data);
        self.s.write_all(&b).unwrap();
    }

    /// Reads one simple reply or structured chunk; for a simple reply to a
    /// read, `read_len` payload bytes follow when the error is 0. `None`
    /// on EOF.
    pub fn reply(&mut self, read_len: usize) -> Option<Chunk> {
        let mut m = [0u8; 4];
        self.s.read_exact(&mut m).ok()?;
        let magic = u32::from_be_bytes(m);
        if magic == SIMPLE_MAGIC {
            let mut h = [0u8; 12];
            self.s.read_exact(&mut h).ok()?;
            let error = u32::from_be_bytes(h[..4].try_into().unwrap());
            let mut payload = vec![0u8; if error == 0 { read_len } else { 0 }];
            self.s.read_exact(&mut payload).ok()?;
            return Some(Chunk {
                structured: false,
                flags: 0,
                ty: 0,
                cookie: u64::from_be_bytes(h[4..12].try_into().unwrap()),
                error,
                payload,
            });
        }
        assert_eq!(magic, STRUCT_MAGIC, "reply magic");
        let mut h = [0u8; 16];
        self.s.read_exact(&mut h).ok()?;
        let len = u32::from_be_bytes(h[12..16].try_into().unwrap());
        let mut payload = vec![0u8; len as usize];
        self.s.read_exact(&mut payload).ok()?;
        Some(Chunk {
            structured: true,
            flags: u16::from_be_bytes([h[0], h[1]]),
            ty: u16::from_be_bytes([h[2], h[3]]),
            cookie: u64::from_be_bytes(h[4..12].try_into().unwrap()),
            error: 0,
            payload,
        })
    }
}
