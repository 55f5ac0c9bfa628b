//! The edge for this dialect's errors: [`ApiError`] kinds to HTTP statuses
//! and Deltacloud error bodies, in the format the request negotiated
//! (XML when it accepts nothing we serve, so that a 413 or 401 still says
//! why):
//!
//! ```text
//! <error status="404" url="/api/storage_volumes/x"><code>404</code><message>...</message></error>
//! {"code": 404, "message": "...", "error": "Not Found"}
//! ```
//!
//! Statuses: 400 validation, 401 (with `WWW-Authenticate: Basic
//! realm="blockd-deltacloud@HOST"`), 403,
//! 404, 405 (with `Allow`), 409 state conflicts (attached volume deleted,
//! attach of a busy volume, taken device, detach of a detached volume),
//! 413 quota exceeded or body too large, 415 body type, 500 (a generic
//! message; the cause is logged), 501, 502 (the store full or
//! fail-stopped: Deltacloud's "Backend Server Error"; it had no 503).

use super::format::{self, Format};
use super::views::{xml_doc, XmlResult, DRIVER};
use crate::error::{ApiError, ErrorKind};
use crate::http::{Reply, Request};
use quick_xml::events::BytesText;

/// The realm of the Basic challenge, formed as the Deltacloud server
/// formed it: `DRIVER-deltacloud@HOSTNAME` (the `HOSTNAME` environment
/// variable, empty when unset; only `[A-Za-z0-9.-]` kept).
pub(crate) fn realm() -> String {
    let host: String = std::env::var("HOSTNAME")
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ".-".contains(*c))
        .take(253)
        .collect();
    format!("{DRIVER}-deltacloud@{host}")
}

/// The HTTP status and reason phrase of an error kind.
pub(crate) fn status_of(kind: ErrorKind) -> (u16, &'static str) {
    match kind {
        ErrorKind::BadRequest | ErrorKind::Unprocessable => (400, "Bad Request"),
        ErrorKind::Unauthorized => (401, "Unauthorized"),
        ErrorKind::Forbidden => (403, "Forbidden"),
        ErrorKind::NotFound => (404, "Not Found"),
        ErrorKind::MethodNotAllowed => (405, "Method Not Allowed"),
        ErrorKind::Conflict => (409, "Conflict"),
        ErrorKind::OverLimit => (413, "Request Entity Too Large"),
        ErrorKind::UnsupportedMediaType => (415, "Unsupported Media Type"),
        ErrorKind::NotImplemented => (501, "Not Implemented"),
        // The store (this server's backend) full or fail-stopped: the
        // Deltacloud server's "Backend Server Error".
        ErrorKind::Unavailable => (502, "Backend Server Error"),
        ErrorKind::Internal | ErrorKind::Config => (500, "Internal Server Error"),
    }
}

fn xml_body(status: u16, url: &str, message: &str) -> XmlResult {
    xml_doc(|w| {
        w.create_element("error")
            .with_attribute(("status", status.to_string().as_str()))
            .with_attribute(("url", url))
            .write_inner_content(|w| {
                w.create_element("code")
                    .write_text_content(BytesText::new(&status.to_string()))?;
                w.create_element("message")
                    .write_text_content(BytesText::new(message))?;
                Ok(())
            })?;
        Ok(())
    })
}

/// Longest request path echoed in an error body.
const MAX_URL: usize = 256;

/// `s` cut to at most [`MAX_URL`] bytes, on a character boundary.
fn short(s: &str) -> &str {
    let mut end = s.len().min(MAX_URL);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// The error reply for `e` to `req`.
pub(crate) fn reply(req: &Request, e: &ApiError) -> Reply {
    let fmt = format::negotiate(req).unwrap_or(Format::Xml);
    let (status, reason) = status_of(e.kind());
    let message = if status == 500 {
        tracing::error!(error = %e, source = ?e.engine_error(), path = %req.path, "deltacloud request failed");
        "Server Error, please try again later.".to_string()
    } else {
        e.message().to_string()
    };
    let body = match fmt {
        Format::Json => super::json::bytes(&super::json::Error {
            code: status,
            message,
            error: reason.into(),
        }),
        Format::Xml => match xml_body(status, short(&req.path), &message) {
            Ok(b) => b,
            Err(err) => {
                tracing::error!(error = %err, "cannot write a Deltacloud error body");
                Vec::new()
            }
        },
    };
    let mut r = Reply::raw(status, fmt.content_type(), body);
    if let Some(allow) = e.allow() {
        r = r.with_header("allow", allow);
    }
    if e.kind() == ErrorKind::Unauthorized {
        r = r.with_header("www-authenticate", format!("Basic realm=\"{}\"", realm()));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;
    use warp::http::{HeaderMap, Method};

    fn req(query: &str) -> Request {
        Request::new(
            Method::GET,
            "/api/storage_volumes/<x>",
            query,
            HeaderMap::new(),
            Bytes::new(),
        )
    }

    #[test]
    fn xml_and_json_bodies() {
        let r = reply(&req(""), &ApiError::not_found("no <such> & volume"));
        assert_eq!(r.status, 404);
        let (ct, b) = r.raw.unwrap();
        assert_eq!(ct, "application/xml");
        let s = String::from_utf8(b).unwrap();
        assert!(
            s.contains("<error status=\"404\" url=\"/api/storage_volumes/&lt;x&gt;\">"),
            "{s}"
        );
        assert!(
            s.contains("<message>no &lt;such&gt; &amp; volume</message>"),
            "{s}"
        );
        let r = reply(&req("format=json"), &ApiError::conflict("busy"));
        let (_, b) = r.raw.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            json!({"code": 409, "message": "busy", "error": "Conflict"})
        );
        let r = reply(&req(""), &ApiError::internal("secret /path"));
        assert_eq!(r.status, 500);
        assert!(!String::from_utf8(r.raw.unwrap().1)
            .unwrap()
            .contains("secret"));
        assert_eq!(
            status_of(ErrorKind::Unavailable),
            (502, "Backend Server Error")
        );
        let r = reply(&req(""), &ApiError::new(ErrorKind::Unauthorized, "who"));
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| *k == "www-authenticate" && v.starts_with("Basic realm=")));
    }
}
