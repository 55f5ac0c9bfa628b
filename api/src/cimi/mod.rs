//! The DMTF CIMI 1.0.1 dialect under `/cimi`: the cloud entry point,
//! volumes, volume images, the fixed volume configurations and templates,
//! and machine volumes (attachments). JSON by default, XML when `Accept`
//! asks for it; request bodies in either (`Content-Type`). HTTP Basic auth.
//! The cloud entry point links the OpenAPI document of the JSON with
//! `Link: <.../cimi/openapi.json>; rel="service-desc"`.
//!
//! ```text
//!  mod.rs       routing, auth, CIMI-Specification-Version, HEAD/OPTIONS,
//!               ETag, the call context
//!  body.rs      request bodies (JSON, or XML through quick-xml) to one map
//!  views.rs     the typed resources (serde + utoipa): the JSON answers,
//!               and the document tree derived from them
//!  doc.rs       that document tree written as XML; error bodies
//!  openapi.rs   GET /cimi/openapi.json, generated from views.rs and the
//!               handlers' #[utoipa::path] attributes
//!  query.rs     $filter, $first, $last on collections
//!  volumes.rs   Volume, and the fixed VolumeConfiguration / VolumeTemplate
//!  images.rs    VolumeImage: engine images captured from volumes in O(1)
//!  machines.rs  Machine and MachineVolume on the shared attachment model
//! ```
//!
//! **Invariant:** like the other dialects, CIMI keeps no state of its own:
//! volumes, images and attachments are engine objects and metadata shared
//! with the other dialects (`meta.rs`, `domain/`); the CIMI-only field (`bootable`) is kept
//! under `api.cimi.`. Volume configurations and templates are a fixed set
//! built into the server, derived from nothing a client sends.

mod body;
mod doc;
mod images;
mod machines;
mod openapi;
mod query;
mod views;
mod volumes;

use crate::auth::{self, Tenant};
use crate::domain;
use crate::error::{ApiError, Result};
use crate::http::{self, Reply, Request};
use crate::meta;
use crate::ApiState;
use doc::Format;
use engine::{ObjectInfo, ObjectKind};
use std::collections::BTreeMap;
use views::{CloudEntryPoint, Href, Resource};
use warp::http::Method;

/// The CIMI XML namespace, also the prefix of every `resourceURI`.
pub(crate) const NS: &str = "http://schemas.dmtf.org/cimi/1";
/// The specification version this server implements and echoes.
pub(crate) const SPEC_VERSION: &str = "1.0.1";
/// Metadata key: "true" when the volume or image is bootable.
pub(crate) const BOOTABLE: &str = "api.cimi.bootable";
/// Longest name accepted.
pub(crate) const MAX_NAME: usize = 255;
/// Longest description accepted.
pub(crate) const MAX_DESCRIPTION: usize = 65_535;

/// The context of one authenticated call: the shared domain context, the
/// request and the response format.
pub(crate) struct Ctx<'a> {
    pub dom: domain::Ctx<'a>,
    pub req: &'a Request,
    pub fmt: Format,
}

impl<'a> Ctx<'a> {
    pub fn req(&self) -> &'a Request {
        self.req
    }

    /// The tenant's object `id` of `kind`, 404 with `what` otherwise.
    pub fn find(&self, kind: ObjectKind, what: &str, id: &str) -> Result<ObjectInfo> {
        self.dom.find(kind, id)?.ok_or_else(|| {
            ApiError::not_found(format!("{what} {} could not be found.", id.escape_debug()))
        })
    }

    /// The tenant's volume `id` (404 otherwise).
    pub fn volume(&self, id: &str) -> Result<ObjectInfo> {
        self.find(ObjectKind::Volume, "Volume", id)
    }

    /// The absolute URI of `path` under `/cimi/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/cimi/{path}", self.req().base_url())
    }

    /// `r` as a 200 reply.
    pub fn ok<T: Resource>(&self, r: &T) -> Reply {
        doc::reply(r, 200, self.fmt)
    }

    /// `r` as a 201 reply with `Location: location`.
    pub fn created<T: Resource>(&self, r: &T, location: String) -> Reply {
        doc::reply(r, 201, self.fmt).with_header("location", location)
    }
}

