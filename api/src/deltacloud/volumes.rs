//! `/api/storage_volumes`: list, show, create (empty, or cloned in O(1)
//! from a snapshot), delete, attach and detach.
//!
//! Rules:
//! - `capacity` is whole GB, default 1 (an empty value is the default);
//!   `0`, negative, fractional or non-numeric values are 400, as are sizes
//!   over the engine's largest volume.
//! - With `snapshot_id` the volume has the snapshot's capacity unless a
//!   bigger one is asked for; a smaller one is 400.
//! - `realm_id` is recorded as the volume's zone (the OpenStack dialect's
//!   `availabilityZone`).
//! - The tenant's quotas (volumes, gigabytes) apply: 413.
//! - Attach (`instance_id`, optional `device` `/dev/[a-z]+[0-9]*`, else the
//!   first free `/dev/vdb`..`/dev/vdz`) needs an AVAILABLE volume; a busy
//!   volume or a device taken on that instance is 409. Detach needs an
//!   IN-USE volume (409 otherwise). Both answer 202 with the volume.
//! - Delete of an attached volume is 409; otherwise 204.

use super::json::{AttachForm, Error, VolumeCreateForm, VolumeList, VolumeOne};
use super::params::{Params, MAX_DESCRIPTION, MAX_FIELD};
use super::{views, Ctx};
use crate::domain;
use crate::domain::ops::{self, Source};
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta::{self, GIB};
use engine::ObjectKind;
use std::collections::BTreeMap;

/// `GET /api/storage_volumes`.
#[utoipa::path(
    get,
    path = "/storage_volumes",
    operation_id = "listVolumes",
    tag = "storage_volumes",
    summary = "The tenant's volumes",
    params(
        ("format" = Option<String>, Query, description = "`json` (this document describes the JSON; XML is the default)"),
    ),
    responses(
        (status = 200, description = "the volumes", body = VolumeList),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = Error),
    )
)]
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let all = ctx.dom.objects(ObjectKind::Volume);
    ctx.doc(
        200,
        views::volumes(ctx.fmt, &ctx.base(), &all, ctx.dom.state.nbd()),
    )
}

/// `GET /api/storage_volumes/:id`.
#[utoipa::path(
    get,
    path = "/storage_volumes/{id}",
    operation_id = "showVolume",
    tag = "storage_volumes",
    summary = "A volume",
    params(
        ("id" = String, Path, description = "the volume's UUID"),
        ("format" = Option<String>, Query, description = "`json` (this document describes the JSON; XML is the default)"),
    ),
    responses(
        (status = 200, description = "the volume", body = VolumeOne),
        (status = 404, description = "no such volume", body = Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = Error),
    )
)]
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = ctx.volume(id)?;
    ctx.doc(
        200,
        views::volume(ctx.fmt, &ctx.base(), &o, ctx.dom.state.nbd()),
    )
}

/// A capacity in whole GB, 1 to the engine's largest volume.
pub(crate) fn parse_capacity(v: &str) -> Result<u64> {
    let max_gb = engine::MAX_VOLUME_SIZE / GIB;
    let t = v.trim();
    let n = if !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>().ok()
    } else {
        None
    };
    match n {
        Some(n) if n > 0 && n <= max_gb => Ok(n),
        Some(n) if n > max_gb => Err(ApiError::bad_request(format!(
            "Parameter capacity '{n}' is larger than the largest volume ({max_gb} GB)"
        ))),
        _ => Err(ApiError::bad_request(format!(
            "Parameter capacity '{}' must be a whole number of GB greater than 0",
            t.chars().take(32).collect::<String>().escape_debug()
        ))),
    }
}

/// A realm (zone) id: letters, digits and `-_.:`.
fn check_realm(r: &str) -> Result<()> {
    if r.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Parameter realm_id '{}' may hold letters, digits and '-_.:' only",
            r.escape_debug()
        )))
    }
}

