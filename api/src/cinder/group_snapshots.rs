//! Cinder group snapshots (3.14+): one engine snapshot of every member
//! volume of a group, all taken at ONE point in time (`Store::
//! snapshot_many`: no write lands between them). The record (group, group
//! type, the group's volume types, name, description, status) is kept
//! durably in the settings object (`domain/settings.rs`, key
//! `api.gsnap/{id}`); each member snapshot carries the group snapshot's id
//! in its engine metadata ([`GROUP_SNAPSHOT_ID`]) and shows it as
//! `group_snapshot_id`.
//!
//! Calls: create (202; the members count against the `snapshots` and
//! `gigabytes` quotas), list/detail/show, delete (202; its member
//! snapshots go with it; a member snapshot cannot be deleted on its own,
//! [`refuse_delete`]), and `reset_status` (admin, 3.19+). A group made
//! from a group snapshot is `groups.rs`'s `create-from-src`.

use super::group_types::now;
use super::group_views::{
    self as views, GroupSnapshotBody, GroupSnapshotBrief, GroupSnapshotCreated,
    GroupSnapshotCreatedBody, GroupSnapshotView,
};
use super::groups::{self, one_action};
use super::params::{opt_string, wrapped, MAX_FIELD};
use super::Ctx;
use crate::domain::quota::{self, Charge};
use crate::domain::settings;
use crate::domain::settings::{put, record, records};
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind, ObjectUpdate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The settings key prefix of a group snapshot record.
const PREFIX: &str = settings::GROUP_SNAPSHOT_RECORD;
/// A member snapshot's group snapshot id.
pub(crate) const GROUP_SNAPSHOT_ID: &str = meta::GROUP_SNAPSHOT_ID;

/// The statuses `reset_status` may set (Cinder's `GroupSnapshotStatus`).
const STATUSES: [&str; 5] = [
    "creating",
    "available",
    "deleting",
    "error",
    "error_deleting",
];

/// A group snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct GroupSnapshot {
    pub id: String,
    pub project: String,
    pub group_id: String,
    pub group_type_id: String,
    /// The group's volume types when it was taken (a group made from it
    /// gets them).
    pub volume_types: Vec<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub status: String,
    pub created: u64,
}

/// The number of group snapshots of group `group` among settings `s`.
pub(super) fn of_group(s: &BTreeMap<String, String>, group: &str) -> usize {
    records::<GroupSnapshot>(s, PREFIX)
        .iter()
        .filter(|g| g.group_id == group)
        .count()
}

/// The group snapshot `id` the caller sees (its own; an admin's any).
pub(super) fn find_in(ctx: &Ctx, s: &BTreeMap<String, String>, id: &str) -> Result<GroupSnapshot> {
    record::<GroupSnapshot>(s, PREFIX, id)
        .filter(|g| g.project == ctx.tenant.id || ctx.tenant.admin)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "GroupSnapshot {} could not be found.",
                id.escape_debug()
            ))
        })
}

/// The member snapshots of group snapshot `id`, oldest first.
pub(super) fn member_snapshots(all: &[ObjectInfo], id: &str) -> Vec<ObjectInfo> {
    all.iter()
        .filter(|o| o.kind == ObjectKind::Snapshot && meta::get(o, GROUP_SNAPSHOT_ID) == Some(id))
        .cloned()
        .collect()
}

/// Why snapshot `o` may not be deleted on its own: it is a member of a
/// group snapshot (one that exists: a crash before the record is written
/// leaves member snapshots naming none, which may go).
pub(crate) fn refuse_delete(ctx: &Ctx, o: &ObjectInfo) -> Result<()> {
    let s = settings::read_store(ctx.store());
    match meta::get(o, GROUP_SNAPSHOT_ID).filter(|g| s.contains_key(&format!("{PREFIX}{g}"))) {
        Some(g) => Err(ApiError::bad_request(format!(
            "Invalid snapshot: Unable to delete snapshot {}, because it is part of group snapshot {g}.",
            o.id
        ))),
        None => Ok(()),
    }
}

fn view(ctx: &Ctx, g: &GroupSnapshot) -> GroupSnapshotView {
    GroupSnapshotView {
        id: g.id.clone(),
        group_id: g.group_id.clone(),
        group_type_id: g.group_type_id.clone(),
        name: g.name.clone(),
        description: g.description.clone(),
        status: g.status.clone(),
        created_at: super::volumes::cinder_time(g.created),
        project_id: ctx.version.at_least(58).then(|| g.project.clone()),
    }
}

/// `GET group_snapshots` (brief) and `group_snapshots/detail`, newest
/// first; an admin's `?all_tenants=1` every project's.
pub fn list(ctx: &Ctx, detail: bool) -> Result<Reply> {
    let s = settings::read_store(ctx.store());
    let every = ctx.tenant.admin
        && ctx.req.query_param("all_tenants").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
    let mut gs: Vec<GroupSnapshot> = records::<GroupSnapshot>(&s, PREFIX)
        .into_iter()
        .filter(|g| every || g.project == ctx.tenant.id)
        .filter(|g| {
            ctx.req
                .query_param("group_id")
                .is_none_or(|want| g.group_id == want)
        })
        .collect();
    gs.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
    if detail {
        views::reply(
            200,
            &views::GroupSnapshotsBody {
                group_snapshots: gs.iter().map(|g| view(ctx, g)).collect(),
            },
        )
    } else {
        views::reply(
            200,
            &views::GroupSnapshotsBriefBody {
                group_snapshots: gs
                    .iter()
                    .map(|g| GroupSnapshotBrief {
                        id: g.id.clone(),
                        name: g.name.clone(),
                    })
                    .collect(),
            },
        )
    }
}

