//! `/cimi/volumes`: list, get, create (`VolumeCreate` with a
//! `volumeTemplate`), update (name, description, properties), delete; and
//! the fixed `/cimi/volume_configurations` and `/cimi/volume_templates`.
//!
//! Capacities are in KiB. A template is given inline, or by `href` to one
//! of the fixed templates; its `volumeConfig` inline (`capacity`) or by
//! `href` to one of the fixed configurations; its optional `volumeImage`
//! is an href to a VolumeImage the volume is cloned from in O(1) (grown to
//! the capacity when that is larger; the capacity defaults to the
//! image's). Volume quotas (count, gigabytes) are the tenant's, counted as
//! OpenStack counts them. An attached volume cannot be deleted (409).

use super::body::{self, opt_href, opt_object, opt_text, properties, ref_id, uint};
use super::query::Query;
use super::views::{
    self, ops, Href, Volume, VolumeCollection, VolumeConfiguration, VolumeConfigurationCollection,
    VolumeTemplate, VolumeTemplateCollection,
};
use super::{names, state, Ctx, BOOTABLE, MAX_DESCRIPTION, MAX_NAME};
use crate::domain::ops::{self, Source};
use crate::domain::visibility;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use serde_json::{Map, Value};

/// The `type` of every volume and configuration.
const VOLUME_TYPE: &str = "http://schemas.dmtf.org/cimi/1/mapped";

/// The fixed volume configurations (and one template each): id,
/// description, capacity in KiB.
const CONFIGS: [(&str, &str, u64); 3] = [
    ("small", "1 GiB volume", 1 << 20),
    ("medium", "10 GiB volume", 10 << 20),
    ("large", "100 GiB volume", 100 << 20),
];

/// Capacity in KiB of a size in bytes (rounded up).
fn kib(bytes: u64) -> u64 {
    bytes.div_ceil(1024)
}

/// The Volume view (without `resourceURI`).
pub(crate) fn view(ctx: &Ctx, o: &ObjectInfo) -> Volume {
    let url = ctx.url(&format!("volumes/{}", o.id));
    let (name, description, properties) = names(o);
    Volume {
        resource_uri: None,
        operations: ops(&["edit", "delete"], &url),
        id: url,
        name,
        description,
        created: super::datetime(o.created),
        properties,
        state: state(o).into(),
        kind: VOLUME_TYPE.into(),
        capacity: kib(o.size),
        bootable: meta::get(o, BOOTABLE) == Some("true"),
    }
}

