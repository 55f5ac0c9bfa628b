//! The Deltacloud dialect: storage volumes and snapshots under `/api`.
//!
//! - `GET /api`: the entry point (links to both collections, driver and
//!   version); no credentials needed, except with `?force_auth=1`.
//! - `/api/storage_volumes` (GET list, POST create), `/:id` (GET, DELETE),
//!   `/:id/attach` and `/:id/detach` (POST);
//! - `/api/storage_snapshots` (GET list, POST create), `/:id` (GET, DELETE).
//!
//! Every answer (errors and 406 included) names the server as the
//! Deltacloud server named itself: `Server: Apache-Deltacloud/VERSION`
//! (with blockd's own version as a comment) and `X-Deltacloud-Driver`.
//! `HEAD` answers as `GET` without the body; `OPTIONS` answers 200 with
//! `Allow` (no credentials needed, as Sinatra-Rabbit's generated routes);
//! a method a path does not serve is 405 with the same `Allow`; a
//! request without `Host` is 400.
//!
//! Formats: XML by default, JSON by `?format=json` (which beats `Accept`)
//! or `Accept`; 406 with an empty body when nothing acceptable is asked
//! for (`format.rs`). Parameters from the query string, a form or a
//! multipart body (`params.rs`). HTTP Basic against the auth file's
//! user/password. Views in `views.rs` (JSON bodies typed in `json.rs`),
//! errors in `errors.rs`, handlers in `volumes.rs` and `snapshots.rs`.
//! `GET /api/openapi.json` (no credentials needed) is the OpenAPI
//! document of the JSON format, generated from those types
//! (`openapi.rs`); the entry point links it with
//! `Link: <...>; rel="service-desc"`.
//!
//! The objects are the engine's, shared with the other dialects: tenant,
//! display name and description, zone (= Deltacloud realm) and attachment
//! live in the `meta` keys every dialect uses, so nothing here is
//! Deltacloud-only state.

mod errors;
mod format;
mod json;
mod openapi;
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

/// `Server`: what the Deltacloud server called itself, and what we are.
fn server() -> String {
    format!(
        "Apache-Deltacloud/{} (blockd {})",
        views::VERSION,
        env!("CARGO_PKG_VERSION")
    )
}

/// The headers by which the Deltacloud server named itself on every reply.
fn identify(reply: Reply) -> Reply {
    reply
        .with_header("server", server())
        .with_header("x-deltacloud-driver", views::DRIVER)
}

/// The methods a path under `/api` answers (its `Allow`); `None` for
/// paths this dialect does not serve.
fn allow_of(rest: &[&str]) -> Option<&'static str> {
    Some(match rest {
        [] | ["openapi.json"] => "GET, HEAD, OPTIONS",
        ["storage_volumes" | "storage_snapshots"] => "GET, HEAD, POST, OPTIONS",
        ["storage_volumes" | "storage_snapshots", _] => "GET, HEAD, DELETE, OPTIONS",
        ["storage_volumes", _, "attach" | "detach"] => "POST, OPTIONS",
        _ => return None,
    })
}

/// The path below `/api`, if the request is under it.
fn below_api(req: &Request) -> Option<Vec<&str>> {
    match req.segments.split_first() {
        Some((first, rest)) if first == "api" => Some(rest.iter().map(String::as_str).collect()),
        _ => None,
    }
}

/// Handles one request of this dialect, errors included.
pub(crate) fn dispatch(state: &ApiState, req: &Request) -> Reply {
    let reply = match req.method {
        Method::OPTIONS => options(req),
        Method::HEAD => answer(state, &req.as_get()),
        _ => answer(state, req),
    };
    identify(reply)
}

/// `OPTIONS`: 200 with `Allow`, or 404 for a path not served.
fn options(req: &Request) -> Reply {
    match below_api(req).and_then(|rest| allow_of(&rest)) {
        Some(allow) => Reply::empty(200).with_header("allow", allow),
        None => errors::reply(req, &not_found()),
    }
}

