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

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::{Reply, Request};
use crate::meta;
use crate::ApiState;
use base64::Engine as _;
use engine::{ObjectId, ObjectInfo, ObjectKind, Store};
use format::Format;
use warp::http::Method;

/// The context of one call: state, request, negotiated format, and the
/// tenant once authenticated.
pub(crate) struct Ctx<'a> {
    pub state: &'a ApiState,
    pub req: &'a Request,
    pub fmt: Format,
    pub tenant: &'a Tenant,
}

impl Ctx<'_> {
    pub fn store(&self) -> &Store {
        self.state.store()
    }

    /// `http://host` as the client addressed us.
    pub fn base(&self) -> String {
        self.req.base_url()
    }

    /// The OpenStack dialect's view of the same call, for the shared quota
    /// accounting.
    pub fn shared(&self) -> crate::openstack::Ctx<'_> {
        crate::openstack::Ctx {
            state: self.state,
            req: self.req,
            tenant: self.tenant,
        }
    }

    /// The tenant's objects of `kind`, oldest first.
    pub fn objects(&self, kind: ObjectKind) -> Vec<ObjectInfo> {
        self.store()
            .list()
            .into_iter()
            .filter(|o| meta::visible(o, kind, &self.tenant.id))
            .collect()
    }

    fn find(&self, key: &str, kind: ObjectKind, what: &str) -> Result<ObjectInfo> {
        let missing = || {
            ApiError::not_found(format!(
                "{what} '{}' not found",
                key.chars().take(64).collect::<String>().escape_debug()
            ))
        };
        let id: ObjectId = key.parse().map_err(|_| missing())?;
        match self.store().get(id) {
            Ok(o) if meta::visible(&o, kind, &self.tenant.id) => Ok(o),
            Ok(_) => Err(missing()),
            Err(e) if e.kind() == engine::ErrorKind::NotFound => Err(missing()),
            Err(e) => Err(e.into()),
        }
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

fn unauthorized(msg: &str) -> ApiError {
    ApiError::new(ErrorKind::Unauthorized, msg)
}

/// The tenant of the request's HTTP Basic credentials (401 otherwise).
fn authenticate<'a>(state: &'a ApiState, req: &Request) -> Result<&'a Tenant> {
    let Some(h) = req.header("authorization") else {
        return Err(unauthorized(
            "Authentication required: send HTTP Basic credentials",
        ));
    };
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthorized(
            "Authentication required: send HTTP Basic credentials",
        ));
    }
    let invalid = || unauthorized("Invalid credentials");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (user, password) = text.split_once(':').ok_or_else(invalid)?;
    state.auth().by_basic(user, password).ok_or_else(invalid)
}

fn only(req: &Request, allow: &'static str) -> Result<()> {
    if allow.split(", ").any(|m| m == req.method.as_str()) {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(allow))
    }
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
        state,
        req,
        fmt,
        tenant,
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
