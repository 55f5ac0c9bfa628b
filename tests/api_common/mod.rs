//! Helpers of the REST API black-box tests: a `blockd serve` process on a
//! temporary data directory with the API on a free port and an auth file
//! the test wrote (killed when dropped), a blocking HTTP client (ureq) that
//! returns every status as a value, the offline CLI, and qemu-io.
#![allow(dead_code)]

pub mod headers;
pub mod schema;

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tokens of the tenants in [`AUTH`].
pub const DEMO: &str = "demo-token-0123456789abcdef";
pub const OTHER: &str = "other-token-0123456789abcdef";
pub const SMALL: &str = "small-token-0123456789abcdef";

/// Three tenants: `demo` and `other` unlimited, `small` with quotas.
pub const AUTH: &str = r#"
[[tenants]]
id = "demo"
token = "demo-token-0123456789abcdef"
user = "demo"
password = "demo-password"

[[tenants]]
id = "other"
token = "other-token-0123456789abcdef"
user = "other"
password = "other-password"

[[tenants]]
id = "small"
token = "small-token-0123456789abcdef"
user = "small"
password = "small-password"
[tenants.quota]
gigabytes = 3
volumes = 2
snapshots = 1
"#;

/// Two tenants: `demo`, and `ops`, an admin (its Keystone user is `ops`).
pub const DEMO_AND_ADMIN_AUTH: &str = r#"
[[tenants]]
id = "demo"
token = "demo-token-0123456789abcdef"
user = "demo"
password = "demo-password"

[[tenants]]
id = "ops"
token = "ops-token-0123456789abcdef"
user = "ops"
password = "ops-password"
admin = true
"#;

/// HTTP Basic credentials of the tenants in [`AUTH`] (Deltacloud, CIMI).
pub const DEMO_BASIC: (&str, &str) = ("demo", "demo-password");
pub const OTHER_BASIC: (&str, &str) = ("other", "other-password");
pub const SMALL_BASIC: (&str, &str) = ("small", "small-password");

/// `Authorization: Basic ...` for `(user, password)`.
pub fn basic((user, password): (&str, &str)) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b}")
}

/// The blockd binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_blockd")
}

/// Runs the offline CLI on `dir`; panics on failure; returns stdout.
pub fn blockd(dir: &Path, args: &[&str]) -> String {
    let o = Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run blockd");
    assert!(
        o.status.success(),
        "blockd {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8 output")
}

/// Runs a program; returns its output whatever the status.
pub fn run(prog: &str, args: &[&str]) -> Output {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"))
}

/// One HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub text: String,
    /// The body as JSON (Null when empty or not JSON).
    pub json: Value,
}

impl Resp {
    /// A header (lowercase name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A running `blockd serve` with the API.
pub struct Api {
    pub tmp: tempfile::TempDir,
    /// The data directory.
    pub dir: PathBuf,
    /// The NBD Unix socket.
    pub socket: PathBuf,
    /// The auth file.
    pub auth: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    agent: ureq::Agent,
    /// More `blockd serve` options and environment variables.
    extra: Vec<String>,
    env: Vec<(String, String)>,
}

impl Api {
    /// A server on a fresh data directory with the [`AUTH`] tenants.
    pub fn start() -> Api {
        Api::start_with(Some(AUTH), |_| {})
    }

    /// A server on a fresh data directory, after `setup` ran offline on it;
    /// with `auth` written to `<tmp>/auth.toml` and passed as --auth-file,
    /// or without --auth-file (the server creates `<data-dir>/auth.toml`).
    pub fn start_with(auth: Option<&str>, setup: impl FnOnce(&Path)) -> Api {
        Api::start_full(auth, setup, &[], &[])
    }

    /// A server with the [`AUTH`] tenants, more `serve` options and
    /// environment variables.
    pub fn start_args(args: &[&str], env: &[(&str, &str)]) -> Api {
        Api::start_full(Some(AUTH), |_| {}, args, env)
    }

