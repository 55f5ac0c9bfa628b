//! The HTTP edge shared by dialects: a plain [`Request`] (method, decoded
//! path segments, query, headers, body read with a size limit) and a plain
//! [`Reply`] (status, JSON or raw body, headers) that handlers build without
//! touching warp, plus the helpers for JSON bodies and media types, and the
//! cache validators (`ETag`, `Cache-Control`, 304) two dialects share.

use crate::error::{ApiError, ErrorKind, Result};
use bytes::Bytes;
use serde_json::Value;
use warp::http::{HeaderMap, Method};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// One request, as handlers see it.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The raw path (for logs).
    pub path: String,
    /// Percent-decoded path segments, empty ones dropped.
    pub segments: Vec<String>,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (at most [`MAX_BODY`] bytes).
    pub body: Bytes,
}

impl Request {
    /// `Ok` when the method is one of `allow` ("GET, POST"); a 405 error
    /// naming them otherwise. Every dialect routes with it.
    pub fn only(&self, allow: &'static str) -> crate::error::Result<()> {
        if allow.split(", ").any(|m| m == self.method.as_str()) {
            Ok(())
        } else {
            Err(crate::error::ApiError::method_not_allowed(allow))
        }
    }

    /// Builds a request from its parts.
    pub fn new(method: Method, path: &str, query: &str, headers: HeaderMap, body: Bytes) -> Self {
        Request {
            method,
            path: path.to_string(),
            segments: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(percent_decode)
                .collect(),
            query: parse_query(query),
            headers,
            body,
        }
    }

    /// The same request as a GET: how a HEAD is answered (the server
    /// sends the GET's status and headers; hyper drops the body).
    pub fn as_get(&self) -> Request {
        Request {
            method: Method::GET,
            path: self.path.clone(),
            segments: self.segments.clone(),
            query: self.query.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
    }

    /// A header as text, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The base URL clients used, from the Host header.
    pub fn base_url(&self) -> String {
        let host = self
            .header("host")
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c))
            })
            .unwrap_or("localhost");
        format!("http://{host}")
    }

    /// The JSON body, or `None` when the body is empty. A body whose
    /// Content-Type is neither absent nor JSON is 415; malformed JSON
    /// is 400.
    pub fn json_body(&self) -> Result<Option<Value>> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if let Some(ct) = self.headers.get("content-type") {
            let ct = ct.to_str().unwrap_or("");
            if !is_json_media_type(ct) {
                return Err(ApiError::new(
                    ErrorKind::UnsupportedMediaType,
                    format!(
                        "Unsupported Content-Type '{}': send application/json",
                        ct.escape_debug()
                    ),
                ));
            }
        }
        serde_json::from_slice(&self.body)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("Malformed request body: {e}")))
    }
}

/// A media type without its parameters, lowercased.
fn essence(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// True for `application/json` and the `+json` media types (any parameters).
pub fn is_json_media_type(ct: &str) -> bool {
    let e = essence(ct);
    e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
}

/// True for `application/xml`, `text/xml` and the `+xml` media types (any
/// parameters).
pub fn is_xml_media_type(ct: &str) -> bool {
    let e = essence(ct);
    e == "application/xml"
        || e == "text/xml"
        || (e.starts_with("application/") && e.ends_with("+xml"))
}

/// A response, as handlers build it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON body (none for 202/204).
    pub body: Option<Value>,
    /// A body in another format (XML, text): its content type and bytes.
    /// Takes precedence over `body`.
    pub raw: Option<(String, Vec<u8>)>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            body: Some(body),
            raw: None,
            headers: Vec::new(),
        }
    }

    /// A reply with a body of `content_type` (XML, plain text...).
    pub fn raw(status: u16, content_type: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            body: None,
            raw: Some((content_type.into(), bytes.into())),
            headers: Vec::new(),
        }
    }

    /// A reply without a body.
    pub fn empty(status: u16) -> Self {
        Reply {
            status,
            body: None,
            raw: None,
            headers: Vec::new(),
        }
    }

    /// The same reply with one more header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// `Cache-Control` of replies that carry an `ETag`: what Rack::ETag
/// added for the Deltacloud server (both its dialects): cache privately,
/// revalidate every time.
pub const REVALIDATE: &str = "max-age=0, private, must-revalidate";

/// A quoted strong entity tag of `bytes` (128 bits of SHA-256).
fn etag_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&d[..16]))
}

