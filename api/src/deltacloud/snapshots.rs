//! `/api/storage_snapshots`: list, show, create (the engine's O(1)
//! snapshot of an AVAILABLE or IN-USE volume, as EC2 allowed), delete.
//!
//! Rules: `volume_id` is required (400) and must name one of the tenant's
//! volumes (404); a volume in another state (CREATING, ERROR, ...) is 409;
//! the tenant's quotas (snapshots, gigabytes) apply (413). Create answers
//! 201 with Location; delete 204, whether or not volumes were cloned from
//! the snapshot (they keep their data).

use super::params::{Params, MAX_DESCRIPTION, MAX_FIELD};
use super::{views, Ctx};
use crate::domain::ops;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::ObjectKind;
use std::collections::BTreeMap;

/// `GET /api/storage_snapshots`.
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let all = ctx.dom.objects(ObjectKind::Snapshot);
    ctx.doc(200, views::snapshots(ctx.fmt, &ctx.base(), &all))
}

/// `GET /api/storage_snapshots/:id`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = ctx.snapshot(id)?;
    ctx.doc(200, views::snapshot(ctx.fmt, &ctx.base(), &o))
}

/// `POST /api/storage_snapshots`: 201 with Location and the snapshot.
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
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = ctx.snapshot(id)?;
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(204))
}
