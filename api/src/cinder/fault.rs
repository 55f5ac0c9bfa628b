//! The edge of the Cinder dialect: [`ApiError`] kinds to HTTP statuses and
//! Cinder fault bodies, `{"itemNotFound": {"message": "...", "code": 404}}`
//! (`retryAfter` on `overLimit`, `Allow` on `badMethod`), with the
//! microversion headers every Cinder answer carries. Internal failures are
//! logged in full and answered with a generic message.

use super::version::Microversion;
use super::views::{reply as typed, Fault};
use crate::error::{ApiError, ErrorKind};
use crate::http::{Reply, Request};

/// Status and fault name of a kind.
fn status_and_name(kind: ErrorKind) -> (u16, &'static str) {
    match kind {
        // Cinder validates bodies with JSON schemas and answers 400.
        ErrorKind::BadRequest | ErrorKind::Unprocessable => (400, "badRequest"),
        ErrorKind::Unauthorized => (401, "unauthorized"),
        ErrorKind::Forbidden => (403, "forbidden"),
        ErrorKind::NotFound => (404, "itemNotFound"),
        ErrorKind::MethodNotAllowed => (405, "badMethod"),
        ErrorKind::Conflict => (409, "conflictingRequest"),
        ErrorKind::OverLimit => (413, "overLimit"),
        ErrorKind::UnsupportedMediaType => (415, "badMediaType"),
        ErrorKind::NotImplemented => (501, "notImplemented"),
        ErrorKind::Unavailable => (503, "serviceUnavailable"),
        ErrorKind::Internal | ErrorKind::Config => (500, "computeFault"),
    }
}

/// The fault reply for `e` to `req` (its microversion echoed when valid).
pub(crate) fn reply(req: &Request, e: &ApiError) -> Reply {
    let v = Microversion::of(req).unwrap_or(Microversion::MIN);
    with_version(fault(e), v)
}

/// The fault body alone.
pub(crate) fn fault(e: &ApiError) -> Reply {
    let (status, name) = status_and_name(e.kind());
    let message = if status == 500 {
        tracing::error!(error = %e, source = ?e.engine_error(), "cinder request failed");
        "The server has either erred or is incapable of performing the requested operation."
            .to_string()
    } else {
        e.message().to_string()
    };
    let mut body = Fault::new(name, status, message);
    if e.kind() == ErrorKind::OverLimit {
        for b in body.0.values_mut() {
            b.retry_after = Some(e.retry_after().unwrap_or(0).to_string());
        }
    }
    let mut r = typed(status, &body);
    if let Some(allow) = e.allow() {
        r = r.with_header("allow", allow);
    }
    if e.kind() == ErrorKind::OverLimit {
        r = r.with_header("retry-after", e.retry_after().unwrap_or(0).to_string());
    }
    if e.kind() == ErrorKind::Unauthorized {
        r = r.with_header("www-authenticate", "Keystone uri=\"/identity\"");
    }
    r
}

/// `r` with the microversion headers.
pub(crate) fn with_version(r: Reply, v: Microversion) -> Reply {
    r.with_header("openstack-api-version", format!("volume {v}"))
        .with_header("vary", "OpenStack-API-Version")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies() {
        let r = fault(&ApiError::not_found("Volume x could not be found."));
        assert_eq!(r.status, 404);
        assert_eq!(
            r.body.unwrap(),
            json!({"itemNotFound": {"message": "Volume x could not be found.", "code": 404}})
        );
        let r = fault(&ApiError::internal("secret /path"));
        assert_eq!(r.status, 500);
        assert!(!r.body.unwrap().to_string().contains("secret"));
        assert_eq!(fault(&ApiError::unprocessable("x")).status, 400);
    }
}
