//! Cinder generic volume groups (3.13+): a group has a group type
//! (`group_types.rs`), the volume types its volumes may have, and member
//! volumes. Group records are kept durably in the settings object
//! (`domain/settings.rs`, key `api.group/{id}`, a JSON record); a member
//! volume carries the group id in its engine metadata ([`GROUP_ID`]), so
//! membership changes with the volume in one durable step.
//!
//! Calls: create (202), list/detail/show (own groups; an admin's
//! `?all_tenants=1` every project's), update (name, description,
//! `add_volumes` / `remove_volumes` with Cinder's checks, 202),
//! `action` `delete` (`delete-volumes` takes the members with it; a group
//! with volumes without it, or with group snapshots, is 400),
//! `reset_status` (admin, 3.20+), and `groups/action` `create-from-src`
//! (3.14+): a new group whose volumes are made from a group snapshot's
//! member snapshots, or cloned from a source group's volumes at one point
//! in time (`Store::snapshot_many` into scratch snapshots). Everything is
//! made at once, so a new group is `available` in the answer.
//!
//! A member volume cannot be deleted on its own (400, as Cinder's
//! "must not ... belong to a group"); `volumes.rs` asks [`refuse_delete`].

use super::group_types::{self as gtypes, now};
use super::group_views::{self as views, GroupBody, GroupBrief, GroupBriefBody, GroupView};
use super::info::ZONE;
use super::params::{opt_string, parse_bool, wrapped, MAX_FIELD};
use super::Ctx;
use crate::domain::ops::{self, Source, Txn};
use crate::domain::settings::{put, record, records};
use crate::domain::{quota, settings, Locked};
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind, ObjectUpdate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The settings key prefix of a group record.
pub(super) const PREFIX: &str = settings::GROUP_RECORD;
/// A member volume's group id.
pub(crate) const GROUP_ID: &str = meta::GROUP_ID;

/// The statuses `reset_status` may set (Cinder's `GroupStatus`).
const STATUSES: [&str; 7] = [
    "creating",
    "available",
    "deleting",
    "error",
    "error_deleting",
    "updating",
    "in-use",
];

/// A group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Group {
    pub id: String,
    /// The owning project.
    pub project: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub status: String,
    /// The group type's id.
    pub group_type: String,
    /// The volume types' ids.
    pub volume_types: Vec<String>,
    /// Unix seconds.
    pub created: u64,
    #[serde(default)]
    pub group_snapshot_id: Option<String>,
    #[serde(default)]
    pub source_group_id: Option<String>,
}

/// True when a group among settings `s` has group type `type_id`.
pub(super) fn type_in_use(s: &BTreeMap<String, String>, type_id: &str) -> bool {
    records::<Group>(s, PREFIX)
        .iter()
        .any(|g| g.group_type == type_id)
}

/// True when a group among settings `s` allows volume type `type_id`
/// (Cinder keeps such a type from being deleted).
pub(crate) fn volume_type_in_use(s: &BTreeMap<String, String>, type_id: &str) -> bool {
    records::<Group>(s, PREFIX)
        .iter()
        .any(|g| g.volume_types.iter().any(|t| t == type_id))
}

/// The number of `project`'s groups among settings `s` (the `groups`
/// quota).
pub(crate) fn count(s: &BTreeMap<String, String>, project: &str) -> u64 {
    records::<Group>(s, PREFIX)
        .iter()
        .filter(|g| g.project == project)
        .count() as u64
}

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(format!("Group {} could not be found.", key.escape_debug()))
}

/// The group `id` the caller sees (its own; an admin's any), among
/// settings `s`.
pub(super) fn find_in(ctx: &Ctx, s: &BTreeMap<String, String>, id: &str) -> Result<Group> {
    record::<Group>(s, PREFIX, id)
        .filter(|g| g.project == ctx.tenant.id || ctx.tenant.admin)
        .ok_or_else(|| not_found(id))
}

/// The member volumes of group `id`, oldest first.
pub(super) fn members(all: &[ObjectInfo], id: &str) -> Vec<ObjectInfo> {
    all.iter()
        .filter(|o| o.kind == ObjectKind::Volume && meta::get(o, GROUP_ID) == Some(id))
        .cloned()
        .collect()
}

