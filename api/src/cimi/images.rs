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
//! and only an available image is cloned (409 otherwise). Quota: the one
//! rule of `domain::quota` (a VolumeImage counts as a snapshot).

use super::body::{self, boolean, opt_href, opt_text, properties, ref_id};
use super::query::Query;
use super::views::{self, ops, Href, VolumeImage, VolumeImageCollection};
use super::{names, state, Ctx, BOOTABLE, MAX_DESCRIPTION, MAX_NAME};
use crate::domain::ops;
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectId, ObjectInfo, ObjectKind};

/// Where an image was captured from: a volume href (the volume of a
/// snapshot for images made from snapshots), or another image.
/// Another tenant's public image names its source only when the caller
/// sees that source too: no href names another tenant's private volume.
fn location(ctx: &Ctx, o: &ObjectInfo, parent: ObjectId) -> Option<String> {
    let (kind, id, path) = match ctx.dom.store().get(parent) {
        Ok(p) if p.kind == ObjectKind::Image => (ObjectKind::Image, p.id, "volume_images"),
        Ok(p) if p.kind == ObjectKind::Snapshot => {
            (ObjectKind::Volume, p.parent.unwrap_or(p.id), "volumes")
        }
        _ => (ObjectKind::Volume, parent, "volumes"),
    };
    let shown = ctx.dom.owns(o) || matches!(ctx.dom.find(kind, &id.to_string()), Ok(Some(_)));
    shown.then(|| ctx.url(&format!("{path}/{id}")))
}

/// The VolumeImage view (without `resourceURI`).
pub(crate) fn view(ctx: &Ctx, o: &ObjectInfo) -> VolumeImage {
    let url = ctx.url(&format!("volume_images/{}", o.id));
    let (name, description, properties) = names(o);
    VolumeImage {
        resource_uri: None,
        name,
        description,
        created: super::datetime(o.created),
        properties,
        state: state(o).into(),
        image_location: o.parent.and_then(|p| location(ctx, o, p)).map(Href::new),
        bootable: meta::get(o, BOOTABLE) == Some("true"),
        operations: if ctx.dom.owns(o) {
            ops(&["edit", "delete"], &url)
        } else {
            vec![]
        },
        id: url,
    }
}

/// The image `id` the tenant may see (its own or a public one), 404
/// otherwise.
fn find(ctx: &Ctx, id: &str) -> Result<ObjectInfo> {
    ctx.find(ObjectKind::Image, "VolumeImage", id)
}

/// The image `id`, which must be the tenant's own (403 for public ones).
fn find_own(ctx: &Ctx, id: &str) -> Result<ObjectInfo> {
    let o = find(ctx, id)?;
    if !ctx.dom.owns(&o) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            format!("VolumeImage {id} is public: it cannot be changed or deleted."),
        ));
    }
    Ok(o)
}

/// `GET /cimi/volume_images`.
#[utoipa::path(
    get,
    path = "/volume_images",
    operation_id = "listVolumeImages",
    tag = "volume_images",
    summary = "The volume images the tenant sees",
    params(super::openapi::Filter),
    responses(
        (status = 200, description = "the images", body = VolumeImageCollection),
        (status = 400, description = "a malformed `$filter`, `$first` or `$last`", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let q = Query::of(ctx.req())?;
    let all = ctx
        .dom
        .objects(ObjectKind::Image)
        .iter()
        .map(|o| view(ctx, o))
        .collect();
    let (page, count) = q.apply(all);
    Ok(ctx.ok(&VolumeImageCollection::new(
        ctx.url("volume_images"),
        count,
        page,
        true,
    )))
}

/// `GET /cimi/volume_images/{id}`.
#[utoipa::path(
    get,
    path = "/volume_images/{id}",
    operation_id = "showVolumeImage",
    tag = "volume_images",
    summary = "A volume image",
    params(("id" = String, Path, description = "the image's UUID")),
    responses(
        (status = 200, description = "the image", body = VolumeImage),
        (status = 404, description = "no such image", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = find(ctx, id)?;
    Ok(ctx.ok(&view(ctx, &o).top()))
}

/// `POST /cimi/volume_images` with a `VolumeImage` (or
/// `VolumeImageCreate`): 201 + Location + the VolumeImage.
#[utoipa::path(
    post,
    path = "/volume_images",
    operation_id = "createVolumeImage",
    tag = "volume_images",
    summary = "Capture a volume as a volume image",
    request_body(content = super::openapi::VolumeImageCreate, content_type = "application/json", description = "also as XML (`<VolumeImage>`)"),
    responses(
        (status = 201, description = "the new image (`Location` names it)", body = VolumeImage),
        (status = 400, description = "a malformed body or no `imageLocation`", body = views::Error),
        (status = 404, description = "no such volume", body = views::Error),
        (status = 413, description = "over the tenant's snapshot quota", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
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

    let locked = ctx.dom.lock();
    let vol = ctx.volume(&vol_id)?;
    if vol.status != meta::AVAILABLE && vol.status != meta::IN_USE {
        return Err(ApiError::conflict(format!(
            "Volume {} cannot be captured in status {}.",
            vol.id, vol.status
        )));
    }
    let m = ops::new_metadata(
        &ctx.dom,
        &props,
        &[
            (meta::DISPLAY_NAME, name.as_deref()),
            (meta::DISPLAY_DESCRIPTION, description.as_deref()),
            (BOOTABLE, Some(if bootable { "true" } else { "false" })),
        ],
    );
    let o = ops::capture_image(&ctx.dom, &locked, &vol, None, m)?;
    let url = ctx.url(&format!("volume_images/{}", o.id));
    Ok(ctx.created(&view(ctx, &o).top(), url))
}

/// `PUT /cimi/volume_images/{id}`: name, description, properties,
/// bootable.
#[utoipa::path(
    put,
    path = "/volume_images/{id}",
    operation_id = "updateVolumeImage",
    tag = "volume_images",
    summary = "Rename an image, describe it, replace its properties, mark it bootable",
    params(("id" = String, Path, description = "the image's UUID")),
    request_body(content = super::openapi::VolumeImageUpdate, content_type = "application/json", description = "also as XML (`<VolumeImage>`)"),
    responses(
        (status = 200, description = "the image", body = VolumeImage),
        (status = 400, description = "a malformed body", body = views::Error),
        (status = 403, description = "a public image", body = views::Error),
        (status = 404, description = "no such image", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
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
    let edit = body::edit(&b, name, description, props);
    let locked = ctx.dom.lock();
    let o = find_own(ctx, id)?;
    let mut m = edit.apply(&o);
    if let Some(bt) = bootable {
        meta::set(&mut m, BOOTABLE, Some(if bt { "true" } else { "false" }));
    }
    let o = ops::update(&ctx.dom, &locked, &o, m)?;
    Ok(ctx.ok(&view(ctx, &o).top()))
}

/// `DELETE /cimi/volume_images/{id}`: 200 with an empty body. Volumes
/// cloned from it keep their data.
#[utoipa::path(
    delete,
    path = "/volume_images/{id}",
    operation_id = "deleteVolumeImage",
    tag = "volume_images",
    summary = "Delete a volume image",
    params(("id" = String, Path, description = "the image's UUID")),
    responses(
        (status = 200, description = "deleted (no body)"),
        (status = 403, description = "a public image", body = views::Error),
        (status = 404, description = "no such image", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = find_own(ctx, id)?;
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(200))
}
