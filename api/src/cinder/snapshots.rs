//! Cinder snapshots: list (and `detail`; filters, sort, paging), create
//! (an attached volume needs `force`), show, update, delete, metadata,
//! and the actions `os-reset_status`, `os-force_delete` (admins) and
//! `os-update_snapshot_status`. A
//! snapshot is the engine's O(1) snapshot; volumes made from it keep their
//! data when it is deleted.

use super::params::{
    opt_string, page, parse_bool, parse_metadata, wrapped, MAX_DESCRIPTION, MAX_FIELD,
};
use super::views::{reply, Snapshot, SnapshotList, SnapshotOne};
use super::volumes::{cinder_time, opt, save, sort, user_metadata, user_metadata_item};
use super::Ctx;
use crate::domain::ops;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use serde_json::Value;

/// The progress `os-update_snapshot_status` recorded (shown as
/// `os-extended-snapshot-attributes:progress`; absent is `100%`).
const PROGRESS: &str = "api.cinder_snapshot_progress";

/// The statuses `os-reset_status` may set, as Cinder's.
const RESET_STATUSES: &[&str] = &[
    "available",
    "error",
    "creating",
    "deleting",
    "error_deleting",
];

/// The snapshot view, without links as Cinder's. `detail` (show and the
/// detailed list; not create or update, as in Cinder) adds the extended
/// attributes.
fn view(ctx: &Ctx, o: &ObjectInfo, detail: bool) -> Snapshot {
    let (project, user) = ctx.owner_of(o);
    Snapshot {
        id: o.id.to_string(),
        name: opt(o, meta::DISPLAY_NAME),
        description: opt(o, meta::DISPLAY_DESCRIPTION),
        status: o.status.clone(),
        size: meta::gb(o.size),
        volume_id: o.parent.map(|p| p.to_string()),
        created_at: cinder_time(o.created),
        updated_at: cinder_time(o.created),
        metadata: meta::user_metadata(o),
        project_id: detail.then_some(project),
        progress: detail.then(|| meta::get(o, PROGRESS).unwrap_or("100%").to_string()),
        group_snapshot_id: ctx
            .version
            .at_least(14)
            .then(|| opt(o, super::group_snapshots::GROUP_SNAPSHOT_ID)),
        user_id: ctx.version.at_least(41).then_some(user),
    }
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
    ctx.req.query.iter().all(|(k, v)| match k.as_str() {
        "name" | "display_name" => meta::get(o, meta::DISPLAY_NAME) == Some(v.as_str()),
        "status" => o.status == *v,
        "volume_id" => o.parent.is_some_and(|p| p.to_string() == *v),
        _ => true,
    })
}

/// `GET snapshots` and `GET snapshots/detail`.
pub fn list(ctx: &Ctx, detail: bool) -> Result<Reply> {
    let mut all: Vec<ObjectInfo> = ctx
        .listed(ObjectKind::Snapshot)
        .into_iter()
        .filter(|o| matches_filters(ctx, o))
        .collect();
    sort(ctx, &mut all, SORT_KEYS)?;
    let collection = if detail {
        "snapshots/detail"
    } else {
        "snapshots"
    };
    let (items, next) = page(ctx, &all, collection)?;
    let snapshots = items.iter().map(|o| view(ctx, o, detail)).collect();
    Ok(reply(
        200,
        &SnapshotList {
            snapshots,
            snapshots_links: next,
        },
    ))
}

/// `GET snapshots/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = ctx.snapshot_any(id)?;
    Ok(reply(
        200,
        &SnapshotOne {
            snapshot: view(ctx, &o, true),
        },
    ))
}

/// `POST snapshots`: 202 with the new snapshot.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let body = wrapped(ctx, "snapshot")?;
    // Absent is a malformed request; null names no volume (404), as Cinder.
    let Some(volume_id) = opt_string(&body, "volume_id", MAX_FIELD)? else {
        return Err(if body.contains_key("volume_id") {
            ApiError::not_found("Volume None could not be found.")
        } else {
            ApiError::bad_request("Invalid input received: volume_id is required")
        });
    };
    let force = match body.get("force") {
        None | Some(Value::Null) => false,
        Some(v) => parse_bool(v, "force")?,
    };
    let name = match opt_string(&body, "name", MAX_FIELD)? {
        Some(n) => Some(n),
        None => opt_string(&body, "display_name", MAX_FIELD)?,
    };
    let description = match opt_string(&body, "description", MAX_DESCRIPTION)? {
        Some(d) => Some(d),
        None => opt_string(&body, "display_description", MAX_DESCRIPTION)?,
    };
    let user_meta = parse_metadata(body.get("metadata"))?.unwrap_or_default();

    let locked = ctx.dom.lock();
    let vol = ctx.volume(&volume_id)?;
    let allowed = vol.status == meta::AVAILABLE || (force && vol.status == meta::IN_USE);
    if !allowed {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume {} status must be available, but current status is: {}{}",
            vol.id,
            vol.status,
            if vol.status == meta::IN_USE {
                " (pass \"force\": true to snapshot an attached volume)"
            } else {
                ""
            }
        )));
    }
    let m = ops::new_metadata(
        &ctx.dom,
        &user_meta,
        &[
            (meta::DISPLAY_NAME, name.as_deref()),
            (meta::DISPLAY_DESCRIPTION, description.as_deref()),
        ],
    );
    let o = ops::snapshot(&ctx.dom, &locked, &vol, m)?;
    Ok(reply(
        202,
        &SnapshotOne {
            snapshot: view(ctx, &o, false),
        },
    ))
}