fn view(ctx: &Ctx, g: &Group, all: &[ObjectInfo]) -> GroupView {
    let v = ctx.version;
    let list_volume = ctx
        .req
        .query_param("list_volume")
        .is_some_and(|x| parse_bool(&Value::from(x), "list_volume").unwrap_or(false));
    GroupView {
        id: g.id.clone(),
        name: g.name.clone(),
        description: g.description.clone(),
        status: g.status.clone(),
        availability_zone: ZONE.to_string(),
        created_at: super::volumes::cinder_time(g.created),
        group_type: g.group_type.clone(),
        volume_types: g.volume_types.clone(),
        group_snapshot_id: v.at_least(14).then(|| g.group_snapshot_id.clone()),
        source_group_id: v.at_least(14).then(|| g.source_group_id.clone()),
        volumes: (v.at_least(25) && list_volume).then(|| {
            members(all, &g.id)
                .iter()
                .map(|o| o.id.to_string())
                .collect()
        }),
        replication_status: v.at_least(38).then_some(None),
        project_id: v.at_least(58).then(|| g.project.clone()),
    }
}

fn all_tenants(ctx: &Ctx) -> bool {
    ctx.tenant.admin
        && ctx
            .req
            .query_param("all_tenants")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// `GET groups` (brief) and `groups/detail`, newest first.
pub fn list(ctx: &Ctx, detail: bool) -> Result<Reply> {
    let all = ctx.store().list();
    let s = settings::read(&all);
    let every = all_tenants(ctx);
    let mut gs: Vec<Group> = records::<Group>(&s, PREFIX)
        .into_iter()
        .filter(|g| every || g.project == ctx.tenant.id)
        .collect();
    gs.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
    if detail {
        views::reply(
            200,
            &views::GroupsBody {
                groups: gs.iter().map(|g| view(ctx, g, &all)).collect(),
            },
        )
    } else {
        views::reply(
            200,
            &views::GroupsBriefBody {
                groups: gs
                    .iter()
                    .map(|g| GroupBrief {
                        id: g.id.clone(),
                        name: g.name.clone(),
                    })
                    .collect(),
            },
        )
    }
}

/// `GET groups/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let all = ctx.store().list();
    let g = find_in(ctx, &settings::read(&all), id)?;
    views::reply(
        200,
        &GroupBody {
            group: view(ctx, &g, &all),
        },
    )
}

/// Checks the `groups` quota of the caller for one more group (413).
fn check_quota(ctx: &Ctx, all: &[ObjectInfo], s: &BTreeMap<String, String>) -> Result<()> {
    let limits = quota::effective(all, ctx.tenant);
    if let Some(max) = quota::max_of(&limits, "groups") {
        if count(s, &ctx.tenant.id) >= max {
            return Err(ApiError::over_limit(
                format!("Quota exceeded for resources: ['groups'] (maximum {max})"),
                0,
            ));
        }
    }
    Ok(())
}

fn brief(g: &Group) -> GroupBriefBody {
    GroupBriefBody {
        group: GroupBrief {
            id: g.id.clone(),
            name: g.name.clone(),
        },
    }
}

/// The volume type ids `v` names (a list of ids or names, or a
/// comma-separated string), each one the caller sees (404 otherwise).
fn volume_types(ctx: &Ctx, v: Option<&Value>, name: &str) -> Result<Vec<String>> {
    let keys: Vec<String> = match v {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::bad_request("Invalid input received: volume_types must be strings.")
                })
            })
            .collect::<Result<_>>()?,
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_string()).collect(),
        _ => Vec::new(),
    };
    let keys: Vec<String> = keys.into_iter().filter(|k| !k.is_empty()).collect();
    if keys.is_empty() {
        return Err(ApiError::bad_request(format!(
            "volume_types must be provided to create group {}.",
            name.escape_debug()
        )));
    }
    let mut ids = Vec::new();
    for k in keys {
        let t = super::types::find(ctx, &k)?;
        if !ids.contains(&t.id) {
            ids.push(t.id);
        }
    }
    Ok(ids)
}

