//! The Danube Cloud dialect: server disk images, VM disk snapshots and
//! tasks under `/api/image/`, `/api/vm/` and `/api/task/` (trailing slash
//! optional), JSON only, authenticated by `ES-API-KEY: <token>` or
//! `Authorization: Token <token>`.
//!
//! ```text
//!  mod.rs        routing, auth, the status envelope, errors (Fail)
//!  fields.rs     request data (query for GET, JSON body otherwise), validation
//!  images.rs     image views, list/show/update/delete, servers using an image
//!  import.rs     POST /api/image/<name>/: manifest + file fetch as a task
//!  snapshots.rs  VM disk snapshots, image from a VM snapshot
//!  tasks.rs      in-memory tasks, reserved names, import settings
//!  views.rs      the typed bodies (utoipa ToSchema)
//!  openapi.rs    GET /api/danube/openapi.json, generated from them
//! ```
//!
//! Replies: `{"status": "SUCCESS"|"PENDING"|"FAILURE", "result": ...,
//! "task_id": "..."}` with 200, 201 and 400 (field errors); exceptions
//! `{"detail": "..."}` with 401, 403, 404, 405, 406 (exists), 409 (a task
//! is running), 412 (bad disk_id), 413, 415, 417 (bad status), 423 (store
//! not operational), 428 (image in use), 500.
//!
//! **Invariants:** images are engine images whose Danube name is per
//! tenant (`api.image_name`), so OpenStack's `imageRef` finds them by name
//! (the caller's own first) or id; every Danube field is in their metadata
//! under `api.danube.`. VMs are the server ids of the shared attachment
//! model; VM snapshots are engine snapshots. A 500 says only "A server
//! error occurred."; the detail goes to the log.

mod fields;
mod images;
mod import;
mod openapi;
mod snapshots;
mod tasks;
mod views;

pub(crate) use tasks::State;

use crate::auth::Tenant;
use crate::domain;
use crate::error::{ApiError, ErrorKind};
use crate::http::{Reply, Request};
use crate::ApiState;
use serde::Serialize;
use serde_json::{json, Map, Value};
use views::{Detail, Envelope, FieldErrors, TaskResult};
use warp::http::Method;

/// Image alias.
pub const ALIAS: &str = "api.danube.alias";
/// Image version.
pub const VERSION: &str = "api.danube.version";
/// Image access: 1 public, 3 private, 4 deleted.
pub const ACCESS: &str = crate::meta::IMAGE_ACCESS;
/// Image description.
pub const DESC: &str = "api.danube.desc";
/// Image OS type (1..=7).
pub const OSTYPE: &str = "api.danube.ostype";
/// Whether the image can resize the disk at deploy ("true"/"false").
pub const RESIZE: &str = "api.danube.resize";
/// Whether the image shuts the server down after the first start.
pub const DEPLOY: &str = "api.danube.deploy";
/// Image tags, a JSON array of strings.
pub const TAGS: &str = "api.danube.tags";
/// Whether the image is bound to a datacenter.
pub const DC_BOUND: &str = "api.danube.dc_bound";
/// The manifest's uuid of an imported image.
pub const MANIFEST_UUID: &str = "api.danube.manifest_uuid";
/// The VM (server id) a snapshot was taken of.
pub const SNAP_VM: &str = "api.danube.vm";
/// The disk number of that VM the snapshot was taken of.
pub const SNAP_DISK: &str = "api.danube.disk_id";
/// Snapshot note.
pub const SNAP_NOTE: &str = "api.danube.note";

/// Access values.
pub const ACCESS_PUBLIC: i64 = 1;
pub const ACCESS_PRIVATE: i64 = 3;
pub const ACCESS_DELETED: i64 = 4;

/// A failure of a Danube request, in the dialect's two shapes.
#[derive(Debug)]
pub(crate) enum Fail {
    /// An exception: `{"detail": ...}` with this status.
    Detail(u16, String),
    /// Field errors: FAILURE 400 with `{"field": ["message"]}` as result.
    Invalid(Map<String, Value>),
    /// 405 with the allowed methods.
    Method(&'static str),
}

impl Fail {
    pub fn detail(status: u16, msg: impl Into<String>) -> Fail {
        Fail::Detail(status, msg.into())
    }

    /// 400 FAILURE for one field.
    pub fn invalid(field: &str, msg: impl Into<String>) -> Fail {
        let mut m = Map::new();
        m.insert(field.to_string(), json!([msg.into()]));
        Fail::Invalid(m)
    }

