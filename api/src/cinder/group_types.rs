//! Cinder group types (3.11+): named records with a description, group
//! specs and a public flag, kept durably in the settings object
//! (`domain/settings.rs`, key `api.gtype/{id}`, a JSON record), as the
//! volume types are. A group (`groups.rs`) names one. blockd has one
//! backend and snapshots a group's volumes at one point in time whatever
//! the specs say, so specs are stored, not interpreted.
//!
//! Everyone reads the public types; private ones only admins (blockd has
//! no group type access lists). Admin only (403 otherwise): create,
//! update, delete (400 while a group has the type) and spec changes. No
//! default group type is configured: `group_types/default` is 404, as in a
//! Cinder without `default_group_type`.
//!
//! The settings record helpers ([`records`], [`put`]) also keep the groups and
//! group snapshots.

use super::group_views::{self as views, GroupSpec, GroupSpecsBody, GroupTypeBody, GroupTypeView};
use super::params::{opt_string, parse_bool, sort_keys, wrapped, MAX_FIELD};
use super::Ctx;
use crate::domain::settings::{self, put, records};
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::Reply;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The settings key prefix of a group type record.
pub(super) const PREFIX: &str = "api.gtype/";

/// A group type.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct GroupType {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub is_public: bool,
    #[serde(default)]
    pub group_specs: BTreeMap<String, String>,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
}

/// Unix seconds now.
pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn sees(ctx: &Ctx, t: &GroupType) -> bool {
    ctx.tenant.admin || t.is_public
}

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(format!(
        "Group type {} could not be found.",
        key.escape_debug()
    ))
}

/// The group type `key` (id or name) the caller sees, among settings `s`.
pub(super) fn find_in(ctx: &Ctx, s: &BTreeMap<String, String>, key: &str) -> Result<GroupType> {
    records::<GroupType>(s, PREFIX)
        .into_iter()
        .find(|t| (t.id == key || t.name == key) && sees(ctx, t))
        .ok_or_else(|| not_found(key))
}

fn view(t: &GroupType) -> GroupTypeView {
    GroupTypeView {
        id: t.id.clone(),
        name: t.name.clone(),
        description: t.description.clone(),
        is_public: t.is_public,
        group_specs: t.group_specs.clone(),
    }
}

fn sort_value(t: &GroupType, key: &str) -> (u64, String) {
    match key {
        "created_at" => (t.created, t.id.clone()),
        "id" => (0, t.id.clone()),
        "description" => (0, t.description.clone().unwrap_or_default()),
        "is_public" => (u64::from(t.is_public), String::new()),
        _ => (0, t.name.clone()),
    }
}

/// `GET group_types`: public types; an admin's `?is_public=false` the
/// private ones, `?is_public=none` all. `sort`/`sort_key` order them.
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let s = settings::read_store(ctx.store());
    let want: Option<bool> = match ctx.req.query_param("is_public") {
        _ if !ctx.tenant.admin => Some(true),
        None => Some(true),
        Some(v) if v.eq_ignore_ascii_case("none") => None,
        Some(v) => Some(parse_bool(&Value::from(v), "is_public")?),
    };
    let keys = sort_keys(
        ctx,
        &["created_at", "id", "name", "description", "is_public"],
    )?;
    let mut all: Vec<GroupType> = records::<GroupType>(&s, PREFIX)
        .into_iter()
        .filter(|t| sees(ctx, t) && want.is_none_or(|w| t.is_public == w))
        .collect();
    all.sort_by(|a, b| {
        for k in &keys {
            let o = sort_value(a, &k.key).cmp(&sort_value(b, &k.key));
            let o = if k.descending { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        a.id.cmp(&b.id)
    });
    views::reply(
        200,
        &views::GroupTypesBody {
            group_types: all.iter().map(view).collect(),
        },
    )
}

/// `GET group_types/{id}` (`default`: 404, none is configured).
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    if id == "default" {
        return Err(ApiError::not_found("Default group type not found."));
    }
    let s = settings::read_store(ctx.store());
    views::reply(
        200,
        &GroupTypeBody {
            group_type: view(&find_in(ctx, &s, id)?),
        },
    )
}

fn specs(v: Option<&Value>) -> Result<BTreeMap<String, String>> {
    super::params::spec_map(v, "group spec", "group_specs")
}

fn public_flag(m: &Map<String, Value>) -> Result<Option<bool>> {
    match m.get("is_public").filter(|v| !v.is_null()) {
        Some(v) => parse_bool(v, "is_public").map(Some),
        None => Ok(None),
    }
}

fn check_name(s: &BTreeMap<String, String>, name: &str, except: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request(
            "Invalid input received: the group type name must not be empty.",
        ));
    }
    if records::<GroupType>(s, PREFIX)
        .iter()
        .any(|t| t.name == name && t.id != except)
    {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!("Group Type {} already exists.", name.escape_debug()),
        ));
    }
    Ok(())
}

