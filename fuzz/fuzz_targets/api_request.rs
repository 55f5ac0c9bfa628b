//! Fuzzes the REST API's request handling, every dialect: an input is an
//! HTTP request as text (`METHOD PATH?QUERY`, header lines, a blank line,
//! the body), dispatched to a real store on a temporary directory with one
//! tenant. JSON, XML, form and multipart bodies, paths, queries and headers
//! all come from the fuzzer; the handler must answer, never panic.
#![no_main]

use api::{ApiState, Auth, Request};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const AUTH: &str = r#"
[[tenants]]
id = "demo"
token = "demo-token-0123456789abcdef"
user = "demo"
password = "demo-password"
[tenants.quota]
gigabytes = 64
volumes = 16
snapshots = 16
"#;

fn state() -> &'static ApiState {
    static STATE: OnceLock<(tempfile::TempDir, ApiState)> = OnceLock::new();
    let (_, s) = STATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = engine::Store::open(dir.path().join("data"), engine::StoreOptions::default())
            .expect("store");
        let auth = Auth::parse(AUTH).expect("auth");
        let state = ApiState::new(store, auth);
        (dir, state)
    });
    s
}

fn request(data: &[u8]) -> Option<Request> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let (method, target) = lines.next()?.split_once(' ')?;
    let method = warp::http::Method::from_bytes(method.as_bytes()).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = warp::http::HeaderMap::new();
    for l in lines {
        let (k, v) = l.split_once(':')?;
        let k = warp::http::header::HeaderName::from_bytes(k.trim().as_bytes()).ok()?;
        let v = warp::http::HeaderValue::from_str(v.trim()).ok()?;
        headers.append(k, v);
    }
    Some(Request::new(
        method,
        path,
        query,
        headers,
        Bytes::copy_from_slice(body),
    ))
}

fuzz_target!(|data: &[u8]| {
    if let Some(req) = request(data) {
        let _ = api::dispatch(state(), &req);
    }
});
