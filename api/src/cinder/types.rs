//! Cinder volume types: the built-in `__DEFAULT__` (fixed id, no extra
//! specs, not changeable) and the types an admin makes: named records
//! with a description, extra specs, and public or private with an access
//! list of projects. They are kept durably in the settings object
//! (`domain/settings.rs`, key `api.vtype/{id}`, a JSON record).
//!
//! blockd has one backend, so a type changes nothing physical: a volume
//! may be made with any type the caller sees (a private type only by the
//! projects on its list; others get 404), and `os-retype` of an available
//! volume only records the new type. Extra specs are stored; only the
//! capability keys (`storage_protocol`, `vendor_name`,
//! `volume_backend_name`) are checked against the backend, as Cinder's
//! scheduler does: a volume of a type asking for others is made in status
//! `error` with a user message (`messages.rs`). A type may have a QoS
//! spec (`qos.rs`, enforced by the NBD server) and an encryption record
//! (`encryption.rs`; blockd has no key manager, so no volume of such a
//! type can be made).
//!
//! Admin only (403 otherwise): create, update, delete (400 while a
//! volume or a group has the type), extra spec changes, access changes and
//! lists.

use super::info::{DEFAULT_TYPE, DEFAULT_TYPE_ID};
use super::params::MAX_FIELD;
use super::views::reply;
use super::views_info::{
    self, ExtraSpec, ExtraSpecs, TypeAccess, TypeAccessList, VolumeTypeList, VolumeTypeOne,
};
use super::Ctx;
use crate::domain::settings;
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The settings key prefix of a type record.
pub(crate) const PREFIX: &str = "api.vtype/";
/// A volume's type id (absent: `__DEFAULT__`).
pub(crate) const TYPE_ID: &str = "api.cinder_volume_type_id";
/// Longest name, description, extra spec key or value.
const MAX_TEXT: usize = 255;

/// A volume type.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct VolumeType {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub is_public: bool,
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
    #[serde(default)]
    pub access: Vec<String>,
    /// The associated QoS spec (`qos.rs`).
    #[serde(default)]
    pub qos_specs_id: Option<String>,
}

fn default_type() -> VolumeType {
    VolumeType {
        id: DEFAULT_TYPE_ID.into(),
        name: DEFAULT_TYPE.into(),
        description: Some("Default Volume Type".into()),
        is_public: true,
        extra_specs: BTreeMap::new(),
        access: Vec::new(),
        qos_specs_id: None,
    }
}

/// Every type in `settings` (the default first, then by name).
fn all_types(settings: &BTreeMap<String, String>) -> Vec<VolumeType> {
    let mut v: Vec<VolumeType> = settings::records(settings, PREFIX);
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v.insert(0, default_type());
    v
}

/// The capabilities of blockd's one backend that a type's extra specs
/// may ask for (bare or `capabilities:`-scoped), as Cinder's scheduler
/// matches them, and their values (those `admin.rs` reports).
const CAPABILITIES: [(&str, &str); 3] = [
    ("storage_protocol", super::admin::PROTOCOL),
    ("vendor_name", super::admin::VENDOR),
    ("volume_backend_name", super::admin::BACKEND_NAME),
];

/// Why the backend cannot hold a volume of type `t`: a capability extra
/// spec whose value is not the backend's (compared literally; no other
/// extra spec is interpreted).
pub(crate) fn unmet(t: &VolumeType) -> Option<String> {
    for (k, v) in &t.extra_specs {
        let key = k.strip_prefix("capabilities:").unwrap_or(k);
        if let Some((_, have)) = CAPABILITIES.iter().find(|(c, _)| *c == key) {
            if v != have {
                return Some(format!(
                    "{key} is {have}, the volume type asks for {}",
                    v.escape_debug()
                ));
            }
        }
    }
    None
}

/// The (id, name) of every type among `all`.
pub(crate) fn ids_names(all: &[ObjectInfo]) -> Vec<(String, String)> {
    all_types(&settings::read(all))
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect()
}

/// The names of every type among `all` (for per-type quota keys).
pub(crate) fn names(all: &[ObjectInfo]) -> Vec<String> {
    all_types(&settings::read(all))
        .into_iter()
        .map(|t| t.name)
        .collect()
}

