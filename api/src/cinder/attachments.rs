//! The attachments API (microversion 3.27+; 404 below, as in Cinder):
//! `attachments` (create, list), `attachments/detail`,
//! `attachments/{id}` (show, update with a connector, delete) and
//! `attachments/{id}/action` (`os-complete`).
//!
//! There is one attachment model, shared by every dialect
//! (`api.attached_server` / `api.attached_device`, status `in-use`, made
//! and undone by `domain::ops::attach` / `detach`), and a volume has at
//! most one attachment, so an attachment's id is its volume's id. An
//! attachment made without a connector is only *reserved*: the volume's
//! status is `reserved` and the instance waits in
//! `api.cinder_attachment_instance` until a connector arrives (`PUT`) and
//! the shared attachment is made.

use super::actions::connection_info;
use super::params::{opt_string, wrapped, MAX_FIELD};
use super::views::{reply, Attachment, AttachmentConnection, AttachmentList, AttachmentOne, Empty};
use super::volumes::cinder_time;
use super::Ctx;
use crate::domain::ops;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use serde_json::{Map, Value};

/// Where a reserved attachment keeps its instance until it is made.
pub(crate) const RESERVED_INSTANCE: &str = "api.cinder_attachment_instance";
/// The status of a volume with a reserved attachment.
const RESERVED: &str = "reserved";

/// The instance volume `o` is attached (or reserved) to, and whether the
/// attachment is made; `None` without one.
fn attachment_of(o: &ObjectInfo) -> Option<(&str, bool)> {
    if let Some(server) = meta::get(o, meta::ATTACHED_SERVER) {
        return Some((server, true));
    }
    if o.status == RESERVED {
        return Some((meta::get(o, RESERVED_INSTANCE).unwrap_or(""), false));
    }
    None
}

/// The attachment view of volume `o` (`detail` adds times, mode and the
/// connection info).
fn view(ctx: &Ctx, o: &ObjectInfo, detail: bool) -> Option<Attachment> {
    let (instance, made) = attachment_of(o)?;
    let connection = || match connection_info(ctx, o).filter(|_| made) {
        Some(c) => AttachmentConnection::Connected(c),
        None => AttachmentConnection::None(Empty {}),
    };
    Some(Attachment {
        id: o.id.to_string(),
        volume_id: o.id.to_string(),
        instance: Some(instance.to_string()).filter(|i| !i.is_empty()),
        status: if made { "attached" } else { RESERVED }.to_string(),
        attached_at: detail.then(|| made.then(|| cinder_time(o.created))),
        detached_at: detail.then_some(None),
        attach_mode: detail.then(|| "rw".to_string()),
        connection_info: detail.then(connection),
    })
}

/// `{"attachment": ...}` of `o`, which has one.
fn one(ctx: &Ctx, o: &ObjectInfo) -> Result<Reply> {
    let attachment = view(ctx, o, true).ok_or_else(|| {
        ApiError::not_found(format!("VolumeAttachment {} could not be found.", o.id))
    })?;
    Ok(reply(200, &AttachmentOne { attachment }))
}

/// The tenant's volume with attachment `id` (404 otherwise).
fn find(ctx: &Ctx, id: &str) -> Result<ObjectInfo> {
    let missing = || ApiError::not_found(format!("VolumeAttachment {id} could not be found."));
    let o = ctx.dom.find(ObjectKind::Volume, id)?.ok_or_else(missing)?;
    attachment_of(&o).ok_or_else(missing)?;
    Ok(o)
}

/// `GET attachments` and `GET attachments/detail` (filters `volume_id`,
/// `instance_id`, `status`).
pub fn list(ctx: &Ctx, detail: bool) -> Result<Reply> {
    let q = |k: &str| ctx.req.query_param(k).filter(|v| !v.is_empty());
    let attachments = ctx
        .objects(ObjectKind::Volume)
        .iter()
        .filter_map(|o| view(ctx, o, detail))
        .filter(|a| {
            q("volume_id").is_none_or(|id| a.volume_id == id)
                && q("instance_id").is_none_or(|i| a.instance.as_deref() == Some(i))
                && q("status").is_none_or(|s| a.status == s)
        })
        .collect();
    Ok(reply(200, &AttachmentList { attachments }))
}

/// `GET attachments/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = find(ctx, id)?;
    one(ctx, &o)
}

/// The connector of a body (absent or null is `None`).
fn connector(body: &Map<String, Value>) -> Result<Option<&Map<String, Value>>> {
    match body.get("connector") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(c)) => Ok(Some(c)),
        Some(_) => Err(ApiError::bad_request(
            "Invalid input for field/attribute connector. It must be an object.",
        )),
    }
}

/// The device a connector names (`mountpoint`), if a valid one.
fn device(c: &Map<String, Value>) -> Result<Option<String>> {
    match c.get("mountpoint").and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(d) if crate::domain::valid_device(d) => Ok(Some(d.to_string())),
        Some(d) => Err(ApiError::bad_request(format!(
            "Invalid input received: mountpoint {} is not a device name like /dev/vdb",
            d.escape_debug()
        ))),
    }
}

