//! A read-only Glance v2 image API under `/image`, so that OpenStack
//! clients which build an image client for block storage commands (the
//! `openstack` CLI does for `volume create`) find one, and so that
//! `openstack volume create --image NAME` can resolve an engine image:
//! version discovery (`/image`, 300; `/image/v2`), `GET images` (with
//! `?name=`) and `GET images/{id}`, over the images a tenant sees (its
//! own, public and ownerless ones; the Danube Cloud dialect makes them).
//! Errors are plain text with the status, as Glance's. Typed bodies in
//! `views.rs`; `GET /image/v2/openapi.json` is the OpenAPI document
//! generated from them (`openapi.rs`).

mod openapi;
mod views;

use crate::error::{ApiError, ErrorKind, Result};
use crate::http::{Reply, Request};
use crate::meta;
use crate::ApiState;
use engine::{ObjectInfo, ObjectKind};
use views::{reply, Image, ImageList, Link, Version, VersionList};

fn version_doc(base: &str) -> Version {
    Version {
        id: "v2.9".into(),
        status: "CURRENT".into(),
        links: vec![Link {
            rel: "self".into(),
            href: format!("{base}/image/v2/"),
        }],
    }
}

fn versions(base: &str) -> VersionList {
    VersionList {
        versions: vec![version_doc(base)],
    }
}

fn time(secs: u64) -> String {
    format!("{}Z", meta::format_time(secs).replace(' ', "T"))
}

fn view(o: &ObjectInfo) -> Image {
    let id = o.id.to_string();
    let name = o
        .name
        .clone()
        .or_else(|| meta::get(o, meta::DISPLAY_NAME).map(str::to_string));
    let public =
        meta::get(o, meta::TENANT).is_none() || meta::get(o, meta::IMAGE_ACCESS) == Some("1");
    Image {
        name,
        status: "active".into(),
        visibility: if public { "public" } else { "private" }.into(),
        owner: meta::get(o, meta::TENANT).map(str::to_string),
        size: o.size,
        virtual_size: o.size,
        disk_format: "raw".into(),
        container_format: "bare".into(),
        min_disk: meta::gb(o.size),
        min_ram: 0,
        protected: false,
        tags: Vec::new(),
        created_at: time(o.created),
        updated_at: time(o.created),
        this: format!("/v2/images/{id}"),
        file: format!("/v2/images/{id}/file"),
        schema: "/v2/schemas/image".into(),
        os_hidden: false,
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        id,
    }
}

fn only_get(req: &Request) -> Result<()> {
    if req.method.as_str() == "GET" || req.method.as_str() == "HEAD" {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed("GET, HEAD"))
    }
}

/// Handles one request under `/image`.
pub(crate) fn dispatch(state: &ApiState, req: &Request) -> Reply {
    route(state, req).unwrap_or_else(|e| error_reply(&e))
}

fn route(state: &ApiState, req: &Request) -> Result<Reply> {
    only_get(req)?;
    let base = req.base_url();
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let rest = match segs.as_slice() {
        ["image"] | ["image", "versions"] => return Ok(reply(300, &versions(&base))),
        ["image", "v2"] => return Ok(version(&base)),
        ["image", "v2", "openapi.json"] => return Ok(Reply::json(200, openapi::generate(&base))),
        ["image", "v2", rest @ ..] => rest,
        _ => return Err(ApiError::not_found("The resource could not be found.")),
    };
    let tenant = req
        .header("x-auth-token")
        .and_then(|t| state.authenticate(t))
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthorized,
                "The request you have made requires authentication.",
            )
        })?;
    let images = || -> Vec<ObjectInfo> {
        state
            .store()
            .list()
            .into_iter()
            .filter(|o| crate::domain::visibility::visible(o, ObjectKind::Image, &tenant.id))
            .collect()
    };
    match rest {
        ["images"] => Ok(list(req, &images())),
        ["images", id] => show(&images(), id),
        _ => Err(ApiError::not_found("The resource could not be found.")),
    }
}

/// `GET /image/v2`: the versions, with a `Link` to the OpenAPI document.
#[utoipa::path(
    method(get, head),
    path = "/v2",
    operation_id = "versionV2",
    tag = "versions",
    summary = "The versions (`/` and `/versions` answer them with 300)",
    security(()),
    responses((status = 200, description = "the versions", body = VersionList))
)]
fn version(base: &str) -> Reply {
    let link = format!("<{base}/image/v2/openapi.json>; rel=\"service-desc\"");
    reply(200, &versions(base)).with_header("link", link)
}

/// `GET /image/v2/images`.
#[utoipa::path(
    method(get, head),
    path = "/v2/images",
    operation_id = "listImages",
    tag = "images",
    summary = "The images the tenant sees: its own, public and ownerless ones",
    params(("name" = Option<String>, Query, description = "only images of this name")),
    responses(
        (status = 200, description = "the images", body = ImageList),
        (status = 401, description = "missing or invalid X-Auth-Token", body = String, content_type = "text/plain"),
    )
)]
fn list(req: &Request, all: &[ObjectInfo]) -> Reply {
    let wanted = req.query_param("name");
    let images: Vec<Image> = all
        .iter()
        .map(view)
        .filter(|v| wanted.is_none_or(|n| v.name.as_deref() == Some(n)))
        .collect();
    reply(
        200,
        &ImageList {
            images,
            schema: "/v2/schemas/images".into(),
            first: "/v2/images".into(),
        },
    )
}

/// `GET /image/v2/images/{id}`.
#[utoipa::path(
    method(get, head),
    path = "/v2/images/{image_id}",
    operation_id = "showImage",
    tag = "images",
    summary = "One image the tenant sees",
    params(("image_id" = String, Path, description = "the image's UUID")),
    responses(
        (status = 200, description = "the image", body = Image),
        (status = 401, description = "missing or invalid X-Auth-Token", body = String, content_type = "text/plain"),
        (status = 404, description = "no such image, or not visible", body = String, content_type = "text/plain"),
    )
)]
fn show(all: &[ObjectInfo], id: &str) -> Result<Reply> {
    all.iter()
        .find(|o| o.id.to_string() == id)
        .map(|o| reply(200, &view(o)))
        .ok_or_else(|| ApiError::not_found(format!("No image found with ID {}", id.escape_debug())))
}

/// Glance's error reply: the status and a short text body.
pub(crate) fn error_reply(e: &ApiError) -> Reply {
    let status = match e.kind() {
        ErrorKind::Unauthorized => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::MethodNotAllowed => 405,
        ErrorKind::OverLimit => 413,
        ErrorKind::Internal | ErrorKind::Config => 500,
        ErrorKind::Unavailable => 503,
        _ => 400,
    };
    let text = if status == 500 {
        "Internal Server Error".to_string()
    } else {
        e.message().to_string()
    };
    let mut r = Reply::raw(status, "text/plain; charset=UTF-8", text.into_bytes());
    if let Some(allow) = e.allow() {
        r = r.with_header("allow", allow);
    }
    r
}
