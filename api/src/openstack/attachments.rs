//! `servers/{server_id}/os-volume_attachments`: list, show one, attach,
//! detach. Servers are external: any server id is accepted. Attaching
//! records (server, device) in the volume's metadata and makes it
//! `in-use`; detaching makes it `available` again.
//!
//! Rules (seed 4.4.3): attach only an available volume; one server per
//! volume, many volumes per server; device names `/dev/[a-z]+[0-9]*`,
//! unique per server (409 when taken); detach only an in-use volume.

use super::{opt_id, opt_string, volumes, wrapped, Ctx, MAX_FIELD};
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use serde_json::{json, Value};

/// Longest device name accepted.
const MAX_DEVICE: usize = 32;

/// True for `/dev/` + lowercase letters + optional digits.
pub fn valid_device(d: &str) -> bool {
    let Some(rest) = d.strip_prefix("/dev/") else {
        return false;
    };
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    d.len() <= MAX_DEVICE && letters > 0 && rest[letters..].bytes().all(|b| b.is_ascii_digit())
}

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

fn view(o: &ObjectInfo) -> Value {
    volumes::attachment(o).unwrap_or_else(|| json!({}))
}

/// `GET servers/{server_id}/os-volume_attachments`.
pub fn list(ctx: &Ctx, server: &str) -> Result<Reply> {
    check_server(server)?;
    let on = attached_to(server);
    let all: Vec<ObjectInfo> = ctx
        .objects(ObjectKind::Volume)
        .into_iter()
        .filter(|o| on(o))
        .collect();
    let page = ctx.paginate(all)?;
    let v: Vec<Value> = page.iter().map(view).collect();
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
    Ok(Reply::json(200, json!({ "volumeAttachment": view(&o) })))
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

    let _guard = ctx.state.lock();
    let o = ctx.volume(&volume_id)?;
    if o.status != meta::AVAILABLE || meta::get(&o, meta::ATTACHED_SERVER).is_some() {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: volume {} status must be available to attach, but current status is: {}",
            o.id, o.status
        )));
    }
    let on = attached_to(server);
    let used: Vec<String> = ctx
        .objects(ObjectKind::Volume)
        .into_iter()
        .filter(|v| on(v))
        .filter_map(|v| meta::get(&v, meta::ATTACHED_DEVICE).map(str::to_string))
        .collect();
    let device = match device {
        Some(d) if used.contains(&d) => {
            return Err(ApiError::conflict(format!(
                "The supplied device path ({d}) is in use."
            )))
        }
        Some(d) => d,
        None => (b'b'..=b'z')
            .map(|c| format!("/dev/vd{}", c as char))
            .find(|d| !used.contains(d))
            .ok_or_else(|| {
                ApiError::bad_request(format!("No free device name left on server {server}"))
            })?,
    };
    let mut m = o.metadata.clone();
    meta::set(&mut m, meta::ATTACHED_SERVER, Some(server));
    meta::set(&mut m, meta::ATTACHED_DEVICE, Some(&device));
    ctx.save(o.id, meta::IN_USE, m)?;
    let o = ctx.store().get(o.id)?;
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, server, device, "api: volume attached");
    Ok(Reply::json(200, json!({ "volumeAttachment": view(&o) })))
}

/// `DELETE servers/{server_id}/os-volume_attachments/{volume_id}`: 202.
pub fn detach(ctx: &Ctx, server: &str, id: &str) -> Result<Reply> {
    check_server(server)?;
    let _guard = ctx.state.lock();
    let o = ctx.volume(id)?;
    if o.status != meta::IN_USE {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: volume {} must be in-use to detach, but current status is: {}",
            o.id, o.status
        )));
    }
    let o = attached(ctx, server, id)?;
    let mut m = o.metadata.clone();
    meta::set(&mut m, meta::ATTACHED_SERVER, None);
    meta::set(&mut m, meta::ATTACHED_DEVICE, None);
    ctx.save(o.id, meta::AVAILABLE, m)?;
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, server, "api: volume detached");
    Ok(Reply::empty(202))
}

#[cfg(test)]
mod tests {
    use super::valid_device;

    #[test]
    fn devices() {
        for ok in ["/dev/vdb", "/dev/sdf", "/dev/xvdc1", "/dev/a"] {
            assert!(valid_device(ok), "{ok}");
        }
        for bad in [
            "",
            "vdb",
            "/dev/",
            "/dev/VDB",
            "/dev/vd b",
            "/dev/1",
            "/dev/vdb/x",
            "/dev/../etc",
        ] {
            assert!(!valid_device(bad), "{bad}");
        }
    }
}