/// An object's creation time as xsd:dateTime (UTC).
pub(crate) fn datetime(secs: u64) -> String {
    format!("{}Z", meta::format_time(secs).replacen(' ', "T", 1))
}

/// The CIMI state of an engine object: `in-use` is AVAILABLE (CIMI has no
/// attached state), unknown statuses are ERROR.
pub(crate) fn state(o: &ObjectInfo) -> &'static str {
    match o.status.as_str() {
        "creating" => "CREATING",
        "available" | "in-use" => "AVAILABLE",
        "deleting" => "DELETING",
        "capturing" => "CAPTURING",
        _ => "ERROR",
    }
}

/// An object's name, description and user properties (`None` when
/// absent or empty), the common fields of volumes and images.
pub(crate) fn names(
    o: &ObjectInfo,
) -> (
    Option<String>,
    Option<String>,
    Option<BTreeMap<String, String>>,
) {
    let props = meta::user_metadata(o);
    (
        meta::get(o, meta::DISPLAY_NAME).map(str::to_string),
        meta::get(o, meta::DISPLAY_DESCRIPTION).map(str::to_string),
        (!props.is_empty()).then_some(props),
    )
}

/// Handles one request of this dialect, errors included; every reply
/// carries `CIMI-Specification-Version`. `HEAD` answers as `GET` without
/// the body; `OPTIONS` answers 200 with `Allow` (no credentials needed);
/// 200 and 201 replies with a body carry `ETag` and `Cache-Control`, and
/// a GET whose `If-None-Match` names the tag is 304.
pub(crate) fn dispatch(state: &ApiState, req: &Request) -> Reply {
    let reply = match req.method {
        Method::OPTIONS => options(req),
        Method::HEAD => answer(state, &req.as_get()),
        _ => answer(state, req),
    };
    reply.with_header("cimi-specification-version", SPEC_VERSION)
}

/// `OPTIONS`: 200 with `Allow`, or 404 for a path not served.
fn options(req: &Request) -> Reply {
    match below_cimi(req).and_then(|rest| allow_of(&rest)) {
        Some(allow) => Reply::empty(200).with_header("allow", allow),
        None => doc::error(Format::of(req), &not_found()),
    }
}

/// Any other method: version, credentials, route, cache validators.
fn answer(state: &ApiState, req: &Request) -> Reply {
    let fmt = Format::of(req);
    if below_cimi(req).as_deref() == Some(&["openapi.json"][..]) {
        let reply = negotiate(req)
            .and_then(|_| only(req, "GET, HEAD, OPTIONS"))
            .map(|_| Reply::json(200, openapi::generate(&req.base_url())));
        return match reply {
            Ok(r) => http::with_validators(req, r),
            Err(e) => doc::error(fmt, &e),
        };
    }
    let reply = negotiate(req)
        .and_then(|_| authenticate(state, req))
        .and_then(|tenant| {
            let ctx = Ctx {
                dom: domain::Ctx::new(state, tenant),
                req,
                fmt,
            };
            route(&ctx)
        });
    match reply {
        Ok(r) => http::with_validators(req, r),
        Err(e) => doc::error(fmt, &e),
    }
}

/// The path below `/cimi`, if the request is under it.
fn below_cimi(req: &Request) -> Option<Vec<&str>> {
    match req.segments.split_first() {
        Some((first, rest)) if first == "cimi" => Some(rest.iter().map(String::as_str).collect()),
        _ => None,
    }
}

