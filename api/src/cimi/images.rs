//! `/cimi/volume_images`: list (a Collection with `count`), get (the image
//! asked for: Deltacloud's bug of answering the first one is not copied),
//! create from `imageLocation` = a volume href, update, delete (200, empty
//! body).
//!
//! A VolumeImage is an engine image (`ObjectKind::Image`) captured from the
//! volume in O(1) by `derive_with`, with its owner, name, description,
//! properties and `bootable` flag written in the same durable step. Public
//! images (without an owner) are listed too but cannot be changed or
//! deleted here (403). Only an available or attached volume is captured,
//! and only an available image is cloned (409 otherwise). Quota: a VolumeImage counts against the tenant's
//! `snapshots` count, and its size against `gigabytes`, together with the
//! usage OpenStack counts.

use super::body::{self, boolean, opt_href, opt_text, properties, ref_id};
use super::doc::{Doc, Node};
use super::query::Query;
use super::{head, state, volumes, Ctx, BOOTABLE, MAX_DESCRIPTION, MAX_NAME};
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectId, ObjectInfo, ObjectKind};
use std::collections::BTreeMap;

fn owned(ctx: &Ctx, o: &ObjectInfo) -> bool {
    meta::get(o, meta::TENANT) == Some(ctx.tenant().id.as_str())
}

/// Where an image was captured from: a volume href (the volume of a
/// snapshot for images made from snapshots), or another image.
fn location(ctx: &Ctx, parent: ObjectId) -> String {
    match ctx.store().get(parent) {
        Ok(p) if p.kind == ObjectKind::Image => ctx.url(&format!("volume_images/{}", p.id)),
        Ok(p) if p.kind == ObjectKind::Snapshot => {
            ctx.url(&format!("volumes/{}", p.parent.unwrap_or(p.id)))
        }
        _ => ctx.url(&format!("volumes/{parent}")),
    }
}

/// The VolumeImage view.
pub(crate) fn view(ctx: &Ctx, o: &ObjectInfo) -> Doc {
    let url = ctx.url(&format!("volume_images/{}", o.id));
    let mut d = head("VolumeImage", url.clone(), o).with("state", Node::Text(state(o).into()));
    if let Some(p) = o.parent {
        d = d.with("imageLocation", Node::Href(location(ctx, p)));
    }
    d = d.with(
        "bootable",
        Node::Bool(meta::get(o, BOOTABLE) == Some("true")),
    );
    if owned(ctx, o) {
        d = d.with(
            "operations",
            Node::Ops(vec![("edit", url.clone()), ("delete", url)]),
        );
    }
    d
}

/// The image `id` the tenant may see (its own or a public one), 404
/// otherwise.
pub(crate) fn find(ctx: &Ctx, id: &str) -> Result<ObjectInfo> {
    let missing = || {
        ApiError::not_found(format!(
            "VolumeImage {} could not be found.",
            id.escape_debug()
        ))
    };
    let oid: ObjectId = id.parse().map_err(|_| missing())?;
    match ctx.store().get(oid) {
        Ok(o) if meta::visible(&o, ObjectKind::Image, &ctx.tenant().id) => Ok(o),
        Ok(_) => Err(missing()),
        Err(e) if e.kind() == engine::ErrorKind::NotFound => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

/// The image `id`, which must be the tenant's own (403 for public ones).
fn find_own(ctx: &Ctx, id: &str) -> Result<ObjectInfo> {
    let o = find(ctx, id)?;
    if !owned(ctx, &o) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            format!("VolumeImage {id} is public: it cannot be changed or deleted."),
        ));
    }
    Ok(o)
}

/// `GET /cimi/volume_images`.
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let q = Query::of(ctx.req())?;
    let all = ctx
        .os
        .objects(ObjectKind::Image)
        .iter()
        .map(|o| view(ctx, o))
        .collect();
    let (page, count) = q.apply(all);
    let d = Doc::collection(
        "VolumeImage",
        ctx.url("volume_images"),
        count,
        "volumeImages",
        page,
        vec![("add", ctx.url("volume_images"))],
    );
    Ok(ctx.ok(&d))
}

/// `GET /cimi/volume_images/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = find(ctx, id)?;
    Ok(ctx.ok(&view(ctx, &o)))
}

