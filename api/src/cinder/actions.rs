//! `POST volumes/{id}/action`: `os-extend`, `revert` (3.40+),
//! `os-reset_status` and `os-force_delete` (admin tenants only, else 403),
//! `os-set_image_metadata`, `os-unset_image_metadata`,
//! `os-show_image_metadata`, `os-set_bootable`, and the attach sequence
//! Nova drives (`os-reserve`, `os-unreserve`, `os-attach`,
//! `os-begin_detaching`, `os-roll_detaching`, `os-detach`) on the one
//! attachment model every dialect shares. Unknown actions are 400.

use super::params::{parse_bool, parse_gb, parse_metadata, MAX_FIELD};
use super::views::{reply, ConnectionInfo, ConnectionOne, Metadata};
use super::volumes::{delete, save};
use super::Ctx;
use crate::domain::ops;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use serde_json::{json, Map, Value};

/// The statuses `os-reset_status` may set, as Cinder allows them.
const RESET_STATUSES: &[&str] = &[
    "available",
    "in-use",
    "error",
    "creating",
    "deleting",
    "attaching",
    "detaching",
    "error_deleting",
    "error_extending",
    "maintenance",
    "reserved",
    "extending",
];

/// `POST volumes/{id}/action`.
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
        Value::Null => Map::new(),
        _ => {
            return Err(ApiError::bad_request(format!(
                "Malformed request body: {} takes an object",
                name.escape_debug()
            )))
        }
    };
    match name.as_str() {
        "os-extend" => extend(ctx, id, &args),
        "os-retype" => retype(ctx, id, &args),
        "revert" if ctx.version.at_least(40) => revert(ctx, id, &args),
        "os-reset_status" => reset_status(ctx, id, &args),
        "os-force_delete" => {
            ctx.require_admin("volume_extension:volume_admin_actions:force_delete")?;
            delete(ctx, id, true)
        }
        "os-set_image_metadata" => set_image_metadata(ctx, id, &args),
        "os-unset_image_metadata" => unset_image_metadata(ctx, id, &args),
        "os-show_image_metadata" => {
            let o = ctx.volume(id)?;
            Ok(reply(
                200,
                &Metadata {
                    metadata: image_meta(&o),
                },
            ))
        }
        "os-set_bootable" => set_bootable(ctx, id, &args),
        "os-reserve" => transition(ctx, id, &[meta::AVAILABLE], "attaching"),
        "os-unreserve" => transition(ctx, id, &["attaching"], meta::AVAILABLE),
        "os-begin_detaching" => transition(ctx, id, &[meta::IN_USE], "detaching"),
        "os-roll_detaching" => transition(ctx, id, &["detaching"], meta::IN_USE),
        "os-attach" => attach(ctx, id, &args),
        "os-detach" => detach(ctx, id),
        "os-initialize_connection" => initialize_connection(ctx, id, &args),
        "os-terminate_connection" => {
            let locked = ctx.dom.lock();
            let o = ctx.volume(id)?;
            ops::revoke_connection(&ctx.dom, &locked, &o)?;
            Ok(Reply::empty(202))
        }
        other => Err(ApiError::bad_request(format!(
            "There is no such action: {}",
            other.escape_debug()
        ))),
    }
}

fn image_meta(o: &engine::ObjectInfo) -> std::collections::BTreeMap<String, String> {
    o.metadata
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(meta::IMAGE_META_PREFIX)
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect()
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
    // Extending an attached volume needs 3.42, as in Cinder.
    let ok = o.status == meta::AVAILABLE || (ctx.version.at_least(42) && o.status == meta::IN_USE);
    if !ok {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be {} to extend, but current status is: {}.",
            if ctx.version.at_least(42) {
                "'available' or 'in-use'"
            } else {
                "'available'"
            },
            o.status
        )));
    }
    let cur = meta::gb(o.size);
    if new_gb <= cur {
        return Err(ApiError::bad_request(format!(
            "Invalid input received: New size for extend must be greater than current size. \
             (current: {cur}, extended: {new_gb})."
        )));
    }
    ops::extend(&ctx.dom, &locked, &o, new_gb)?;
    Ok(Reply::empty(202))
}

