//! The HP Cloud / OpenStack Nova `os-volumes` v1.1 dialect: routing, the
//! version documents, and what the resource modules share (the call
//! context over [`crate::domain`], lookups in this dialect's words,
//! pagination, request-field parsing).
//!
//! Requests are snake_case, responses camelCase; ids are UUID strings;
//! faults are `{"<name>": {"code": N, "message": "..."}}` (`fault.rs`).
//! A `.json` suffix on the last path segment is accepted, as Nova did.

pub(crate) mod attachments;
pub(crate) mod fault;
mod openapi;
pub(crate) mod requests;
mod snapshots;
pub(crate) mod views;
mod volumes;

use crate::domain;
use crate::error::{ApiError, Result};
use crate::http::{Reply, Request};
use crate::meta;
use crate::ApiState;
use engine::{ObjectInfo, ObjectKind};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use warp::http::Method;

/// Most items one list returns.
pub const MAX_LIMIT: usize = 1000;

/// Longest display name, description, metadata key or value, device, zone.
pub const MAX_FIELD: usize = 255;

/// The context of one authenticated call: the shared domain context and
/// the request.
pub(crate) struct Ctx<'a> {
    pub dom: domain::Ctx<'a>,
    pub req: &'a Request,
}

impl Ctx<'_> {
    /// `http://host/v1.1/{tenant}`.
    pub fn base(&self) -> String {
        format!("{}/v1.1/{}", self.req.base_url(), self.dom.tenant_id())
    }

    fn find(&self, key: &str, kind: ObjectKind, what: &str) -> Result<ObjectInfo> {
        self.dom
            .find(kind, key)?
            .ok_or_else(|| ApiError::not_found(format!("{what} {key} could not be found.")))
    }

    /// The tenant's volume `key` (404 otherwise).
    pub fn volume(&self, key: &str) -> Result<ObjectInfo> {
        self.find(key, ObjectKind::Volume, "Volume")
    }

    /// The tenant's snapshot `key` (404 otherwise).
    pub fn snapshot(&self, key: &str) -> Result<ObjectInfo> {
        self.find(key, ObjectKind::Snapshot, "Snapshot")
    }

    /// `items` cut by `?limit=` and `?offset=`.
    pub fn paginate<T>(&self, items: Vec<T>) -> Result<Vec<T>> {
        let param = |name: &str| -> Result<usize> {
            match self.req.query_param(name) {
                None | Some("") => Ok(0),
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(n) if n < 0 => Err(ApiError::bad_request(format!(
                        "{name} param must be positive"
                    ))),
                    Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                    Err(_) => Err(ApiError::bad_request(format!(
                        "{name} param must be an integer"
                    ))),
                },
            }
        };
        let offset = param("offset")?;
        let limit = match param("limit")? {
            0 => MAX_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        Ok(items.into_iter().skip(offset).take(limit).collect())
    }
}

// ---- request fields ----

/// The object under `key` of the JSON body: a missing body, a body that is
/// not an object, or a missing or non-object `key` is 422.
pub(crate) fn wrapped(req: &Request, key: &str) -> Result<Map<String, Value>> {
    let unprocessable = || {
        ApiError::unprocessable(format!(
            "Unable to process the contained instructions: expected a JSON object with a '{key}' object"
        ))
    };
    match req.json_body()? {
        Some(Value::Object(mut m)) => match m.remove(key) {
            Some(Value::Object(inner)) => Ok(inner),
            _ => Err(unprocessable()),
        },
        _ => Err(unprocessable()),
    }
}

/// An optional string field (absent or null is `None`), at most `max` bytes.
pub(crate) fn opt_string(m: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ApiError::bad_request(format!(
            "Invalid input received: {key} is longer than {max} characters"
        ))),
        Some(_) => Err(ApiError::bad_request(format!(
            "Invalid input received: {key} must be a string"
        ))),
    }
}

/// An optional id field: a string or an integer; absent, null or "" is
/// `None`.
pub(crate) fn opt_id(m: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_FIELD => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(ApiError::bad_request(format!(
            "Invalid input received: {key} must be an id string"
        ))),
    }
}

/// A size in GB: a positive integer or a string of one ("1"); '0', '',
/// negative, fractional or non-numeric values are 400.
pub(crate) fn parse_gb(v: &Value, what: &str) -> Result<u64> {
    let n = crate::http::uint_value(v);
    let max_gb = engine::MAX_VOLUME_SIZE / meta::GIB;
    match n {
        Some(n) if n > 0 && n <= max_gb => Ok(n),
        Some(n) if n > max_gb => Err(ApiError::bad_request(format!(
            "Invalid input received: {what} '{n}' is larger than the largest volume ({max_gb} GB)"
        ))),
        _ => Err(ApiError::bad_request(format!(
            "Invalid input received: {what} '{}' must be an integer and greater than 0",
            display_value(v)
        ))),
    }
}

/// A boolean: JSON true/false, 0/1, or one of the strings OpenStack's
/// strict `bool_from_string` takes.
pub(crate) fn parse_bool(v: &Value, key: &str) -> Result<bool> {
    let s = match v {
        Value::Bool(b) => return Ok(*b),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_ascii_lowercase(),
        _ => String::new(),
    };
    match s.as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "Invalid value '{}' for {key}. Accepted values are: '0', '1', 'f', 'false', 'n', \
             'no', 'off', 'on', 't', 'true', 'y', 'yes'",
            display_value(v)
        ))),
    }
}

