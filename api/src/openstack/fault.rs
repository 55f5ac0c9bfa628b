//! The edge for this dialect: [`ApiError`] kinds to HTTP statuses and Nova
//! fault bodies, `{"itemNotFound": {"code": 404, "message": "..."}}`, with
//! `retryAfter` on `overLimit` and an `Allow` header on `badMethod`.
//! Internal failures are logged in full and answered with a generic message.

use super::views::{to_value, Fault, FaultBody};
use crate::error::{ApiError, ErrorKind};
use crate::http::Reply;
use std::collections::BTreeMap;

/// Status and fault name of a kind.
pub fn status_and_name(kind: ErrorKind) -> (u16, &'static str) {
    match kind {
        ErrorKind::BadRequest => (400, "badRequest"),
        ErrorKind::Unauthorized => (401, "unauthorized"),
        ErrorKind::Forbidden => (403, "forbidden"),
        ErrorKind::NotFound => (404, "itemNotFound"),
        ErrorKind::MethodNotAllowed => (405, "badMethod"),
        ErrorKind::Conflict => (409, "conflictingRequest"),
        ErrorKind::OverLimit => (413, "overLimit"),
        ErrorKind::UnsupportedMediaType => (415, "badMediaType"),
        ErrorKind::Unprocessable => (422, "unprocessableEntity"),
        ErrorKind::NotImplemented => (501, "notImplemented"),
        ErrorKind::Unavailable => (503, "serviceUnavailable"),
        ErrorKind::Internal | ErrorKind::Config => (500, "cloudServersFault"),
    }
}

/// The fault reply for an error.
pub fn reply(e: &ApiError) -> Reply {
    let (status, name) = status_and_name(e.kind());
    let message = if status == 500 {
        tracing::error!(error = %e, source = ?e.engine_error(), "api request failed");
        "Server Error, please try again later.".to_string()
    } else {
        e.message().to_string()
    };
    let body = FaultBody {
        code: status,
        message,
        retry_after: (e.kind() == ErrorKind::OverLimit).then(|| e.retry_after().unwrap_or(0)),
    };
    let fault = Fault(BTreeMap::from([(name.to_string(), body)]));
    let mut r = Reply::json(status, to_value(&fault));
    if let Some(allow) = e.allow() {
        r = r.with_header("allow", allow);
    }
    if e.kind() == ErrorKind::OverLimit {
        r = r.with_header("retry-after", e.retry_after().unwrap_or(0).to_string());
    }
    if e.kind() == ErrorKind::Unauthorized {
        r = r.with_header("www-authenticate", "X-Auth-Token");
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies() {
        let r = reply(&ApiError::over_limit("q", 0));
        assert_eq!(r.status, 413);
        assert_eq!(
            r.body.unwrap(),
            json!({"overLimit": {"code": 413, "message": "q", "retryAfter": 0}})
        );
        let r = reply(&ApiError::method_not_allowed("GET"));
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("allow", "GET".to_string())));
        let r = reply(&ApiError::internal("secret path /x"));
        assert_eq!(r.status, 500);
        assert!(!r.body.unwrap().to_string().contains("secret"));
    }
}