/// `POST groups`: 202 `{"group": {id, name}}`.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let b = wrapped(ctx, "group")?;
    let name = opt_string(&b, "name", MAX_FIELD)?;
    let description = opt_string(&b, "description", MAX_FIELD)?;
    let shown = name.clone().unwrap_or_default();
    let gtype = opt_string(&b, "group_type", MAX_FIELD)?.ok_or_else(|| {
        ApiError::bad_request(format!(
            "group_type must be provided to create group {}.",
            shown.escape_debug()
        ))
    })?;
    let vtypes = volume_types(ctx, b.get("volume_types"), &shown)?;
    if let Some(z) = opt_string(&b, "availability_zone", MAX_FIELD)? {
        if z != ZONE {
            return Err(ApiError::bad_request(format!(
                "Invalid input received: Availability zone '{}' is invalid.",
                z.escape_debug()
            )));
        }
    }
    let locked = ctx.dom.lock();
    let all = ctx.store().list();
    let s = settings::read(&all);
    let t = gtypes::find_in(ctx, &s, &gtype)?;
    check_quota(ctx, &all, &s)?;
    let g = Group {
        id: uuid::Uuid::new_v4().to_string(),
        project: ctx.tenant.id.clone(),
        name,
        description,
        status: meta::AVAILABLE.into(),
        group_type: t.id,
        volume_types: vtypes,
        created: now(),
        group_snapshot_id: None,
        source_group_id: None,
    };
    settings::update(ctx.store(), &locked, |m| put(m, PREFIX, &g.id, &g))?;
    tracing::info!(tenant = %ctx.tenant.id, group = %g.id, "cinder: group created");
    views::reply(202, &brief(&g))
}

/// For a new volume: the group the body's `group_id` names (3.13+), which
/// must be the caller's, available, and allow volume type `type_id`.
/// Called under the lock; returns the id to record as [`GROUP_ID`].
pub(crate) fn for_new_volume(
    ctx: &Ctx,
    body: &Map<String, Value>,
    type_id: &str,
) -> Result<Option<String>> {
    if !ctx.version.at_least(13) {
        return Ok(None);
    }
    let Some(id) = opt_string(body, "group_id", MAX_FIELD)? else {
        return Ok(None);
    };
    let s = settings::read_store(ctx.store());
    let g = record::<Group>(&s, PREFIX, &id)
        .filter(|g| g.project == ctx.tenant.id)
        .ok_or_else(|| not_found(&id))?;
    if g.status != meta::AVAILABLE {
        return Err(ApiError::bad_request(format!(
            "Invalid group: group {} status must be available, but current status is: {}.",
            g.id, g.status
        )));
    }
    if !g.volume_types.iter().any(|t| t == type_id) {
        return Err(ApiError::bad_request(format!(
            "Invalid input received: volume type {type_id} is not one of the volume types of group {}.",
            g.id
        )));
    }
    Ok(Some(g.id))
}

/// Why volume `o` may not be deleted on its own: it is in a group (one
/// that exists: a crash between making a group's volumes and its record
/// leaves volumes naming no group, which may go).
pub(crate) fn refuse_delete(ctx: &Ctx, o: &ObjectInfo) -> Result<()> {
    let s = settings::read_store(ctx.store());
    match meta::get(o, GROUP_ID).filter(|g| s.contains_key(&format!("{PREFIX}{g}"))) {
        Some(g) => Err(ApiError::bad_request(format!(
            "Invalid volume: Volume status must be available or error or error_restoring or \
             error_extending or error_managing and must not be migrating, attached, belong to a \
             group, have snapshots or be disassociated from snapshots after volume transfer. \
             (volume {} is in group {g})",
            o.id
        ))),
        None => Ok(()),
    }
}

/// Refuses `action` (transfer, retype) on volume `o` while it is in a
/// group (that exists), as Cinder does: 400.
pub(crate) fn refuse_member(ctx: &Ctx, o: &ObjectInfo, action: &str) -> Result<()> {
    let s = settings::read_store(ctx.store());
    match meta::get(o, GROUP_ID).filter(|g| s.contains_key(&format!("{PREFIX}{g}"))) {
        Some(g) => Err(ApiError::bad_request(format!(
            "Invalid volume: Volume must not be part of a group to {action} it (volume {} is in \
             group {g}).",
            o.id
        ))),
        None => Ok(()),
    }
}

/// The ids of a comma-separated `add_volumes` / `remove_volumes` value.
fn id_list(b: &Map<String, Value>, key: &str) -> Result<Vec<String>> {
    Ok(opt_string(b, key, 65_535)?
        .unwrap_or_default()
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect())
}

fn type_of(o: &ObjectInfo) -> &str {
    meta::get(o, super::types::TYPE_ID).unwrap_or(super::info::DEFAULT_TYPE_ID)
}

fn set_group(ctx: &Ctx, locked: &Locked, o: &ObjectInfo, group: Option<&str>) -> Result<()> {
    let mut m = o.metadata.clone();
    meta::set(&mut m, GROUP_ID, group);
    ctx.dom.save(locked, o.id, &o.status, m)?;
    Ok(())
}

