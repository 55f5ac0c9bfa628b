//! `servers/{server_id}/os-volume_attachments`: list, show one, attach,
//! detach. Servers are external: any server id is accepted. Attaching
//! records (server, device) in the volume's metadata and makes it
//! `in-use`; detaching makes it `available` again.
//!
//! Rules (seed 4.4.3): attach only an available volume; one server per
//! volume, many volumes per server; device names `/dev/[a-z]+[0-9]*`,
//! unique per server (409 when taken); detach only an in-use volume.

use super::{opt_id, opt_string, volumes, wrapped, Ctx, MAX_FIELD};
use crate::domain::{ops, valid_device};
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::ObjectInfo;
use serde_json::{json, Value};

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
fn view(ctx: &Ctx, o: &ObjectInfo) -> Value {
    let mut v = volumes::attachment(o).unwrap_or_else(|| json!({}));
    if let Some(nbd) = ctx.dom.state.nbd() {
        v["connection_info"] = nbd.connection_info(o);
    }
    v
}

/// `GET servers/{server_id}/os-volume_attachments`.
pub fn list(ctx: &Ctx, server: &str) -> Result<Reply> {
    check_server(server)?;
    let page = ctx.paginate(ctx.dom.attached_to(server))?;
    let v: Vec<Value> = page.iter().map(|o| view(ctx, o)).collect();
    Ok(Reply::json(200, json!({ "volumeAttachments": v })))
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
pub fn show(ctx: &Ctx, server: &str, id: &str) -> Result<Reply> {
    let o = attached(ctx, server, id)?;
    Ok(Reply::json(
        200,
        json!({ "volumeAttachment": view(ctx, &o) }),
    ))
}

/// `POST servers/{server_id}/os-volume_attachments` with
/// `{"volumeAttachment": {"volumeId": "...", "device": "/dev/vdb"}}`
/// (device optional: the first free `/dev/vdb`..`/dev/vdz`).
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
    Ok(Reply::json(
        200,
        json!({ "volumeAttachment": view(ctx, &o) }),
    ))
}

/// `DELETE servers/{server_id}/os-volume_attachments/{volume_id}`: 202.
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