/// User metadata: an object of string values, keys 1 to 255 bytes (no
/// control characters), values at most 255 bytes.
pub(crate) fn parse_metadata(v: Option<&Value>) -> Result<Option<BTreeMap<String, String>>> {
    let m = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid metadata: metadata must be an object of strings",
            ))
        }
    };
    match meta::check_user_metadata(m, MAX_FIELD) {
        Ok(out) => Ok(Some(out)),
        Err(meta::BadMetadata::Key(k)) => Err(ApiError::bad_request(format!(
            "Invalid metadata: key '{}' must be 1 to {MAX_FIELD} characters",
            k.escape_debug()
        ))),
        Err(meta::BadMetadata::Value(k)) => Err(ApiError::bad_request(format!(
            "Invalid metadata: the value of '{}' must be a string of at most {MAX_FIELD} characters",
            k.escape_debug()
        ))),
    }
}

fn display_value(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.chars().take(64).collect()
}

// ---- routing ----

fn only(req: &Request, allow: &'static str) -> Result<()> {
    req.only(allow)
}

const VERSION_UPDATED: &str = "2011-01-21T11:33:21Z";

fn version_doc(base: &str, id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "status": status,
        "updated": VERSION_UPDATED,
        "links": [{"href": format!("{base}/{id}/"), "rel": "self"}],
    })
}

fn versions(req: &Request) -> Reply {
    let base = req.base_url();
    Reply::json(
        200,
        json!({"versions": [
            version_doc(&base, "v1.1", "CURRENT"),
            version_doc(&base, "v1.0", "DEPRECATED"),
        ]}),
    )
}

fn version(req: &Request, id: &str) -> Reply {
    let base = req.base_url();
    let status = if id == "v1.1" {
        "CURRENT"
    } else {
        "DEPRECATED"
    };
    let mut doc = version_doc(&base, id, status);
    doc["media-types"] = json!([
        {"base": "application/xml", "type": format!("application/vnd.openstack.compute-{id}+xml")},
        {"base": "application/json", "type": format!("application/vnd.openstack.compute-{id}+json")},
    ]);
    if let Some(links) = doc["links"].as_array_mut() {
        links.push(json!({
            "href": format!("{base}/openapi.json"),
            "type": "application/json",
            "rel": "describedby",
        }));
    }
    Reply::json(200, json!({ "version": doc }))
}

/// Routes one request of this dialect.
pub(crate) fn dispatch(state: &ApiState, req: &Request) -> Result<Reply> {
    let mut segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    if let Some(last) = segs.last_mut() {
        if let Some(s) = last.strip_suffix(".json") {
            *last = s;
        }
    }
    match segs.as_slice() {
        [] => only(req, "GET").map(|_| versions(req)),
        [v @ ("v1.1" | "v1.0")] => only(req, "GET").map(|_| version(req, v)),
        ["openapi"] => only(req, "GET").map(|_| Reply::json(200, openapi::document(req))),
        ["v1.1", tenant, rest @ ..] => {
            let tenant = state
                .auth()
                .authorize_token(tenant, req.header("x-auth-token"))?;
            let ctx = Ctx {
                dom: domain::Ctx::new(state, tenant),
                req,
            };
            route(&ctx, rest)
        }
        _ => Err(not_found()),
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

fn route(ctx: &Ctx, rest: &[&str]) -> Result<Reply> {
    let m = &ctx.req.method;
    let is = |x: Method| *m == x;
    match rest {
        ["os-volumes"] => {
            only(ctx.req, "GET, POST")?;
            if is(Method::GET) {
                volumes::list(ctx)
            } else {
                volumes::create(ctx)
            }
        }
        ["os-volumes", "detail"] => only(ctx.req, "GET").and_then(|_| volumes::list(ctx)),
        ["os-volumes", id] => {
            only(ctx.req, "GET, PUT, DELETE")?;
            if is(Method::GET) {
                volumes::show(ctx, id)
            } else if is(Method::PUT) {
                volumes::update(ctx, id)
            } else {
                volumes::delete(ctx, id)
            }
        }
        ["os-volumes", id, "action"] => {
            only(ctx.req, "POST").and_then(|_| volumes::action(ctx, id))
        }
        ["os-snapshots"] => {
            only(ctx.req, "GET, POST")?;
            if is(Method::GET) {
                snapshots::list(ctx)
            } else {
                snapshots::create(ctx)
            }
        }
        ["os-snapshots", "detail"] => only(ctx.req, "GET").and_then(|_| snapshots::list(ctx)),
        ["os-snapshots", id] => {
            only(ctx.req, "GET, DELETE")?;
            if is(Method::GET) {
                snapshots::show(ctx, id)
            } else {
                snapshots::delete(ctx, id)
            }
        }
        ["servers", server, "os-volume_attachments"] => {
            only(ctx.req, "GET, POST")?;
            if is(Method::GET) {
                attachments::list(ctx, server)
            } else {
                attachments::attach(ctx, server)
            }
        }
        ["servers", server, "os-volume_attachments", id] => {
            only(ctx.req, "GET, DELETE")?;
            if is(Method::GET) {
                attachments::show(ctx, server, id)
            } else {
                attachments::detach(ctx, server, id)
            }
        }
        _ => Err(not_found()),
    }
}