/// Changes type `id` with `f` under the lock (admin).
fn modify(
    ctx: &Ctx,
    id: &str,
    policy: &str,
    f: impl FnOnce(&BTreeMap<String, String>, &mut GroupType) -> Result<()>,
) -> Result<GroupType> {
    ctx.require_admin(policy)?;
    let locked = ctx.dom.lock();
    let mut out = None;
    settings::update(ctx.store(), &locked, |m| {
        let mut t = find_in(ctx, m, id)?;
        f(m, &mut t)?;
        put(m, PREFIX, &t.id.clone(), &t)?;
        out = Some(t);
        Ok(())
    })?;
    out.ok_or_else(|| ApiError::internal("group type update lost"))
}

/// `POST group_types` (admin): 202.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    ctx.require_admin("group:group_types:create")?;
    let b = wrapped(ctx, "group_type")?;
    let name = opt_string(&b, "name", MAX_FIELD)?
        .ok_or_else(|| ApiError::bad_request("Invalid input received: name is required."))?;
    let t = GroupType {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.trim().to_string(),
        description: opt_string(&b, "description", MAX_FIELD)?,
        is_public: public_flag(&b)?.unwrap_or(true),
        group_specs: specs(b.get("group_specs"))?,
        created: now(),
    };
    let locked = ctx.dom.lock();
    settings::update(ctx.store(), &locked, |m| {
        check_name(m, &t.name, &t.id)?;
        put(m, PREFIX, &t.id, &t)
    })?;
    tracing::info!(tenant = %ctx.tenant.id, group_type = %t.id, "cinder: group type created");
    views::reply(
        202,
        &GroupTypeBody {
            group_type: view(&t),
        },
    )
}

/// `PUT group_types/{id}` (admin): name, description, is_public.
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let b = wrapped(ctx, "group_type")?;
    let name = opt_string(&b, "name", MAX_FIELD)?;
    let description = opt_string(&b, "description", MAX_FIELD)?;
    let public = public_flag(&b)?;
    if name.is_none() && description.is_none() && public.is_none() {
        return Err(ApiError::bad_request(
            "Specified group type name, description or a combination thereof is invalid.",
        ));
    }
    let t = modify(ctx, id, "group:group_types:update", |m, t| {
        if let Some(n) = &name {
            check_name(m, n.trim(), &t.id)?;
            t.name = n.trim().to_string();
        }
        if description.is_some() {
            t.description.clone_from(&description);
        }
        if let Some(p) = public {
            t.is_public = p;
        }
        Ok(())
    })?;
    views::reply(
        200,
        &GroupTypeBody {
            group_type: view(&t),
        },
    )
}

/// `DELETE group_types/{id}` (admin): 202; 400 while a group has it.
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("group:group_types:delete")?;
    let locked = ctx.dom.lock();
    settings::update(ctx.store(), &locked, |m| {
        let t = find_in(ctx, m, id)?;
        if super::groups::type_in_use(m, &t.id) {
            return Err(ApiError::bad_request("Target group type is still in use."));
        }
        m.remove(&format!("{PREFIX}{}", t.id));
        Ok(())
    })?;
    tracing::info!(tenant = %ctx.tenant.id, group_type = %id, "cinder: group type deleted");
    Ok(Reply::empty(202))
}

/// `GET group_types/{id}/group_specs`, `POST` (admin: adds or replaces
/// the given keys; 202).
pub fn group_specs(ctx: &Ctx, id: &str) -> Result<Reply> {
    if ctx.req.method == warp::http::Method::GET {
        let s = settings::read_store(ctx.store());
        let t = find_in(ctx, &s, id)?;
        return views::reply(
            200,
            &GroupSpecsBody {
                group_specs: t.group_specs,
            },
        );
    }
    let b = wrapped(ctx, "group_specs")?;
    let add = specs(Some(&Value::Object(b)))?;
    modify(ctx, id, "group:group_types_specs:create", |_, t| {
        t.group_specs.extend(add.clone());
        Ok(())
    })?;
    views::reply(202, &GroupSpecsBody { group_specs: add })
}

/// `GET`, `PUT` (admin; the body is exactly `{key: value}`) and `DELETE`
/// (admin, 202) `group_types/{id}/group_specs/{key}`.
pub fn group_spec(ctx: &Ctx, id: &str, key: &str) -> Result<Reply> {
    let missing = || {
        ApiError::not_found(format!(
            "Group Type {} has no specs with key {}.",
            id.escape_debug(),
            key.escape_debug()
        ))
    };
    match ctx.req.method.as_str() {
        "GET" => {
            let s = settings::read_store(ctx.store());
            let t = find_in(ctx, &s, id)?;
            let v = t.group_specs.get(key).ok_or_else(missing)?;
            let one = GroupSpec([(key.to_string(), v.clone())].into_iter().collect());
            views::reply(200, &one)
        }
        "PUT" => {
            ctx.require_admin("group:group_types_specs:update")?;
            let one = super::params::one_spec(ctx, key, "group spec", "group_specs")?;
            modify(ctx, id, "group:group_types_specs:update", |_, t| {
                t.group_specs.extend(one.clone());
                Ok(())
            })?;
            views::reply(200, &GroupSpec(one))
        }
        _ => {
            modify(ctx, id, "group:group_types_specs:delete", |_, t| {
                t.group_specs.remove(key).map(|_| ()).ok_or_else(missing)
            })?;
            Ok(Reply::empty(202))
        }
    }
}
