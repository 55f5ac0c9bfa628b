//! A minimal Keystone v3 identity service for blockd (not a general
//! Keystone): just enough for OpenStack clients (keystoneauth, the
//! `openstack` CLI, openstacksdk, cinderclient) to log in with a tenant's
//! user and password from the auth file and find the Cinder endpoint.
//!
//! Paths: `/identity` (version list, 300 as Keystone answers), `/v3` and
//! `/identity/v3` (version document), and under either v3 root
//! `auth/tokens` (POST issue, GET/HEAD validate), `auth/catalog`,
//! `auth/projects`, `projects`, `projects/{id}`, `users/{id}`. One domain,
//! `Default`; a project per tenant (id and name = the tenant id), one user
//! per tenant (id and name = its `user`). Errors are Keystone's
//! `{"error": {"code", "title", "message"}}`.

mod tokens;

use crate::error::{ApiError, ErrorKind, Result};
use crate::http::{Reply, Request};
use crate::ApiState;
use serde_json::{json, Value};

/// The one domain.
pub(crate) const DOMAIN_ID: &str = "default";
/// Its name.
pub(crate) const DOMAIN_NAME: &str = "Default";

/// The identity API version this service reports.
const VERSION_ID: &str = "v3.14";
const VERSION_UPDATED: &str = "2020-04-07T00:00:00Z";

/// The domain reference of users and projects.
pub(crate) fn domain_ref() -> Value {
    json!({"id": DOMAIN_ID, "name": DOMAIN_NAME})
}

fn version_doc(root: &str) -> Value {
    json!({
        "id": VERSION_ID,
        "status": "stable",
        "updated": VERSION_UPDATED,
        "links": [{"rel": "self", "href": format!("{root}/")}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json",
        }],
    })
}

fn only(req: &Request, allow: &'static str) -> Result<()> {
    if allow.split(", ").any(|m| m == req.method.as_str()) {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(allow))
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

/// Routes one request under `/v3` or `/identity`.
pub(crate) fn dispatch(state: &ApiState, req: &Request) -> Reply {
    match route(state, req) {
        Ok(r) => r,
        Err(e) => error_reply_for(req, &e),
    }
}

fn route(state: &ApiState, req: &Request) -> Result<Reply> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let base = req.base_url();
    let (root, rest) = match segs.as_slice() {
        ["identity"] => {
            only(req, "GET, HEAD")?;
            let doc = version_doc(&format!("{base}/identity/v3"));
            return Ok(Reply::json(300, json!({"versions": {"values": [doc]}})));
        }
        ["identity", "v3", rest @ ..] => (format!("{base}/identity/v3"), rest),
        ["v3", rest @ ..] => (format!("{base}/v3"), rest),
        _ => return Err(not_found()),
    };
    let ctx = tokens::Ctx {
        state,
        req,
        root: &root,
    };
    match rest {
        [] => {
            only(req, "GET, HEAD").map(|_| Reply::json(200, json!({"version": version_doc(&root)})))
        }
        ["auth", "tokens"] => {
            only(req, "GET, HEAD, POST, DELETE")?;
            match req.method.as_str() {
                "POST" => tokens::issue(&ctx),
                "DELETE" => Err(ApiError::new(
                    ErrorKind::NotImplemented,
                    "Tokens of this minimal identity service cannot be revoked; they expire after an hour.",
                )),
                _ => tokens::validate(&ctx),
            }
        }
        ["auth", "catalog"] => only(req, "GET").and_then(|_| tokens::catalog(&ctx)),
        ["auth", "projects"] | ["projects"] => {
            only(req, "GET").and_then(|_| tokens::projects(&ctx))
        }
        ["projects", id] => only(req, "GET").and_then(|_| tokens::project(&ctx, id)),
        ["users", id] => only(req, "GET").and_then(|_| tokens::user(&ctx, id)),
        _ => Err(not_found()),
    }
}

fn title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

fn error_reply_for(req: &Request, e: &ApiError) -> Reply {
    let mut r = error_reply(e);
    if r.status == 401 {
        r = r.with_header(
            "www-authenticate",
            format!("Keystone uri=\"{}/identity\"", req.base_url()),
        );
    }
    r
}

/// Keystone's error body for `e`.
pub(crate) fn error_reply(e: &ApiError) -> Reply {
    let status = match e.kind() {
        ErrorKind::BadRequest | ErrorKind::Unprocessable => 400,
        ErrorKind::Unauthorized => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::MethodNotAllowed => 405,
        ErrorKind::Conflict => 409,
        ErrorKind::OverLimit => 413,
        ErrorKind::UnsupportedMediaType => 415,
        ErrorKind::NotImplemented => 501,
        ErrorKind::Unavailable => 503,
        ErrorKind::Internal | ErrorKind::Config => 500,
    };
    let message = if status == 500 {
        tracing::error!(error = %e, "keystone request failed");
        "An unexpected error prevented the server from fulfilling your request.".to_string()
    } else {
        e.message().to_string()
    };
    let mut r = Reply::json(
        status,
        json!({"error": {"code": status, "title": title(status), "message": message}}),
    );
    if let Some(allow) = e.allow() {
        r = r.with_header("allow", allow);
    }
    r
}
