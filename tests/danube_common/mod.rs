//! Helpers of the Danube Cloud black-box tests (on top of `api_common`):
//! requests with `ES-API-KEY` or `Authorization: Token`, task polling, the
//! seed fixtures, a tiny HTTP file server (std::net, one thread per
//! connection) whose paths can be held back to keep an import pending,
//! and imgadm-style manifests.
#![allow(dead_code)]

use crate::api_common::{Api, Resp};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How a request authenticates (`Es`: the `ES-API-KEY` header).
#[derive(Clone, Copy)]
pub enum Key<'a> {
    Es(&'a str),
    Token(&'a str),
    None,
}

/// Any request to the API.
pub fn call(
    api: &Api,
    method: &str,
    path: &str,
    key: Key,
    body: Option<&[u8]>,
    ct: Option<&str>,
) -> Resp {
    let token;
    let mut headers: Vec<(&str, &str)> = Vec::new();
    match key {
        Key::Es(k) => headers.push(("ES-API-KEY", k)),
        Key::Token(k) => {
            token = format!("Token {k}");
            headers.push(("Authorization", &token));
        }
        Key::None => {}
    }
    if let Some(ct) = ct {
        headers.push(("Content-Type", ct));
    }
    api.send(method, path, &headers, body)
}

/// A Danube request with a JSON body (None: no body) and `ES-API-KEY`.
pub fn dn(api: &Api, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
    let b = body.map(|v| v.to_string());
    call(
        api,
        method,
        path,
        Key::Es(token),
        b.as_deref().map(str::as_bytes),
        b.as_ref().map(|_| "application/json"),
    )
}

/// Asserts a SUCCESS 200 envelope; returns the result.
pub fn ok(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "SUCCESS", "{}", r.text);
    assert!(r.json["task_id"].is_string(), "{}", r.text);
    r.json["result"].clone()
}

/// Asserts a 400 FAILURE envelope naming `field`.
pub fn failure(r: &Resp, field: &str) {
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json["status"], "FAILURE", "{}", r.text);
    assert!(
        r.json["result"][field].is_array(),
        "field {field}: {}",
        r.text
    );
    assert_same_keys(&r.json, &fixture("failure.json"), "FAILURE envelope");
}

/// Asserts an exception `{"detail": ...}` with `status`.
pub fn detail(r: &Resp, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.text);
    assert_same_keys(&r.json, &fixture("detail.json"), "exception");
    r.json["detail"]
        .as_str()
        .expect("detail string")
        .to_string()
}

