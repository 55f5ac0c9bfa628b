//! Requests as text, for the cargo-fuzz target `api_request` and the test
//! that replays its seeds and regressions: `METHOD PATH?QUERY`, header
//! lines `Name: value`, a blank line, then the body. Whatever the bytes,
//! [`crate::dispatch`] must answer in the dialect's format, never panic.
//! [`state`] is the API both run the requests against.

use crate::http::Request;
use crate::{ApiState, Auth, Result};
use bytes::Bytes;
use std::path::Path;
use warp::http::{header::HeaderName, HeaderMap, HeaderValue, Method};

/// Parses the text form; `None` when it is not one (not UTF-8, no method).
pub fn request(data: &[u8]) -> Option<Request> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let (method, target) = lines.next()?.split_once(' ')?;
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = HeaderMap::new();
    for l in lines {
        let (k, v) = l.split_once(':')?;
        let k = HeaderName::from_bytes(k.trim().as_bytes()).ok()?;
        let v = HeaderValue::from_str(v.trim()).ok()?;
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

/// The one tenant the fuzz inputs speak as (token, Basic user/password),
/// with quotas so that inputs cannot grow the store without bound.
pub const AUTH: &str = r#"
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

/// An API over a new store in `dir`, serving the tenant of [`AUTH`].
pub fn state(dir: &Path) -> Result<ApiState> {
    let store = engine::Store::open(dir, engine::StoreOptions::default())?;
    Ok(ApiState::new(store, Auth::parse(AUTH)?))
}