/// `GET group_snapshots/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let s = settings::read_store(ctx.store());
    views::reply(
        200,
        &GroupSnapshotBody {
            group_snapshot: view(ctx, &find_in(ctx, &s, id)?),
        },
    )
}

/// `POST group_snapshots` (`group_id` required): 202.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let b = wrapped(ctx, "group_snapshot")?;
    let group_id = opt_string(&b, "group_id", MAX_FIELD)?.ok_or_else(|| {
        ApiError::bad_request(
            "Invalid input received: group_id must be provided to create group snapshot.",
        )
    })?;
    let name = opt_string(&b, "name", MAX_FIELD)?;
    let description = opt_string(&b, "description", MAX_FIELD)?;
    let locked = ctx.dom.lock();
    let all = ctx.store().list();
    let s = settings::read(&all);
    let g = groups::find_in(ctx, &s, &group_id)?;
    if g.project != ctx.tenant.id {
        // An admin sees the group; the snapshot would be the owner's.
        return Err(ApiError::bad_request(format!(
            "Invalid group: group {} belongs to another project.",
            g.id
        )));
    }
    if g.status != meta::AVAILABLE {
        return Err(ApiError::bad_request(format!(
            "Invalid group: Group {} status must be available, but current status is: {}.",
            g.id, g.status
        )));
    }
    let vols = groups::members(&all, &g.id);
    if let Some(v) = vols
        .iter()
        .find(|v| !matches!(v.status.as_str(), "available" | "in-use"))
    {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume {} in group {} must be available or in-use, but current status is: {}.",
            v.id, g.id, v.status
        )));
    }
    let charges: Vec<Charge> = vols
        .iter()
        .map(|v| Charge::Snapshot(meta::gb(v.size)))
        .collect();
    quota::check_many(&all, ctx.tenant, &charges)?;
    let gs = GroupSnapshot {
        id: uuid::Uuid::new_v4().to_string(),
        project: ctx.tenant.id.clone(),
        group_id: g.id.clone(),
        group_type_id: g.group_type.clone(),
        volume_types: g.volume_types.clone(),
        name,
        description,
        status: meta::AVAILABLE.into(),
        created: now(),
    };
    let asks: Vec<_> = vols
        .iter()
        .map(|v| {
            let m = crate::domain::ops::new_metadata(
                &ctx.dom,
                &BTreeMap::new(),
                &[
                    (meta::DISPLAY_NAME, gs.name.as_deref()),
                    (meta::VOLUME_TYPE, meta::get(v, meta::VOLUME_TYPE)),
                    (super::types::TYPE_ID, meta::get(v, super::types::TYPE_ID)),
                    (GROUP_SNAPSHOT_ID, Some(&gs.id)),
                ],
            );
            let u = ObjectUpdate {
                name: None,
                status: Some(meta::AVAILABLE.into()),
                metadata: Some(m),
            };
            (v.id, u)
        })
        .collect();
    let snaps = ctx.store().snapshot_many(&asks)?;
    let mut txn = crate::domain::ops::Txn::new(ctx.store());
    for s in &snaps {
        txn.made(s.id);
    }
    settings::update(ctx.store(), &locked, |m| put(m, PREFIX, &gs.id, &gs))?;
    txn.commit();
    tracing::info!(tenant = %ctx.tenant.id, group_snapshot = %gs.id, group = %g.id, snapshots = snaps.len(), "cinder: group snapshot created");
    views::reply(
        202,
        &GroupSnapshotCreatedBody {
            group_snapshot: GroupSnapshotCreated {
                id: gs.id,
                name: gs.name,
                group_type_id: gs.group_type_id,
            },
        },
    )
}

/// `DELETE group_snapshots/{id}`: its member snapshots and the record;
/// 202. Only an available or errored one (400 otherwise).
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let all = ctx.store().list();
    let s = settings::read(&all);
    let gs = find_in(ctx, &s, id)?;
    if !matches!(gs.status.as_str(), "available" | "error") {
        return Err(ApiError::bad_request(format!(
            "Invalid group snapshot: Group snapshot status must be available or error, but current status is: {}.",
            gs.status
        )));
    }
    let snaps = member_snapshots(&all, &gs.id);
    for snap in &snaps {
        crate::domain::ops::delete_member(&ctx.dom, &locked, snap)?;
    }
    settings::update(ctx.store(), &locked, |m| {
        m.remove(&format!("{PREFIX}{}", gs.id));
        Ok(())
    })?;
    tracing::info!(tenant = %ctx.tenant.id, group_snapshot = %gs.id, snapshots = snaps.len(), "cinder: group snapshot deleted");
    Ok(Reply::empty(202))
}

/// `POST group_snapshots/{id}/action`: `reset_status` (admin, 3.19+).
pub fn action(ctx: &Ctx, id: &str) -> Result<Reply> {
    let (name, args) = one_action(ctx)?;
    if name != "reset_status" || !ctx.version.at_least(19) {
        return Err(ApiError::bad_request(format!(
            "Invalid action {}.",
            name.escape_debug()
        )));
    }
    ctx.require_admin("group:reset_group_snapshot_status")?;
    let status = groups::new_status(&args, &STATUSES)?;
    let locked = ctx.dom.lock();
    settings::update(ctx.store(), &locked, |m| {
        let mut gs = find_in(ctx, m, id)?;
        gs.status.clone_from(&status);
        put(m, PREFIX, &gs.id.clone(), &gs)
    })?;
    tracing::info!(tenant = %ctx.tenant.id, group_snapshot = %id, status = %status, "cinder: group snapshot status reset");
    Ok(Reply::empty(202))
}