    pub fn not_found(msg: impl Into<String>) -> Fail {
        Fail::Detail(404, msg.into())
    }
}

fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::BadRequest | ErrorKind::Unprocessable => 400,
        ErrorKind::Unauthorized => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::MethodNotAllowed => 405,
        ErrorKind::Conflict => 409,
        ErrorKind::OverLimit => 413,
        ErrorKind::UnsupportedMediaType => 415,
        ErrorKind::NotImplemented => 501,
        ErrorKind::Unavailable => 423,
        ErrorKind::Internal | ErrorKind::Config => 500,
    }
}

/// The message a client sees for `e`: its own, but for a server-side
/// failure (500) a generic one; the detail (engine text, paths) is logged.
fn client_message(e: &ApiError) -> String {
    if matches!(e.kind(), ErrorKind::Internal | ErrorKind::Config) {
        tracing::error!(error = %e, source = ?e.engine_error(), "danube: internal error");
        INTERNAL.to_string()
    } else {
        e.message().to_string()
    }
}

/// What a 500 says.
const INTERNAL: &str = "A server error occurred.";

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Fail {
        if e.kind() == ErrorKind::MethodNotAllowed {
            return Fail::Method(e.allow().unwrap_or("GET"));
        }
        if e.kind() == ErrorKind::OverLimit || e.kind() == ErrorKind::Conflict {
            // Quota and "already exists" in the dialect's statuses.
            let status = if e.kind() == ErrorKind::Conflict {
                406
            } else {
                413
            };
            return Fail::Detail(status, e.message().to_string());
        }
        Fail::Detail(status_of(e.kind()), client_message(&e))
    }
}

impl From<engine::Error> for Fail {
    fn from(e: engine::Error) -> Fail {
        ApiError::from(e).into()
    }
}

pub(crate) type DResult<T> = std::result::Result<T, Fail>;

fn fail_reply(req: &Request, f: Fail) -> Reply {
    match f {
        Fail::Detail(500, msg) => {
            tracing::error!(detail = %msg, "danube: server error");
            detail(500, INTERNAL.into())
        }
        Fail::Detail(status, msg) => {
            let r = detail(status, msg);
            if status == 401 {
                r.with_header("www-authenticate", "Token")
            } else {
                r
            }
        }
        Fail::Invalid(m) => envelope(400, "FAILURE", FieldErrors(m), sync_task_id()),
        Fail::Method(allow) => detail(
            405,
            format!(
                "Method \"{}\" not allowed.",
                req.method.as_str().escape_debug()
            ),
        )
        .with_header("allow", allow),
    }
}

/// An exception: `{"detail": ...}` with `status`.
fn detail(status: u16, detail: String) -> Reply {
    Reply::json(status, views::to_value(&Detail { detail }))
}

/// The status envelope around `result`.
fn envelope<T: Serialize>(status: u16, word: &str, result: T, task_id: String) -> Reply {
    let e = Envelope {
        status: word.into(),
        result,
        task_id,
    };
    Reply::json(status, e.value())
}

/// A task id for a synchronous reply (Danube answers every call with one).
fn sync_task_id() -> String {
    format!("sync-{}", uuid::Uuid::new_v4())
}

/// 200 SUCCESS with `result`.
pub(crate) fn success<T: Serialize>(result: &T) -> Reply {
    envelope(200, "SUCCESS", result, sync_task_id())
}

/// 201 PENDING for task `task_id`.
pub(crate) fn pending<T: Serialize>(task_id: &str, result: &T) -> Reply {
    envelope(201, "PENDING", result, task_id.to_string())
}

/// The context of one authenticated call: the shared domain context and
/// the request.
pub(crate) struct Ctx<'a> {
    pub dom: domain::Ctx<'a>,
    pub req: &'a Request,
}

/// The tenant of `ES-API-KEY` or `Authorization: Token`.
fn authenticate<'a>(state: &'a ApiState, req: &Request) -> DResult<&'a Tenant> {
    let token = req.header("es-api-key").map(str::trim).or_else(|| {
        req.header("authorization").and_then(|a| {
            let (scheme, rest) = a.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("token").then(|| rest.trim())
        })
    });
    match token {
        None | Some("") => Err(Fail::detail(
            401,
            "Authentication credentials were not provided.",
        )),
        Some(t) => state
            .auth()
            .by_token(t)
            .ok_or_else(|| Fail::detail(401, "Invalid token.")),
    }
}

