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
use super::doc::{Doc, Node};
use super::query::Query;
use super::{head, state, Ctx, BOOTABLE, MAX_DESCRIPTION, MAX_NAME};
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

/// The Volume view.
pub(crate) fn view(ctx: &Ctx, o: &ObjectInfo) -> Doc {
    let url = ctx.url(&format!("volumes/{}", o.id));
    head("Volume", url.clone(), o)
        .with("state", Node::Text(state(o).into()))
        .with("type", Node::Text(VOLUME_TYPE.into()))
        .with("capacity", Node::Int(kib(o.size)))
        .with(
            "bootable",
            Node::Bool(meta::get(o, BOOTABLE) == Some("true")),
        )
        .with(
            "operations",
            Node::Ops(vec![("edit", url.clone()), ("delete", url)]),
        )
}

/// `GET /cimi/volumes`.
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let q = Query::of(ctx.req())?;
    let all = ctx
        .dom
        .objects(ObjectKind::Volume)
        .iter()
        .map(|o| view(ctx, o))
        .collect();
    let (page, count) = q.apply(all);
    let d = Doc::collection(
        "Volume",
        ctx.url("volumes"),
        count,
        "volumes",
        page,
        vec![("add", ctx.url("volumes"))],
    );
    Ok(ctx.ok(&d))
}

/// `GET /cimi/volumes/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = ctx.volume(id)?;
    Ok(ctx.ok(&view(ctx, &o)))
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
    Ok(ctx.created(&view(ctx, &o), url))
}

/// `PUT /cimi/volumes/{id}`: name, description and properties (which
/// replace the old ones) when given.
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let b = body::parse(ctx.req(), &["Volume"])?;
    let name = opt_text(&b, "name", MAX_NAME, false)?;
    let description = opt_text(&b, "description", MAX_DESCRIPTION, true)?;
    let props = properties(&b)?;
    let edit = body::edit(&b, name, description, props);
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    let o = ops::update(&ctx.dom, &locked, &o, edit.apply(&o))?;
    Ok(ctx.ok(&view(ctx, &o)))
}

/// `DELETE /cimi/volumes/{id}`: 200, empty; 409 while attached.
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

fn config_view(ctx: &Ctx, (id, desc, cap): (&str, &str, u64)) -> Doc {
    Doc::resource("VolumeConfiguration")
        .with(
            "id",
            Node::Text(ctx.url(&format!("volume_configurations/{id}"))),
        )
        .with("name", Node::Text(id.into()))
        .with("description", Node::Text(desc.into()))
        .with("type", Node::Text(VOLUME_TYPE.into()))
        .with("format", Node::Text("raw".into()))
        .with("capacity", Node::Int(cap))
}

fn template_view(ctx: &Ctx, (id, desc, _): (&str, &str, u64)) -> Doc {
    Doc::resource("VolumeTemplate")
        .with("id", Node::Text(ctx.url(&format!("volume_templates/{id}"))))
        .with("name", Node::Text(id.into()))
        .with("description", Node::Text(desc.into()))
        .with(
            "volumeConfig",
            Node::Href(ctx.url(&format!("volume_configurations/{id}"))),
        )
}

fn fixed(
    ctx: &Ctx,
    member: &str,
    path: &str,
    key: &'static str,
    view: fn(&Ctx, (&str, &str, u64)) -> Doc,
) -> Result<Reply> {
    let q = Query::of(ctx.req())?;
    let all = CONFIGS.iter().map(|c| view(ctx, *c)).collect();
    let (page, count) = q.apply(all);
    Ok(ctx.ok(&Doc::collection(
        member,
        ctx.url(path),
        count,
        key,
        page,
        vec![],
    )))
}

fn fixed_one(
    ctx: &Ctx,
    id: &str,
    what: &str,
    view: fn(&Ctx, (&str, &str, u64)) -> Doc,
) -> Result<Reply> {
    let c = CONFIGS
        .iter()
        .find(|(c, _, _)| *c == id)
        .ok_or_else(|| ApiError::not_found(format!("No {what} '{}'.", id.escape_debug())))?;
    Ok(ctx.ok(&view(ctx, *c)))
}

/// `GET /cimi/volume_configurations`.
pub fn list_configs(ctx: &Ctx) -> Result<Reply> {
    fixed(
        ctx,
        "VolumeConfiguration",
        "volume_configurations",
        "volumeConfigurations",
        config_view,
    )
}

/// `GET /cimi/volume_configurations/{id}`.
pub fn show_config(ctx: &Ctx, id: &str) -> Result<Reply> {
    fixed_one(ctx, id, "volume configuration", config_view)
}

/// `GET /cimi/volume_templates`.
pub fn list_templates(ctx: &Ctx) -> Result<Reply> {
    fixed(
        ctx,
        "VolumeTemplate",
        "volume_templates",
        "volumeTemplates",
        template_view,
    )
}

/// `GET /cimi/volume_templates/{id}`.
pub fn show_template(ctx: &Ctx, id: &str) -> Result<Reply> {
    fixed_one(ctx, id, "volume template", template_view)
}