/// A fixture of `fixtures/danube/`.
pub fn fixture(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/danube")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("fixture JSON")
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Asserts `got` is an object with exactly the keys of `want`.
pub fn assert_same_keys(got: &Value, want: &Value, what: &str) {
    assert_eq!(keys(got), keys(want), "{what}: {got}");
}

/// Asserts the element names (and JSON types) of `got` match `want`'s.
pub fn assert_shape(got: &Value, want: &Value, what: &str) {
    assert_same_keys(got, want, what);
    if let (Some(g), Some(w)) = (got.as_object(), want.as_object()) {
        for (k, wv) in w {
            let gv = &g[k];
            let same = matches!(
                (gv, wv),
                (Value::Null, Value::Null)
                    | (Value::Bool(_), Value::Bool(_))
                    | (Value::Number(_), Value::Number(_))
                    | (Value::String(_), Value::String(_))
                    | (Value::Array(_), Value::Array(_))
                    | (Value::Object(_), Value::Object(_))
            );
            assert!(same, "{what}: {k} is {gv}, the seed has {wv}");
        }
    }
}

/// Polls a task until it ends; returns the final response.
pub fn wait_task(api: &Api, token: &str, task: &str) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = dn(
            api,
            "GET",
            &format!("/api/task/{task}/status/"),
            token,
            None,
        );
        if r.status != 201 {
            return r;
        }
        assert_eq!(r.json["status"], "PENDING", "{}", r.text);
        assert!(Instant::now() < deadline, "task {task} still pending");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts an import; asserts 201 PENDING; returns the task id.
pub fn import(api: &Api, token: &str, name: &str, body: Value) -> String {
    let r = dn(
        api,
        "POST",
        &format!("/api/image/{name}/"),
        token,
        Some(body),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["status"], "PENDING", "{}", r.text);
    assert_same_keys(&r.json, &fixture("task_pending.json"), "PENDING envelope");
    r.json["task_id"].as_str().expect("task_id").to_string()
}

/// An imgadm-style manifest for `file` (as stored, maybe compressed).
pub fn manifest(file: &[u8], compression: &str, image_size_mb: Option<u64>) -> Vec<u8> {
    use sha1_smol_like::sha1_hex;
    let mut m = fixture("manifest.json");
    m["files"] = json!([{"sha1": sha1_hex(file), "size": file.len(), "compression": compression}]);
    match image_size_mb {
        Some(n) => m["image_size"] = json!(n),
        None => {
            if let Some(o) = m.as_object_mut() {
                o.remove("image_size");
            }
        }
    }
    m.to_string().into_bytes()
}

/// SHA-1 without a dev-dependency: through `sha1sum`.
mod sha1_smol_like {
    use std::io::Write;
    use std::process::{Command, Stdio};

    pub fn sha1_hex(data: &[u8]) -> String {
        let mut c = Command::new("sha1sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sha1sum");
        let mut stdin = c.stdin.take().expect("stdin");
        let data = data.to_vec();
        let w = std::thread::spawn(move || stdin.write_all(&data));
        let out = c.wait_with_output().expect("sha1sum output");
        w.join().expect("writer").expect("write to sha1sum");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .expect("digest")
            .to_string()
    }
}

/// Compresses with an external tool (`gzip -c` or `zstd -c`).
pub fn compress(tool: &str, data: &[u8]) -> Vec<u8> {
    use std::process::{Command, Stdio};
    let mut c = Command::new(tool)
        .args(["-c", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let mut stdin = c.stdin.take().expect("stdin");
    let d = data.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&d));
    let out = c.wait_with_output().expect("output");
    w.join().expect("writer").expect("write");
    assert!(out.status.success(), "{tool} failed");
    out.stdout
}

/// Path -> (status, body).
type Files = Arc<Mutex<HashMap<String, (u16, Vec<u8>)>>>;

/// A small HTTP server of fixed bodies; a held path answers only after
/// [`FileServer::release`].
pub struct FileServer {
    pub base: String,
    files: Files,
    gate: Arc<(Mutex<bool>, Condvar)>,
    held: Arc<Mutex<BTreeSet<String>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

impl FileServer {
    pub fn start() -> FileServer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", l.local_addr().expect("addr"));
        let fs = FileServer {
            base,
            files: Arc::default(),
            gate: Arc::new((Mutex::new(false), Condvar::new())),
            held: Arc::default(),
            hits: Arc::default(),
        };
        let (files, gate, held, hits) = (
            fs.files.clone(),
            fs.gate.clone(),
            fs.held.clone(),
            fs.hits.clone(),
        );
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut s) = conn else { continue };
                let (files, gate, held, hits) =
                    (files.clone(), gate.clone(), held.clone(), hits.clone());
                std::thread::spawn(move || {
                    let path;
                    {
                        let mut r = BufReader::new(&mut s);
                        let mut line = String::new();
                        if r.read_line(&mut line).is_err() {
                            return;
                        }
                        path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        loop {
                            let mut h = String::new();
                            match r.read_line(&mut h) {
                                Ok(0) | Err(_) => break,
                                Ok(_) if h == "\r\n" || h == "\n" => break,
                                Ok(_) => {}
                            }
                        }
                    }
                    hits.lock().unwrap().push(path.clone());
                    if held.lock().unwrap().contains(&path) {
                        let (m, cv) = &*gate;
                        let mut open = m.lock().unwrap();
                        while !*open {
                            open = cv.wait(open).unwrap();
                        }
                    }
                    let (status, body) = files
                        .lock()
                        .unwrap()
                        .get(path.split('?').next().unwrap_or_default())
                        .cloned()
                        .unwrap_or((404, b"not found".to_vec()));
                    // A 3xx body is its Location.
                    let location = if (300..400).contains(&status) {
                        format!("Location: {}\r\n", String::from_utf8_lossy(&body))
                    } else {
                        String::new()
                    };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(&body);
                });
            }
        });
        fs
    }

    /// Serves `body` at `path`.
    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_string(), (200, body));
    }

    /// Holds `path` until [`FileServer::release`].
    pub fn hold(&self, path: &str) {
        self.held.lock().unwrap().insert(path.to_string());
    }

    pub fn release(&self) {
        let (m, cv) = &*self.gate;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }

    /// Waits until `path` was requested.
    pub fn wait_hit(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.hits.lock().unwrap().iter().any(|h| h == path) {
            assert!(Instant::now() < deadline, "{path} never requested");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `path` answers `status` with `body`.
    pub fn put_status(&self, path: &str, status: u16, body: Vec<u8>) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_string(), (status, body));
    }

    /// `path` answers 302 to `location`.
    pub fn redirect(&self, path: &str, location: &str) {
        self.put_status(path, 302, location.as_bytes().to_vec());
    }

    /// The paths asked for so far.
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> &str {
        self.base.trim_start_matches("http://")
    }
}

/// The debug-build-only variable that lets imports reach loopback (the
/// file server's address).
pub const TEST_LOOPBACK: &str = "BLOCKD_TEST_IMPORT_LOOPBACK";

/// A server whose image import may fetch from `fs` (allow-listed, and
/// loopback let through for the test).
pub fn api_importing_from(fs: &FileServer) -> Api {
    Api::start_args(
        &["--image-import-allow", fs.authority()],
        &[(TEST_LOOPBACK, "1")],
    )
}

/// A 1 MiB test image: four 256 KiB blocks of 0x11, zeros, 0x33, 0x44.
pub fn image_bytes() -> Vec<u8> {
    let mut v = Vec::with_capacity(1 << 20);
    for b in [0x11u8, 0x00, 0x33, 0x44] {
        v.extend(std::iter::repeat_n(b, 256 << 10));
    }
    v
}

/// Creates a volume through OpenStack and attaches it to `server` at
/// `device`; returns its id.
pub fn attached_volume(api: &Api, tenant: &str, token: &str, server: &str, device: &str) -> String {
    let id = api.volume(tenant, token, 1);
    let r = api.post(
        &format!("/v1.1/{tenant}/servers/{server}/os-volume_attachments"),
        token,
        &json!({"volumeAttachment": {"volumeId": id, "device": device}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    id
}