/// `POST attachments`: `volume_id`, `instance_uuid` (or the connector's
/// `host`), optional `connector`. Without a connector the attachment is
/// reserved; with one it is made and carries the connection info.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let body = wrapped(ctx, "attachment")?;
    let Some(volume_id) =
        opt_string(&body, "volume_uuid", MAX_FIELD)?.or(opt_string(&body, "volume_id", MAX_FIELD)?)
    else {
        return Err(ApiError::bad_request(
            "Invalid input received: volume_uuid is required",
        ));
    };
    let conn = connector(&body)?;
    let instance = opt_string(&body, "instance_uuid", MAX_FIELD)?
        .filter(|s| !s.is_empty())
        .or_else(|| {
            conn.and_then(|c| c.get("host"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && s.len() <= MAX_FIELD)
                .map(str::to_string)
        });
    let device = conn.map(device).transpose()?.flatten();
    let locked = ctx.dom.lock();
    let o = ctx.volume(&volume_id)?;
    if o.status != meta::AVAILABLE {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume {} status must be available or downloading to reserve, \
             but the current status is {}.",
            o.id, o.status
        )));
    }
    let o = match (conn, &instance) {
        (Some(_), Some(server)) => ops::attach(&ctx.dom, &locked, &o, server, device)?,
        (Some(_), None) => {
            return Err(ApiError::bad_request(
                "Invalid input received: instance_uuid or connector host is required",
            ))
        }
        (None, _) => {
            let mut m = o.metadata.clone();
            meta::set(&mut m, RESERVED_INSTANCE, instance.as_deref());
            ctx.dom.save(&locked, o.id, RESERVED, m)?
        }
    };
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, status = %o.status, "cinder: attachment created");
    one(ctx, &o)
}

/// `PUT attachments/{id}` with a `connector`: makes a reserved attachment
/// (status `attached`) and answers with its connection info.
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let body = wrapped(ctx, "attachment")?;
    let Some(conn) = connector(&body)? else {
        return Err(ApiError::bad_request(
            "Invalid input received: connector is required",
        ));
    };
    let device = device(conn)?;
    let locked = ctx.dom.lock();
    let o = find(ctx, id)?;
    let o = make(ctx, &locked, o, conn, device)?;
    one(ctx, &o)
}

/// Makes the reserved attachment of `o` (made ones are left as they are).
fn make(
    ctx: &Ctx,
    locked: &crate::domain::Locked,
    o: ObjectInfo,
    conn: &Map<String, Value>,
    device: Option<String>,
) -> Result<ObjectInfo> {
    let Some((instance, false)) = attachment_of(&o) else {
        return Ok(o);
    };
    let server = Some(instance)
        .filter(|s| !s.is_empty())
        .or_else(|| conn.get("host").and_then(Value::as_str))
        .filter(|s| !s.is_empty() && s.len() <= MAX_FIELD)
        .ok_or_else(|| {
            ApiError::bad_request("Invalid input received: the connector names no host")
        })?
        .to_string();
    let mut clean = o.clone();
    meta::set(&mut clean.metadata, RESERVED_INSTANCE, None);
    ops::attach(&ctx.dom, locked, &clean, &server, device)
}

/// `POST attachments/{id}/action`: `os-complete` (204; a reserved
/// attachment with a known instance is made).
pub fn action(ctx: &Ctx, id: &str) -> Result<Reply> {
    let name = match ctx.req.json_body()? {
        Some(Value::Object(m)) if m.len() == 1 => m.keys().next().cloned().unwrap_or_default(),
        _ => {
            return Err(ApiError::bad_request(
                "Malformed request body: expected one action object",
            ))
        }
    };
    if name != "os-complete" {
        return Err(ApiError::bad_request(format!(
            "There is no such action: {}",
            name.escape_debug()
        )));
    }
    let locked = ctx.dom.lock();
    let o = find(ctx, id)?;
    make(ctx, &locked, o, &Map::new(), None)?;
    Ok(Reply::empty(204))
}

/// `DELETE attachments/{id}`: detaches (or unreserves) the volume; 200
/// with the volume's remaining attachments (none).
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = find(ctx, id)?;
    let mut m = o.metadata.clone();
    meta::set(&mut m, RESERVED_INSTANCE, None);
    if meta::get(&o, meta::ATTACHED_SERVER).is_some() {
        let mut clean = o.clone();
        clean.metadata = m;
        ops::detach(&ctx.dom, &locked, &clean)?;
    } else {
        ctx.dom.save(&locked, o.id, meta::AVAILABLE, m)?;
    }
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, "cinder: attachment deleted");
    Ok(reply(
        200,
        &AttachmentList {
            attachments: Vec::new(),
        },
    ))
}