/// `PUT groups/{id}`: name, description, `add_volumes`, `remove_volumes`
/// (comma-separated ids); 202.
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let b = wrapped(ctx, "group")?;
    let name = opt_string(&b, "name", MAX_FIELD)?;
    let description = opt_string(&b, "description", MAX_FIELD)?;
    let add = id_list(&b, "add_volumes")?;
    let remove = id_list(&b, "remove_volumes")?;
    if name.is_none()
        && description.is_none()
        && add.is_empty()
        && remove.is_empty()
        && !b.contains_key("description")
    {
        return Err(ApiError::bad_request(
            "Name, description, add_volumes, and remove_volumes can not be all empty in the request body.",
        ));
    }
    if let Some(v) = add.iter().find(|v| remove.contains(v)) {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: Volume {} is both in add_volumes and remove_volumes.",
            v.escape_debug()
        )));
    }
    let locked = ctx.dom.lock();
    let s = settings::read_store(ctx.store());
    let mut g = find_in(ctx, &s, id)?;
    if g.status != meta::AVAILABLE {
        return Err(ApiError::bad_request(format!(
            "Invalid group: Group status must be available, but current status is: {}.",
            g.status
        )));
    }
    let invalid = |v: &str, why: &str| {
        ApiError::bad_request(format!(
            "Invalid volume: Cannot {why}",
            why = why.replace("{v}", &v.escape_debug().to_string())
        ))
    };
    // Every check first, then the changes.
    let mut adding = Vec::new();
    for v in &add {
        let o = ctx
            .dom
            .find(ObjectKind::Volume, v)?
            .filter(|o| meta::get(o, meta::TENANT) == Some(g.project.as_str()))
            .ok_or_else(|| {
                invalid(
                    v,
                    &format!(
                        "add volume {{v}} to group {} because volume cannot be found.",
                        g.id
                    ),
                )
            })?;
        if let Some(other) = meta::get(&o, GROUP_ID) {
            return Err(invalid(
                v,
                &format!(
                    "add volume {{v}} to group {} because it is already in group {other}.",
                    g.id
                ),
            ));
        }
        if !g.volume_types.iter().any(|t| t == type_of(&o)) {
            return Err(invalid(
                v,
                &format!(
                    "add volume {{v}} to group {} because volume type {} is not supported by the group.",
                    g.id,
                    type_of(&o)
                ),
            ));
        }
        if !matches!(o.status.as_str(), "available" | "in-use") {
            return Err(invalid(
                v,
                &format!(
                    "add volume {{v}} to group {} because volume is in an invalid state: {}. Valid states are: ('available', 'in-use').",
                    g.id, o.status
                ),
            ));
        }
        adding.push(o);
    }
    let mut removing = Vec::new();
    for v in &remove {
        let o = ctx
            .dom
            .find_any(ObjectKind::Volume, v)?
            .filter(|o| meta::get(o, GROUP_ID) == Some(g.id.as_str()))
            .ok_or_else(|| {
                invalid(
                    v,
                    &format!(
                        "remove volume {{v}} from group {} because it is not in the group.",
                        g.id
                    ),
                )
            })?;
        if !matches!(
            o.status.as_str(),
            "available" | "in-use" | "error" | "error_deleting"
        ) {
            return Err(invalid(
                v,
                &format!(
                    "remove volume {{v}} from group {} because volume is in an invalid state: {}.",
                    g.id, o.status
                ),
            ));
        }
        removing.push(o);
    }
    for o in &adding {
        set_group(ctx, &locked, o, Some(&g.id))?;
    }
    for o in &removing {
        set_group(ctx, &locked, o, None)?;
    }
    if name.is_some() || b.contains_key("name") {
        g.name = name;
    }
    if description.is_some() || b.contains_key("description") {
        g.description = description;
    }
    settings::update(ctx.store(), &locked, |m| put(m, PREFIX, &g.id, &g))?;
    tracing::info!(tenant = %ctx.tenant.id, group = %g.id, added = adding.len(), removed = removing.len(), "cinder: group updated");
    Ok(Reply::empty(202))
}

/// `POST groups/{id}/action`: `delete` (`{"delete-volumes": bool}`) and
/// `reset_status` (admin, 3.20+).
pub fn action(ctx: &Ctx, id: &str) -> Result<Reply> {
    let (name, args) = one_action(ctx)?;
    match name.as_str() {
        "delete" => delete(ctx, id, &args),
        "reset_status" if ctx.version.at_least(20) => reset_status(ctx, id, &args),
        _ => Err(ApiError::bad_request(format!(
            "Invalid action {}.",
            name.escape_debug()
        ))),
    }
}

