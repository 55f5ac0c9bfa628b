//! Cinder backups, stored as engine images: create (an O(1) image of the
//! volume, or of one of its snapshots; an in-use volume needs `force`;
//! `incremental` is accepted and records the volume's latest backup as
//! its parent), list (and `detail`; filters, sort, paging), show, update
//! (3.9: name, description; 3.43: metadata), `os-reset_status` (admins),
//! delete
//! (not while incremental backups depend on it), and restore, to a new
//! volume or over an existing one at least the backup's size (its
//! contents replaced in O(1), as a revert does; a larger volume keeps its
//! size, the rest reading as zeroes).
//!
//! A backup is the caller's private image with `api.cinder_backup_volume`
//! set, so every dialect sees it as an image, and it counts under the one
//! quota rule as images do (`snapshots` and `gigabytes`); the quota set's
//! `backups` and `backup_gigabytes` report the backups' use, unlimited
//! beyond that rule.

use super::info::{DEFAULT_TYPE, ZONE};
use super::params::{
    opt_string, page, parse_bool, parse_metadata, wrapped, MAX_DESCRIPTION, MAX_FIELD,
};
use super::views::{
    reply, Backup, BackupBrief, BackupBriefList, BackupBriefOne, BackupList, BackupOne, Restore,
    RestoreOne,
};
use super::volumes::{cinder_time, links, opt, sort};
use super::Ctx;
use crate::domain::ops::{self, Source, Txn};
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind, ObjectUpdate};
use serde_json::Value;

/// The volume a backup was made of (its presence marks a backup).
pub(crate) const BACKUP_VOLUME: &str = "api.cinder_backup_volume";
/// The backup an incremental backup follows.
const BACKUP_PARENT: &str = "api.cinder_backup_parent";
/// The snapshot a backup was made of, if any.
pub(crate) const BACKUP_SNAPSHOT: &str = "api.cinder_backup_snapshot";
/// When a backup was made, in nanoseconds (orders backups made within
/// one second, whose engine times are equal).
pub(crate) const BACKUP_AT: &str = "api.cinder_backup_at";
/// The id an imported backup was given (`backup_records.rs`), which the
/// API shows instead of its engine image's id.
pub(crate) const BACKUP_ALIAS: &str = "api.cinder_backup_id";

/// Marks the scratch objects of a restore over an existing volume (the
/// backup's id); they live only while the restore runs.
const RESTORE_SCRATCH: &str = "api.cinder_restore_scratch";

/// A backup's creation time in nanoseconds, as well as it is known.
fn made_at(o: &ObjectInfo) -> u128 {
    meta::get(o, BACKUP_AT)
        .and_then(|t| t.parse().ok())
        .unwrap_or(u128::from(o.created) * 1_000_000_000)
}

/// The caller's backups, oldest first.
pub(crate) fn backups(ctx: &Ctx) -> Vec<ObjectInfo> {
    ctx.objects(ObjectKind::Image)
        .into_iter()
        .filter(|o| ctx.dom.owns(o) && meta::get(o, BACKUP_VOLUME).is_some())
        .collect()
}

/// Number and GB of the caller's backups.
pub(crate) fn usage(ctx: &Ctx) -> (u64, u64) {
    let b = backups(ctx);
    (b.len() as u64, b.iter().map(|o| meta::gb(o.size)).sum())
}

/// The id the API shows for backup `o`: the one it was imported under,
/// else its image's.
pub(crate) fn backup_id(o: &ObjectInfo) -> String {
    meta::get(o, BACKUP_ALIAS).map_or_else(|| o.id.to_string(), str::to_string)
}

/// The backup `id` among `images` (by the id the API shows).
pub(crate) fn by_id(images: Vec<ObjectInfo>, id: &str) -> Option<ObjectInfo> {
    images
        .into_iter()
        .find(|o| meta::get(o, BACKUP_VOLUME).is_some() && backup_id(o) == id)
}

