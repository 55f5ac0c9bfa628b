//! Server disk images: the view, visibility, and `GET /api/image/` (list),
//! `GET|PUT|DELETE /api/image/<name>/`, `GET /api/image/<name>/vm/`.
//!
//! An image is an engine image; its Danube name is per tenant (in
//! `api.image_name`, see `domain::visibility`), its owner the `api.tenant`
//! metadata, its Danube fields are under `api.danube.`. Names, and alias
//! with version, are unique per tenant.
//! Access 1 (public) images are seen by every tenant and may be cloned by
//! them; 3 (private) only by the owner; 4 (deleted) only by the owner, and
//! no new volume is cloned from it in any dialect. Images without an owner
//! (made with the offline CLI) are public and read-only.

use super::fields::{check_access, Data, MAX_ALIAS, MAX_DESC, MAX_VERSION};
use super::views::{Detail, Envelope, FieldErrors, Image, ImageItem, ImageUpdate, Message};
use super::{success, Ctx, DResult, Fail};
use crate::domain::ops::{self, Txn};
use crate::domain::{self, visibility, Locked};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectId, ObjectInfo, ObjectKind, Store};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Bytes per MB as Danube counts image sizes.
const MIB: u64 = 1 << 20;

/// An image's access value (CLI images without an owner are public).
pub fn access(o: &ObjectInfo) -> i64 {
    let default = if meta::get(o, meta::TENANT).is_some() {
        super::ACCESS_PRIVATE
    } else {
        super::ACCESS_PUBLIC
    };
    meta::get(o, super::ACCESS)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Unix seconds as ISO 8601 (`2026-01-02T03:04:05Z`).
pub fn iso_time(secs: u64) -> String {
    format!("{}Z", meta::format_time(secs).replacen(' ', "T", 1))
}

fn flag(o: &ObjectInfo, key: &str) -> bool {
    meta::get(o, key) == Some("true")
}

/// The image view.
pub fn view(o: &ObjectInfo) -> Image {
    let name = visibility::image_name(o);
    let tags: Value = meta::get(o, super::TAGS)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_else(|| json!([]));
    Image {
        uuid: o.id.to_string(),
        alias: meta::get(o, super::ALIAS).unwrap_or(&name).to_string(),
        version: meta::get(o, super::VERSION).unwrap_or("1.0").to_string(),
        owner: meta::get(o, meta::TENANT).unwrap_or("admin").to_string(),
        access: access(o),
        desc: meta::get(o, super::DESC).unwrap_or("").to_string(),
        ostype: meta::get(o, super::OSTYPE)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(1),
        size: o.size.div_ceil(MIB),
        resize: flag(o, super::RESIZE),
        deploy: flag(o, super::DEPLOY),
        tags,
        status: if o.status == meta::AVAILABLE { 1 } else { 2 },
        created: iso_time(o.created),
        dc_bound: meta::get(o, super::DC_BOUND) != Some("false"),
        dcs: None,
        vms: None,
        name,
    }
}

/// The extended view: the view plus datacenters and the caller's servers
/// using the image.
pub fn extended_view(ctx: &Ctx, o: &ObjectInfo) -> Image {
    Image {
        dcs: Some(vec!["main".into()]),
        vms: Some(servers_of(ctx, o.id)),
        ..view(o)
    }
}

/// The image `key` (uuid, or name: the caller's own image first, then a
/// public one) as the caller sees it; 404 otherwise, the same for another
/// tenant's private image as for none.
pub fn find(ctx: &Ctx, key: &str) -> DResult<ObjectInfo> {
    ctx.dom
        .find_image(key)?
        .ok_or_else(|| Fail::not_found("Image not found."))
}

/// The image `key`, which the caller must own (403 otherwise).
pub fn find_owned(ctx: &Ctx, key: &str) -> DResult<ObjectInfo> {
    let o = find(ctx, key)?;
    if !ctx.dom.owns(&o) {
        return Err(Fail::detail(
            403,
            "You do not have permission to perform this action.",
        ));
    }
    Ok(o)
}

/// (tenant, server) of every attached volume made from `image`, directly
/// or through snapshots and clones (following `parent` and
/// `api.image_ref`).
pub fn servers_using(store: &Store, image: ObjectId) -> BTreeSet<(String, String)> {
    let all = store.list();
    let by_id: HashMap<ObjectId, &ObjectInfo> = all.iter().map(|o| (o.id, o)).collect();
    let mut out = BTreeSet::new();
    for o in &all {
        let Some(server) = meta::get(o, meta::ATTACHED_SERVER) else {
            continue;
        };
        if descends_from(o, image, &by_id) {
            let tenant = meta::get(o, meta::TENANT).unwrap_or("").to_string();
            out.insert((tenant, server.to_string()));
        }
    }
    out
}

fn descends_from(o: &ObjectInfo, image: ObjectId, by_id: &HashMap<ObjectId, &ObjectInfo>) -> bool {
    let mut cur = o;
    // The chain is a tree path: bounded by the number of objects.
    for _ in 0..=by_id.len() {
        let via_ref = meta::get(cur, meta::IMAGE_REF).and_then(|r| r.parse::<ObjectId>().ok());
        if cur.parent == Some(image) || via_ref == Some(image) {
            return true;
        }
        match cur.parent.or(via_ref).and_then(|p| by_id.get(&p)) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    false
}

/// The servers of the caller's volumes using image `id`, sorted.
fn servers_of(ctx: &Ctx, id: ObjectId) -> Vec<String> {
    servers_using(ctx.dom.store(), id)
        .into_iter()
        .filter(|(t, _)| t == ctx.dom.tenant_id())
        .map(|(_, s)| s)
        .collect()
}

/// `GET /api/image/`: names sorted by `order_by` (name or created, `-`
/// for descending); `full` or `extended` for whole objects.
#[utoipa::path(
    get,
    path = "/image/",
    operation_id = "listImages",
    tag = "image",
    summary = "The images the tenant sees: names, or objects with `full`/`extended`",
    params(
        ("full" = Option<bool>, Query, description = "whole images"),
        ("extended" = Option<bool>, Query, description = "whole images with dcs and vms"),
        ("order_by" = Option<String>, Query, description = "name or created, `-` for descending"),
    ),
    responses(
        (status = 200, description = "SUCCESS: the images", body = Envelope<Vec<ImageItem>>),
        (status = 400, description = "FAILURE: field errors", body = Envelope<FieldErrors>),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
pub fn list(ctx: &Ctx) -> DResult<Reply> {
    let d = Data::of(ctx.req)?;
    let full = d.boolean("full")?.unwrap_or(false);
    let extended = d.boolean("extended")?.unwrap_or(false);
    let order = d
        .string("order_by", 16)?
        .unwrap_or_else(|| "name".to_string());
    let (desc, key) = match order.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, order.as_str()),
    };
    let mut imgs: Vec<ObjectInfo> = ctx.dom.objects(ObjectKind::Image);
    match key {
        "name" => imgs.sort_by_key(visibility::image_name),
        "created" => imgs.sort_by_key(|o| (o.created, o.id)),
        _ => {
            return Err(Fail::invalid(
                "order_by",
                format!(
                    "Invalid order_by field \"{}\". Available fields: name, created.",
                    order.escape_debug()
                ),
            ))
        }
    }
    if desc {
        imgs.reverse();
    }
    let result: Vec<ImageItem> = if extended {
        imgs.iter()
            .map(|o| ImageItem::Image(Box::new(extended_view(ctx, o))))
            .collect()
    } else if full {
        imgs.iter()
            .map(|o| ImageItem::Image(Box::new(view(o))))
            .collect()
    } else {
        imgs.iter()
            .map(|o| ImageItem::Name(visibility::image_name(o)))
            .collect()
    };
    Ok(success(&result))
}

/// `GET /api/image/<name>/` (`extended` for more).
#[utoipa::path(
    get,
    path = "/image/{name}/",
    operation_id = "showImage",
    tag = "image",
    summary = "An image",
    params(
        ("name" = String, Path, description = "the image name (or UUID)"),
        ("extended" = Option<bool>, Query, description = "with dcs and vms"),
    ),
    responses(
        (status = 200, description = "SUCCESS: the image", body = Envelope<Image>),
        (status = 400, description = "FAILURE: field errors", body = Envelope<FieldErrors>),
        (status = 404, description = "no such image", body = Detail),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
pub fn show(ctx: &Ctx, name: &str) -> DResult<Reply> {
    let d = Data::of(ctx.req)?;
    let extended = d.boolean("extended")?.unwrap_or(false);
    let o = find(ctx, name)?;
    Ok(success(&if extended {
        extended_view(ctx, &o)
    } else {
        view(&o)
    }))
}

/// The Danube fields a PUT or an import may set, validated.
#[derive(Default)]
pub struct Fields {
    pub alias: Option<String>,
    pub version: Option<String>,
    pub access: Option<i64>,
    pub owner: Option<String>,
    pub desc: Option<String>,
    pub resize: Option<bool>,
    pub deploy: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub dc_bound: Option<bool>,
}

impl Fields {
    /// Parses and validates the fields present in `d`.
    pub fn parse(ctx: &Ctx, d: &Data) -> DResult<Fields> {
        let alias = d.string("alias", MAX_ALIAS)?;
        if let Some(a) = &alias {
            if a.trim().is_empty() {
                return Err(Fail::invalid("alias", "This field may not be blank."));
            }
        }
        let version = d.string("version", MAX_VERSION)?;
        if let Some(v) = &version {
            if v.trim().is_empty() {
                return Err(Fail::invalid("version", "This field may not be blank."));
            }
        }
        let access = d.integer("access")?.map(check_access).transpose()?;
        let owner = d.string("owner", 255)?;
        if let Some(o) = owner.as_deref().filter(|o| *o != ctx.dom.tenant_id()) {
            // Handing an image to another tenant is an operator's action;
            // only an operator learns whether a tenant exists.
            if !ctx.dom.scope.admin {
                return Err(Fail::detail(
                    403,
                    "You do not have permission to perform this action.",
                ));
            }
            if !ctx.dom.state.auth().tenants().iter().any(|t| t.id == o) {
                return Err(Fail::invalid(
                    "owner",
                    format!("Object with username={} does not exist.", o.escape_debug()),
                ));
            }
        }
        Ok(Fields {
            alias,
            version,
            access,
            owner,
            desc: d.string("desc", MAX_DESC)?,
            resize: d.boolean("resize")?,
            deploy: d.boolean("deploy")?,
            tags: d.tags("tags")?,
            dc_bound: d.boolean("dc_bound")?,
        })
    }

    /// Writes the fields that are set into `m`.
    pub fn apply(&self, m: &mut BTreeMap<String, String>) {
        let b = |v: bool| if v { "true" } else { "false" };
        if let Some(a) = &self.alias {
            meta::set(m, super::ALIAS, Some(a));
        }
        if let Some(v) = &self.version {
            meta::set(m, super::VERSION, Some(v));
        }
        if let Some(a) = self.access {
            meta::set(m, super::ACCESS, Some(&a.to_string()));
        }
        if let Some(d) = &self.desc {
            meta::set(m, super::DESC, Some(d));
            meta::set(m, meta::DISPLAY_DESCRIPTION, Some(d));
        }
        if let Some(r) = self.resize {
            meta::set(m, super::RESIZE, Some(b(r)));
        }
        if let Some(r) = self.deploy {
            meta::set(m, super::DEPLOY, Some(b(r)));
        }
        if let Some(t) = &self.tags {
            meta::set(m, super::TAGS, Some(&json!(t).to_string()));
        }
        if let Some(r) = self.dc_bound {
            meta::set(m, super::DC_BOUND, Some(b(r)));
        }
    }
}

/// 400 unless no other image of `tenant` has this alias and version
/// (aliases are per tenant, as names are). Runs under the API lock.
pub fn check_alias_version(
    all: &[ObjectInfo],
    tenant: &str,
    except: Option<ObjectId>,
    name: &str,
    alias: Option<&str>,
    version: Option<&str>,
) -> DResult<()> {
    let alias = alias.unwrap_or(name);
    let version = version.unwrap_or("1.0");
    let clash = all.iter().any(|o| {
        o.kind == ObjectKind::Image
            && Some(o.id) != except
            && visibility::owned(o, tenant)
            && meta::get(o, super::ALIAS).unwrap_or(&visibility::image_name(o)) == alias
            && meta::get(o, super::VERSION).unwrap_or("1.0") == version
    });
    if clash {
        return Err(Fail::invalid(
            "alias",
            "Image alias and version must be unique.",
        ));
    }
    Ok(())
}

/// Hands a new image `o` of the caller to `f.owner` when that is another
/// tenant (an operator's action, checked by [`Fields::parse`]); undone
/// with `txn` if that fails.
pub fn hand_over(
    dom: &domain::Ctx,
    locked: &Locked,
    f: &Fields,
    o: ObjectInfo,
) -> DResult<ObjectInfo> {
    match f.owner.as_deref() {
        Some(to) if to != dom.tenant_id() => {
            let mut txn = Txn::new(dom.store());
            txn.made(o.id);
            let o = ops::transfer_image(dom, locked, &o, to)?;
            txn.commit();
            Ok(o)
        }
        _ => Ok(o),
    }
}

/// `PUT /api/image/<name>/`: alias, access, owner, desc, version, resize,
/// deploy, tags, dc_bound. A new owner is an operator's action (403).
#[utoipa::path(
    put,
    path = "/image/{name}/",
    operation_id = "updateImage",
    tag = "image",
    summary = "Change an image's fields",
    description = "417 `Detail` while the image is not ready.",
    params(
        ("name" = String, Path, description = "the image name (or UUID)"),
    ),
    request_body(content = ImageUpdate, description = "JSON object (query parameters for GET)"),
    responses(
        (status = 200, description = "SUCCESS: the image", body = Envelope<Image>),
        (status = 400, description = "FAILURE: field errors", body = Envelope<FieldErrors>),
        (status = 403, description = "another tenant's image", body = Detail),
        (status = 404, description = "no such image", body = Detail),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
pub fn update(ctx: &Ctx, name: &str) -> DResult<Reply> {
    let d = Data::of(ctx.req)?;
    let f = Fields::parse(ctx, &d)?;
    let locked = ctx.dom.lock();
    let o = find_owned(ctx, name)?;
    if o.status != meta::AVAILABLE {
        return Err(Fail::detail(417, "Image status is not OK."));
    }
    let mut m = o.metadata.clone();
    f.apply(&mut m);
    check_alias_version(
        &ctx.dom.store().list(),
        ctx.dom.tenant_id(),
        Some(o.id),
        &visibility::image_name(&o),
        m.get(super::ALIAS).map(String::as_str),
        m.get(super::VERSION).map(String::as_str),
    )?;
    // A new owner is written with the other fields in one step: a refused
    // hand-over (403, 413) changes nothing.
    let o = match f.owner.as_deref() {
        Some(to) if to != ctx.dom.tenant_id() => {
            let edited = ObjectInfo { metadata: m, ..o };
            ops::transfer_image(&ctx.dom, &locked, &edited, to)?
        }
        _ => ops::update(&ctx.dom, &locked, &o, m)?,
    };
    tracing::info!(tenant = ctx.dom.tenant_id(), image = %o.id, "danube: image updated");
    Ok(success(&view(&o)))
}

/// `DELETE /api/image/<name>/`: 428 while a server uses a volume made
/// from it (mark it deleted with `access=4` instead).
#[utoipa::path(
    delete,
    path = "/image/{name}/",
    operation_id = "deleteImage",
    tag = "image",
    summary = "Delete an image",
    params(
        ("name" = String, Path, description = "the image name (or UUID)"),
    ),
    responses(
        (status = 200, description = "SUCCESS: deleted", body = Envelope<Message>),
        (status = 403, description = "another tenant's image", body = Detail),
        (status = 404, description = "no such image", body = Detail),
        (status = 428, description = "a server uses a volume made from it", body = Detail),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
pub fn delete(ctx: &Ctx, name: &str) -> DResult<Reply> {
    let locked = ctx.dom.lock();
    let o = find_owned(ctx, name)?;
    if !servers_using(ctx.dom.store(), o.id).is_empty() {
        return Err(Fail::detail(428, "Image is used by some VMs"));
    }
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(success(&Message {
        message: format!("Image {} deleted", visibility::image_name(&o)),
    }))
}

/// `GET /api/image/<name>/vm/`: the caller's servers using the image.
#[utoipa::path(
    get,
    path = "/image/{name}/vm/",
    operation_id = "imageVms",
    tag = "image",
    summary = "The caller's servers using an image",
    params(
        ("name" = String, Path, description = "the image name (or UUID)"),
    ),
    responses(
        (status = 200, description = "SUCCESS: server ids", body = Envelope<Vec<String>>),
        (status = 404, description = "no such image", body = Detail),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
pub fn vms(ctx: &Ctx, name: &str) -> DResult<Reply> {
    let o = find(ctx, name)?;
    Ok(success(&servers_of(ctx, o.id)))
}