/// `GET /cimi/volumes`.
#[utoipa::path(
    get,
    path = "/volumes",
    operation_id = "listVolumes",
    tag = "volumes",
    summary = "The tenant's volumes",
    params(super::openapi::Filter),
    responses(
        (status = 200, description = "the volumes", body = VolumeCollection),
        (status = 400, description = "a malformed `$filter`, `$first` or `$last`", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let q = Query::of(ctx.req())?;
    let all = ctx
        .dom
        .objects(ObjectKind::Volume)
        .iter()
        .map(|o| view(ctx, o))
        .collect();
    let (page, count) = q.apply(all);
    Ok(ctx.ok(&VolumeCollection::new(
        ctx.url("volumes"),
        count,
        page,
        true,
    )))
}

/// `GET /cimi/volumes/{id}`.
#[utoipa::path(
    get,
    path = "/volumes/{id}",
    operation_id = "showVolume",
    tag = "volumes",
    summary = "A volume",
    params(("id" = String, Path, description = "the volume's UUID")),
    responses(
        (status = 200, description = "the volume", body = Volume),
        (status = 404, description = "no such volume", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = ctx.volume(id)?;
    Ok(ctx.ok(&view(ctx, &o).top()))
}

/// The fixed configuration `id`'s capacity in KiB.
fn config_capacity(id: &str) -> Option<u64> {
    CONFIGS
        .iter()
        .find(|(c, _, _)| *c == id)
        .map(|(_, _, k)| *k)
}

/// (capacity in KiB, image id) of a `volumeTemplate`.
fn template(t: &Map<String, Value>) -> Result<(Option<u64>, Option<String>)> {
    if let Some(href) = t.get("href").and_then(Value::as_str) {
        let id = ref_id(href, "volume_templates")?;
        let cap = config_capacity(&id).ok_or_else(|| {
            ApiError::not_found(format!("No volume template '{}'.", id.escape_debug()))
        })?;
        return Ok((Some(cap), None));
    }
    let capacity = match t.get("volumeConfig") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => {
            match (c.get("href").and_then(Value::as_str), c.get("capacity")) {
                (Some(href), _) => {
                    let id = ref_id(href, "volume_configurations")?;
                    Some(config_capacity(&id).ok_or_else(|| {
                        ApiError::not_found(format!(
                            "No volume configuration '{}'.",
                            id.escape_debug()
                        ))
                    })?)
                }
                (None, Some(cap)) => Some(uint(cap, "capacity")?),
                (None, None) => {
                    return Err(ApiError::bad_request(
                        "volumeConfig needs a capacity (KiB) or an href.",
                    ))
                }
            }
        }
        Some(_) => return Err(ApiError::bad_request("volumeConfig must be an object.")),
    };
    let image = opt_href(t, "volumeImage")?
        .map(|h| ref_id(&h, "volume_images"))
        .transpose()?;
    Ok((capacity, image))
}

/// `POST /cimi/volumes`: 201 + Location + the Volume.
#[utoipa::path(
    post,
    path = "/volumes",
    operation_id = "createVolume",
    tag = "volumes",
    summary = "Create a volume, empty or cloned from a volume image",
    request_body(content = super::openapi::VolumeCreate, content_type = "application/json", description = "also as XML (`<VolumeCreate>`)"),
    responses(
        (status = 201, description = "the new volume (`Location` names it)", body = Volume),
        (status = 400, description = "a malformed body or capacity", body = views::Error),
        (status = 404, description = "no such template, configuration or volume image", body = views::Error),
        (status = 413, description = "over the tenant's volume quota", body = views::Error),
        (status = 415, description = "a body neither JSON nor XML", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let b = body::parse(ctx.req(), &["VolumeCreate", "Volume"])?;
    let name = opt_text(&b, "name", MAX_NAME, false)?;
    let description = opt_text(&b, "description", MAX_DESCRIPTION, true)?;
    let props = properties(&b)?.unwrap_or_default();
    let t = opt_object(&b, "volumeTemplate")?
        .ok_or_else(|| ApiError::bad_request("A volumeTemplate is required."))?;
    let (capacity, image_id) = template(t)?;
    let max_kib = engine::MAX_VOLUME_SIZE / 1024;
    if let Some(c) = capacity {
        if c == 0 || c > max_kib {
            return Err(ApiError::bad_request(format!(
                "capacity must be between 1 and {max_kib} KiB, got {c}."
            )));
        }
    }

    let locked = ctx.dom.lock();
    let image = image_id
        .map(|i| ctx.find(ObjectKind::Image, "VolumeImage", &i))
        .transpose()?;
    if let Some(i) = image
        .as_ref()
        .filter(|i| !visibility::image_usable(i, ctx.dom.tenant_id()))
    {
        return Err(ApiError::conflict(format!(
            "VolumeImage {} is marked deleted: no new volume is made from it.",
            i.id
        )));
    }
    if let Some(i) = image.as_ref().filter(|i| i.status != meta::AVAILABLE) {
        return Err(ApiError::conflict(format!(
            "VolumeImage {} cannot be cloned in status {}.",
            i.id, i.status
        )));
    }
    let bytes = match (&image, capacity) {
        (Some(i), Some(c)) if c < kib(i.size) => {
            return Err(ApiError::bad_request(format!(
                "capacity {c} KiB is smaller than the image's {} KiB.",
                kib(i.size)
            )))
        }
        (_, Some(c)) => c * 1024,
        (Some(i), None) => i.size,
        (None, None) => {
            return Err(ApiError::bad_request(
                "The volumeTemplate needs a volumeConfig with a capacity.",
            ))
        }
    };
    let bootable = image
        .as_ref()
        .is_some_and(|i| meta::get(i, BOOTABLE) == Some("true"));
    let m = ops::new_metadata(
        &ctx.dom,
        &props,
        &[
            (meta::DISPLAY_NAME, name.as_deref()),
            (meta::DISPLAY_DESCRIPTION, description.as_deref()),
            (BOOTABLE, bootable.then_some("true")),
        ],
    );
    let src = match &image {
        Some(i) => Source::Image(i),
        None => Source::Empty,
    };
    let o = ops::create_volume(&ctx.dom, &locked, src, bytes, m)?;
    let url = ctx.url(&format!("volumes/{}", o.id));
    Ok(ctx.created(&view(ctx, &o).top(), url))
}

/// `PUT /cimi/volumes/{id}`: name, description and properties (which
/// replace the old ones) when given.
#[utoipa::path(
    put,
    path = "/volumes/{id}",
    operation_id = "updateVolume",
    tag = "volumes",
    summary = "Rename a volume, describe it, replace its properties",
    params(("id" = String, Path, description = "the volume's UUID")),
    request_body(content = super::openapi::ResourceUpdate, content_type = "application/json", description = "also as XML (`<Volume>`)"),
    responses(
        (status = 200, description = "the volume", body = Volume),
        (status = 400, description = "a malformed body", body = views::Error),
        (status = 404, description = "no such volume", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let b = body::parse(ctx.req(), &["Volume"])?;
    let name = opt_text(&b, "name", MAX_NAME, false)?;
    let description = opt_text(&b, "description", MAX_DESCRIPTION, true)?;
    let props = properties(&b)?;
    let edit = body::edit(&b, name, description, props);
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    let o = ops::update(&ctx.dom, &locked, &o, edit.apply(&o))?;
    Ok(ctx.ok(&view(ctx, &o).top()))
}

/// `DELETE /cimi/volumes/{id}`: 200, empty; 409 while attached.
#[utoipa::path(
    delete,
    path = "/volumes/{id}",
    operation_id = "deleteVolume",
    tag = "volumes",
    summary = "Delete a volume",
    params(("id" = String, Path, description = "the volume's UUID")),
    responses(
        (status = 200, description = "deleted (no body)"),
        (status = 404, description = "no such volume", body = views::Error),
        (status = 409, description = "the volume is attached", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    if let Some(server) = meta::get(&o, meta::ATTACHED_SERVER) {
        return Err(ApiError::conflict(format!(
            "Volume {} is attached to machine {}: detach it first.",
            o.id,
            server.escape_debug()
        )));
    }
    if o.status == meta::IN_USE {
        return Err(ApiError::conflict(format!("Volume {} is in use.", o.id)));
    }
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(200))
}

// ---- configurations and templates (a fixed set) ----

fn config_view(ctx: &Ctx, (id, desc, cap): (&str, &str, u64)) -> VolumeConfiguration {
    VolumeConfiguration {
        resource_uri: None,
        id: ctx.url(&format!("volume_configurations/{id}")),
        name: id.into(),
        description: desc.into(),
        kind: VOLUME_TYPE.into(),
        format: "raw".into(),
        capacity: cap,
    }
}

fn template_view(ctx: &Ctx, (id, desc, _): (&str, &str, u64)) -> VolumeTemplate {
    VolumeTemplate {
        resource_uri: None,
        id: ctx.url(&format!("volume_templates/{id}")),
        name: id.into(),
        description: desc.into(),
        volume_config: Href::new(ctx.url(&format!("volume_configurations/{id}"))),
    }
}

/// The fixed configuration `id` (404 naming `what` otherwise).
fn fixed(id: &str, what: &str) -> Result<(&'static str, &'static str, u64)> {
    CONFIGS
        .iter()
        .find(|(c, _, _)| *c == id)
        .copied()
        .ok_or_else(|| ApiError::not_found(format!("No {what} '{}'.", id.escape_debug())))
}

/// `GET /cimi/volume_configurations`.
#[utoipa::path(
    get,
    path = "/volume_configurations",
    operation_id = "listVolumeConfigurations",
    tag = "volumes",
    summary = "The fixed volume configurations",
    params(super::openapi::Filter),
    responses(
        (status = 200, description = "the configurations", body = VolumeConfigurationCollection),
        (status = 400, description = "a malformed `$filter`, `$first` or `$last`", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn list_configs(ctx: &Ctx) -> Result<Reply> {
    let q = Query::of(ctx.req())?;
    let (page, count) = q.apply(CONFIGS.iter().map(|c| config_view(ctx, *c)).collect());
    Ok(ctx.ok(&VolumeConfigurationCollection::new(
        ctx.url("volume_configurations"),
        count,
        page,
        false,
    )))
}

/// `GET /cimi/volume_configurations/{id}`.
#[utoipa::path(
    get,
    path = "/volume_configurations/{id}",
    operation_id = "showVolumeConfiguration",
    tag = "volumes",
    summary = "A volume configuration",
    params(("id" = String, Path, description = "`small`, `medium` or `large`")),
    responses(
        (status = 200, description = "the configuration", body = VolumeConfiguration),
        (status = 404, description = "no such configuration", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn show_config(ctx: &Ctx, id: &str) -> Result<Reply> {
    let c = fixed(id, "volume configuration")?;
    Ok(ctx.ok(&config_view(ctx, c).top()))
}

/// `GET /cimi/volume_templates`.
#[utoipa::path(
    get,
    path = "/volume_templates",
    operation_id = "listVolumeTemplates",
    tag = "volumes",
    summary = "The fixed volume templates",
    params(super::openapi::Filter),
    responses(
        (status = 200, description = "the templates", body = VolumeTemplateCollection),
        (status = 400, description = "a malformed `$filter`, `$first` or `$last`", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn list_templates(ctx: &Ctx) -> Result<Reply> {
    let q = Query::of(ctx.req())?;
    let (page, count) = q.apply(CONFIGS.iter().map(|c| template_view(ctx, *c)).collect());
    Ok(ctx.ok(&VolumeTemplateCollection::new(
        ctx.url("volume_templates"),
        count,
        page,
        false,
    )))
}

/// `GET /cimi/volume_templates/{id}`.
#[utoipa::path(
    get,
    path = "/volume_templates/{id}",
    operation_id = "showVolumeTemplate",
    tag = "volumes",
    summary = "A volume template",
    params(("id" = String, Path, description = "`small`, `medium` or `large`")),
    responses(
        (status = 200, description = "the template", body = VolumeTemplate),
        (status = 404, description = "no such template", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn show_template(ctx: &Ctx, id: &str) -> Result<Reply> {
    let c = fixed(id, "volume template")?;
    Ok(ctx.ok(&template_view(ctx, c).top()))
}