/// The detailed view of backup `o` (`all`: the caller's backups).
fn view(ctx: &Ctx, o: &ObjectInfo, all: &[ObjectInfo]) -> Backup {
    let image = o.id.to_string();
    let dependent = all
        .iter()
        .any(|b| meta::get(b, BACKUP_PARENT) == Some(image.as_str()));
    let id = backup_id(o);
    Backup {
        links: links(ctx, "backups", &id),
        id,
        name: opt(o, meta::DISPLAY_NAME),
        description: opt(o, meta::DISPLAY_DESCRIPTION),
        status: o.status.clone(),
        size: meta::gb(o.size),
        volume_id: opt(o, BACKUP_VOLUME),
        snapshot_id: opt(o, BACKUP_SNAPSHOT),
        availability_zone: ZONE.into(),
        container: None,
        object_count: 0,
        fail_reason: None,
        created_at: cinder_time(o.created),
        updated_at: cinder_time(o.created),
        data_timestamp: cinder_time(o.created),
        is_incremental: meta::get(o, BACKUP_PARENT).is_some(),
        has_dependent_backups: dependent,
        project_id: ctx.version.at_least(18).then(|| ctx.tenant.id.clone()),
        metadata: ctx.version.at_least(43).then(|| meta::user_metadata(o)),
        user_id: ctx.version.at_least(56).then(|| ctx.tenant.user.clone()),
    }
}

/// The brief view of backup `o`.
pub(crate) fn brief(ctx: &Ctx, o: &ObjectInfo) -> BackupBrief {
    let id = backup_id(o);
    BackupBrief {
        links: links(ctx, "backups", &id),
        id,
        name: opt(o, meta::DISPLAY_NAME),
    }
}

/// The caller's backup `id` (404 otherwise).
pub(crate) fn find(ctx: &Ctx, id: &str) -> Result<ObjectInfo> {
    let direct = ctx.dom.find(ObjectKind::Image, id)?.filter(|o| {
        ctx.dom.owns(o)
            && meta::get(o, BACKUP_VOLUME).is_some()
            && meta::get(o, BACKUP_ALIAS).is_none()
    });
    match direct {
        Some(o) => Ok(o),
        None => by_id(backups(ctx), id)
            .ok_or_else(|| ApiError::not_found(format!("Backup {id} could not be found."))),
    }
}

/// Backup `id` of any project for an admin, else the caller's (404
/// otherwise).
pub(crate) fn find_any(ctx: &Ctx, id: &str) -> Result<ObjectInfo> {
    if !ctx.dom.scope.admin {
        return find(ctx, id);
    }
    let direct = ctx
        .dom
        .find_any(ObjectKind::Image, id)?
        .filter(|o| meta::get(o, BACKUP_VOLUME).is_some() && meta::get(o, BACKUP_ALIAS).is_none());
    let found = match direct {
        Some(o) => Some(o),
        None => by_id(ctx.dom.objects_any(ObjectKind::Image, None), id),
    };
    found.ok_or_else(|| ApiError::not_found(format!("Backup {id} could not be found.")))
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

/// `GET backups` and `GET backups/detail` (filters `name`, `status`,
/// `volume_id`).
pub fn list(ctx: &Ctx, detail: bool) -> Result<Reply> {
    let all = backups(ctx);
    let mut items: Vec<ObjectInfo> = all
        .iter()
        .filter(|o| {
            ctx.req.query.iter().all(|(k, v)| match k.as_str() {
                "name" | "display_name" => meta::get(o, meta::DISPLAY_NAME) == Some(v.as_str()),
                "status" => o.status == *v,
                "volume_id" => meta::get(o, BACKUP_VOLUME) == Some(v.as_str()),
                _ => true,
            })
        })
        .cloned()
        .collect();
    sort(ctx, &mut items, SORT_KEYS)?;
    let collection = if detail { "backups/detail" } else { "backups" };
    let (page_items, next) = page(ctx, &items, collection)?;
    Ok(if detail {
        let backups = page_items.iter().map(|o| view(ctx, o, &all)).collect();
        reply(
            200,
            &BackupList {
                backups,
                backups_links: next,
            },
        )
    } else {
        let backups = page_items.iter().map(|o| brief(ctx, o)).collect();
        reply(
            200,
            &BackupBriefList {
                backups,
                backups_links: next,
            },
        )
    })
}

/// `GET backups/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = find(ctx, id)?;
    Ok(reply(
        200,
        &BackupOne {
            backup: view(ctx, &o, &backups(ctx)),
        },
    ))
}

