//! Response formats: which one a request gets (`?format=` beats `Accept`;
//! no preference is XML; nothing acceptable is 406 with an empty body),
//! and the finishing of replies in it: content type (`application/xml` or
//! `application/json`, no charset, as the Deltacloud server sent them),
//! `ETag` and `Cache-Control` on 200 and 201, `If-None-Match` on GET
//! (304): [`crate::http::with_validators`].

use crate::http::{self, Reply, Request};

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

/// A reply with `body` in `format` and its cache validators, or a 304
/// when a GET's `If-None-Match` already names it.
pub(crate) fn finish(req: &Request, status: u16, format: Format, body: Vec<u8>) -> Reply {
    http::with_validators(req, Reply::raw(status, format.content_type(), body))
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
}