/// Any other method: the format first (406 with an empty body when
/// nothing acceptable is asked for), then the route.
fn answer(state: &ApiState, req: &Request) -> Reply {
    let Some(fmt) = format::negotiate(req) else {
        return Reply::empty(406);
    };
    match route(state, req, fmt) {
        Ok(r) => r,
        Err(e) => errors::reply(req, &e),
    }
}

fn route(state: &ApiState, req: &Request, fmt: Format) -> Result<Reply> {
    // As the Deltacloud server: every href is absolute, so a request
    // without a Host (HTTP/1.0) is 400.
    if req.header("host").is_none_or(|h| h.trim().is_empty()) {
        return Err(ApiError::bad_request("Unable to find HTTP Host header"));
    }
    let rest = below_api(req).ok_or_else(not_found)?;
    let rest = rest.as_slice();
    let allow = allow_of(rest).ok_or_else(not_found)?;
    if rest.is_empty() {
        only(req, allow)?;
        if truthy(req.query_param("force_auth")) {
            authenticate(state, req)?;
        }
        return entry_point(req, fmt);
    }
    if rest == ["openapi.json"] {
        only(req, allow)?;
        return Ok(Reply::json(200, openapi::generate(&req.base_url())));
    }
    let tenant = authenticate(state, req)?;
    only(req, allow)?;
    // HEAD comes here as GET and OPTIONS never: the arms below tell the
    // other methods apart.
    if matches!(req.method, Method::HEAD | Method::OPTIONS) {
        return Err(ApiError::method_not_allowed(allow));
    }
    let ctx = Ctx {
        dom: domain::Ctx::new(state, tenant),
        req,
        fmt,
    };
    let is_get = req.method == Method::GET;
    match rest {
        ["storage_volumes"] => {
            if is_get {
                volumes::list(&ctx)
            } else {
                volumes::create(&ctx)
            }
        }
        ["storage_volumes", id] => {
            if is_get {
                volumes::show(&ctx, id)
            } else {
                volumes::delete(&ctx, id)
            }
        }
        ["storage_volumes", id, "attach"] => volumes::attach(&ctx, id),
        ["storage_volumes", id, "detach"] => volumes::detach(&ctx, id),
        ["storage_snapshots"] => {
            if is_get {
                snapshots::list(&ctx)
            } else {
                snapshots::create(&ctx)
            }
        }
        ["storage_snapshots", id] => {
            if is_get {
                snapshots::show(&ctx, id)
            } else {
                snapshots::delete(&ctx, id)
            }
        }
        _ => Err(not_found()),
    }
}

/// `GET /api`: the entry point, with a `Link` to the OpenAPI document.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "entryPoint",
    tag = "api",
    summary = "The entry point: driver, version and the collections",
    params(
        ("format" = Option<String>, Query, description = "`json` (this document describes the JSON; XML is the default)"),
        ("force_auth" = Option<String>, Query, description = "`1`: check the credentials"),
    ),
    security((), ("basic" = [])),
    responses(
        (status = 200, description = "the entry point", body = json::EntryPoint),
        (status = 401, description = "`force_auth` without valid credentials", body = json::Error),
    )
)]
fn entry_point(req: &Request, fmt: Format) -> Result<Reply> {
    let body = views::entry_point(fmt, &req.base_url())
        .map_err(|e| ApiError::internal(format!("writing XML: {e}")))?;
    Ok(format::finish(req, 200, fmt, body).with_header(
        "link",
        format!(
            "<{}/api/openapi.json>; rel=\"service-desc\"",
            req.base_url()
        ),
    ))
}

/// This dialect's error reply for `e` (a request that failed before its
/// handler ran, e.g. a body over the size limit).
pub(crate) fn error_reply(req: &Request, e: &ApiError) -> Reply {
    identify(errors::reply(req, e))
}