/// True when an `If-None-Match` value lists `etag` (or is `*`).
fn etag_listed(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
    })
}

/// Cache validators, as Rack::ETag gave the Deltacloud server's replies:
/// a 200 or 201 with a non-empty body gets an `ETag` (a hash of the body)
/// and `Cache-Control: `[`REVALIDATE`]; other replies are left alone. A
/// GET whose `If-None-Match` names the tag becomes a 304 without a body.
pub(crate) fn with_validators(req: &Request, reply: Reply) -> Reply {
    if reply.status != 200 && reply.status != 201 {
        return reply;
    }
    let bytes = match (&reply.raw, &reply.body) {
        (Some((_, b)), _) => b.clone(),
        (None, Some(v)) => v.to_string().into_bytes(),
        (None, None) => Vec::new(),
    };
    if bytes.is_empty() {
        return reply;
    }
    let etag = etag_of(&bytes);
    if reply.status == 200 && req.method == Method::GET {
        if let Some(inm) = req.header("if-none-match") {
            if etag_listed(inm, &etag) {
                let mut r = Reply::empty(304);
                r.headers = reply.headers;
                return r
                    .with_header("etag", etag)
                    .with_header("cache-control", REVALIDATE);
            }
        }
    }
    reply
        .with_header("etag", etag)
        .with_header("cache-control", REVALIDATE)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (and with `plus`, `+` as space); invalid escapes
/// stay as they are, invalid UTF-8 becomes U+FFFD.
fn decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes one path segment.
pub fn percent_decode(s: &str) -> String {
    decode(s, false)
}

/// Parses `a=1&b=2` into pairs.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// Percent-encodes one path segment (ids of other front ends may hold
/// any character).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An unsigned integer given as a JSON number or a string of digits
/// (form and XML values are strings); `None` for anything else.
pub(crate) fn uint_value(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => {
            let t = s.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse::<u64>().ok()
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(
            parse_query("limit=1&offset=&x&a+b=c%3D"),
            vec![
                ("limit".into(), "1".into()),
                ("offset".into(), "".into()),
                ("x".into(), "".into()),
                ("a b".into(), "c=".into())
            ]
        );
    }

    #[test]
    fn media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=UTF-8"));
        assert!(is_json_media_type("application/vnd.openstack.compute+json"));
        assert!(!is_json_media_type("application/xml"));
        assert!(!is_json_media_type("application/x-www-form-urlencoded"));
        assert!(!is_json_media_type(""));
    }

    #[test]
    fn etags() {
        let e = etag_of(b"x");
        assert!(e.starts_with('"') && e.ends_with('"') && e.len() == 34);
        assert!(etag_listed(&e, &e));
        assert!(etag_listed(&format!("\"a\", W/{e}"), &e));
        assert!(etag_listed("*", &e));
        assert!(!etag_listed("\"a\"", &e));
        let get = |inm: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = inm {
                h.insert("if-none-match", v.parse().unwrap());
            }
            Request::new(Method::GET, "/", "", h, Bytes::new())
        };
        let r = with_validators(&get(None), Reply::raw(200, "application/xml", "x"));
        assert!(r.headers.contains(&("etag", e.clone())));
        assert!(r.headers.contains(&("cache-control", REVALIDATE.into())));
        let r = with_validators(&get(Some(&e)), Reply::raw(200, "application/xml", "x"));
        assert_eq!((r.status, r.raw.is_none()), (304, true));
        for r in [Reply::raw(202, "application/xml", "x"), Reply::empty(200)] {
            assert!(with_validators(&get(None), r).headers.is_empty());
        }
    }

    #[test]
    fn json_bodies() {
        let req = |ct: Option<&str>, body: &'static str| {
            let mut h = HeaderMap::new();
            if let Some(ct) = ct {
                h.insert("content-type", ct.parse().unwrap());
            }
            Request::new(
                Method::POST,
                "/",
                "",
                h,
                Bytes::from_static(body.as_bytes()),
            )
        };
        assert!(req(None, "").json_body().unwrap().is_none());
        assert!(req(None, "{}").json_body().unwrap().is_some());
        let k = |r: Request| r.json_body().unwrap_err().kind();
        assert_eq!(k(req(None, "{")), ErrorKind::BadRequest);
        assert_eq!(
            k(req(Some("text/plain"), "{}")),
            ErrorKind::UnsupportedMediaType
        );
    }
}