fn sees(ctx: &Ctx, t: &VolumeType) -> bool {
    ctx.tenant.admin || t.is_public || t.access.contains(&ctx.tenant.id)
}

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(format!(
        "Volume type {} could not be found.",
        key.escape_debug()
    ))
}

/// The type `key` (id, name, or `default`) the caller sees, among the
/// settings now.
pub(crate) fn find(ctx: &Ctx, key: &str) -> Result<VolumeType> {
    let s = settings::read(&ctx.store().list());
    find_in(ctx, &s, key)
}

/// The type `key` the caller sees among the settings `s`.
pub(crate) fn find_in(ctx: &Ctx, s: &BTreeMap<String, String>, key: &str) -> Result<VolumeType> {
    let key = if key == "default" {
        DEFAULT_TYPE_ID
    } else {
        key
    };
    all_types(s)
        .into_iter()
        .find(|t| (t.id == key || t.name == key) && sees(ctx, t))
        .ok_or_else(|| not_found(key))
}

/// The name of volume `o`'s type, as views show it.
pub(crate) fn name_of(all_settings: &BTreeMap<String, String>, o: &ObjectInfo) -> String {
    meta::get(o, TYPE_ID)
        .and_then(|id| settings::record::<VolumeType>(all_settings, PREFIX, id))
        .map_or_else(|| DEFAULT_TYPE.to_string(), |t| t.name)
}

fn view(t: &VolumeType) -> views_info::VolumeType {
    views_info::VolumeType {
        id: t.id.clone(),
        name: t.name.clone(),
        description: t.description.clone(),
        is_public: t.is_public,
        access_is_public: Some(t.is_public),
        extra_specs: t.extra_specs.clone(),
        qos_specs_id: Some(t.qos_specs_id.clone()),
    }
}

/// `GET types` (`?is_public=` filters for admins).
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let s = settings::read(&ctx.store().list());
    let want = ctx
        .req
        .query_param("is_public")
        .filter(|_| ctx.tenant.admin)
        .map(|v| v.to_ascii_lowercase());
    let volume_types = all_types(&s)
        .iter()
        .filter(|t| sees(ctx, t))
        .filter(|t| match want.as_deref() {
            Some("true" | "1") => t.is_public,
            Some("false" | "0") => !t.is_public,
            _ => true,
        })
        .map(view)
        .collect();
    Ok(reply(200, &VolumeTypeList { volume_types }))
}

/// `GET types/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    Ok(reply(
        200,
        &VolumeTypeOne {
            volume_type: view(&find(ctx, id)?),
        },
    ))
}

fn body(ctx: &Ctx, key: &str) -> Result<Map<String, Value>> {
    super::params::wrapped(ctx, key)
}

fn text(m: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    super::params::opt_string(m, key, MAX_TEXT)
}

fn public_flag(m: &Map<String, Value>) -> Result<Option<bool>> {
    for k in ["os-volume-type-access:is_public", "is_public"] {
        if let Some(v) = m.get(k).filter(|v| !v.is_null()) {
            return super::params::parse_bool(v, k).map(Some);
        }
    }
    Ok(None)
}

fn specs(v: Option<&Value>) -> Result<BTreeMap<String, String>> {
    super::params::spec_map(v, "extra spec", "extra_specs")
}

fn check_name(s: &BTreeMap<String, String>, name: &str, except: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request(
            "Invalid input received: the volume type name must not be empty.",
        ));
    }
    if all_types(s)
        .iter()
        .any(|t| t.name == name && t.id != except)
    {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!("Volume Type {} already exists.", name.escape_debug()),
        ));
    }
    Ok(())
}

