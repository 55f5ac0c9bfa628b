//! Cinder volumes: list (brief and `detail`, filters, sort, `marker` and
//! `limit` paging), `summary`, create (empty, from a snapshot, from another
//! volume, from an engine image, from a backup at 3.47+), show, update, delete (`?cascade=true`
//! takes the volume's snapshots with it), metadata; the actions are in
//! `actions.rs`. Every change goes through the domain's operations
//! (`domain::ops`), whose creates are one durable O(1) engine step, so a
//! new volume is `available` at once.

use super::info::{DEFAULT_TYPE, ZONE};
use super::params::{
    opt_string, page, parse_bool, parse_gb, parse_metadata, sort_keys, wrapped, MAX_DESCRIPTION,
    MAX_FIELD,
};
use super::views::{
    reply, Link, MetaItem, Metadata, Volume, VolumeAttachment, VolumeBrief, VolumeBriefList,
    VolumeList, VolumeOne, VolumeSummary, VolumeSummaryFields,
};
use super::Ctx;
use crate::domain::ops::{self, Edit, Source};
use crate::domain::Locked;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta::{self, GIB};
use engine::{ObjectInfo, ObjectKind};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Unix seconds as Cinder writes times: `2026-12-06T21:00:00.000000`.
pub(crate) fn cinder_time(secs: u64) -> String {
    format!("{}.000000", meta::format_time(secs).replace(' ', "T"))
}

/// The metadata item `key` of `o`, if set.
pub(crate) fn opt(o: &ObjectInfo, key: &str) -> Option<String> {
    meta::get(o, key).map(str::to_string)
}

/// The links of an object under `collection`.
pub(crate) fn links(ctx: &Ctx, collection: &str, id: &str) -> Vec<Link> {
    vec![
        Link::new("self", format!("{}/{collection}/{id}", ctx.base())),
        Link::new("bookmark", format!("{}/{collection}/{id}", ctx.bookmark())),
    ]
}

/// The volume's image metadata (prefix stripped).
fn image_metadata(o: &ObjectInfo) -> BTreeMap<String, String> {
    o.metadata
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(meta::IMAGE_META_PREFIX)
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect()
}

/// The detailed volume view. `extended` adds what Cinder's show and
/// detailed list add to it (and its create and update answers do not):
/// the project, image metadata and, for admins, host and migration fields.
pub(crate) fn view(ctx: &Ctx, o: &ObjectInfo, extended: bool) -> Volume {
    let id = o.id.to_string();
    let (project, user) = ctx.owner_of(o);
    let attachments = match meta::get(o, meta::ATTACHED_SERVER) {
        Some(server) => vec![VolumeAttachment {
            id: id.clone(),
            attachment_id: id.clone(),
            volume_id: id.clone(),
            server_id: server.to_string(),
            host_name: None,
            device: meta::get(o, meta::ATTACHED_DEVICE)
                .unwrap_or("")
                .to_string(),
            attached_at: cinder_time(o.created),
        }],
        None => Vec::new(),
    };
    let bootable = meta::get(o, meta::BOOTABLE) == Some("true");
    let admin = ctx.tenant.admin;
    let shared = ctx.version.at_least(48);
    let image = image_metadata(o);
    Volume {
        links: links(ctx, "volumes", &id),
        id,
        name: opt(o, meta::DISPLAY_NAME),
        description: opt(o, meta::DISPLAY_DESCRIPTION),
        status: o.status.clone(),
        size: meta::gb(o.size),
        availability_zone: ZONE.into(),
        created_at: cinder_time(o.created),
        updated_at: cinder_time(o.created),
        attachments,
        bootable: bootable.to_string(),
        encrypted: false,
        multiattach: false,
        volume_type: super::types::name_of(&crate::domain::settings::read_store(ctx.store()), o),
        snapshot_id: opt(o, meta::SOURCE_SNAPSHOT),
        source_volid: opt(o, meta::SOURCE_VOLUME),
        metadata: meta::user_metadata(o),
        user_id: user,
        replication_status: None,
        consistencygroup_id: None,
        migration_status: admin.then_some(None),
        group_id: ctx
            .version
            .at_least(13)
            .then(|| opt(o, super::groups::GROUP_ID)),
        shared_targets: shared.then_some(false),
        service_uuid: shared.then_some(None),
        tenant_id: extended.then_some(project),
        volume_image_metadata: (extended && !image.is_empty()).then_some(image),
        host: (extended && admin).then(|| super::admin::POOL.to_string()),
        migstat: (extended && admin).then_some(None),
        name_id: (extended && admin).then_some(None),
    }
}

