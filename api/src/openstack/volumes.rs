//! `os-volumes`: list (and `detail`), create (empty, from a snapshot, from
//! an image), show, update (PUT), delete, and the actions `os-extend` and
//! `revert`. Creation goes through the engine's O(1) paths (thin create,
//! clone), so it answers at once whatever the size; the create response
//! already says `available`.

use super::{opt_id, opt_string, parse_gb, parse_metadata, wrapped, Ctx, MAX_FIELD};
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta::{self, GIB};
use engine::{ObjectInfo, ObjectKind};
use serde_json::{json, Map, Value};

fn null_or(v: Option<&str>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

/// The attachment view of an attached volume, `None` when detached.
pub(crate) fn attachment(o: &ObjectInfo) -> Option<Value> {
    let server = meta::get(o, meta::ATTACHED_SERVER)?;
    let id = o.id.to_string();
    Some(json!({
        "id": id,
        "volumeId": id,
        "serverId": server,
        "device": meta::get(o, meta::ATTACHED_DEVICE).unwrap_or(""),
    }))
}

/// The volume view (camelCase, `"attachments": [{}]` when detached).
pub(crate) fn view(o: &ObjectInfo) -> Value {
    json!({
        "id": o.id.to_string(),
        "status": o.status,
        "size": meta::gb(o.size),
        "availabilityZone": meta::get(o, meta::AVAILABILITY_ZONE).unwrap_or("nova"),
        "createdAt": meta::format_time(o.created),
        "attachments": [attachment(o).unwrap_or_else(|| json!({}))],
        "displayName": null_or(meta::get(o, meta::DISPLAY_NAME)),
        "displayDescription": null_or(meta::get(o, meta::DISPLAY_DESCRIPTION)),
        "volumeType": null_or(meta::get(o, meta::VOLUME_TYPE)),
        "snapshotId": meta::get(o, meta::SOURCE_SNAPSHOT).unwrap_or(""),
        "metadata": meta::user_metadata(o),
    })
}

/// `GET os-volumes` and `GET os-volumes/detail` (the same view, as in Nova).
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let all = ctx.objects(ObjectKind::Volume);
    let page = ctx.paginate(all)?;
    let v: Vec<Value> = page.iter().map(view).collect();
    Ok(Reply::json(200, json!({ "volumes": v })))
}

/// `GET os-volumes/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = ctx.volume(id)?;
    Ok(Reply::json(200, json!({ "volume": view(&o) })))
}

/// Where a new volume's contents come from.
enum Source {
    Empty,
    Snapshot(ObjectInfo),
    Image(ObjectInfo),
}

fn find_image(ctx: &Ctx, key: &str) -> Result<ObjectInfo> {
    let invalid = || {
        ApiError::bad_request(format!(
            "Invalid image identifier or unable to access requested image: {}",
            key.escape_debug()
        ))
    };
    let id = ctx
        .store()
        .resolve(key, Some(ObjectKind::Image))
        .map_err(|_| invalid())?;
    let o = ctx.store().get(id).map_err(|_| invalid())?;
    // Danube Cloud's access rules: other tenants' public images are
    // usable, deleted ones (access 4) are not.
    if crate::danube::image_usable(&o, &ctx.tenant.id) {
        Ok(o)
    } else {
        Err(invalid())
    }
}