/// The methods a path under `/cimi` answers (its `Allow`); `None` for
/// paths this dialect does not serve.
fn allow_of(rest: &[&str]) -> Option<&'static str> {
    Some(match rest {
        [] | ["cloudEntryPoint"] | ["openapi.json"] => "GET, HEAD, OPTIONS",
        ["volumes" | "volume_images"] => "GET, HEAD, POST, OPTIONS",
        ["volumes" | "volume_images", _] => "GET, HEAD, PUT, DELETE, OPTIONS",
        ["volume_configurations" | "volume_templates" | "machines"]
        | ["volume_configurations" | "volume_templates" | "machines", _] => "GET, HEAD, OPTIONS",
        ["machines", _, "volumes"] => "GET, HEAD, POST, OPTIONS",
        ["machines", _, "volumes", _] => "GET, HEAD, DELETE, OPTIONS",
        _ => return None,
    })
}

/// This dialect's error reply for `e` (a request that failed before its
/// handler ran, e.g. a body over the size limit).
pub(crate) fn error_reply(req: &Request, e: &ApiError) -> Reply {
    doc::error(Format::of(req), e).with_header("cimi-specification-version", SPEC_VERSION)
}

/// Checks `CIMI-Specification-Version`: absent, or a comma-separated list
/// of versions (digits and dots) at least one of which is 1.0 or 1.0.x;
/// a malformed or unsupported list is 400.
fn negotiate(req: &Request) -> Result<()> {
    let values: Vec<&str> = req
        .headers
        .get_all("cimi-specification-version")
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{0}"))
        .collect();
    if values.is_empty() {
        return Ok(());
    }
    let mut supported = false;
    for v in values.iter().flat_map(|v| v.split(',')) {
        let v = v.trim();
        let parts: Vec<&str> = v.split('.').collect();
        let well_formed = v.len() <= 32
            && parts.len() <= 4
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !well_formed {
            return Err(ApiError::bad_request(format!(
                "Malformed CIMI-Specification-Version '{}': expected versions such as 1.0.1, comma-separated.",
                v.escape_debug()
            )));
        }
        if parts.len() >= 2 && parts.first() == Some(&"1") && parts.get(1) == Some(&"0") {
            supported = true;
        }
    }
    if supported {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Unsupported CIMI-Specification-Version '{}': this server implements {SPEC_VERSION}.",
            values.join(",").escape_debug()
        )))
    }
}

/// The tenant of the HTTP Basic credentials (401 otherwise).
fn authenticate<'a>(state: &'a ApiState, req: &Request) -> Result<&'a Tenant> {
    auth::basic(state.auth(), req.header("authorization"))
}

fn only(req: &Request, allow: &'static str) -> Result<()> {
    req.only(allow)
}

fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

fn route(ctx: &Ctx) -> Result<Reply> {
    let req = ctx.req();
    let m = &req.method;
    let rest = below_cimi(req).ok_or_else(not_found)?;
    let rest = rest.as_slice();
    let allow = allow_of(rest).ok_or_else(not_found)?;
    only(req, allow)?;
    // HEAD comes here as GET and OPTIONS never: the arms below tell the
    // other methods apart.
    if matches!(*m, Method::HEAD | Method::OPTIONS) {
        return Err(ApiError::method_not_allowed(allow));
    }
    match rest {
        [] | ["cloudEntryPoint"] => Ok(entry_point(ctx)),
        ["volumes"] => {
            if *m == Method::GET {
                volumes::list(ctx)
            } else {
                volumes::create(ctx)
            }
        }
        ["volumes", id] => match *m {
            Method::GET => volumes::show(ctx, id),
            Method::PUT => volumes::update(ctx, id),
            _ => volumes::delete(ctx, id),
        },
        ["volume_images"] => {
            if *m == Method::GET {
                images::list(ctx)
            } else {
                images::create(ctx)
            }
        }
        ["volume_images", id] => match *m {
            Method::GET => images::show(ctx, id),
            Method::PUT => images::update(ctx, id),
            _ => images::delete(ctx, id),
        },
        ["volume_configurations"] => volumes::list_configs(ctx),
        ["volume_configurations", id] => volumes::show_config(ctx, id),
        ["volume_templates"] => volumes::list_templates(ctx),
        ["volume_templates", id] => volumes::show_template(ctx, id),
        ["machines"] => machines::list_machines(ctx),
        ["machines", mid] => machines::show_machine(ctx, mid),
        ["machines", mid, "volumes"] => {
            if *m == Method::GET {
                machines::list(ctx, mid)
            } else {
                machines::attach(ctx, mid)
            }
        }
        ["machines", mid, "volumes", vid] => {
            if *m == Method::GET {
                machines::show(ctx, mid, vid)
            } else {
                machines::detach(ctx, mid, vid)
            }
        }
        _ => Err(not_found()),
    }
}

