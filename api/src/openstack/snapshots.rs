//! `os-snapshots`: list (and `detail`), create (an in-use volume needs
//! `force`), show, delete. A snapshot is the engine's O(1) snapshot; it and
//! its volume can be deleted in either order.

use super::requests::{Page, SnapshotCreate};
use super::views::{ok, Fault, Snapshot, SnapshotList, SnapshotOne};
use super::{opt_id, opt_string, parse_bool, wrapped, Ctx, MAX_FIELD};
use crate::domain::ops;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use serde_json::Value;

/// The snapshot view.
pub(crate) fn view(o: &ObjectInfo) -> Snapshot {
    let opt = |k: &str| meta::get(o, k).map(str::to_string);
    Snapshot {
        id: o.id.to_string(),
        volume_id: o.parent.map(|p| p.to_string()).unwrap_or_default(),
        status: o.status.clone(),
        size: meta::gb(o.size),
        created_at: meta::format_time(o.created),
        display_name: opt(meta::DISPLAY_NAME),
        display_description: opt(meta::DISPLAY_DESCRIPTION),
    }
}

/// `GET os-snapshots` and `GET os-snapshots/detail`.
#[utoipa::path(
    get,
    path = "/os-snapshots",
    operation_id = "listSnapshots",
    tag = "snapshots",
    summary = "List snapshots (`/os-snapshots/detail` is the same)",
    params(Page),
    responses(
        (status = 200, description = "snapshots", body = SnapshotList),
        (status = 400, description = "badRequest: invalid field or broken business rule", body = Fault),
    )
)]
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let page = ctx.paginate(ctx.dom.objects(ObjectKind::Snapshot))?;
    let snapshots = page.iter().map(view).collect();
    Ok(ok(&SnapshotList { snapshots }))
}

/// `GET os-snapshots/{id}`.
#[utoipa::path(
    get,
    path = "/os-snapshots/{snapshot_id}",
    operation_id = "showSnapshot",
    tag = "snapshots",
    summary = "Show a snapshot",
    params(("snapshot_id" = String, Path, description = "snapshot UUID")),
    responses(
        (status = 200, description = "snapshot", body = SnapshotOne),
        (status = 404, description = "itemNotFound", body = Fault),
    )
)]
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = ctx.snapshot(id)?;
    Ok(ok(&SnapshotOne { snapshot: view(&o) }))
}

/// `POST os-snapshots`.
#[utoipa::path(
    post,
    path = "/os-snapshots",
    operation_id = "createSnapshot",
    tag = "snapshots",
    summary = "Create a snapshot (force for in-use volumes)",
    request_body = SnapshotCreate,
    responses(
        (status = 200, description = "snapshot", body = SnapshotOne),
        (status = 400, description = "badRequest: invalid field or broken business rule", body = Fault),
        (status = 404, description = "itemNotFound", body = Fault),
        (status = 413, description = "overLimit: quota exceeded or body over 1 MiB", body = Fault),
        (status = 415, description = "badMediaType: Content-Type is not JSON", body = Fault),
        (status = 422, description = "unprocessableEntity: missing or non-object wrapper", body = Fault),
    )
)]
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let body = wrapped(ctx.req, "snapshot")?;
    let Some(volume_id) = opt_id(&body, "volume_id")? else {
        return Err(ApiError::bad_request(
            "Invalid input received: volume_id is required",
        ));
    };
    let force = match body.get("force") {
        None | Some(Value::Null) => false,
        Some(v) => parse_bool(v, "force")?,
    };
    let name = opt_string(&body, "display_name", MAX_FIELD)?;
    let description = opt_string(&body, "display_description", 65_535)?;

    let locked = ctx.dom.lock();
    let vol = ctx.volume(&volume_id)?;
    let allowed = vol.status == meta::AVAILABLE || (force && vol.status == meta::IN_USE);
    if !allowed {
        let why = if vol.status == meta::IN_USE {
            "the volume is attached (in-use); pass \"force\": true to snapshot it anyway"
        } else {
            "Volume status must be available"
        };
        return Err(ApiError::bad_request(format!(
            "Invalid volume: {why} (volume {}, status {})",
            vol.id, vol.status
        )));
    }
    // Snapshot and its metadata in one durable catalogue step.
    let m = ops::new_metadata(
        &ctx.dom,
        &Default::default(),
        &[
            (meta::DISPLAY_NAME, name.as_deref()),
            (meta::DISPLAY_DESCRIPTION, description.as_deref()),
        ],
    );
    let o = ops::snapshot(&ctx.dom, &locked, &vol, m)?;
    Ok(ok(&SnapshotOne { snapshot: view(&o) })
        .with_header("location", format!("{}/os-snapshots/{}", ctx.base(), o.id)))
}

/// `DELETE os-snapshots/{id}`: 202. Volumes cloned from it keep their data.
#[utoipa::path(
    delete,
    path = "/os-snapshots/{snapshot_id}",
    operation_id = "deleteSnapshot",
    tag = "snapshots",
    summary = "Delete a snapshot",
    params(("snapshot_id" = String, Path, description = "snapshot UUID")),
    responses(
        (status = 202, description = "accepted, no body"),
        (status = 404, description = "itemNotFound", body = Fault),
    )
)]
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = ctx.snapshot(id)?;
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(202))
}