/// Checks that one more image of `bytes` fits the tenant's quota.
fn check_quota(ctx: &Ctx, bytes: u64) -> Result<()> {
    let quota = ctx.tenant().quota();
    let (_, n_snaps, used_gb) = ctx.os.usage();
    let mine: Vec<ObjectInfo> = ctx
        .store()
        .list()
        .into_iter()
        .filter(|o| o.kind == ObjectKind::Image && owned(ctx, o))
        .collect();
    let n = n_snaps + mine.len() as u64;
    if quota.snapshots.is_some_and(|max| n >= max) {
        return Err(ApiError::over_limit(
            format!(
                "Snapshot quota exceeded: at most {} snapshots and volume images.",
                quota.snapshots.unwrap_or(0)
            ),
            0,
        ));
    }
    let images_gb: u64 = mine.iter().map(|o| meta::gb(o.size)).sum();
    ctx.os.check_gigabytes(
        used_gb.saturating_add(images_gb),
        meta::gb(bytes),
        "VolumeImage",
    )
}

/// `POST /cimi/volume_images` with a `VolumeImage` (or
/// `VolumeImageCreate`): 201 + Location + the VolumeImage.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let b = body::parse(ctx.req(), &["VolumeImage", "VolumeImageCreate"])?;
    let name = opt_text(&b, "name", MAX_NAME, false)?;
    let description = opt_text(&b, "description", MAX_DESCRIPTION, true)?;
    let props = properties(&b)?.unwrap_or_default();
    let bootable = b
        .get("bootable")
        .filter(|v| !v.is_null())
        .map(|v| boolean(v, "bootable"))
        .transpose()?
        .unwrap_or(false);
    let href = opt_href(&b, "imageLocation")?.ok_or_else(|| {
        ApiError::bad_request("imageLocation (the href of a volume) is required.")
    })?;
    let vol_id = ref_id(&href, "volumes")?;

    let _guard = ctx.state_lock();
    let vol = ctx.os.volume(&vol_id)?;
    if vol.status != meta::AVAILABLE && vol.status != meta::IN_USE {
        return Err(ApiError::conflict(format!(
            "Volume {} cannot be captured in status {}.",
            vol.id, vol.status
        )));
    }
    check_quota(ctx, vol.size)?;
    let mut m: BTreeMap<String, String> = props
        .iter()
        .map(|(k, v)| (format!("{}{k}", meta::USER_PREFIX), v.clone()))
        .collect();
    meta::set(&mut m, meta::TENANT, Some(&ctx.tenant().id));
    meta::set(&mut m, meta::DISPLAY_NAME, name.as_deref());
    meta::set(&mut m, meta::DISPLAY_DESCRIPTION, description.as_deref());
    meta::set(
        &mut m,
        BOOTABLE,
        Some(if bootable { "true" } else { "false" }),
    );
    let extra = engine::ObjectUpdate {
        name: None,
        status: Some(meta::AVAILABLE.to_string()),
        metadata: Some(m),
    };
    let o = ctx
        .store()
        .derive_with(vol.id, ObjectKind::Image, None, None, extra)?;
    tracing::info!(tenant = %ctx.tenant().id, image = %o.id, volume = %vol.id, "cimi: volume image created");
    let url = ctx.url(&format!("volume_images/{}", o.id));
    Ok(ctx.created(&view(ctx, &o), url))
}

/// `PUT /cimi/volume_images/{id}`: name, description, properties,
/// bootable.
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let b = body::parse(ctx.req(), &["VolumeImage"])?;
    let name = opt_text(&b, "name", MAX_NAME, false)?;
    let description = opt_text(&b, "description", MAX_DESCRIPTION, true)?;
    let props = properties(&b)?;
    let bootable = b
        .get("bootable")
        .filter(|v| !v.is_null())
        .map(|v| boolean(v, "bootable"))
        .transpose()?;
    let _guard = ctx.state_lock();
    let o = find_own(ctx, id)?;
    let mut m = volumes::edit(&o, &b, name, description, props.as_ref());
    if let Some(bt) = bootable {
        meta::set(&mut m, BOOTABLE, Some(if bt { "true" } else { "false" }));
    }
    ctx.os.save(o.id, &o.status, m)?;
    let o = ctx.store().get(o.id)?;
    Ok(ctx.ok(&view(ctx, &o)))
}

/// `DELETE /cimi/volume_images/{id}`: 200 with an empty body. Volumes
/// cloned from it keep their data.
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let _guard = ctx.state_lock();
    let o = find_own(ctx, id)?;
    ctx.store().delete(o.id)?;
    tracing::info!(tenant = %ctx.tenant().id, image = %o.id, "cimi: volume image deleted");
    Ok(Reply::empty(200))
}