fn brief(ctx: &Ctx, o: &ObjectInfo) -> VolumeBrief {
    VolumeBrief {
        id: o.id.to_string(),
        name: opt(o, meta::DISPLAY_NAME),
        links: links(ctx, "volumes", &o.id.to_string()),
    }
}

/// A sort key's value of an object, for comparing (objects made in the
/// same second order by id, as the store lists them).
fn sort_value(o: &ObjectInfo, key: &str) -> (u64, String) {
    match key {
        "size" => (o.size, String::new()),
        "created_at" | "updated_at" => (o.created, o.id.to_string()),
        "id" => (0, o.id.to_string()),
        "status" => (0, o.status.clone()),
        _ => (
            0,
            meta::get(o, meta::DISPLAY_NAME).unwrap_or("").to_string(),
        ),
    }
}

/// Sorts `items` by the request's sort keys (ties by id).
pub(crate) fn sort(ctx: &Ctx, items: &mut [ObjectInfo], known: &[&str]) -> Result<()> {
    let keys = sort_keys(ctx, known)?;
    items.sort_by(|a, b| {
        for k in &keys {
            let ord = sort_value(a, &k.key).cmp(&sort_value(b, &k.key));
            let ord = if k.descending { ord.reverse() } else { ord };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        a.id.cmp(&b.id)
    });
    Ok(())
}

const SORT_KEYS: &[&str] = &[
    "created_at",
    "updated_at",
    "id",
    "name",
    "display_name",
    "size",
    "status",
];

fn matches_filters(ctx: &Ctx, o: &ObjectInfo) -> bool {
    for (k, v) in &ctx.req.query {
        let ok = match k.as_str() {
            "name" | "display_name" => meta::get(o, meta::DISPLAY_NAME) == Some(v.as_str()),
            "name~" => meta::get(o, meta::DISPLAY_NAME).is_some_and(|n| n.contains(v.as_str())),
            "status" => o.status == *v,
            "size" => v.parse::<u64>().is_ok_and(|n| n == meta::gb(o.size)),
            "availability_zone" => v == ZONE,
            "bootable" => {
                let b = meta::get(o, meta::BOOTABLE) == Some("true");
                parse_bool(&json!(v), "bootable").is_ok_and(|x| x == b)
            }
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `GET volumes` (brief) and `GET volumes/detail`.
pub fn list(ctx: &Ctx, detail: bool) -> Result<Reply> {
    let mut all: Vec<ObjectInfo> = ctx
        .listed(ObjectKind::Volume)
        .into_iter()
        .filter(|o| matches_filters(ctx, o))
        .collect();
    sort(ctx, &mut all, SORT_KEYS)?;
    let (items, next) = page(ctx, &all, if detail { "volumes/detail" } else { "volumes" })?;
    let count = (ctx.version.at_least(45)
        && ctx
            .req
            .query_param("with_count")
            .is_some_and(|w| parse_bool(&json!(w), "with_count").unwrap_or(false)))
    .then_some(all.len());
    Ok(if detail {
        reply(
            200,
            &VolumeList {
                volumes: items.iter().map(|o| view(ctx, o, true)).collect(),
                volumes_links: next,
                count,
            },
        )
    } else {
        reply(
            200,
            &VolumeBriefList {
                volumes: items.iter().map(|o| brief(ctx, o)).collect(),
                volumes_links: next,
                count,
            },
        )
    })
}

/// `GET volumes/summary` (3.12+).
pub fn summary(ctx: &Ctx) -> Result<Reply> {
    let all = ctx.objects(ObjectKind::Volume);
    let total: u64 = all.iter().map(|o| meta::gb(o.size)).sum();
    let metadata = ctx.version.at_least(36).then(|| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for o in &all {
            for (k, v) in meta::user_metadata(o) {
                let e = m.entry(k).or_default();
                if !e.contains(&v) {
                    e.push(v);
                }
            }
        }
        m
    });
    let summary = VolumeSummaryFields {
        total_count: all.len(),
        total_size: total,
        metadata,
    };
    Ok(reply(200, &VolumeSummary { summary }))
}

/// `GET volumes/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = ctx.volume_any(id)?;
    Ok(reply(
        200,
        &VolumeOne {
            volume: view(ctx, &o, true),
        },
    ))
}

fn find_image(ctx: &Ctx, key: &str) -> Result<ObjectInfo> {
    let invalid = || {
        ApiError::bad_request(format!(
            "Invalid image identifier or unable to access requested image ({}): \
             images are the engine's images (see GET /image/v2/images).",
            key.escape_debug()
        ))
    };
    match ctx.dom.find_image(key)? {
        Some(o) if crate::domain::visibility::image_usable(&o, &ctx.tenant.id) => Ok(o),
        _ => Err(invalid()),
    }
}

fn id_field(m: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    Ok(opt_string(m, key, MAX_FIELD)?.filter(|s| !s.is_empty()))
}

/// `POST volumes`: 202 with the new volume.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let body = wrapped(ctx, "volume")?;
    let size = body
        .get("size")
        .filter(|v| !v.is_null())
        .map(|v| parse_gb(v, "size"))
        .transpose()?;
    let name = match opt_string(&body, "name", MAX_FIELD)? {
        Some(n) => Some(n),
        None => opt_string(&body, "display_name", MAX_FIELD)?,
    };
    let description = match opt_string(&body, "description", MAX_DESCRIPTION)? {
        Some(d) => Some(d),
        None => opt_string(&body, "display_description", MAX_DESCRIPTION)?,
    };
    let snapshot_id = id_field(&body, "snapshot_id")?;
    let source_volid = id_field(&body, "source_volid")?;
    let image_ref = match id_field(&body, "imageRef")? {
        Some(i) => Some(i),
        None => id_field(&body, "image_id")?,
    };
    let backup_id = id_field(&body, "backup_id")?;
    if backup_id.is_some() && !ctx.version.at_least(47) {
        return Err(ApiError::bad_request(
            "Invalid input received: volumes from backups need microversion 3.47.",
        ));
    }
    let sources = [&snapshot_id, &source_volid, &image_ref, &backup_id]
        .iter()
        .filter(|s| s.is_some())
        .count();
    if sources > 1 {
        return Err(ApiError::bad_request(
            "Invalid input received: only one of snapshot_id, source_volid, imageRef and backup_id may be given.",
        ));
    }
    let vtype = match opt_string(&body, "volume_type", MAX_FIELD)? {
        Some(t) => super::types::find(ctx, &t).map_err(|_| {
            ApiError::not_found(format!(
                "Volume type with name {} could not be found.",
                t.escape_debug()
            ))
        })?,
        None => super::types::find(ctx, DEFAULT_TYPE)?,
    };
    super::encryption::refuse_encrypted(ctx, &vtype)?;
    if let Some(z) = opt_string(&body, "availability_zone", MAX_FIELD)? {
        if z != ZONE {
            return Err(ApiError::bad_request(format!(
                "Invalid input received: Availability zone '{}' is invalid.",
                z.escape_debug()
            )));
        }
    }
    if let Some(v) = body.get("multiattach").filter(|v| !v.is_null()) {
        if parse_bool(v, "multiattach")? {
            return Err(ApiError::bad_request(
                "Invalid input received: multiattach volumes are not supported by this server.",
            ));
        }
    }
    let user_meta = parse_metadata(body.get("metadata"))?.unwrap_or_default();

    let locked = ctx.dom.lock();
    let src = match (&snapshot_id, &source_volid, &image_ref, &backup_id) {
        (Some(s), _, _, _) => Some((ctx.snapshot(s)?, 's')),
        (_, Some(v), _, _) => Some((ctx.volume(v)?, 'v')),
        (_, _, Some(i), _) => Some((find_image(ctx, i)?, 'i')),
        (_, _, _, Some(b)) => Some((super::backups::find(ctx, b)?, 'b')),
        _ => None,
    };
    let group = super::groups::for_new_volume(ctx, &body, &vtype.id)?;
    let size_gb = match (&src, size) {
        (None, None) => {
            return Err(ApiError::bad_request(
                "Invalid input received: size is required for a new empty volume.",
            ))
        }
        (None, Some(n)) => n,
        (Some((s, _)), n) => {
            let min = meta::gb(s.size).max(1);
            match n {
                None => min,
                Some(n) if n >= min => n,
                Some(n) => {
                    return Err(ApiError::bad_request(format!(
                    "Invalid input received: volume size {n}G is smaller than its source ({min}G)."
                )))
                }
            }
        }
    };
    let mut m = ops::new_metadata(
        &ctx.dom,
        &user_meta,
        &[
            (meta::DISPLAY_NAME, name.as_deref()),
            (meta::DISPLAY_DESCRIPTION, description.as_deref()),
            (meta::VOLUME_TYPE, Some(vtype.name.as_str())),
            (meta::AVAILABILITY_ZONE, Some(ZONE)),
            (
                super::types::TYPE_ID,
                Some(vtype.id.as_str()).filter(|id| *id != super::info::DEFAULT_TYPE_ID),
            ),
            (super::groups::GROUP_ID, group.as_deref()),
        ],
    );
    let source = match &src {
        None => Source::Empty,
        Some((s, 's')) => Source::Snapshot(s),
        Some((b, 'b')) => Source::Volume(b),
        Some((v, 'v')) => {
            meta::set(&mut m, meta::SOURCE_VOLUME, Some(&v.id.to_string()));
            for (k, val) in &v.metadata {
                if k.starts_with(meta::IMAGE_META_PREFIX) || k == meta::BOOTABLE {
                    m.insert(k.clone(), val.clone());
                }
            }
            Source::Volume(v)
        }
        Some((i, _)) => {
            meta::set(&mut m, meta::BOOTABLE, Some("true"));
            m.insert(
                format!("{}image_id", meta::IMAGE_META_PREFIX),
                i.id.to_string(),
            );
            m.insert(
                format!("{}image_name", meta::IMAGE_META_PREFIX),
                crate::domain::visibility::image_name(i),
            );
            Source::Image(i)
        }
    };
    let mut o = ops::create_volume(&ctx.dom, &locked, source, size_gb * GIB, m)?;
    if let Some(why) = super::types::unmet(&vtype) {
        // As Cinder's scheduler: the volume exists, in error, and a user
        // message says why.
        let id = o.id.to_string();
        ctx.dom.save(&locked, o.id, "error", o.metadata.clone())?;
        super::messages::volume_unschedulable(ctx, &locked, &id, &why)?;
        o = ctx.store().get(o.id)?;
        tracing::info!(tenant = %ctx.tenant.id, volume = %id, reason = %why, "cinder: volume not schedulable");
    }
    Ok(reply(
        202,
        &VolumeOne {
            volume: view(ctx, &o, false),
        },
    ))
}

/// `PUT volumes/{id}`: name, description (also the `display_` forms) and
/// metadata (which replaces the old).
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let body = wrapped(ctx, "volume")?;
    let field = |a: &str, b: &str, max| -> Result<Option<Option<String>>> {
        if body.contains_key(a) {
            Ok(Some(opt_string(&body, a, max)?))
        } else if body.contains_key(b) {
            Ok(Some(opt_string(&body, b, max)?))
        } else {
            Ok(None)
        }
    };
    let name = field("name", "display_name", MAX_FIELD)?;
    let description = field("description", "display_description", MAX_DESCRIPTION)?;
    let edit = Edit {
        name,
        description,
        user: parse_metadata(body.get("metadata"))?,
    };
    let locked = ctx.dom.lock();
    let o = ctx.volume(id)?;
    let o = ops::update(&ctx.dom, &locked, &o, edit.apply(&o))?;
    Ok(reply(
        200,
        &VolumeOne {
            volume: view(ctx, &o, false),
        },
    ))
}