    pub fn start_full(
        auth: Option<&str>,
        setup: impl FnOnce(&Path),
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Api {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        setup(&dir);
        let auth_path = match auth {
            Some(text) => {
                let p = tmp.path().join("auth.toml");
                std::fs::write(&p, text).expect("write auth file");
                p
            }
            None => dir.join("auth.toml"),
        };
        let mut api = Api {
            socket: tmp.path().join("nbd.sock"),
            tmp,
            dir,
            auth: auth_path,
            base: String::new(),
            child: None,
            log: Arc::new(Mutex::new(Vec::new())),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .redirects(0)
                .build(),
            extra: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        api.spawn(auth.is_some());
        api
    }

    fn spawn(&mut self, pass_auth: bool) {
        let mut cmd = Command::new(bin());
        cmd.arg("--data-dir")
            .arg(&self.dir)
            .args(["serve", "--nbd-listen", "", "--nbd-socket"])
            .arg(&self.socket)
            .args(["--api-listen", "127.0.0.1:0"]);
        if pass_auth {
            cmd.arg("--auth-file").arg(&self.auth);
        }
        cmd.args(&self.extra).envs(self.env.iter().cloned());
        let mut child = cmd
            .env("BLOCKD_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn blockd serve");
        let log = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().expect("stderr");
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        self.log = log;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let lines = self.log();
            let addr = lines.iter().find_map(|l| {
                l.split("API listening on http://")
                    .nth(1)
                    .map(|a| a.trim().to_string())
            });
            let unix = lines.iter().any(|l| l.contains("NBD listening on unix"));
            if let (Some(a), true) = (addr, unix) {
                self.base = format!("http://{a}");
                break;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("blockd serve exited early ({st}): {lines:#?}");
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {lines:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with SIGTERM and starts it again on the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(self.auth.parent() != Some(self.dir.as_path()));
    }

    /// SIGTERM, then waits; asserts a clean exit.
    pub fn stop(&mut self) {
        let mut c = self.child.take().expect("running");
        let pid = c.id().to_string();
        let o = run("kill", &["-TERM", &pid]);
        assert!(o.status.success());
        let st = c.wait().expect("wait");
        assert!(st.success(), "exit {st}: {:#?}", self.log());
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The server's log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The NBD URI of an export over the Unix socket.
    pub fn nbd_uri(&self, export: &str) -> String {
        format!("nbd+unix:///{export}?socket={}", self.socket.display())
    }

    /// Any request: method, path (with query), headers, optional body;
    /// every status comes back as a value.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let res = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        match res {
            Ok(r) | Err(ureq::Error::Status(_, r)) => to_resp(r),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    /// Any request: `body` is (content type or None, bytes).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(Option<&str>, &[u8])>,
    ) -> Resp {
        let mut headers = Vec::new();
        if let Some(t) = token {
            headers.push(("X-Auth-Token", t));
        }
        if let Some((Some(ct), _)) = body {
            headers.push(("Content-Type", ct));
        }
        self.send(method, path, &headers, body.map(|(_, b)| b))
    }

    /// GET with a token.
    pub fn get(&self, path: &str, token: &str) -> Resp {
        self.raw("GET", path, Some(token), None)
    }

    /// DELETE with a token.
    pub fn delete(&self, path: &str, token: &str) -> Resp {
        self.raw("DELETE", path, Some(token), None)
    }

    /// POST a JSON document.
    pub fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        let b = body.to_string();
        self.raw(
            "POST",
            path,
            Some(token),
            Some((Some("application/json"), b.as_bytes())),
        )
    }

    /// PUT a JSON document.
    pub fn put(&self, path: &str, token: &str, body: &Value) -> Resp {
        let b = body.to_string();
        self.raw(
            "PUT",
            path,
            Some(token),
            Some((Some("application/json"), b.as_bytes())),
        )
    }

    /// A streamed (chunked, no Content-Length) POST of `len` bytes.
    pub fn post_chunked(&self, path: &str, token: &str, len: usize) -> Resp {
        let reader = std::io::repeat(b' ').take(len as u64);
        let res = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("X-Auth-Token", token)
            .set("Content-Type", "application/json")
            .send(reader);
        match res {
            Ok(r) | Err(ureq::Error::Status(_, r)) => to_resp(r),
            Err(e) => panic!("chunked POST {path}: {e}"),
        }
    }

    /// Creates a volume of `size` GB for the tenant with `token` at `t`;
    /// returns its id.
    pub fn volume(&self, tenant: &str, token: &str, size: u64) -> String {
        let r = self.post(
            &format!("/v1.1/{tenant}/os-volumes"),
            token,
            &serde_json::json!({"volume": {"size": size}}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["volume"]["id"].as_str().expect("id").to_string()
    }
}

fn to_resp(r: ureq::Response) -> Resp {
    let status = r.status();
    let headers = r
        .headers_names()
        .into_iter()
        .filter_map(|n| {
            r.header(&n)
                .map(|v| (n.to_ascii_lowercase(), v.to_string()))
        })
        .collect();
    let mut text = String::new();
    r.into_reader()
        .take(16 << 20)
        .read_to_string(&mut text)
        .expect("read body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        json,
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs qemu-io on a raw NBD URI; asserts success; returns stdout.
pub fn qemu_io(uri: &str, cmds: &[&str]) -> String {
    qemu_io_args(&["-f", "raw"], uri, cmds)
}

/// Like [`qemu_io`], opening the export read-only.
pub fn qemu_io_ro(uri: &str, cmds: &[&str]) -> String {
    qemu_io_args(&["-r", "-f", "raw"], uri, cmds)
}

fn qemu_io_args(opts: &[&str], uri: &str, cmds: &[&str]) -> String {
    let mut args = opts.to_vec();
    for c in cmds {
        args.push("-c");
        args.push(c);
    }
    args.push(uri);
    let o = run("qemu-io", &args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success() && !out.contains("failed") && !out.contains("Pattern verification"),
        "qemu-io {cmds:?} on {uri}: {out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}
