//! The Deltacloud dialect: storage volumes and snapshots under `/api`.
//!
//! - `GET /api`: the entry point (links to both collections, driver and
//!   version); no credentials needed, except with `?force_auth=1`.
//! - `/api/storage_volumes` (GET list, POST create), `/:id` (GET, DELETE),
//!   `/:id/attach` and `/:id/detach` (POST);
//! - `/api/storage_snapshots` (GET list, POST create), `/:id` (GET, DELETE).
//!
//! Formats: XML by default, JSON by `?format=json` (which beats `Accept`)
//! or `Accept`; 406 with an empty body when nothing acceptable is asked
//! for (`format.rs`). Parameters from the query string, a form or a
//! multipart body (`params.rs`). HTTP Basic against the auth file's
//! user/password. Views in `views.rs`, errors in `errors.rs`, handlers in
//! `volumes.rs` and `snapshots.rs`.
//!
//! The objects are the engine's, shared with the other dialects: tenant,
//! display name and description, zone (= Deltacloud realm) and attachment
//! live in the `meta` keys every dialect uses, so nothing here is
//! Deltacloud-only state.

mod errors;
mod format;
mod params;
mod snapshots;
mod views;
mod volumes;

use crate::auth::{self, Tenant};
use crate::domain;
use crate::error::{ApiError, Result};
use crate::http::{Reply, Request};
use crate::ApiState;
use engine::{ObjectInfo, ObjectKind};
use format::Format;
use warp::http::Method;

/// The context of one call: the shared domain context, the request and
/// the negotiated format.
pub(crate) struct Ctx<'a> {
    pub dom: domain::Ctx<'a>,
    pub req: &'a Request,
    pub fmt: Format,
}

impl Ctx<'_> {
    /// `http://host` as the client addressed us.
    pub fn base(&self) -> String {
        self.req.base_url()
    }

    fn find(&self, key: &str, kind: ObjectKind, what: &str) -> Result<ObjectInfo> {
        self.dom.find(kind, key)?.ok_or_else(|| {
            ApiError::not_found(format!(
                "{what} '{}' not found",
                key.chars().take(64).collect::<String>().escape_debug()
            ))
        })
    }

    /// The tenant's volume `key` (404 otherwise).
    pub fn volume(&self, key: &str) -> Result<ObjectInfo> {
        self.find(key, ObjectKind::Volume, "Storage volume")
    }

    /// The tenant's snapshot `key` (404 otherwise).
    pub fn snapshot(&self, key: &str) -> Result<ObjectInfo> {
        self.find(key, ObjectKind::Snapshot, "Storage snapshot")
    }

    /// A reply with a document `body` built in the negotiated format.
    pub fn doc(&self, status: u16, body: std::io::Result<Vec<u8>>) -> Result<Reply> {
        let body = body.map_err(|e| ApiError::internal(format!("writing XML: {e}")))?;
        Ok(format::finish(self.req, status, self.fmt, body))
    }
}

/// The tenant of the request's HTTP Basic credentials (401 otherwise).
fn authenticate<'a>(state: &'a ApiState, req: &Request) -> Result<&'a Tenant> {
    auth::basic(state.auth(), req.header("authorization"))
}

fn only(req: &Request, allow: &'static str) -> Result<()> {
    req.only(allow)
}

fn not_found() -> ApiError {
    ApiError::not_found("The requested resource was not found")
}

fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("1" | "true" | "yes" | "on")
    )
}

/// Handles one request of this dialect, errors included.
pub(crate) fn dispatch(state: &ApiState, req: &Request) -> Reply {
    let Some(fmt) = format::negotiate(req) else {
        return Reply::empty(406);
    };
    match route(state, req, fmt) {
        Ok(r) => r,
        Err(e) => error_reply(req, &e),
    }
}

fn route(state: &ApiState, req: &Request, fmt: Format) -> Result<Reply> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let rest = match segs.as_slice() {
        ["api", rest @ ..] => rest,
        _ => return Err(not_found()),
    };
    if rest.is_empty() {
        only(req, "GET")?;
        if truthy(req.query_param("force_auth")) {
            authenticate(state, req)?;
        }
        let body = views::entry_point(fmt, &req.base_url())
            .map_err(|e| ApiError::internal(format!("writing XML: {e}")))?;
        return Ok(format::finish(req, 200, fmt, body));
    }
    if !matches!(
        rest.first(),
        Some(&("storage_volumes" | "storage_snapshots"))
    ) {
        return Err(not_found());
    }
    let tenant = authenticate(state, req)?;
    let ctx = Ctx {
        dom: domain::Ctx::new(state, tenant),
        req,
        fmt,
    };
    let is_get = req.method == Method::GET;
    match rest {
        ["storage_volumes"] => {
            only(req, "GET, POST")?;
            if is_get {
                volumes::list(&ctx)
            } else {
                volumes::create(&ctx)
            }
        }
        ["storage_volumes", id] => {
            only(req, "GET, DELETE")?;
            if is_get {
                volumes::show(&ctx, id)
            } else {
                volumes::delete(&ctx, id)
            }
        }
        ["storage_volumes", id, "attach"] => {
            only(req, "POST").and_then(|_| volumes::attach(&ctx, id))
        }
        ["storage_volumes", id, "detach"] => {
            only(req, "POST").and_then(|_| volumes::detach(&ctx, id))
        }
        ["storage_snapshots"] => {
            only(req, "GET, POST")?;
            if is_get {
                snapshots::list(&ctx)
            } else {
                snapshots::create(&ctx)
            }
        }
        ["storage_snapshots", id] => {
            only(req, "GET, DELETE")?;
            if is_get {
                snapshots::show(&ctx, id)
            } else {
                snapshots::delete(&ctx, id)
            }
        }
        _ => Err(not_found()),
    }
}

/// This dialect's error reply for `e`.
pub(crate) fn error_reply(req: &Request, e: &ApiError) -> Reply {
    errors::reply(req, e)
}