/// The one action of an action body: its name and arguments.
pub(super) fn one_action(ctx: &Ctx) -> Result<(String, Map<String, Value>)> {
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
    match args {
        Value::Object(m) => Ok((name, m)),
        Value::Null => Ok((name, Map::new())),
        _ => Err(ApiError::bad_request(format!(
            "Malformed request body: {} takes an object",
            name.escape_debug()
        ))),
    }
}

/// The `status` of a `reset_status` action, one of `allowed` (400
/// otherwise).
pub(super) fn new_status(args: &Map<String, Value>, allowed: &[&str]) -> Result<String> {
    let s = args
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("Must specify 'status'."))?;
    if !allowed.contains(&s) {
        return Err(ApiError::bad_request(format!(
            "Invalid input received: status {} is not one of {}.",
            s.escape_debug(),
            allowed.join(", ")
        )));
    }
    Ok(s.to_string())
}

fn reset_status(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    ctx.require_admin("group:reset_status")?;
    let status = new_status(args, &STATUSES)?;
    let locked = ctx.dom.lock();
    settings::update(ctx.store(), &locked, |m| {
        let mut g = find_in(ctx, m, id)?;
        g.status.clone_from(&status);
        put(m, PREFIX, &g.id.clone(), &g)
    })?;
    tracing::info!(tenant = %ctx.tenant.id, group = %id, status = %status, "cinder: group status reset");
    Ok(Reply::empty(202))
}

fn delete(ctx: &Ctx, id: &str, args: &Map<String, Value>) -> Result<Reply> {
    let with_volumes = match args.get("delete-volumes") {
        None | Some(Value::Null) => false,
        Some(v) => parse_bool(v, "delete-volumes")?,
    };
    let locked = ctx.dom.lock();
    let all = ctx.store().list();
    let s = settings::read(&all);
    let g = find_in(ctx, &s, id)?;
    if !matches!(g.status.as_str(), "available" | "error") {
        return Err(ApiError::bad_request(format!(
            "Invalid group: Group status must be available or error, but current status is: {}.",
            g.status
        )));
    }
    if super::group_snapshots::of_group(&s, &g.id) > 0 {
        return Err(ApiError::bad_request(format!(
            "Invalid group: Group {} still has dependent group snapshots.",
            g.id
        )));
    }
    let vols = members(&all, &g.id);
    if !vols.is_empty() && !with_volumes {
        return Err(ApiError::bad_request(format!(
            "Invalid group: Group {} still contains volumes. The delete-volumes flag is required to delete it.",
            g.id
        )));
    }
    for v in &vols {
        if ops::attached(v) {
            return Err(ApiError::bad_request(format!(
                "Invalid group: Volume in group {} is attached. Need to detach first.",
                g.id
            )));
        }
        if all
            .iter()
            .any(|o| o.kind == ObjectKind::Snapshot && o.parent == Some(v.id))
        {
            return Err(ApiError::bad_request(format!(
                "Invalid group: Volume in group {} still has dependent snapshots.",
                g.id
            )));
        }
    }
    for v in &vols {
        ops::delete_member(&ctx.dom, &locked, v)?;
    }
    settings::update(ctx.store(), &locked, |m| {
        m.remove(&format!("{PREFIX}{}", g.id));
        Ok(())
    })?;
    tracing::info!(tenant = %ctx.tenant.id, group = %g.id, volumes = vols.len(), "cinder: group deleted");
    Ok(Reply::empty(202))
}