/// `POST os-volumes`.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let body = wrapped(ctx.req, "volume")?;
    let size = body
        .get("size")
        .filter(|v| !v.is_null())
        .map(|v| parse_gb(v, "Volume size"))
        .transpose()?;
    let snapshot_id = opt_id(&body, "snapshot_id")?;
    let image_ref = opt_id(&body, "imageRef")?;
    let name = opt_string(&body, "display_name", MAX_FIELD)?;
    let description = opt_string(&body, "display_description", 65_535)?;
    let zone = opt_string(&body, "availability_zone", MAX_FIELD)?;
    let volume_type = opt_string(&body, "volume_type", MAX_FIELD)?;
    let user_meta = parse_metadata(body.get("metadata"))?.unwrap_or_default();
    if snapshot_id.is_some() && image_ref.is_some() {
        return Err(ApiError::bad_request(
            "Invalid input received: snapshot_id and imageRef are mutually exclusive",
        ));
    }

    let _guard = ctx.state.lock();
    let source = match (&snapshot_id, &image_ref) {
        (Some(s), _) => Source::Snapshot(ctx.snapshot(s)?),
        (_, Some(i)) => Source::Image(find_image(ctx, i)?),
        _ => Source::Empty,
    };
    let size_gb = match (&source, size) {
        // The snapshot's size wins over any size given.
        (Source::Snapshot(s), _) => meta::gb(s.size),
        (Source::Image(i), Some(n)) if n < meta::gb(i.size) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input received: size of specified image ({}G) is larger than volume size ({n}G)",
                meta::gb(i.size)
            )))
        }
        (Source::Image(i), None) => meta::gb(i.size).max(1),
        (_, Some(n)) => n,
        (Source::Empty, None) => {
            return Err(ApiError::bad_request(
                "Invalid input received: volume size is required",
            ))
        }
    };
    let quota = ctx.tenant.quota();
    let (n_vols, _, used_gb) = ctx.usage();
    if quota.volumes.is_some_and(|max| n_vols >= max) {
        return Err(ApiError::over_limit(
            format!(
                "Volume quota exceeded. You cannot create a volume of size {size_gb}G \
                 (maximum number of volumes allowed: {})",
                quota.volumes.unwrap_or(0)
            ),
            0,
        ));
    }
    ctx.check_gigabytes(used_gb, size_gb, "Volume")?;

    let store = ctx.store();
    // Everything the volume carries is written with it in one durable
    // catalogue step: a crash never leaves an ownerless volume behind.
    let mut m: std::collections::BTreeMap<String, String> = user_meta
        .iter()
        .map(|(k, v)| (format!("{}{k}", meta::USER_PREFIX), v.clone()))
        .collect();
    meta::set(&mut m, meta::TENANT, Some(&ctx.tenant.id));
    meta::set(&mut m, meta::DISPLAY_NAME, name.as_deref());
    meta::set(&mut m, meta::DISPLAY_DESCRIPTION, description.as_deref());
    meta::set(&mut m, meta::AVAILABILITY_ZONE, zone.as_deref());
    meta::set(&mut m, meta::VOLUME_TYPE, volume_type.as_deref());
    if let Source::Snapshot(s) = &source {
        meta::set(&mut m, meta::SOURCE_SNAPSHOT, Some(&s.id.to_string()));
    }
    if let Source::Image(i) = &source {
        meta::set(&mut m, meta::IMAGE_REF, Some(&i.id.to_string()));
    }
    let extra = engine::ObjectUpdate {
        name: None,
        status: Some(meta::AVAILABLE.to_string()),
        metadata: Some(m),
    };
    let want = size_gb * GIB;
    let o = match &source {
        Source::Empty => store.create_volume_with(None, want, false, extra)?,
        Source::Snapshot(src) | Source::Image(src) => store.derive_with(
            src.id,
            ObjectKind::Volume,
            None,
            Some(want).filter(|&w| w > src.size),
            extra,
        )?,
    };
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, size_gb, "api: volume created");
    Ok(Reply::json(200, json!({ "volume": view(&o) }))
        .with_header("location", format!("{}/os-volumes/{}", ctx.base(), o.id)))
}

/// `PUT os-volumes/{id}`: display name, description and user metadata
/// (which replaces the old); other keys are ignored.
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let body = wrapped(ctx.req, "volume")?;
    let name = opt_string(&body, "display_name", MAX_FIELD)?;
    let description = opt_string(&body, "display_description", 65_535)?;
    let user_meta = parse_metadata(body.get("metadata"))?;
    let _guard = ctx.state.lock();
    let o = ctx.volume(id)?;
    let mut m = match &user_meta {
        Some(u) => meta::with_user_metadata(&o, u),
        None => o.metadata.clone(),
    };
    if body.contains_key("display_name") {
        meta::set(&mut m, meta::DISPLAY_NAME, name.as_deref());
    }
    if body.contains_key("display_description") {
        meta::set(&mut m, meta::DISPLAY_DESCRIPTION, description.as_deref());
    }
    ctx.save(o.id, &o.status, m)?;
    let o = ctx.store().get(o.id)?;
    Ok(Reply::json(200, json!({ "volume": view(&o) })))
}

