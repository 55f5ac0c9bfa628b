//! `/api/storage_snapshots`: list, show, create (the engine's O(1)
//! snapshot of an AVAILABLE or IN-USE volume, as EC2 allowed), delete.
//!
//! Rules: `volume_id` is required (400) and must name one of the tenant's
//! volumes (404); a volume in another state (CREATING, ERROR, ...) is 409;
//! the tenant's quotas (snapshots, gigabytes) apply (413). Create answers
//! 201 with Location; delete 204, whether or not volumes were cloned from
//! the snapshot (they keep their data).

use super::json::{Error, SnapshotCreateForm, SnapshotList, SnapshotOne};
use super::params::{Params, MAX_DESCRIPTION, MAX_FIELD};
use super::{views, Ctx};
use crate::domain::ops;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::ObjectKind;
use std::collections::BTreeMap;

/// `GET /api/storage_snapshots`.
#[utoipa::path(
    get,
    path = "/storage_snapshots",
    operation_id = "listSnapshots",
    tag = "storage_snapshots",
    summary = "The tenant's snapshots",
    params(
        ("format" = Option<String>, Query, description = "`json` (this document describes the JSON; XML is the default)"),
    ),
    responses(
        (status = 200, description = "the snapshots", body = SnapshotList),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = Error),
    )
)]
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let all = ctx.dom.objects(ObjectKind::Snapshot);
    ctx.doc(200, views::snapshots(ctx.fmt, &ctx.base(), &all))
}

/// `GET /api/storage_snapshots/:id`.
#[utoipa::path(
    get,
    path = "/storage_snapshots/{id}",
    operation_id = "showSnapshot",
    tag = "storage_snapshots",
    summary = "A snapshot",
    params(
        ("id" = String, Path, description = "the snapshot's UUID"),
        ("format" = Option<String>, Query, description = "`json` (this document describes the JSON; XML is the default)"),
    ),
    responses(
        (status = 200, description = "the snapshot", body = SnapshotOne),
        (status = 404, description = "no such snapshot", body = Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = Error),
    )
)]
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = ctx.snapshot(id)?;
    ctx.doc(200, views::snapshot(ctx.fmt, &ctx.base(), &o))
}

/// `POST /api/storage_snapshots`: 201 with Location and the snapshot.
#[utoipa::path(
    post,
    path = "/storage_snapshots",
    operation_id = "createSnapshot",
    tag = "storage_snapshots",
    summary = "Snapshot a volume",
    description = "The volume must be AVAILABLE or IN-USE (a volume still CREATING or in ERROR is 409 with an `Error` body).",
    params(
        ("format" = Option<String>, Query, description = "`json` (this document describes the JSON; XML is the default)"),
    ),
    request_body(content = SnapshotCreateForm, content_type = "application/x-www-form-urlencoded", description = "also as query parameters or multipart/form-data"),
    responses(
        (status = 201, description = "the snapshot (and its URL in Location)", body = SnapshotOne),
        (status = 400, description = "invalid parameter", body = Error),
        (status = 404, description = "no such volume", body = Error),
        (status = 415, description = "unsupported body type", body = Error),
        (status = 413, description = "quota exceeded", body = Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = Error),
    )
)]
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let p = Params::of(ctx.req)?;
    let volume_id = p.required("volume_id", MAX_FIELD)?;
    let name = p.text("name", MAX_FIELD)?;
    let description = p.text("description", MAX_DESCRIPTION)?;

    let locked = ctx.dom.lock();
    let vol = ctx.volume(&volume_id)?;
    if vol.status != meta::AVAILABLE && vol.status != meta::IN_USE {
        return Err(ApiError::conflict(format!(
            "Storage volume {} must be AVAILABLE or IN-USE to snapshot, but it is {}",
            vol.id,
            views::volume_state(&vol.status)
        )));
    }
    let m = ops::new_metadata(
        &ctx.dom,
        &BTreeMap::new(),
        &[
            (meta::DISPLAY_NAME, name.as_deref()),
            (meta::DISPLAY_DESCRIPTION, description.as_deref()),
        ],
    );
    let o = ops::snapshot(&ctx.dom, &locked, &vol, m)?;
    let location = views::href(&ctx.base(), "storage_snapshots", &o.id.to_string());
    Ok(ctx
        .doc(201, views::snapshot(ctx.fmt, &ctx.base(), &o))?
        .with_header("location", location))
}

/// `DELETE /api/storage_snapshots/:id`: 204.
#[utoipa::path(
    delete,
    path = "/storage_snapshots/{id}",
    operation_id = "deleteSnapshot",
    tag = "storage_snapshots",
    summary = "Delete a snapshot",
    params(
        ("id" = String, Path, description = "the snapshot's UUID"),
        ("format" = Option<String>, Query, description = "`json` (this document describes the JSON; XML is the default)"),
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such snapshot", body = Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = Error),
    )
)]
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = ctx.snapshot(id)?;
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(204))
}