fn only(req: &Request, allow: &'static str) -> DResult<()> {
    req.only(allow).map_err(Fail::from)
}

/// Handles one request of this dialect, errors included. The OpenAPI
/// document needs no credentials.
pub(crate) fn dispatch(state: &ApiState, req: &Request) -> Reply {
    if req
        .segments
        .iter()
        .map(String::as_str)
        .eq(["api", "danube", "openapi.json"])
    {
        return match req.only("GET, HEAD") {
            Ok(()) => Reply::json(200, openapi::generate(&req.base_url())),
            Err(e) => error_reply(req, &e),
        };
    }
    let res = authenticate(state, req).and_then(|tenant| {
        let ctx = Ctx {
            dom: domain::Ctx::new(state, tenant),
            req,
        };
        route(&ctx)
    });
    match res {
        Ok(r) => r,
        Err(f) => fail_reply(req, f),
    }
}

fn route(ctx: &Ctx) -> DResult<Reply> {
    let segs: Vec<&str> = ctx.req.segments.iter().map(String::as_str).collect();
    let m = &ctx.req.method;
    match segs.as_slice() {
        ["api", "image"] => only(ctx.req, "GET").and_then(|_| images::list(ctx)),
        ["api", "image", name] => {
            only(ctx.req, "GET, POST, PUT, DELETE")?;
            match *m {
                Method::GET => images::show(ctx, name),
                Method::POST => import::start(ctx, name),
                Method::PUT => images::update(ctx, name),
                _ => images::delete(ctx, name),
            }
        }
        ["api", "image", name, "vm"] => only(ctx.req, "GET").and_then(|_| images::vms(ctx, name)),
        ["api", "vm", vm, "snapshot"] => {
            only(ctx.req, "GET").and_then(|_| snapshots::list(ctx, vm))
        }
        ["api", "vm", vm, "snapshot", snap] => {
            only(ctx.req, "GET, POST, PUT, DELETE")?;
            match *m {
                Method::GET => snapshots::show(ctx, vm, snap),
                Method::POST => snapshots::create(ctx, vm, snap),
                Method::PUT => snapshots::update(ctx, vm, snap),
                _ => snapshots::delete(ctx, vm, snap),
            }
        }
        ["api", "vm", vm, "snapshot", snap, "image", name] => {
            only(ctx.req, "POST").and_then(|_| snapshots::to_image(ctx, vm, snap, name))
        }
        ["api", "task"] => only(ctx.req, "GET").and_then(|_| task_list(ctx)),
        ["api", "task", id, "status"] => only(ctx.req, "GET").and_then(|_| task_status(ctx, id)),
        _ => Err(Fail::not_found("Not found.")),
    }
}

/// `GET /api/task/`: the caller's running task ids.
#[utoipa::path(
    get,
    path = "/task/",
    operation_id = "listTasks",
    tag = "task",
    summary = "The caller's running task ids",
    responses(
        (status = 200, description = "SUCCESS: task ids", body = Envelope<Vec<String>>),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
fn task_list(ctx: &Ctx) -> DResult<Reply> {
    Ok(success(
        &ctx.dom.state.danube().pending(ctx.dom.tenant_id()),
    ))
}

/// `GET /api/task/<task_id>/status/`: 201 PENDING, 200 SUCCESS or 400
/// FAILURE with the task's result.
#[utoipa::path(
    get,
    path = "/task/{task_id}/status/",
    operation_id = "taskStatus",
    tag = "task",
    summary = "A task's state and result",
    params(("task_id" = String, Path, description = "the task id")),
    responses(
        (status = 200, description = "SUCCESS: the result (an import's image)", body = Envelope<TaskResult>),
        (status = 201, description = "PENDING: `result` is null", body = Envelope<TaskResult>),
        (status = 400, description = "FAILURE: `result` is `{\"detail\"}`", body = Envelope<TaskResult>),
        (status = 401, description = "no or invalid token", body = Detail),
        (status = 404, description = "no such task of the caller", body = Detail),
    )
)]
fn task_status(ctx: &Ctx, id: &str) -> DResult<Reply> {
    use tasks::Outcome;
    let outcome = ctx
        .dom
        .state
        .danube()
        .outcome(id, ctx.dom.tenant_id())
        .ok_or_else(|| Fail::not_found("Task not found."))?;
    let (status, word, result) = match outcome {
        Outcome::Pending => (201, "PENDING", Value::Null),
        Outcome::Success(v) => (200, "SUCCESS", v),
        Outcome::Failure(v) => (400, "FAILURE", v),
    };
    Ok(envelope(status, word, TaskResult(result), id.to_string()))
}