/// `DELETE os-volumes/{id}`: 202; an in-use volume is 400. Its snapshots
/// stay.
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let _guard = ctx.state.lock();
    let o = ctx.volume(id)?;
    if o.status == meta::IN_USE || meta::get(&o, meta::ATTACHED_SERVER).is_some() {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be available or error, but current status is: {}",
            o.status
        )));
    }
    ctx.store().delete(o.id)?;
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, "api: volume deleted");
    Ok(Reply::empty(202))
}

/// `POST os-volumes/{id}/action`: `{"os-extend": {"new_size": N}}` (grow,
/// also while in use: NBD clients see the new size on their next
/// connection) or `{"revert": {"snapshot_id": "..."}}` (available volumes,
/// to one of their own snapshots).
pub fn action(ctx: &Ctx, id: &str) -> Result<Reply> {
    let body = match ctx.req.json_body()? {
        Some(Value::Object(m)) if m.len() == 1 => m,
        _ => {
            return Err(ApiError::bad_request(
                "Malformed request body: expected one action object",
            ))
        }
    };
    let Some((name, args)) = body.into_iter().next() else {
        return Err(ApiError::bad_request("Malformed request body"));
    };
    let args = match args {
        Value::Object(m) => m,
        _ => {
            return Err(ApiError::bad_request(format!(
                "Malformed request body: {name} takes an object"
            )))
        }
    };
    match name.as_str() {
        "os-extend" => extend(ctx, id, &args),
        "revert" => revert(ctx, id, &args),
        other => Err(ApiError::bad_request(format!(
            "There is no such action: {}",
            other.escape_debug()
        ))),
    }
}

fn extend(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    let new_gb = match args.get("new_size") {
        Some(v) => parse_gb(v, "new_size")?,
        None => {
            return Err(ApiError::bad_request(
                "Invalid input received: new_size is required",
            ))
        }
    };
    let _guard = ctx.state.lock();
    let o = ctx.volume(id)?;
    if o.status != meta::AVAILABLE && o.status != meta::IN_USE {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be available or in-use to extend, but current status is: {}",
            o.status
        )));
    }
    let cur = meta::gb(o.size);
    if new_gb <= cur {
        return Err(ApiError::bad_request(format!(
            "Invalid input received: New size for extend must be greater than current size. \
             (current: {cur}, extended: {new_gb})"
        )));
    }
    let (_, _, used) = ctx.usage();
    ctx.check_gigabytes(used, new_gb - cur, "Volume")?;
    ctx.store().resize(o.id, new_gb * GIB)?;
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, new_gb, "api: volume extended");
    Ok(Reply::empty(202))
}

fn revert(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    let Some(snap_id) = opt_id(args, "snapshot_id")? else {
        return Err(ApiError::bad_request(
            "Invalid input received: snapshot_id is required",
        ));
    };
    let _guard = ctx.state.lock();
    let o = ctx.volume(id)?;
    let s = ctx.snapshot(&snap_id)?;
    if s.parent != Some(o.id) {
        return Err(ApiError::bad_request(format!(
            "Invalid snapshot: snapshot {} is not a snapshot of volume {}",
            s.id, o.id
        )));
    }
    if o.status != meta::AVAILABLE {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be available to revert, but current status is: {}",
            o.status
        )));
    }
    let (cur, snap) = (meta::gb(o.size), meta::gb(s.size));
    if snap > cur {
        let (_, _, used) = ctx.usage();
        ctx.check_gigabytes(used, snap - cur, "Volume")?;
    }
    ctx.store().revert(o.id, s.id)?;
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, snapshot = %s.id, "api: volume reverted");
    Ok(Reply::empty(202))
}