/// `POST backups`: 202 with the new backup's id, name and links.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let body = wrapped(ctx, "backup")?;
    let Some(volume_id) = opt_string(&body, "volume_id", MAX_FIELD)? else {
        return Err(ApiError::bad_request(
            "Invalid input received: volume_id is required",
        ));
    };
    let flag = |k: &str| match body.get(k) {
        None | Some(Value::Null) => Ok(false),
        Some(v) => parse_bool(v, k),
    };
    let force = flag("force")?;
    let incremental = flag("incremental")?;
    let name = opt_string(&body, "name", MAX_FIELD)?;
    let description = opt_string(&body, "description", MAX_DESCRIPTION)?;
    let snapshot_id = opt_string(&body, "snapshot_id", MAX_FIELD)?.filter(|s| !s.is_empty());
    let user_meta = parse_metadata(body.get("metadata"))?.unwrap_or_default();

    let locked = ctx.dom.lock();
    let vol = ctx.volume(&volume_id)?;
    if vol.status == meta::IN_USE && !force {
        return Err(ApiError::bad_request(
            "Invalid volume: Backing up an in-use volume must use the force flag.",
        ));
    }
    if vol.status != meta::AVAILABLE && vol.status != meta::IN_USE {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume to be backed up must be available or in-use, but the \
             current status is \"{}\".",
            vol.status
        )));
    }
    let src = match &snapshot_id {
        Some(s) => {
            let snap = ctx.snapshot(s)?;
            if snap.parent != Some(vol.id) {
                return Err(ApiError::bad_request(format!(
                    "Invalid snapshot: snapshot {} is not a snapshot of volume {}",
                    snap.id, vol.id
                )));
            }
            snap
        }
        None => vol.clone(),
    };
    let vid = vol.id.to_string();
    let parent = if incremental {
        let latest = backups(ctx)
            .into_iter()
            .filter(|b| meta::get(b, BACKUP_VOLUME) == Some(vid.as_str()))
            .max_by_key(made_at)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "Invalid backup: No backups available to do an incremental backup.",
                )
            })?;
        Some(latest.id.to_string())
    } else {
        None
    };
    let snap_id = snapshot_id.as_ref().map(|_| src.id.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string();
    let m = ops::new_metadata(
        &ctx.dom,
        &user_meta,
        &[
            (meta::DISPLAY_NAME, name.as_deref()),
            (meta::DISPLAY_DESCRIPTION, description.as_deref()),
            (BACKUP_VOLUME, Some(&vid)),
            (BACKUP_PARENT, parent.as_deref()),
            (BACKUP_SNAPSHOT, snap_id.as_deref()),
            (BACKUP_AT, Some(&now)),
        ],
    );
    let o = ops::capture_image(&ctx.dom, &locked, &src, None, m)?;
    tracing::info!(tenant = %ctx.tenant.id, backup = %o.id, volume = %vol.id, incremental, "cinder: backup created");
    Ok(reply(
        202,
        &BackupBriefOne {
            backup: brief(ctx, &o),
        },
    ))
}

/// `PUT backups/{id}` (3.9+): name and description (metadata from 3.43,
/// replacing the old); 200 with the backup's id, name and links.
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let body = wrapped(ctx, "backup")?;
    let field = |k: &str, max| -> Result<Option<Option<String>>> {
        if body.contains_key(k) {
            Ok(Some(opt_string(&body, k, max)?))
        } else {
            Ok(None)
        }
    };
    let user = if ctx.version.at_least(43) {
        parse_metadata(body.get("metadata"))?
    } else {
        None
    };
    let edit = ops::Edit {
        name: field("name", MAX_FIELD)?,
        description: field("description", MAX_DESCRIPTION)?,
        user,
    };
    let locked = ctx.dom.lock();
    let o = find(ctx, id)?;
    let o = ops::update(&ctx.dom, &locked, &o, edit.apply(&o))?;
    Ok(reply(
        200,
        &BackupBriefOne {
            backup: brief(ctx, &o),
        },
    ))
}

/// `POST backups/{id}/action` with `os-reset_status` (admins, on any
/// project's backup): `available` or `error`.
pub fn action(ctx: &Ctx, id: &str) -> Result<Reply> {
    let body = match ctx.req.json_body()? {
        Some(Value::Object(m)) if m.len() == 1 => m,
        _ => {
            return Err(ApiError::bad_request(
                "Malformed request body: expected one action object",
            ))
        }
    };
    let Some(args) = body.get("os-reset_status") else {
        return Err(ApiError::bad_request(
            "Invalid input received: the one backup action is os-reset_status",
        ));
    };
    ctx.require_admin("volume_extension:backup_admin_actions:reset_status")?;
    let status = args
        .get("status")
        .and_then(Value::as_str)
        .filter(|s| ["available", "error"].contains(s))
        .ok_or_else(|| {
            ApiError::bad_request("Invalid input received: status must be available or error")
        })?;
    let locked = ctx.dom.lock();
    let o = find_any(ctx, id)?;
    ctx.dom.save(&locked, o.id, status, o.metadata.clone())?;
    tracing::info!(tenant = %ctx.tenant.id, backup = %o.id, status, "cinder: backup status reset");
    Ok(Reply::empty(202))
}

