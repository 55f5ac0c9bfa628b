//! Cinder quota sets and the default quota class: `GET os-quota-sets/
//! {project}` (`?usage=true` adds use; a tenant reads its own, admins
//! any), `.../defaults`, admin-only `PUT` (runtime values that override
//! the auth file's, kept durably) and `DELETE` (back to the defaults), and
//! admin-only `GET`/`PUT os-quota-class-sets/default` (the defaults of
//! every limit the auth file leaves unset).
//!
//! The values are the one quota rule's (`domain/quota.rs`), so every
//! dialect enforces what is set here. Per-type keys (`volumes_{type}`,
//! `snapshots_{type}`, `gigabytes_{type}`) are accepted for existing types
//! and reported, not enforced: blockd has one backend, and a type changes
//! nothing physical. `groups` counts the project's generic volume groups
//! (`groups.rs`).

use super::backups::BACKUP_VOLUME;
use super::params::wrapped;
use super::views::reply;
use super::views_info::{Quota, QuotaClassSetOne, QuotaSet, QuotaSetOne, QuotaUsage};
use super::Ctx;
use crate::auth::Tenant;
use crate::domain::{quota, settings};
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The per-type quota resources.
const PER_TYPE: [&str; 3] = ["volumes", "snapshots", "gigabytes"];

/// The tenant `project` names, for the caller (403 for another tenant's
/// unless admin, 404 when unknown): an auth file tenant, or a project an
/// admin made through Keystone (`keystone/projects.rs`: no quota of its
/// own in the auth file, so the default class).
fn project(ctx: &Ctx, project: &str, action: &str) -> Result<Tenant> {
    if project == ctx.tenant.id && action == "show" {
        return Ok(ctx.tenant.clone());
    }
    ctx.require_admin(&format!("volume_extension:quotas:{action}"))?;
    ctx.state
        .auth()
        .by_id(project)
        .cloned()
        .or_else(|| crate::keystone::projects::tenant(ctx.store(), project))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Project {} could not be found.",
                project.escape_debug()
            ))
        })
}

/// Every quota key a set has: [`quota::KEYS`] and the per-type keys.
fn all_keys(ctx: &Ctx, all: &[ObjectInfo]) -> Vec<String> {
    let mut keys: Vec<String> = quota::KEYS.iter().map(|k| k.to_string()).collect();
    for t in super::info::type_names(ctx, all) {
        for r in PER_TYPE {
            keys.push(format!("{r}_{t}"));
        }
    }
    keys
}

/// What `tenant` uses of each key.
fn in_use(all: &[ObjectInfo], tenant: &str) -> BTreeMap<String, u64> {
    let u = quota::usage(all, tenant);
    let backups: Vec<&ObjectInfo> = all
        .iter()
        .filter(|o| {
            o.kind == ObjectKind::Image
                && meta::get(o, meta::TENANT) == Some(tenant)
                && meta::get(o, BACKUP_VOLUME).is_some()
        })
        .collect();
    let backup_gb: u64 = backups.iter().map(|o| meta::gb(o.size)).sum();
    let mut m = BTreeMap::new();
    m.insert("volumes".into(), u.volumes);
    m.insert("snapshots".into(), u.snapshots);
    m.insert("gigabytes".into(), u.gigabytes);
    m.insert("backups".into(), backups.len() as u64);
    m.insert("backup_gigabytes".into(), backup_gb);
    m.insert(
        "groups".into(),
        super::groups::count(&settings::read(all), tenant),
    );
    // Per type: volumes and their GB by the volume's type; snapshots and
    // images all count on `__DEFAULT__`.
    for (id, name) in super::types::ids_names(all) {
        let default = id == super::info::DEFAULT_TYPE_ID;
        let of_type: Vec<&ObjectInfo> = all
            .iter()
            .filter(|o| {
                o.kind == ObjectKind::Volume
                    && meta::get(o, meta::TENANT) == Some(tenant)
                    && meta::get(o, super::types::TYPE_ID).map_or(default, |t| t == id)
            })
            .collect();
        let vol_gb: u64 = of_type.iter().map(|o| meta::gb(o.size)).sum();
        let (snaps, snap_gb) = if default {
            (
                u.snapshots,
                u.gigabytes.saturating_sub(
                    all.iter()
                        .filter(|o| {
                            o.kind == ObjectKind::Volume
                                && meta::get(o, meta::TENANT) == Some(tenant)
                        })
                        .map(|o| meta::gb(o.size))
                        .sum(),
                ),
            )
        } else {
            (0, 0)
        };
        m.insert(format!("volumes_{name}"), of_type.len() as u64);
        m.insert(format!("gigabytes_{name}"), vol_gb + snap_gb);
        m.insert(format!("snapshots_{name}"), snaps);
    }
    m
}

/// A set view: `limits` for every key, with use when `usage`.
fn set_view(
    ctx: &Ctx,
    all: &[ObjectInfo],
    id: &str,
    limits: &quota::Limits,
    usage: Option<&BTreeMap<String, u64>>,
) -> QuotaSet {
    let mut quotas = BTreeMap::new();
    for k in all_keys(ctx, all) {
        let max = limits.get(&k).copied().unwrap_or(-1);
        let v = match usage {
            Some(u) => Quota::Usage(QuotaUsage {
                limit: max,
                in_use: u.get(&k).copied().unwrap_or(0),
                reserved: 0,
                allocated: 0,
            }),
            None => Quota::Limit(max),
        };
        quotas.insert(k, v);
    }
    QuotaSet {
        id: Some(id.to_string()),
        quotas,
    }
}

