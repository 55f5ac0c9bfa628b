//! `os-volumes`: list (and `detail`), create (empty, from a snapshot, from
//! an image), show, update (PUT), delete, and the actions `os-extend` and
//! `revert`. Creation goes through the engine's O(1) paths (thin create,
//! clone), so it answers at once whatever the size; the create response
//! already says `available`.

use super::requests::{Page, VolumeAction, VolumeCreate, VolumeUpdate};
use super::views::{
    ok, Attachment, AttachmentSlot, Detached, Fault, Volume, VolumeList, VolumeOne,
};
use super::{opt_id, opt_string, parse_gb, parse_metadata, wrapped, Ctx, MAX_FIELD};
use crate::domain::ops::{self, Edit, Source};
use crate::domain::visibility;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta::{self, GIB};
use engine::{ObjectInfo, ObjectKind};
use serde_json::{Map, Value};

/// The attachment view of an attached volume, `None` when detached.
pub(crate) fn attachment(o: &ObjectInfo) -> Option<Attachment> {
    let server = meta::get(o, meta::ATTACHED_SERVER)?;
    let id = o.id.to_string();
    Some(Attachment {
        volume_id: id.clone(),
        id,
        server_id: server.to_string(),
        device: meta::get(o, meta::ATTACHED_DEVICE)
            .unwrap_or("")
            .to_string(),
        connection_info: None,
    })
}

/// An attachment slot: the attachment, or `{}` when detached.
pub(crate) fn slot(o: &ObjectInfo) -> AttachmentSlot {
    attachment(o).map_or(
        AttachmentSlot::Detached(Detached {}),
        AttachmentSlot::Attached,
    )
}

/// The volume view (camelCase, `"attachments": [{}]` when detached).
pub(crate) fn view(o: &ObjectInfo) -> Volume {
    let opt = |k: &str| meta::get(o, k).map(str::to_string);
    Volume {
        id: o.id.to_string(),
        status: o.status.clone(),
        size: meta::gb(o.size),
        availability_zone: meta::get(o, meta::AVAILABILITY_ZONE)
            .unwrap_or("nova")
            .to_string(),
        created_at: meta::format_time(o.created),
        attachments: vec![slot(o)],
        display_name: opt(meta::DISPLAY_NAME),
        display_description: opt(meta::DISPLAY_DESCRIPTION),
        volume_type: opt(meta::VOLUME_TYPE),
        snapshot_id: meta::get(o, meta::SOURCE_SNAPSHOT)
            .unwrap_or("")
            .to_string(),
        metadata: meta::user_metadata(o),
    }
}

/// `GET os-volumes` and `GET os-volumes/detail` (the same view, as in Nova).
#[utoipa::path(
    get,
    path = "/os-volumes",
    operation_id = "listVolumes",
    tag = "volumes",
    summary = "List volumes (`/os-volumes/detail` is the same)",
    params(Page),
    responses(
        (status = 200, description = "volumes", body = VolumeList),
        (status = 400, description = "badRequest: invalid field or broken business rule", body = Fault),
    )
)]
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let all = ctx.dom.objects(ObjectKind::Volume);
    let page = ctx.paginate(all)?;
    let volumes = page.iter().map(view).collect();
    Ok(ok(&VolumeList { volumes }))
}

/// `GET os-volumes/{id}`.
#[utoipa::path(
    get,
    path = "/os-volumes/{volume_id}",
    operation_id = "showVolume",
    tag = "volumes",
    summary = "Show a volume",
    params(("volume_id" = String, Path, description = "volume UUID")),
    responses(
        (status = 200, description = "volume", body = VolumeOne),
        (status = 404, description = "itemNotFound", body = Fault),
    )
)]
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = ctx.volume(id)?;
    Ok(ok(&VolumeOne { volume: view(&o) }))
}

/// The image `key` (id, or name: the caller's own image first) a new
/// volume may be made from: 400 for a missing, invisible, deleted or not
/// yet available one alike.
fn find_image(ctx: &Ctx, key: &str) -> Result<ObjectInfo> {
    let invalid = || {
        ApiError::bad_request(format!(
            "Invalid image identifier or unable to access requested image: {}",
            key.escape_debug()
        ))
    };
    match ctx.dom.find_image(key)? {
        Some(o)
            if visibility::image_usable(&o, ctx.dom.tenant_id()) && o.status == meta::AVAILABLE =>
        {
            Ok(o)
        }
        _ => Err(invalid()),
    }
}