/// `POST groups/action` (3.14+): `create-from-src` with a
/// `group_snapshot_id` or a `source_group_id`; 202 `{"group": {id, name}}`.
pub fn create_from_src(ctx: &Ctx) -> Result<Reply> {
    let (action, b) = one_action(ctx)?;
    if action != "create-from-src" {
        return Err(ApiError::bad_request(format!(
            "Invalid action {}.",
            action.escape_debug()
        )));
    }
    let name = opt_string(&b, "name", MAX_FIELD)?;
    let description = opt_string(&b, "description", MAX_FIELD)?;
    let shown = name.clone().unwrap_or_default();
    let snap_id = opt_string(&b, "group_snapshot_id", MAX_FIELD)?;
    let src_id = opt_string(&b, "source_group_id", MAX_FIELD)?;
    if snap_id.is_some() == src_id.is_some() {
        return Err(ApiError::bad_request(format!(
            "Either 'group_snapshot_id' or 'source_group_id' must be provided to create group {} from source.",
            shown.escape_debug()
        )));
    }
    let locked = ctx.dom.lock();
    let all = ctx.store().list();
    let s = settings::read(&all);
    check_quota(ctx, &all, &s)?;
    let mut txn = Txn::new(ctx.store());
    let mut g = Group {
        id: uuid::Uuid::new_v4().to_string(),
        project: ctx.tenant.id.clone(),
        name,
        description,
        status: meta::AVAILABLE.into(),
        group_type: String::new(),
        volume_types: Vec::new(),
        created: now(),
        group_snapshot_id: None,
        source_group_id: None,
    };
    // (source object, the volume it stands for) pairs to make volumes of.
    let mut sources: Vec<(ObjectInfo, Option<ObjectInfo>)> = Vec::new();
    if let Some(sid) = &snap_id {
        let gs = super::group_snapshots::find_in(ctx, &s, sid)?;
        if gs.status != meta::AVAILABLE {
            return Err(ApiError::bad_request(format!(
                "Invalid group snapshot: group snapshot {} status must be available, but current status is: {}.",
                gs.id, gs.status
            )));
        }
        g.group_type.clone_from(&gs.group_type_id);
        g.volume_types.clone_from(&gs.volume_types);
        g.group_snapshot_id = Some(gs.id.clone());
        for snap in super::group_snapshots::member_snapshots(&all, &gs.id) {
            sources.push((snap, None));
        }
    } else if let Some(sid) = &src_id {
        let src = find_in(ctx, &s, sid)?;
        if src.status != meta::AVAILABLE {
            return Err(ApiError::bad_request(format!(
                "Invalid group: source group {} status must be available, but current status is: {}.",
                src.id, src.status
            )));
        }
        g.group_type.clone_from(&src.group_type);
        g.volume_types.clone_from(&src.volume_types);
        g.source_group_id = Some(src.id.clone());
        let vols = members(&all, &src.id);
        // One point in time across the source volumes: scratch snapshots
        // (ownerless, so no tenant sees or pays for them), gone at the end.
        let asks: Vec<_> = vols
            .iter()
            .map(|v| (v.id, ObjectUpdate::default()))
            .collect();
        let scratch = ctx.store().snapshot_many(&asks)?;
        for (snap, vol) in scratch.into_iter().zip(vols) {
            txn.scratch(snap.id);
            sources.push((snap, Some(vol)));
        }
    }
    for (src, vol) in &sources {
        // The name of the member's volume while it lives, else the source's.
        let named = vol.as_ref().or_else(|| {
            all.iter()
                .find(|v| v.kind == ObjectKind::Volume && Some(v.id) == src.parent)
        });
        let m = new_member_metadata(ctx, src, vol.as_ref(), named, &g.id);
        let source = match vol {
            Some(_) => Source::Volume(src),
            None => Source::Snapshot(src),
        };
        let o = ops::create_volume(&ctx.dom, &locked, source, src.size, m)?;
        txn.made(o.id);
    }
    settings::update(ctx.store(), &locked, |m| put(m, PREFIX, &g.id, &g))?;
    txn.commit();
    tracing::info!(tenant = %ctx.tenant.id, group = %g.id, volumes = sources.len(), "cinder: group created from source");
    views::reply(202, &brief(&g))
}

/// The metadata of a new member of group `group` made from `src` (a
/// member snapshot, or a scratch snapshot of source volume `vol`): the
/// name of `named` (the member's volume, if known), the source's volume
/// type, and the group.
fn new_member_metadata(
    ctx: &Ctx,
    src: &ObjectInfo,
    vol: Option<&ObjectInfo>,
    named: Option<&ObjectInfo>,
    group: &str,
) -> BTreeMap<String, String> {
    let from = vol.unwrap_or(src);
    let named = named.unwrap_or(src);
    let id = vol.map(|v| v.id.to_string());
    ops::new_metadata(
        &ctx.dom,
        &BTreeMap::new(),
        &[
            (meta::DISPLAY_NAME, meta::get(named, meta::DISPLAY_NAME)),
            (meta::VOLUME_TYPE, meta::get(from, meta::VOLUME_TYPE)),
            (
                super::types::TYPE_ID,
                meta::get(from, super::types::TYPE_ID),
            ),
            (meta::AVAILABILITY_ZONE, Some(ZONE)),
            (meta::SOURCE_VOLUME, id.as_deref()),
            (GROUP_ID, Some(group)),
        ],
    )
}
