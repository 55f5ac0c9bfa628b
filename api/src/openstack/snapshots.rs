//! `os-snapshots`: list (and `detail`), create (an in-use volume needs
//! `force`), show, delete. A snapshot is the engine's O(1) snapshot; it and
//! its volume can be deleted in either order.

use super::{opt_id, opt_string, parse_bool, wrapped, Ctx, MAX_FIELD};
use crate::domain::ops;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use serde_json::{json, Value};

/// The snapshot view.
pub(crate) fn view(o: &ObjectInfo) -> Value {
    let opt = |k: &str| meta::get(o, k).map(Value::from).unwrap_or(Value::Null);
    json!({
        "id": o.id.to_string(),
        "volumeId": o.parent.map(|p| p.to_string()).unwrap_or_default(),
        "status": o.status,
        "size": meta::gb(o.size),
        "createdAt": meta::format_time(o.created),
        "displayName": opt(meta::DISPLAY_NAME),
        "displayDescription": opt(meta::DISPLAY_DESCRIPTION),
    })
}

/// `GET os-snapshots` and `GET os-snapshots/detail`.
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let page = ctx.paginate(ctx.dom.objects(ObjectKind::Snapshot))?;
    let v: Vec<Value> = page.iter().map(view).collect();
    Ok(Reply::json(200, json!({ "snapshots": v })))
}

/// `GET os-snapshots/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = ctx.snapshot(id)?;
    Ok(Reply::json(200, json!({ "snapshot": view(&o) })))
}

/// `POST os-snapshots`.
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
    Ok(Reply::json(200, json!({ "snapshot": view(&o) }))
        .with_header("location", format!("{}/os-snapshots/{}", ctx.base(), o.id)))
}

/// `DELETE os-snapshots/{id}`: 202. Volumes cloned from it keep their data.
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = ctx.snapshot(id)?;
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(202))
}