/// `GET os-quota-sets/{project}` and `.../defaults`.
pub fn show(ctx: &Ctx, id: &str, defaults: bool) -> Result<Reply> {
    let tenant = project(ctx, id, "show")?;
    let all = ctx.store().list();
    let usage = !defaults
        && ctx
            .req
            .query_param("usage")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let limits = if defaults {
        quota::defaults(&all, &tenant)
    } else {
        quota::effective(&all, &tenant)
    };
    let u = usage.then(|| in_use(&all, &tenant.id));
    let quota_set = set_view(ctx, &all, &tenant.id, &limits, u.as_ref());
    Ok(reply(200, &QuotaSetOne { quota_set }))
}

/// A quota value as Cinder takes it: an integer (or a string of one)
/// from -1 up.
fn value(key: &str, v: &Value) -> Result<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| ApiError::bad_request(format!("{key} must be an integer.")))?;
    if n < -1 {
        return Err(ApiError::bad_request(format!(
            "{key} must be >= -1 (got {n})."
        )));
    }
    if n > i64::from(i32::MAX) {
        return Err(ApiError::bad_request(format!(
            "{key} must be <= {} (got {n}).",
            i32::MAX
        )));
    }
    Ok(n)
}

/// The validated values of a `quota_set` / `quota_class_set` body.
fn parse_values(
    ctx: &Ctx,
    all: &[ObjectInfo],
    body: &Map<String, Value>,
) -> Result<Vec<(String, i64)>> {
    let keys = all_keys(ctx, all);
    let bad: Vec<&str> = body
        .keys()
        .map(String::as_str)
        .filter(|k| {
            !keys.iter().any(|x| x == k)
                && !matches!(*k, "id" | "tenant_id" | "class_name" | "skip_validation")
        })
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Bad key(s) in quota set: {}",
            bad.join(",").escape_debug()
        )));
    }
    let mut out = Vec::new();
    for k in &keys {
        if let Some(v) = body.get(k) {
            out.push((k.clone(), value(k, v)?));
        }
    }
    Ok(out)
}

/// `PUT os-quota-sets/{project}`: admin only; the given values replace
/// the project's, durably. With `"skip_validation": false` a limit below
/// what the project holds is refused (400), as in Cinder.
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let tenant = project(ctx, id, "update")?;
    let body = wrapped(ctx, "quota_set")?;
    let skip = match body.get("skip_validation") {
        None => true,
        Some(v) => super::params::parse_bool(v, "skip_validation")?,
    };
    let locked = ctx.dom.lock();
    let all = ctx.store().list();
    let values = parse_values(ctx, &all, &body)?;
    if !skip {
        let u = in_use(&all, &tenant.id);
        for (k, v) in &values {
            let used = u
                .get(k)
                .map_or(0, |n| i64::try_from(*n).unwrap_or(i64::MAX));
            if *v != -1 && *v < used {
                return Err(ApiError::bad_request(format!(
                    "Quota {k} limit must be equal or greater than existing resources. \
                     Current usage is {used} and the requested limit is {v}."
                )));
            }
        }
    }
    settings::update(ctx.store(), &locked, |m| {
        for (k, v) in &values {
            m.insert(quota::project_key(&tenant.id, k), v.to_string());
        }
        Ok(())
    })?;
    drop(locked);
    let all = ctx.store().list();
    let limits = quota::effective(&all, &tenant);
    let mut quota_set = set_view(ctx, &all, &tenant.id, &limits, None);
    quota_set.id = None;
    Ok(reply(200, &QuotaSetOne { quota_set }))
}

/// `DELETE os-quota-sets/{project}`: admin only; back to the defaults.
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let tenant = project(ctx, id, "delete")?;
    let prefix = quota::project_key(&tenant.id, "");
    let locked = ctx.dom.lock();
    settings::update(ctx.store(), &locked, |m| {
        m.retain(|k, _| !k.starts_with(&prefix));
        Ok(())
    })?;
    Ok(Reply::empty(200))
}

/// The one quota class blockd keeps.
fn class(ctx: &Ctx, class: &str) -> Result<()> {
    ctx.require_admin("volume_extension:quota_classes")?;
    if class == "default" {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "Class {} could not be found: blockd has only the class 'default'.",
                class.escape_debug()
            ),
        ))
    }
}

/// `GET os-quota-class-sets/default`.
pub fn class_show(ctx: &Ctx, name: &str) -> Result<Reply> {
    class(ctx, name)?;
    let all = ctx.store().list();
    let quota_class_set = set_view(ctx, &all, name, &quota::class_defaults(&all), None);
    Ok(reply(200, &QuotaClassSetOne { quota_class_set }))
}

/// `PUT os-quota-class-sets/default`: the defaults of every limit the
/// auth file leaves unset, durably.
pub fn class_update(ctx: &Ctx, name: &str) -> Result<Reply> {
    class(ctx, name)?;
    let body = wrapped(ctx, "quota_class_set")?;
    let locked = ctx.dom.lock();
    let all = ctx.store().list();
    let values = parse_values(ctx, &all, &body)?;
    settings::update(ctx.store(), &locked, |m| {
        for (k, v) in &values {
            m.insert(quota::class_key(k), v.to_string());
        }
        Ok(())
    })?;
    drop(locked);
    let all = ctx.store().list();
    let mut quota_class_set = set_view(ctx, &all, name, &quota::class_defaults(&all), None);
    quota_class_set.id = None;
    Ok(reply(200, &QuotaClassSetOne { quota_class_set }))
}