/// Writes metadata `m` of `o` (the caller's), status unchanged.
pub(crate) fn save(
    ctx: &Ctx,
    locked: &Locked,
    o: &ObjectInfo,
    m: BTreeMap<String, String>,
) -> Result<ObjectInfo> {
    ops::update(&ctx.dom, locked, o, m)
}

/// The snapshots of volume `o` (its owner's; an admin may ask about any
/// project's volume).
pub(crate) fn snapshots_of(ctx: &Ctx, o: &ObjectInfo) -> Vec<ObjectInfo> {
    let owner = meta::get(o, meta::TENANT);
    ctx.dom
        .objects_any(ObjectKind::Snapshot, owner)
        .into_iter()
        .filter(|s| s.parent == Some(o.id))
        .collect()
}

/// `DELETE volumes/{id}` (and `os-force_delete` with `force`): 202. An
/// attached volume, or one with snapshots without `?cascade=true`, is 400.
pub fn delete(ctx: &Ctx, id: &str, force: bool) -> Result<Reply> {
    let cascade = ctx
        .req
        .query_param("cascade")
        .is_some_and(|c| parse_bool(&json!(c), "cascade").unwrap_or(false));
    let locked = ctx.dom.lock();
    // An admin may delete any project's volume, as Cinder's operators.
    let o = ctx.volume_any(id)?;
    super::groups::refuse_delete(ctx, &o)?;
    let attached = ops::attached(&o);
    let deletable = [
        "available",
        "error",
        "error_restoring",
        "error_extending",
        "error_managing",
    ];
    if !force && (attached || !deletable.contains(&o.status.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be available or error or error_restoring or \
             error_extending or error_managing and must not be migrating, attached, belong to a \
             group, have snapshots or be disassociated from snapshots after volume transfer. \
             (status: {})",
            o.status
        )));
    }
    let snaps = snapshots_of(ctx, &o);
    if !snaps.is_empty() && !cascade && !force {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume {} still has {} dependent snapshots; delete them or pass ?cascade=true.",
            o.id,
            snaps.len()
        )));
    }
    if cascade {
        for s in &snaps {
            ops::operator_delete(&ctx.dom, &locked, s)?;
        }
    }
    let o = if attached && force {
        ops::detach(&ctx.dom, &locked, &o)?
    } else {
        o
    };
    ops::operator_delete(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(202))
}

