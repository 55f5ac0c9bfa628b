//! Response formats: which one a request gets (`?format=` beats `Accept`;
//! no preference is XML; nothing acceptable is 406 with an empty body),
//! and the finishing of replies in it: content type, `ETag` (a hash of the
//! body) and `If-None-Match` on GET (304).

use crate::http::{Reply, Request};
use sha2::{Digest, Sha256};
use warp::http::Method;

/// A response format of this dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Xml,
    Json,
}

impl Format {
    /// The content type of bodies in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xml => "application/xml",
            Format::Json => "application/json",
        }
    }
}

/// The format `?format=` names, if it names one we serve.
fn by_name(name: &str) -> Option<Format> {
    match name.trim().to_ascii_lowercase().as_str() {
        "xml" => Some(Format::Xml),
        "json" => Some(Format::Json),
        _ => None,
    }
}

/// Which of our formats a media range (`type/subtype`) admits, best first.
fn admitted(range: &str) -> &'static [Format] {
    match range {
        "*/*" | "application/*" => &[Format::Xml, Format::Json],
        "application/xml" | "text/xml" | "text/*" => &[Format::Xml],
        "application/json" => &[Format::Json],
        _ => &[],
    }
}

/// The best format of an `Accept` header value (q-values honoured; ties
/// go to the first listed, XML before JSON for wildcards).
fn by_accept(accept: &str) -> Option<Format> {
    let mut best: Option<(u32, Format)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q: u32 = 1000;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .map(|x| (x.clamp(0.0, 1.0) * 1000.0) as u32)
                        .unwrap_or(0);
                }
            }
        }
        if q == 0 {
            continue;
        }
        if let Some(&f) = admitted(&range).first() {
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, f));
            }
        }
    }
    best.map(|(_, f)| f)
}

/// The format `req` asks for: `?format=xml|json` (any case) beats
/// `Accept`; no preference is XML; `None` when nothing it accepts is
/// served (an unknown `?format=` included).
pub(crate) fn negotiate(req: &Request) -> Option<Format> {
    // An empty `?format=` (a form's unset select) is no preference.
    if let Some(name) = req.query_param("format").filter(|n| !n.trim().is_empty()) {
        return by_name(name);
    }
    match req.header("accept").map(str::trim) {
        None | Some("") => Some(Format::Xml),
        Some(a) => by_accept(a),
    }
}

/// A quoted strong entity tag of `bytes`.
fn etag_of(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&d[..16]))
}

/// True when an `If-None-Match` value lists `etag` (or is `*`).
fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
    })
}

/// A reply with `body` in `format`, its `ETag`, or a 304 when a GET's
/// `If-None-Match` already names it.
pub(crate) fn finish(req: &Request, status: u16, format: Format, body: Vec<u8>) -> Reply {
    let etag = etag_of(&body);
    if status == 200 && req.method == Method::GET {
        if let Some(inm) = req.header("if-none-match") {
            if matches(inm, &etag) {
                return Reply::empty(304).with_header("etag", etag);
            }
        }
    }
    Reply::raw(status, format.content_type(), body).with_header("etag", etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        assert_eq!(by_accept("*/*"), Some(Format::Xml));
        assert_eq!(by_accept("application/json"), Some(Format::Json));
        assert_eq!(
            by_accept("text/html, application/json;q=0.5"),
            Some(Format::Json)
        );
        assert_eq!(
            by_accept("application/xml;q=0.2, application/json;q=0.9"),
            Some(Format::Json)
        );
        assert_eq!(
            by_accept("application/json;q=0, */*;q=0.1"),
            Some(Format::Xml)
        );
        assert_eq!(by_accept("text/html"), None);
        assert_eq!(by_accept("application/json;q=0"), None);
        assert_eq!(by_accept(";;,=,q=x"), None);
    }

    #[test]
    fn etags() {
        let e = etag_of(b"x");
        assert!(e.starts_with('"') && e.ends_with('"') && e.len() == 34);
        assert!(matches(&e, &e));
        assert!(matches(&format!("\"a\", W/{e}"), &e));
        assert!(matches("*", &e));
        assert!(!matches("\"a\"", &e));
    }
}
