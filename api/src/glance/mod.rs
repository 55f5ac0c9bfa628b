//! A read-only Glance v2 image API under `/image`, so that OpenStack
//! clients which build an image client for block storage commands (the
//! `openstack` CLI does for `volume create`) find one, and so that
//! `openstack volume create --image NAME` can resolve an engine image:
//! version discovery (`/image`, 300; `/image/v2`), `GET images` (with
//! `?name=`) and `GET images/{id}`, over the images a tenant sees (its
//! own, public and ownerless ones; the Danube Cloud dialect makes them).
//! Errors are plain text with the status, as Glance's.

use crate::error::{ApiError, ErrorKind, Result};
use crate::http::{Reply, Request};
use crate::meta;
use crate::ApiState;
use engine::{ObjectInfo, ObjectKind};
use serde_json::{json, Value};

fn version_doc(base: &str) -> Value {
    json!({
        "id": "v2.9",
        "status": "CURRENT",
        "links": [{"rel": "self", "href": format!("{base}/image/v2/")}],
    })
}

fn time(secs: u64) -> String {
    format!("{}Z", meta::format_time(secs).replace(' ', "T"))
}

fn view(o: &ObjectInfo) -> Value {
    let id = o.id.to_string();
    let name = o
        .name
        .clone()
        .or_else(|| meta::get(o, meta::DISPLAY_NAME).map(str::to_string));
    let public =
        meta::get(o, meta::TENANT).is_none() || meta::get(o, meta::IMAGE_ACCESS) == Some("1");
    json!({
        "id": id,
        "name": name,
        "status": "active",
        "visibility": if public { "public" } else { "private" },
        "owner": meta::get(o, meta::TENANT),
        "size": o.size,
        "virtual_size": o.size,
        "disk_format": "raw",
        "container_format": "bare",
        "min_disk": meta::gb(o.size),
        "min_ram": 0,
        "protected": false,
        "tags": [],
        "created_at": time(o.created),
        "updated_at": time(o.created),
        "self": format!("/v2/images/{id}"),
        "file": format!("/v2/images/{id}/file"),
        "schema": "/v2/schemas/image",
        "os_hidden": false,
        "checksum": null,
        "os_hash_algo": null,
        "os_hash_value": null,
    })
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
        ["image"] | ["image", "versions"] => {
            return Ok(Reply::json(300, json!({"versions": [version_doc(&base)]})))
        }
        ["image", "v2"] => return Ok(Reply::json(200, json!({"versions": [version_doc(&base)]}))),
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
        ["images"] => {
            let wanted = req.query_param("name");
            let list: Vec<Value> = images()
                .iter()
                .map(view)
                .filter(|v| wanted.is_none_or(|n| v["name"] == n))
                .collect();
            Ok(Reply::json(
                200,
                json!({"images": list, "schema": "/v2/schemas/images", "first": "/v2/images"}),
            ))
        }
        ["images", id] => images()
            .iter()
            .find(|o| o.id.to_string() == *id)
            .map(|o| Reply::json(200, view(o)))
            .ok_or_else(|| {
                ApiError::not_found(format!("No image found with ID {}", id.escape_debug()))
            }),
        _ => Err(ApiError::not_found("The resource could not be found.")),
    }
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