/// `DELETE backups/{id}`: 202; 400 while incremental backups depend on it.
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = find(ctx, id)?;
    if o.status != meta::AVAILABLE && o.status != "error" {
        return Err(ApiError::bad_request(format!(
            "Invalid backup: Backup status must be available or error, but current status is: {}.",
            o.status
        )));
    }
    let key = o.id.to_string();
    if backups(ctx)
        .iter()
        .any(|b| meta::get(b, BACKUP_PARENT) == Some(key.as_str()))
    {
        return Err(ApiError::bad_request(
            "Invalid backup: Incremental backups exist for this backup.",
        ));
    }
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(202))
}

/// `POST backups/{id}/restore`: `{"restore": {"volume_id": ..., "name":
/// ...}}`; 202 with `backup_id`, `volume_id`, `volume_name`.
pub fn restore(ctx: &Ctx, id: &str) -> Result<Reply> {
    let body = wrapped(ctx, "restore")?;
    let volume_id = opt_string(&body, "volume_id", MAX_FIELD)?.filter(|s| !s.is_empty());
    let name = opt_string(&body, "name", MAX_FIELD)?;
    let locked = ctx.dom.lock();
    let b = find(ctx, id)?;
    if b.status != meta::AVAILABLE {
        return Err(ApiError::bad_request(format!(
            "Invalid backup: Backup status must be available, but current status is: {}.",
            b.status
        )));
    }
    let vol = match volume_id {
        None => {
            let name = name.unwrap_or_else(|| format!("restore_backup_{}", b.id));
            let m = ops::new_metadata(
                &ctx.dom,
                &Default::default(),
                &[
                    (meta::DISPLAY_NAME, Some(&name)),
                    (meta::VOLUME_TYPE, Some(DEFAULT_TYPE)),
                    (meta::AVAILABILITY_ZONE, Some(ZONE)),
                ],
            );
            ops::create_volume(&ctx.dom, &locked, Source::Volume(&b), b.size, m)?
        }
        Some(v) => overwrite(ctx, &b, &ctx.volume(&v)?)?,
    };
    tracing::info!(tenant = %ctx.tenant.id, backup = %b.id, volume = %vol.id, "cinder: backup restored");
    let restore = Restore {
        backup_id: backup_id(&b),
        volume_id: vol.id.to_string(),
        volume_name: opt(&vol, meta::DISPLAY_NAME),
    };
    Ok(reply(202, &RestoreOne { restore }))
}

/// Replaces the contents of volume `vol` (available, at least `b`'s
/// size) with backup `b`'s: a scratch volume and snapshot of the backup,
/// a revert to that snapshot, the old size kept. All O(1).
fn overwrite(ctx: &Ctx, b: &ObjectInfo, vol: &ObjectInfo) -> Result<ObjectInfo> {
    if vol.status != meta::AVAILABLE {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume to be restored to must be available, but the current \
             status is \"{}\".",
            vol.status
        )));
    }
    if vol.size < b.size {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: volume size {}G is smaller than the backup's size {}G.",
            meta::gb(vol.size),
            meta::gb(b.size)
        )));
    }
    let store = ctx.store();
    let mut txn = Txn::new(store);
    // Scratch objects have no owner (no tenant sees or pays for them) and
    // carry a key, so one a crash leaves behind can be recognised.
    let mut m = std::collections::BTreeMap::new();
    m.insert(RESTORE_SCRATCH.to_string(), b.id.to_string());
    let scratch = || ObjectUpdate {
        name: None,
        status: None,
        metadata: Some(m.clone()),
    };
    let tmp = store.derive_with(b.id, ObjectKind::Volume, None, None, scratch())?;
    txn.scratch(tmp.id);
    let snap = store.derive_with(tmp.id, ObjectKind::Snapshot, None, None, scratch())?;
    txn.scratch(snap.id);
    store.revert(vol.id, snap.id)?;
    if vol.size > b.size {
        store.resize(vol.id, vol.size)?;
    }
    txn.commit();
    Ok(store.get(vol.id)?)
}