/// Changes type `id` with `f` under the lock; the default type is fixed.
fn modify(
    ctx: &Ctx,
    id: &str,
    policy: &str,
    f: impl FnOnce(&BTreeMap<String, String>, &mut VolumeType) -> Result<()>,
) -> Result<VolumeType> {
    ctx.require_admin(policy)?;
    let locked = ctx.dom.lock();
    let mut out = None;
    settings::update(ctx.store(), &locked, |m| {
        let mut t = find_in(ctx, m, id)?;
        if t.id == DEFAULT_TYPE_ID {
            return Err(ApiError::bad_request(format!(
                "Invalid input received: the type {DEFAULT_TYPE} cannot be changed."
            )));
        }
        f(m, &mut t)?;
        settings::put(m, PREFIX, &t.id, &t)?;
        out = Some(t);
        Ok(())
    })?;
    out.ok_or_else(|| ApiError::internal("type update lost"))
}

/// `POST types`.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    ctx.require_admin("volume_extension:types_manage")?;
    let b = body(ctx, "volume_type")?;
    let name = text(&b, "name")?
        .ok_or_else(|| ApiError::bad_request("Invalid input received: name is required."))?;
    let t = VolumeType {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.trim().to_string(),
        description: text(&b, "description")?,
        is_public: public_flag(&b)?.unwrap_or(true),
        extra_specs: specs(b.get("extra_specs"))?,
        access: Vec::new(),
        qos_specs_id: None,
    };
    let locked = ctx.dom.lock();
    settings::update(ctx.store(), &locked, |m| {
        check_name(m, &t.name, &t.id)?;
        settings::put(m, PREFIX, &t.id, &t)
    })?;
    tracing::info!(tenant = %ctx.tenant.id, volume_type = %t.id, "cinder: volume type created");
    // Cinder's create answer has no `qos_specs_id`.
    let mut volume_type = view(&t);
    volume_type.qos_specs_id = None;
    Ok(reply(200, &VolumeTypeOne { volume_type }))
}

/// `PUT types/{id}`: name, description, is_public.
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply> {
    let b = body(ctx, "volume_type")?;
    let name = text(&b, "name")?;
    let description = text(&b, "description")?;
    let public = public_flag(&b)?;
    if name.is_none() && description.is_none() && public.is_none() && !b.contains_key("description")
    {
        return Err(ApiError::bad_request(
            "Invalid input received: give a name, description or is_public.",
        ));
    }
    let t = modify(ctx, id, "volume_extension:types_manage", |m, t| {
        if let Some(n) = &name {
            check_name(m, n.trim(), &t.id)?;
            t.name = n.trim().to_string();
        }
        if b.contains_key("description") {
            t.description = description.clone();
        }
        if let Some(p) = public {
            t.is_public = p;
        }
        Ok(())
    })?;
    // Cinder's update answer has neither the access flag nor QoS.
    let mut volume_type = view(&t);
    volume_type.qos_specs_id = None;
    volume_type.access_is_public = None;
    Ok(reply(200, &VolumeTypeOne { volume_type }))
}

/// `DELETE types/{id}`: not the default, not while a volume has it.
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:types_manage")?;
    let locked = ctx.dom.lock();
    settings::update(ctx.store(), &locked, |m| {
        let t = find_in(ctx, m, id)?;
        if t.id == DEFAULT_TYPE_ID {
            return Err(ApiError::bad_request(
                "Invalid volume type: the default volume type cannot be deleted.",
            ));
        }
        let used = ctx
            .store()
            .list()
            .iter()
            .any(|o| o.kind == ObjectKind::Volume && meta::get(o, TYPE_ID) == Some(&t.id));
        if used || super::groups::volume_type_in_use(m, &t.id) {
            return Err(ApiError::bad_request("Target volume type is still in use."));
        }
        m.remove(&format!("{PREFIX}{}", t.id));
        m.remove(&format!("{}{}", super::encryption::PREFIX, t.id));
        Ok(())
    })?;
    Ok(Reply::empty(202))
}

/// `GET types/{id}/extra_specs`, `POST` (admin: adds or replaces the
/// given keys).
pub fn extra_specs(ctx: &Ctx, id: &str) -> Result<Reply> {
    if ctx.req.method == warp::http::Method::GET {
        let t = find(ctx, id)?;
        return Ok(reply(
            200,
            &ExtraSpecs {
                extra_specs: t.extra_specs,
            },
        ));
    }
    let b = body(ctx, "extra_specs")?;
    let add = specs(Some(&Value::Object(b)))?;
    modify(
        ctx,
        id,
        "volume_extension:types_extra_specs:create",
        |_, t| {
            t.extra_specs.extend(add.clone());
            Ok(())
        },
    )?;
    Ok(reply(200, &ExtraSpecs { extra_specs: add }))
}