/// `GET /cimi/cloudEntryPoint` (also `GET /cimi`), with a `Link` to the
/// OpenAPI document.
#[utoipa::path(
    get,
    path = "/cloudEntryPoint",
    operation_id = "cloudEntryPoint",
    tag = "cimi",
    summary = "The cloud entry point: links to every collection (also at `/cimi`)",
    responses(
        (status = 200, description = "the entry point", body = CloudEntryPoint),
        (status = 400, description = "an unsupported `CIMI-Specification-Version`", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
fn entry_point(ctx: &Ctx) -> Reply {
    let ep = CloudEntryPoint {
        resource_uri: views::resource_uri("CloudEntryPoint"),
        id: ctx.url("cloudEntryPoint"),
        name: "blockd".into(),
        description: "blockd block storage, DMTF CIMI 1.0.1".into(),
        base_uri: ctx.url(""),
        volumes: Href::new(ctx.url("volumes")),
        volume_templates: Href::new(ctx.url("volume_templates")),
        volume_configs: Href::new(ctx.url("volume_configurations")),
        volume_images: Href::new(ctx.url("volume_images")),
        machines: Href::new(ctx.url("machines")),
    };
    ctx.ok(&ep).with_header(
        "link",
        format!("<{}>; rel=\"service-desc\"", ctx.url("openapi.json")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use bytes::Bytes;
    use warp::http::HeaderMap;

    fn req(version: &[&str]) -> Request {
        let mut h = HeaderMap::new();
        for v in version {
            h.append("cimi-specification-version", v.parse().unwrap());
        }
        Request::new(Method::GET, "/cimi", "", h, Bytes::new())
    }

    #[test]
    fn versions() {
        for ok in [
            &[][..],
            &["1.0.1"],
            &["1.0"],
            &["2.0, 1.0.1"],
            &["1.0.0"],
            &["3", "1.0.2"],
        ] {
            assert!(negotiate(&req(ok)).is_ok(), "{ok:?}");
        }
        for bad in [
            &["2.0"][..],
            &["1.1"],
            &["1"],
            &["x"],
            &["1.0.1,"],
            &["1..0"],
            &["1.0 beta"],
        ] {
            let e = negotiate(&req(bad)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadRequest, "{bad:?}");
        }
    }

    #[test]
    fn times_and_states() {
        assert_eq!(datetime(1_341_000_243), "2012-06-29T20:04:03Z");
        let mut o = engine_info();
        for (s, want) in [
            ("available", "AVAILABLE"),
            ("in-use", "AVAILABLE"),
            ("creating", "CREATING"),
            ("deleting", "DELETING"),
            ("error", "ERROR"),
            ("error_deleting", "ERROR"),
        ] {
            o.status = s.into();
            assert_eq!(state(&o), want);
        }
    }

    fn engine_info() -> ObjectInfo {
        ObjectInfo {
            id: engine::ObjectId::new_random(),
            kind: engine::ObjectKind::Volume,
            name: None,
            size: 1 << 20,
            created: 0,
            status: "available".into(),
            metadata: Default::default(),
            parent: None,
            compress: false,
        }
    }
}