/// This dialect's error reply for `e` (a request that failed before its
/// handler ran: an oversized or unreadable body, a handler panic).
pub(crate) fn error_reply(req: &Request, e: &ApiError) -> Reply {
    let f = if e.kind() == ErrorKind::MethodNotAllowed {
        Fail::Method(e.allow().unwrap_or("GET"))
    } else {
        Fail::Detail(status_of(e.kind()), client_message(e))
    };
    fail_reply(req, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use warp::http::HeaderMap;

    const AUTH: &str = r#"
[[tenants]]
id = "t"
token = "tok-0123456789abcdef0123"
user = "t"
password = "pw-0123456789abcdef"
"#;

    /// A server-side failure says nothing of its cause (engine text,
    /// paths, ids): the detail goes to the log only.
    #[test]
    fn internal_errors_are_generic() {
        let req = Request::new(
            Method::GET,
            "/api/image/",
            "",
            HeaderMap::new(),
            Bytes::new(),
        );
        let secret = "segment /srv/data/segments/7.log: object 0123 of tenant b";
        for f in [
            Fail::from(ApiError::internal(secret)),
            Fail::detail(500, secret),
        ] {
            let r = fail_reply(&req, f);
            assert_eq!(r.status, 500);
            let body = r.body.expect("body").to_string();
            assert!(!body.contains("segment"), "{body}");
            assert!(body.contains(INTERNAL), "{body}");
        }
        let r = error_reply(&req, &ApiError::internal(secret));
        assert!(!r.body.expect("body").to_string().contains("segment"));
    }

    /// Whatever the path, method and body, a Danube request gets a JSON
    /// reply with one of the dialect's statuses, and never panics.
    #[test]
    fn never_panics_and_always_answers_json() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = engine::Store::open(
            tmp.path().join("data"),
            engine::StoreOptions {
                create: true,
                ..Default::default()
            },
        )
        .expect("store");
        let auth = crate::Auth::parse(AUTH).expect("auth");
        let state =
            ApiState::new(store, auth).with_image_import(tmp.path().join("import"), 1 << 20);
        let paths = [
            "/api/image",
            "/api/image/",
            "/api/image/x/",
            "/api/image/%00/",
            "/api/image/..%2F../vm",
            "/api/image/x/vm/y",
            "/api/vm/v/snapshot/",
            "/api/vm/%ff/snapshot/s/",
            "/api/vm/v/snapshot/s/image/i/",
            "/api/task/",
            "/api/task/%0a/status",
            "/api/vm/v/snapshot/s/image/i/extra",
        ];
        let bodies: [&[u8]; 8] = [
            b"",
            b"{}",
            b"{",
            b"[]",
            b"{\"manifest_url\": \"file:///etc/passwd\", \"disk_id\": 99999999999999999999}",
            b"{\"access\": 1e400, \"tags\": [[[]]], \"owner\": null}",
            b"{\"manifest_url\": \"http://\\u0000\", \"alias\": \"\\ud800\"}",
            b"\xff\xff",
        ];
        let methods = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ];
        let allowed = [
            200, 201, 400, 401, 403, 404, 405, 406, 409, 412, 413, 415, 417, 423, 428,
        ];
        for p in paths {
            for b in bodies {
                for m in &methods {
                    for q in ["", "full=1&extended=x&order_by=-created&disk_id=-5"] {
                        let mut h = HeaderMap::new();
                        h.insert(
                            "es-api-key",
                            "tok-0123456789abcdef0123".parse().expect("hv"),
                        );
                        h.insert("content-type", "application/json".parse().expect("hv"));
                        let req = Request::new(m.clone(), p, q, h, Bytes::copy_from_slice(b));
                        let r = dispatch(&state, &req);
                        assert!(allowed.contains(&r.status), "{m} {p} {q}: {}", r.status);
                        assert!(r.body.is_some(), "{m} {p}: no JSON body");
                    }
                }
            }
        }
        // Without credentials: 401 everywhere.
        for p in paths {
            let req = Request::new(Method::GET, p, "", HeaderMap::new(), Bytes::new());
            assert_eq!(dispatch(&state, &req).status, 401, "{p}");
        }
    }
}