/// `PUT snapshots/{id}`: name and description.
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let body = wrapped(ctx, "snapshot")?;
    let locked = ctx.dom.lock();
    let o = ctx.snapshot(id)?;
    let mut m = o.metadata.clone();
    for (keys, meta_key, max) in [
        (["name", "display_name"], meta::DISPLAY_NAME, MAX_FIELD),
        (
            ["description", "display_description"],
            meta::DISPLAY_DESCRIPTION,
            MAX_DESCRIPTION,
        ),
    ] {
        if let Some(k) = keys.iter().find(|k| body.contains_key(**k)) {
            let v = opt_string(&body, k, max)?;
            meta::set(&mut m, meta_key, v.as_deref());
        }
    }
    let o = save(ctx, &locked, &o, m)?;
    Ok(reply(
        200,
        &SnapshotOne {
            snapshot: view(ctx, &o, false),
        },
    ))
}

/// `DELETE snapshots/{id}`: 202.
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = ctx.snapshot(id)?;
    super::group_snapshots::refuse_delete(ctx, &o)?;
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(202))
}

/// `snapshots/{id}/metadata`: GET shows, POST merges, PUT replaces.
pub fn metadata(ctx: &Ctx, id: &str) -> Result<Reply> {
    user_metadata(ctx, || ctx.snapshot(id), "Malformed request body")
}

/// `snapshots/{id}/metadata/{key}`: GET, PUT, DELETE.
pub fn metadata_item(ctx: &Ctx, id: &str, key: &str) -> Result<Reply> {
    user_metadata_item(ctx, || ctx.snapshot(id), key)
}

/// `POST snapshots/{id}/action`: `os-reset_status` and `os-force_delete`
/// (admins, on any project's snapshot) and `os-update_snapshot_status`
/// (the owner: `creating` to `available` or `error`, `deleting` to
/// `error_deleting`, with an optional `progress`).
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
        Value::Null => serde_json::Map::new(),
        _ => {
            return Err(ApiError::bad_request(format!(
                "Malformed request body: {} takes an object",
                name.escape_debug()
            )))
        }
    };
    let status = args.get("status").and_then(Value::as_str);
    match name.as_str() {
        "os-reset_status" => {
            ctx.require_admin("volume_extension:snapshot_admin_actions:reset_status")?;
            let status = status
                .filter(|s| RESET_STATUSES.contains(s))
                .ok_or_else(|| {
                    ApiError::bad_request("Invalid input received: Must specify a valid status")
                })?;
            let locked = ctx.dom.lock();
            let o = ctx.snapshot_any(id)?;
            ctx.dom.save(&locked, o.id, status, o.metadata.clone())?;
            tracing::info!(tenant = %ctx.tenant.id, snapshot = %o.id, status, "cinder: snapshot status reset");
            Ok(Reply::empty(202))
        }
        "os-force_delete" => {
            ctx.require_admin("volume_extension:snapshot_admin_actions:force_delete")?;
            let locked = ctx.dom.lock();
            let o = ctx.snapshot_any(id)?;
            ops::operator_delete(&ctx.dom, &locked, &o)?;
            Ok(Reply::empty(202))
        }
        "os-update_snapshot_status" => {
            let locked = ctx.dom.lock();
            let o = ctx.snapshot(id)?;
            let allowed: &[&str] = match o.status.as_str() {
                "creating" => &["available", "error"],
                "deleting" => &["error_deleting"],
                _ => &[],
            };
            let status = status.filter(|s| allowed.contains(s)).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid input received: Provided snapshot status {} not allowed for \
                     snapshot with status {}.",
                    status.unwrap_or("(none)").escape_debug(),
                    o.status
                ))
            })?;
            let mut m = o.metadata.clone();
            match args.get("progress") {
                None | Some(Value::Null) => {}
                Some(Value::String(p)) if p.len() <= MAX_FIELD => {
                    meta::set(&mut m, PROGRESS, Some(p));
                }
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "Invalid input received: progress must be a string",
                    ))
                }
            }
            ctx.dom.save(&locked, o.id, status, m)?;
            Ok(Reply::empty(202))
        }
        other => Err(ApiError::bad_request(format!(
            "Invalid input received: unknown snapshot action {}",
            other.escape_debug()
        ))),
    }
}
