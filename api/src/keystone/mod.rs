//! A minimal Keystone v3 identity service for blockd (not a general
//! Keystone): just enough for OpenStack clients (keystoneauth, the
//! `openstack` CLI, openstacksdk, cinderclient) to log in with a tenant's
//! user and password from the auth file and find the Cinder endpoint.
//!
//! Paths: `/identity` (version list, 300 as Keystone answers), `/v3` and
//! `/identity/v3` (version document), and under either v3 root
//! `auth/tokens` (POST issue, GET/HEAD validate), `auth/catalog`,
//! `auth/projects`, `projects`, `projects/{id}`, `users/{id}`, `domains`.
//! One domain, `Default`; a project per tenant (id and name = the tenant
//! id), one user per tenant (id and name = its `user`); admins may also
//! make and delete projects that are only names with quotas
//! (`projects.rs`). Errors are Keystone's
//! `{"error": {"code", "title", "message"}}`. Typed bodies in `views.rs`;
//! `openapi.json` under either v3 root is the OpenAPI document generated
//! from them (`openapi.rs`).

mod openapi;
pub(crate) mod projects;
mod tokens;
mod views;

use crate::error::{ApiError, ErrorKind, Result};
use crate::http::{Reply, Request};
use crate::ApiState;
use views::{
    DomainRef, ErrorBody, Link, MediaType, Version, VersionList, VersionOne, VersionValues,
};

/// The one domain.
pub(crate) const DOMAIN_ID: &str = "default";
/// Its name.
pub(crate) const DOMAIN_NAME: &str = "Default";

/// The identity API version this service reports.
const VERSION_ID: &str = "v3.14";
const VERSION_UPDATED: &str = "2020-04-07T00:00:00Z";

/// The domain reference of users and projects.
pub(crate) fn domain_ref() -> DomainRef {
    DomainRef {
        id: DOMAIN_ID.into(),
        name: DOMAIN_NAME.into(),
    }
}

fn version_doc(root: &str) -> Version {
    Version {
        id: VERSION_ID.into(),
        status: "stable".into(),
        updated: VERSION_UPDATED.into(),
        links: vec![Link {
            rel: "self".into(),
            href: format!("{root}/"),
        }],
        media_types: vec![MediaType {
            base: "application/json".into(),
            kind: "application/vnd.openstack.identity-v3+json".into(),
        }],
    }
}

/// `GET` the v3 root: its version document, with a `Link` to the
/// OpenAPI document.
#[utoipa::path(
    method(get, head),
    path = "/",
    operation_id = "showVersion",
    tag = "discovery",
    summary = "The v3 version document",
    security(()),
    responses((status = 200, description = "the version", body = VersionOne))
)]
fn version(req: &Request, root: &str) -> Result<Reply> {
    only(req, "GET, HEAD")?;
    let link = format!("<{root}/openapi.json>; rel=\"service-desc\"");
    Ok(views::reply(
        200,
        &VersionOne {
            version: version_doc(root),
        },
    )
    .with_header("link", link))
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
            let versions = VersionValues { values: vec![doc] };
            return Ok(views::reply(300, &VersionList { versions }));
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
        [] => version(req, &root),
        ["openapi.json"] => {
            only(req, "GET, HEAD")?;
            Ok(Reply::json(200, openapi::generate(&root)))
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
        ["auth", "projects"] => only(req, "GET").and_then(|_| tokens::projects(&ctx)),
        ["projects"] => {
            only(req, "GET, POST")?;
            if req.method == warp::http::Method::POST {
                projects::create(&ctx)
            } else {
                projects::list(&ctx)
            }
        }
        ["projects", id] => {
            only(req, "GET, DELETE")?;
            if req.method == warp::http::Method::DELETE {
                projects::delete(&ctx, id)
            } else {
                projects::show(&ctx, id)
            }
        }
        ["domains"] => only(req, "GET").and_then(|_| projects::domains(&ctx)),
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
    let error = ErrorBody {
        code: status,
        title: title(status).into(),
        message,
    };
    let mut r = views::reply(status, &views::Error { error });
    if let Some(allow) = e.allow() {
        r = r.with_header("allow", allow);
    }
    r
}