/// `POST /api/storage_volumes`: 201 with Location and the volume.
#[utoipa::path(
    post,
    path = "/storage_volumes",
    operation_id = "createVolume",
    tag = "storage_volumes",
    summary = "Create a volume, empty or cloned from a snapshot",
    params(
        ("format" = Option<String>, Query, description = "`json` (this document describes the JSON; XML is the default)"),
    ),
    request_body(content = VolumeCreateForm, content_type = "application/x-www-form-urlencoded", description = "also as query parameters or multipart/form-data"),
    responses(
        (status = 201, description = "the volume (and its URL in Location)", body = VolumeOne),
        (status = 400, description = "invalid parameter", body = Error),
        (status = 404, description = "no such snapshot", body = Error),
        (status = 413, description = "quota exceeded or body too large", body = Error),
        (status = 415, description = "unsupported body type", body = Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = Error),
    )
)]
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let p = Params::of(ctx.req)?;
    let capacity = p
        .text("capacity", MAX_FIELD)?
        .map(|c| parse_capacity(&c))
        .transpose()?;
    let name = p.text("name", MAX_FIELD)?;
    let description = p.text("description", MAX_DESCRIPTION)?;
    let snapshot_id = p.text("snapshot_id", MAX_FIELD)?;
    let realm = p.text("realm_id", MAX_FIELD)?;
    if let Some(r) = &realm {
        check_realm(r)?;
    }

    let locked = ctx.dom.lock();
    let source = snapshot_id
        .as_deref()
        .map(|s| ctx.snapshot(s))
        .transpose()?;
    let size_gb = match (&source, capacity) {
        (Some(s), Some(n)) if n < meta::gb(s.size) => {
            return Err(ApiError::bad_request(format!(
                "Parameter capacity {n} is smaller than snapshot {} ({} GB)",
                s.id,
                meta::gb(s.size)
            )))
        }
        (Some(s), None) => meta::gb(s.size).max(1),
        (_, Some(n)) => n,
        (None, None) => 1,
    };
    let m = ops::new_metadata(
        &ctx.dom,
        &BTreeMap::new(),
        &[
            (meta::DISPLAY_NAME, name.as_deref()),
            (meta::DISPLAY_DESCRIPTION, description.as_deref()),
            (meta::AVAILABILITY_ZONE, realm.as_deref()),
        ],
    );
    let src = match &source {
        Some(s) => Source::Snapshot(s),
        None => Source::Empty,
    };
    // The volume and everything it carries in one durable step.
    let o = ops::create_volume(&ctx.dom, &locked, src, size_gb * GIB, m)?;

    let location = views::href(&ctx.base(), "storage_volumes", &o.id.to_string());
    Ok(ctx
        .doc(
            201,
            views::volume(ctx.fmt, &ctx.base(), &o, ctx.dom.state.nbd()),
        )?
        .with_header("location", location))
}

/// `DELETE /api/storage_volumes/:id`: 204; 409 while attached. Its
/// snapshots stay.
#[utoipa::path(
    delete,
    path = "/storage_volumes/{id}",
    operation_id = "deleteVolume",
    tag = "storage_volumes",
    summary = "Delete a volume (its snapshots stay)",
    params(
        ("id" = String, Path, description = "the volume's UUID"),
        ("format" = Option<String>, Query, description = "`json` (this document describes the JSON; XML is the default)"),
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such volume", body = Error),
        (status = 409, description = "attached", body = Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = Error),
    )
)]
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    if ops::attached(&o) {
        return Err(ApiError::conflict(format!(
            "Storage volume {} is attached to instance {}: detach it first",
            o.id,
            meta::get(&o, meta::ATTACHED_SERVER).unwrap_or("?")
        )));
    }
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(204))
}

/// An instance id: 1 to 255 bytes without control characters (as the
/// OpenStack dialect's server ids).
fn check_instance(i: &str) -> Result<()> {
    if i.trim().is_empty() {
        return Err(ApiError::bad_request("Parameter instance_id is required"));
    }
    Ok(())
}