fn revert(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    let Some(snap_id) = args.get("snapshot_id").and_then(Value::as_str) else {
        return Err(ApiError::bad_request(
            "Invalid input received: snapshot_id is required",
        ));
    };
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    let s = ctx.snapshot(snap_id)?;
    if o.status != meta::AVAILABLE {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be available to revert, but current status is: {}.",
            o.status
        )));
    }
    ops::revert(&ctx.dom, &locked, &o, &s)?;
    Ok(Reply::empty(202))
}

fn reset_status(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    ctx.require_admin("volume_extension:volume_admin_actions:reset_status")?;
    let status = args.get("status").and_then(Value::as_str);
    let attach = args.get("attach_status").and_then(Value::as_str);
    if status.is_none() && attach.is_none() {
        return Err(ApiError::bad_request(
            "Invalid input received: Must specify 'status', 'attach_status' or 'migration_status' for update.",
        ));
    }
    if let Some(s) = status.filter(|s| !RESET_STATUSES.contains(s)) {
        return Err(ApiError::bad_request(format!(
            "Invalid input received: Must specify a valid status: {}",
            s.escape_debug()
        )));
    }
    let locked = ctx.dom.lock();
    let o = ctx.volume_any(id)?;
    let mut m = o.metadata.clone();
    match attach {
        None => {}
        Some("detached") => {
            meta::set(&mut m, meta::ATTACHED_SERVER, None);
            meta::set(&mut m, meta::ATTACHED_DEVICE, None);
        }
        Some("attached") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input received: Must specify a valid attach status: {}",
                other.escape_debug()
            )))
        }
    }
    ctx.dom
        .save(&locked, o.id, status.unwrap_or(&o.status), m)?;
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, status = status.unwrap_or("-"), "cinder: volume status reset");
    Ok(Reply::empty(202))
}

fn set_image_metadata(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    let new = parse_metadata(args.get("metadata"))?
        .ok_or_else(|| ApiError::bad_request("Invalid input received: metadata is required"))?;
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    let mut m = o.metadata.clone();
    for (k, v) in &new {
        m.insert(format!("{}{k}", meta::IMAGE_META_PREFIX), v.clone());
    }
    save(ctx, &locked, &o, m)?;
    let o = ctx.store().get(o.id)?;
    Ok(reply(
        200,
        &Metadata {
            metadata: image_meta(&o),
        },
    ))
}

fn unset_image_metadata(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    let key = args
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && k.len() <= MAX_FIELD)
        .ok_or_else(|| ApiError::bad_request("Invalid input received: key is required"))?;
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    let mut m = o.metadata.clone();
    if m.remove(&format!("{}{key}", meta::IMAGE_META_PREFIX))
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "Glance metadata for volume {} with key {} could not be found.",
            o.id,
            key.escape_debug()
        )));
    }
    save(ctx, &locked, &o, m)?;
    Ok(Reply::empty(200))
}

fn set_bootable(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    let b = match args.get("bootable") {
        Some(v) => parse_bool(v, "bootable")?,
        None => {
            return Err(ApiError::bad_request(
                "Invalid input received: bootable is required",
            ))
        }
    };
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    let mut m = o.metadata.clone();
    meta::set(&mut m, meta::BOOTABLE, b.then_some("true"));
    save(ctx, &locked, &o, m)?;
    Ok(Reply::empty(200))
}

/// Moves volume `id` from one of `from` to status `to` (the reserve and
/// detaching steps of an attachment); another status is 400.
fn transition(ctx: &Ctx, id: &str, from: &[&str], to: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    if !from.contains(&o.status.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be {}, but current status is: {}.",
            from.join(" or "),
            o.status
        )));
    }
    ctx.dom.save(&locked, o.id, to, o.metadata.clone())?;
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, status = to, "cinder: volume status");
    Ok(Reply::empty(202))
}