/// `volumes/{id}/metadata`: GET shows, POST merges, PUT replaces.
pub fn metadata(ctx: &Ctx, id: &str) -> Result<Reply> {
    user_metadata(
        ctx,
        || ctx.volume(id),
        "Malformed request body: expected {\"metadata\": {...}}",
    )
}

/// The `metadata` collection of the object `find` looks up (a volume or a
/// snapshot): GET shows, POST merges, PUT replaces; a body that is not an
/// object is a 400 saying `malformed`.
pub(crate) fn user_metadata(
    ctx: &Ctx,
    find: impl Fn() -> Result<ObjectInfo>,
    malformed: &str,
) -> Result<Reply> {
    if ctx.req.method.as_str() == "GET" {
        let o = find()?;
        return Ok(reply(
            200,
            &Metadata {
                metadata: meta::user_metadata(&o),
            },
        ));
    }
    let body = match ctx.req.json_body()? {
        Some(Value::Object(m)) => m,
        _ => return Err(ApiError::bad_request(malformed)),
    };
    let new = parse_metadata(body.get("metadata"))?
        .ok_or_else(|| ApiError::bad_request("Malformed request body: metadata is required"))?;
    let locked = ctx.dom.lock();
    let o = find()?;
    let mut user = if ctx.req.method.as_str() == "PUT" {
        BTreeMap::new()
    } else {
        meta::user_metadata(&o)
    };
    user.extend(new);
    save(ctx, &locked, &o, meta::with_user_metadata(&o, &user))?;
    Ok(reply(200, &Metadata { metadata: user }))
}