/// `POST os-volumes`.
#[utoipa::path(
    post,
    path = "/os-volumes",
    operation_id = "createVolume",
    tag = "volumes",
    summary = "Create a volume (empty, from snapshot_id or from imageRef)",
    request_body = VolumeCreate,
    responses(
        (status = 200, description = "volume", body = VolumeOne),
        (status = 400, description = "badRequest: invalid field or broken business rule", body = Fault),
        (status = 404, description = "itemNotFound", body = Fault),
        (status = 413, description = "overLimit: quota exceeded or body over 1 MiB", body = Fault),
        (status = 415, description = "badMediaType: Content-Type is not JSON", body = Fault),
        (status = 422, description = "unprocessableEntity: missing or non-object wrapper", body = Fault),
    )
)]
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

    let locked = ctx.dom.lock();
    let snap = snapshot_id.map(|s| ctx.snapshot(&s)).transpose()?;
    let image = image_ref.map(|i| find_image(ctx, &i)).transpose()?;
    let source = match (&snap, &image) {
        (Some(s), _) => Source::Snapshot(s),
        (_, Some(i)) => Source::Image(i),
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
        (_, None) => {
            return Err(ApiError::bad_request(
                "Invalid input received: volume size is required",
            ))
        }
    };
    // Everything the volume carries is written with it in one durable
    // catalogue step: a crash never leaves an ownerless volume behind.
    let m = ops::new_metadata(
        &ctx.dom,
        &user_meta,
        &[
            (meta::DISPLAY_NAME, name.as_deref()),
            (meta::DISPLAY_DESCRIPTION, description.as_deref()),
            (meta::AVAILABILITY_ZONE, zone.as_deref()),
            (meta::VOLUME_TYPE, volume_type.as_deref()),
        ],
    );
    let o = ops::create_volume(&ctx.dom, &locked, source, size_gb * GIB, m)?;
    Ok(ok(&VolumeOne { volume: view(&o) })
        .with_header("location", format!("{}/os-volumes/{}", ctx.base(), o.id)))
}

/// `PUT os-volumes/{id}`: display name, description and user metadata
/// (which replaces the old); other keys are ignored.
#[utoipa::path(
    put,
    path = "/os-volumes/{volume_id}",
    operation_id = "updateVolume",
    tag = "volumes",
    summary = "Update display name, description, metadata",
    params(("volume_id" = String, Path, description = "volume UUID")),
    request_body = VolumeUpdate,
    responses(
        (status = 200, description = "volume", body = VolumeOne),
        (status = 400, description = "badRequest: invalid field or broken business rule", body = Fault),
        (status = 404, description = "itemNotFound", body = Fault),
        (status = 415, description = "badMediaType: Content-Type is not JSON", body = Fault),
        (status = 422, description = "unprocessableEntity: missing or non-object wrapper", body = Fault),
    )
)]
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let body = wrapped(ctx.req, "volume")?;
    let name = opt_string(&body, "display_name", MAX_FIELD)?;
    let description = opt_string(&body, "display_description", 65_535)?;
    let user_meta = parse_metadata(body.get("metadata"))?;
    let edit = Edit {
        name: body.contains_key("display_name").then_some(name),
        description: body
            .contains_key("display_description")
            .then_some(description),
        user: user_meta,
    };
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    let o = ops::update(&ctx.dom, &locked, &o, edit.apply(&o))?;
    Ok(ok(&VolumeOne { volume: view(&o) }))
}

/// `DELETE os-volumes/{id}`: 202; an in-use volume is 400. Its snapshots
/// stay.
#[utoipa::path(
    delete,
    path = "/os-volumes/{volume_id}",
    operation_id = "deleteVolume",
    tag = "volumes",
    summary = "Delete a volume (not while in-use)",
    params(("volume_id" = String, Path, description = "volume UUID")),
    responses(
        (status = 202, description = "accepted, no body"),
        (status = 400, description = "badRequest: invalid field or broken business rule", body = Fault),
        (status = 404, description = "itemNotFound", body = Fault),
    )
)]
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    if ops::attached(&o) {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be available or error, but current status is: {}",
            o.status
        )));
    }
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(202))
}

/// `POST os-volumes/{id}/action`: `{"os-extend": {"new_size": N}}` (grow,
/// also while in use: NBD clients see the new size on their next
/// connection) or `{"revert": {"snapshot_id": "..."}}` (available volumes,
/// to one of their own snapshots).
#[utoipa::path(
    post,
    path = "/os-volumes/{volume_id}/action",
    operation_id = "volumeAction",
    tag = "volumes",
    summary = "os-extend {new_size} or revert {snapshot_id}",
    params(("volume_id" = String, Path, description = "volume UUID")),
    request_body = VolumeAction,
    responses(
        (status = 202, description = "accepted, no body"),
        (status = 400, description = "badRequest: invalid field or broken business rule", body = Fault),
        (status = 404, description = "itemNotFound", body = Fault),
        (status = 413, description = "overLimit: quota exceeded or body over 1 MiB", body = Fault),
        (status = 415, description = "badMediaType: Content-Type is not JSON", body = Fault),
    )
)]
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
    let locked = ctx.dom.lock();
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
    ops::extend(&ctx.dom, &locked, &o, new_gb)?;
    Ok(Reply::empty(202))
}

fn revert(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    let Some(snap_id) = opt_id(args, "snapshot_id")? else {
        return Err(ApiError::bad_request(
            "Invalid input received: snapshot_id is required",
        ));
    };
    let locked = ctx.dom.lock();
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
    ops::revert(&ctx.dom, &locked, &o, &s)?;
    Ok(Reply::empty(202))
}
