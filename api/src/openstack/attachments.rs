//! `servers/{server_id}/os-volume_attachments`: list, show one, attach,
//! detach. Servers are external: any server id is accepted. Attaching
//! records (server, device) in the volume's metadata and makes it
//! `in-use`; detaching makes it `available` again.
//!
//! Rules (seed 4.4.3): attach only an available volume; one server per
//! volume, many volumes per server; device names `/dev/[a-z]+[0-9]*`,
//! unique per server (409 when taken); detach only an in-use volume.

use super::requests::{AttachmentCreate, Page};
use super::views::{ok, AttachmentList, AttachmentOne, AttachmentSlot, ConnectionInfo, Fault};
use super::{opt_id, opt_string, volumes, wrapped, Ctx, MAX_FIELD};
use crate::domain::{ops, valid_device};
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::ObjectInfo;

fn check_server(server: &str) -> Result<()> {
    if server.is_empty() || server.len() > MAX_FIELD || server.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "Invalid server id '{}'",
            server.escape_debug()
        )));
    }
    Ok(())
}

fn attached_to(server: &str) -> impl Fn(&ObjectInfo) -> bool + '_ {
    move |o| meta::get(o, meta::ATTACHED_SERVER) == Some(server)
}

/// An attachment, with how to reach it over NBD when the server runs NBD.
fn view(ctx: &Ctx, o: &ObjectInfo) -> AttachmentSlot {
    let mut slot = volumes::slot(o);
    if let (AttachmentSlot::Attached(a), Some(nbd)) = (&mut slot, ctx.dom.state.nbd()) {
        let info = nbd.connection_info(o);
        a.connection_info = Some(ConnectionInfo {
            driver_volume_type: "nbd".into(),
            data: info["data"].clone(),
        });
    }
    slot
}

/// `GET servers/{server_id}/os-volume_attachments`.
#[utoipa::path(
    get,
    path = "/servers/{server_id}/os-volume_attachments",
    operation_id = "listAttachments",
    tag = "attachments",
    summary = "List a server's attachments",
    params(("server_id" = String, Path, description = "any server id"), Page),
    responses(
        (status = 200, description = "attachments", body = AttachmentList),
        (status = 400, description = "badRequest: invalid field or broken business rule", body = Fault),
    )
)]
pub fn list(ctx: &Ctx, server: &str) -> Result<Reply> {
    check_server(server)?;
    let page = ctx.paginate(ctx.dom.attached_to(server))?;
    let volume_attachments = page.iter().map(|o| view(ctx, o)).collect();
    Ok(ok(&AttachmentList { volume_attachments }))
}

fn attached(ctx: &Ctx, server: &str, id: &str) -> Result<ObjectInfo> {
    check_server(server)?;
    let o = ctx.volume(id)?;
    if !attached_to(server)(&o) {
        return Err(ApiError::not_found(format!(
            "Volume {id} is not attached to server {server}."
        )));
    }
    Ok(o)
}

/// `GET servers/{server_id}/os-volume_attachments/{volume_id}`.
#[utoipa::path(
    get,
    path = "/servers/{server_id}/os-volume_attachments/{volume_id}",
    operation_id = "showAttachment",
    tag = "attachments",
    summary = "Show an attachment",
    params(("server_id" = String, Path, description = "any server id"), ("volume_id" = String, Path, description = "volume UUID")),
    responses(
        (status = 200, description = "attachment", body = AttachmentOne),
        (status = 400, description = "badRequest: invalid field or broken business rule", body = Fault),
        (status = 404, description = "itemNotFound", body = Fault),
    )
)]
pub fn show(ctx: &Ctx, server: &str, id: &str) -> Result<Reply> {
    let o = attached(ctx, server, id)?;
    Ok(ok(&AttachmentOne {
        volume_attachment: view(ctx, &o),
    }))
}

/// `POST servers/{server_id}/os-volume_attachments` with
/// `{"volumeAttachment": {"volumeId": "...", "device": "/dev/vdb"}}`
/// (device optional: the first free `/dev/vdb`..`/dev/vdz`).
#[utoipa::path(
    post,
    path = "/servers/{server_id}/os-volume_attachments",
    operation_id = "attachVolume",
    tag = "attachments",
    summary = "Attach a volume",
    params(("server_id" = String, Path, description = "any server id")),
    request_body = AttachmentCreate,
    responses(
        (status = 200, description = "attachment", body = AttachmentOne),
        (status = 400, description = "badRequest: invalid field or broken business rule", body = Fault),
        (status = 404, description = "itemNotFound", body = Fault),
        (status = 409, description = "conflictingRequest: device name in use on the server", body = Fault),
        (status = 415, description = "badMediaType: Content-Type is not JSON", body = Fault),
        (status = 422, description = "unprocessableEntity: missing or non-object wrapper", body = Fault),
    )
)]
pub fn attach(ctx: &Ctx, server: &str) -> Result<Reply> {
    check_server(server)?;
    let body = wrapped(ctx.req, "volumeAttachment")?;
    let Some(volume_id) = opt_id(&body, "volumeId")? else {
        return Err(ApiError::bad_request(
            "Invalid input received: volumeId is required",
        ));
    };
    let device = opt_string(&body, "device", MAX_FIELD)?;
    if let Some(d) = &device {
        if !valid_device(d) {
            return Err(ApiError::bad_request(format!(
                "The supplied device path ({}) is invalid.",
                d.escape_debug()
            )));
        }
    }

    let locked = ctx.dom.lock();
    let o = ctx.volume(&volume_id)?;
    if o.status != meta::AVAILABLE || meta::get(&o, meta::ATTACHED_SERVER).is_some() {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: volume {} status must be available to attach, but current status is: {}",
            o.id, o.status
        )));
    }
    let o = ops::attach(&ctx.dom, &locked, &o, server, device)?;
    Ok(ok(&AttachmentOne {
        volume_attachment: view(ctx, &o),
    }))
}

/// `DELETE servers/{server_id}/os-volume_attachments/{volume_id}`: 202.
#[utoipa::path(
    delete,
    path = "/servers/{server_id}/os-volume_attachments/{volume_id}",
    operation_id = "detachVolume",
    tag = "attachments",
    summary = "Detach a volume (only when in-use)",
    params(("server_id" = String, Path, description = "any server id"), ("volume_id" = String, Path, description = "volume UUID")),
    responses(
        (status = 202, description = "accepted, no body"),
        (status = 400, description = "badRequest: invalid field or broken business rule", body = Fault),
        (status = 404, description = "itemNotFound", body = Fault),
    )
)]
pub fn detach(ctx: &Ctx, server: &str, id: &str) -> Result<Reply> {
    check_server(server)?;
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    if o.status != meta::IN_USE {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: volume {} must be in-use to detach, but current status is: {}",
            o.id, o.status
        )));
    }
    let o = attached(ctx, server, id)?;
    ops::detach(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(202))
}