/// `os-attach`: `instance_uuid` (or `host_name`) and `mountpoint`; the
/// volume must be available or reserved (`attaching`).
fn attach(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    let text = |k: &str| {
        args.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= MAX_FIELD)
    };
    let server = text("instance_uuid")
        .or_else(|| text("host_name"))
        .ok_or_else(|| {
            ApiError::bad_request("Invalid input received: instance_uuid or host_name is required")
        })?;
    let device = match text("mountpoint") {
        Some(d) if crate::domain::valid_device(d) => Some(d.to_string()),
        Some(d) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input received: mountpoint {} is not a device name like /dev/vdb",
                d.escape_debug()
            )))
        }
        None => None,
    };
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    if o.status != meta::AVAILABLE && o.status != "attaching" {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be available or attaching, but current status is: {}.",
            o.status
        )));
    }
    ops::attach(&ctx.dom, &locked, &o, server, device)?;
    Ok(Reply::empty(202))
}

/// `os-detach`: the volume must be attached (`in-use` or `detaching`).
fn detach(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    if o.status != meta::IN_USE && o.status != "detaching" {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be in-use or detaching, but current status is: {}.",
            o.status
        )));
    }
    ops::detach(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(202))
}

/// `os-initialize_connection` (`connector` required): the volume's NBD
/// export (its attachment secret, made here if the volume has none) and
/// how to reach it, as `driver_volume_type` `nbd`; `os-terminate_connection`
/// or a detach revokes it.
fn initialize_connection(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    if !matches!(args.get("connector"), Some(Value::Object(_))) {
        return Err(ApiError::bad_request(
            "Invalid input received: connector is required",
        ));
    }
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    let ok = [meta::AVAILABLE, meta::IN_USE, "attaching", "reserved"];
    if !ok.contains(&o.status.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be available, attaching or in-use, but current status is: {}.",
            o.status
        )));
    }
    let no_nbd = || ApiError::bad_request("Invalid volume: this server does not serve NBD");
    if ctx.state.nbd().is_none() {
        return Err(no_nbd());
    }
    let o = ops::grant_connection(&ctx.dom, &locked, &o)?;
    let connection_info = connection_info(ctx, &o).ok_or_else(no_nbd)?;
    Ok(reply(200, &ConnectionOne { connection_info }))
}

/// The connection info of volume `o`: its NBD export (the attachment's
/// secret) and how to reach it, as `driver_volume_type` `nbd` (also the
/// attachments API's); `None` when the server runs no NBD.
pub(crate) fn connection_info(ctx: &Ctx, o: &engine::ObjectInfo) -> Option<ConnectionInfo> {
    let mut info = ctx.state.nbd()?.connection_info(o);
    info["data"]["discard"] = json!(true);
    // Cinder's: the type's front-end (or both) QoS spec, else null.
    info["data"]["qos_specs"] = json!(super::qos::front_end_specs(ctx.store(), o));
    Some(ConnectionInfo {
        driver_volume_type: info["driver_volume_type"]
            .as_str()
            .unwrap_or("nbd")
            .to_string(),
        data: info["data"].take(),
    })
}

/// `os-retype`: `new_type` (id or name, one the caller sees); the volume
/// must be available. blockd has one backend, so only the recorded type
/// changes (`migration_policy` is accepted and has nothing to do).
fn retype(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    let want = args
        .get("new_type")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_FIELD)
        .ok_or_else(|| ApiError::bad_request("Invalid input received: new_type is required."))?;
    if let Some(p) = args.get("migration_policy").filter(|v| !v.is_null()) {
        if !matches!(p.as_str(), Some("never" | "on-demand")) {
            return Err(ApiError::bad_request(
                "Invalid input received: migration_policy must be 'never' or 'on-demand'.",
            ));
        }
    }
    let t = super::types::find(ctx, want)?;
    super::encryption::refuse_encrypted(ctx, &t)?;
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    if o.status != meta::AVAILABLE {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be available, but current status is: {}.",
            o.status
        )));
    }
    super::groups::refuse_member(ctx, &o, "retype")?;
    let mut m = o.metadata.clone();
    meta::set(&mut m, meta::VOLUME_TYPE, Some(&t.name));
    meta::set(
        &mut m,
        super::types::TYPE_ID,
        Some(t.id.as_str()).filter(|id| *id != super::info::DEFAULT_TYPE_ID),
    );
    ctx.dom.save(&locked, o.id, &o.status, m)?;
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, volume_type = %t.id, "cinder: volume retyped");
    Ok(Reply::empty(202))
}