/// `GET`, `PUT` (admin; the body is exactly `{key: value}`) and `DELETE`
/// (admin) `types/{id}/extra_specs/{key}`.
pub fn extra_spec(ctx: &Ctx, id: &str, key: &str) -> Result<Reply> {
    let missing = || {
        ApiError::not_found(format!(
            "Volume Type {} has no extra specs with key {}.",
            id.escape_debug(),
            key.escape_debug()
        ))
    };
    match ctx.req.method.as_str() {
        "GET" => {
            let t = find(ctx, id)?;
            let v = t.extra_specs.get(key).ok_or_else(missing)?;
            let one = BTreeMap::from([(key.to_string(), v.clone())]);
            Ok(reply(200, &ExtraSpec(one)))
        }
        "PUT" => {
            ctx.require_admin("volume_extension:types_extra_specs:update")?;
            let one = super::params::one_spec(ctx, key, "extra spec", "extra_specs")?;
            modify(
                ctx,
                id,
                "volume_extension:types_extra_specs:update",
                |_, t| {
                    t.extra_specs.extend(one.clone());
                    Ok(())
                },
            )?;
            Ok(reply(200, &ExtraSpec(one)))
        }
        _ => {
            modify(
                ctx,
                id,
                "volume_extension:types_extra_specs:delete",
                |_, t| t.extra_specs.remove(key).map(|_| ()).ok_or_else(missing),
            )?;
            Ok(Reply::empty(202))
        }
    }
}

/// `POST types/{id}/action`: `addProjectAccess` / `removeProjectAccess`
/// `{"project": id}`, private types only.
pub fn action(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:volume_type_access:addProjectAccess")?;
    let b = match ctx.req.json_body()? {
        Some(Value::Object(m)) if m.len() == 1 => m,
        _ => {
            return Err(ApiError::bad_request(
                "Malformed request body: expected one action object",
            ))
        }
    };
    let Some((name, args)) = b.into_iter().next() else {
        return Err(ApiError::bad_request("Malformed request body"));
    };
    let add = match name.as_str() {
        "addProjectAccess" => true,
        "removeProjectAccess" => false,
        _ => {
            return Err(ApiError::bad_request(format!(
                "Invalid action {}.",
                name.escape_debug()
            )))
        }
    };
    let project = args
        .get("project")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty() && p.len() <= MAX_FIELD)
        .ok_or_else(|| {
            ApiError::bad_request("Missing required element 'project' in request body.")
        })?
        .to_string();
    modify(ctx, id, "volume_extension:volume_type_access", |_, t| {
        if t.is_public {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                "Invalid volume type: Type access modification is not applicable to public volume type.",
            ));
        }
        let has = t.access.contains(&project);
        match (add, has) {
            (true, true) => Err(ApiError::new(
                ErrorKind::Conflict,
                format!(
                    "Volume type access for {} / {} already exists.",
                    t.id,
                    project.escape_debug()
                ),
            )),
            (true, false) => {
                t.access.push(project.clone());
                Ok(())
            }
            (false, true) => {
                t.access.retain(|p| p != &project);
                Ok(())
            }
            (false, false) => Err(ApiError::not_found(format!(
                "Volume type access not found for {} / {}.",
                t.id,
                project.escape_debug()
            ))),
        }
    })?;
    Ok(Reply::empty(202))
}

/// `GET types/{id}/os-volume-type-access` (admin).
pub fn access_list(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:volume_type_access")?;
    let t = find(ctx, id)?;
    if t.is_public {
        return Err(ApiError::not_found(format!(
            "Access list not available for public volume type {}.",
            t.id
        )));
    }
    let volume_type_access = t
        .access
        .iter()
        .map(|p| TypeAccess {
            volume_type_id: t.id.clone(),
            project_id: p.clone(),
        })
        .collect();
    Ok(reply(200, &TypeAccessList { volume_type_access }))
}