/// `POST /api/storage_volumes/:id/attach`: 202 with the volume.
#[utoipa::path(
    post,
    path = "/storage_volumes/{id}/attach",
    operation_id = "attachVolume",
    tag = "storage_volumes",
    summary = "Attach a volume to an instance",
    params(
        ("id" = String, Path, description = "the volume's UUID"),
        ("format" = Option<String>, Query, description = "`json` (this document describes the JSON; XML is the default)"),
    ),
    request_body(content = AttachForm, content_type = "application/x-www-form-urlencoded", description = "also as query parameters or multipart/form-data"),
    responses(
        (status = 202, description = "the volume, attached", body = VolumeOne),
        (status = 400, description = "invalid parameter", body = Error),
        (status = 404, description = "no such volume", body = Error),
        (status = 409, description = "not AVAILABLE, or the device is taken", body = Error),
        (status = 415, description = "unsupported body type", body = Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = Error),
    )
)]
pub fn attach(ctx: &Ctx, id: &str) -> Result<Reply> {
    let p = Params::of(ctx.req)?;
    let instance = p.required("instance_id", MAX_FIELD)?;
    check_instance(&instance)?;
    let device = p.text("device", MAX_FIELD)?;
    if let Some(d) = &device {
        if !domain::valid_device(d) {
            return Err(ApiError::bad_request(format!(
                "Parameter device '{}' must be /dev/ and a name such as sdf or vdb1",
                d.escape_debug()
            )));
        }
    }

    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    if o.status != meta::AVAILABLE || ops::attached(&o) {
        return Err(ApiError::conflict(format!(
            "Storage volume {} must be AVAILABLE to attach, but it is {}",
            o.id,
            views::volume_state(&o.status)
        )));
    }
    let o = ops::attach(&ctx.dom, &locked, &o, &instance, device)?;
    ctx.doc(
        202,
        views::volume(ctx.fmt, &ctx.base(), &o, ctx.dom.state.nbd()),
    )
}

/// `POST /api/storage_volumes/:id/detach`: 202 with the volume.
#[utoipa::path(
    post,
    path = "/storage_volumes/{id}/detach",
    operation_id = "detachVolume",
    tag = "storage_volumes",
    summary = "Detach a volume",
    params(
        ("id" = String, Path, description = "the volume's UUID"),
        ("format" = Option<String>, Query, description = "`json` (this document describes the JSON; XML is the default)"),
    ),
    responses(
        (status = 202, description = "the volume, detached", body = VolumeOne),
        (status = 400, description = "malformed body", body = Error),
        (status = 404, description = "no such volume", body = Error),
        (status = 409, description = "not IN-USE", body = Error),
        (status = 415, description = "unsupported body type", body = Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = Error),
    )
)]
pub fn detach(ctx: &Ctx, id: &str) -> Result<Reply> {
    // Parameters are not needed, but a malformed body is still an error.
    Params::of(ctx.req)?;
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    if o.status != meta::IN_USE || meta::get(&o, meta::ATTACHED_SERVER).is_none() {
        return Err(ApiError::conflict(format!(
            "Storage volume {} must be IN-USE to detach, but it is {}",
            o.id,
            views::volume_state(&o.status)
        )));
    }
    let o = ops::detach(&ctx.dom, &locked, &o)?;
    ctx.doc(
        202,
        views::volume(ctx.fmt, &ctx.base(), &o, ctx.dom.state.nbd()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities() {
        assert_eq!(parse_capacity("1").unwrap(), 1);
        assert_eq!(parse_capacity(" 20 ").unwrap(), 20);
        for bad in [
            "0",
            "-1",
            "1.5",
            "abc",
            "1e3",
            "99999999999999999999999",
            "262145",
        ] {
            assert!(parse_capacity(bad).is_err(), "{bad}");
        }
    }
}