/// `volumes/{id}/metadata/{key}`: GET, PUT (`{"meta": {key: value}}`),
/// DELETE.
pub fn metadata_item(ctx: &Ctx, id: &str, key: &str) -> Result<Reply> {
    user_metadata_item(ctx, || ctx.volume(id), key)
}

/// One item `key` of the `metadata` of the object `find` looks up (a
/// volume or a snapshot): GET, PUT (`{"meta": {key: value}}`), DELETE.
pub(crate) fn user_metadata_item(
    ctx: &Ctx,
    find: impl Fn() -> Result<ObjectInfo>,
    key: &str,
) -> Result<Reply> {
    let missing = || {
        ApiError::not_found(format!(
            "Metadata item was not found: {}",
            key.escape_debug()
        ))
    };
    match ctx.req.method.as_str() {
        "GET" => {
            let o = find()?;
            let user = meta::user_metadata(&o);
            let v = user.get(key).ok_or_else(missing)?;
            let item = BTreeMap::from([(key.to_string(), v.clone())]);
            Ok(reply(200, &MetaItem { meta: item }))
        }
        "PUT" => {
            let body = match ctx.req.json_body()? {
                Some(Value::Object(m)) => m,
                _ => return Err(ApiError::bad_request("Malformed request body")),
            };
            let item = parse_metadata(body.get("meta"))?
                .filter(|m| m.len() == 1 && m.contains_key(key))
                .ok_or_else(|| ApiError::bad_request("Request body and URI mismatch"))?;
            let locked = ctx.dom.lock();
            let o = find()?;
            let mut user = meta::user_metadata(&o);
            user.extend(item.clone());
            save(ctx, &locked, &o, meta::with_user_metadata(&o, &user))?;
            Ok(reply(200, &MetaItem { meta: item }))
        }
        _ => {
            let locked = ctx.dom.lock();
            let o = find()?;
            let mut user = meta::user_metadata(&o);
            user.remove(key).ok_or_else(missing)?;
            save(ctx, &locked, &o, meta::with_user_metadata(&o, &user))?;
            Ok(Reply::empty(200))
        }
    }
}
