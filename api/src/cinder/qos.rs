//! Cinder QoS specs (`/v3/{project}/qos-specs`, admin only): named sets
//! of keys with a consumer (`front-end`, `back-end` or `both`), kept
//! durably in the settings object (`domain/settings.rs`, key
//! `api.qos/{id}`), and associated with volume types (a type records its
//! spec's id, so a type has at most one).
//!
//! They are enforced, not only stored: for a volume whose type has a spec
//! with consumer `back-end` or `both`, blockd's NBD server throttles the
//! volume's exports by the keys [`ENFORCED`] names ([`back_end_specs`],
//! which the binary hands the NBD server as its limits hook); a spec with
//! consumer `front-end` or `both` goes to the client in
//! `connection_info.data.qos_specs` (`null` otherwise), as Cinder does.
//! The enforced keys take whole numbers (0: no limit); other keys are
//! stored and passed on as given.

use super::params::{self, MAX_FIELD};
use super::types::{self, VolumeType};
use super::views::{reply, Link};
use super::views_qos::{
    QosAssociation, QosAssociationList, QosKeys, QosSpec, QosSpecList, QosSpecOne,
};
use super::Ctx;
use crate::domain::settings;
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The settings key prefix of a QoS spec record.
const PREFIX: &str = "api.qos/";
/// The consumers Cinder knows.
const CONSUMERS: [&str; 3] = ["front-end", "back-end", "both"];

/// The keys blockd's NBD server enforces (each also with `_max`, its
/// burst).
pub const ENFORCED: [&str; 6] = [
    "total_bytes_sec",
    "read_bytes_sec",
    "write_bytes_sec",
    "total_iops_sec",
    "read_iops_sec",
    "write_iops_sec",
];

/// A QoS spec record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub id: String,
    pub name: String,
    pub consumer: String,
    #[serde(default)]
    pub specs: BTreeMap<String, String>,
}

fn view(s: &Spec) -> QosSpec {
    QosSpec {
        id: s.id.clone(),
        name: s.name.clone(),
        consumer: s.consumer.clone(),
        specs: s.specs.clone(),
    }
}

fn one(ctx: &Ctx, s: &Spec) -> QosSpecOne {
    QosSpecOne {
        qos_specs: view(s),
        links: vec![
            Link::new("self", format!("{}/qos-specs/{}", ctx.base(), s.id)),
            Link::new("bookmark", format!("{}/qos-specs/{}", ctx.bookmark(), s.id)),
        ],
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "QoS Specs {} could not be found.",
        id.escape_debug()
    ))
}

fn find_in(m: &BTreeMap<String, String>, id: &str) -> Result<Spec> {
    settings::record(m, PREFIX, id).ok_or_else(|| not_found(id))
}

/// The spec of volume `o`'s type, if it has one, among `s`.
fn of_volume(s: &BTreeMap<String, String>, o: &ObjectInfo) -> Option<Spec> {
    let type_id = meta::get(o, types::TYPE_ID)?;
    let t: VolumeType = settings::record(s, types::PREFIX, type_id)?;
    settings::record(s, PREFIX, t.qos_specs_id.as_deref()?)
}

/// The keys of the spec the NBD server enforces for volume `o` (its
/// type's spec, consumer `back-end` or `both`), read from the settings
/// now; `None` when there is none.
pub fn back_end_specs(store: &Store, o: &ObjectInfo) -> Option<BTreeMap<String, String>> {
    let s = settings::read_store(store);
    of_volume(&s, o)
        .filter(|q| q.consumer != "front-end")
        .map(|q| q.specs)
}

/// The specs a client should apply for volume `o` (consumer `front-end`
/// or `both`), for `connection_info.data.qos_specs`.
pub(crate) fn front_end_specs(store: &Store, o: &ObjectInfo) -> Option<BTreeMap<String, String>> {
    let s = settings::read_store(store);
    of_volume(&s, o)
        .filter(|q| q.consumer != "back-end")
        .map(|q| q.specs)
}

/// Checks the keys of a spec: names as extra specs are checked, values
/// strings, and the enforced keys whole numbers.
fn check_specs(m: &Map<String, Value>) -> Result<BTreeMap<String, String>> {
    let specs = params::spec_map(Some(&Value::Object(m.clone())), "QoS spec", "qos_specs")?;
    for (k, v) in &specs {
        let base = k.strip_suffix("_max").unwrap_or(k);
        if ENFORCED.contains(&base) && v.trim().parse::<u64>().is_err() {
            return Err(ApiError::bad_request(format!(
                "Invalid input received: {k} must be a whole number (0 for no limit), not '{}'.",
                v.escape_debug()
            )));
        }
    }
    Ok(specs)
}

fn check_consumer(v: &Value) -> Result<String> {
    match v.as_str() {
        Some(c) if CONSUMERS.contains(&c) => Ok(c.to_string()),
        _ => Err(ApiError::bad_request(
            "Invalid input received: valid consumers of QoS specs are: ['front-end', 'back-end', 'both'].",
        )),
    }
}

/// `GET qos-specs` (admin).
pub fn list(ctx: &Ctx) -> Result<Reply> {
    ctx.require_admin("volume_extension:qos_specs_manage:get_all")?;
    let s = settings::read(&ctx.store().list());
    let mut v: Vec<Spec> = settings::records(&s, PREFIX);
    v.sort_by(|a, b| a.name.cmp(&b.name));
    let qos_specs = v.iter().map(view).collect();
    Ok(reply(200, &QosSpecList { qos_specs }))
}

/// `GET qos-specs/{id}` (admin).
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:qos_specs_manage:get")?;
    let s = settings::read(&ctx.store().list());
    Ok(reply(200, &one(ctx, &find_in(&s, id)?)))
}

/// `POST qos-specs` (admin): `name`, `consumer` (default `back-end`),
/// and the keys.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    ctx.require_admin("volume_extension:qos_specs_manage:create")?;
    let mut b = params::wrapped(ctx, "qos_specs")?;
    let name = params::opt_string(&b, "name", MAX_FIELD)?
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("Invalid input received: the QoS spec name is required.")
        })?;
    b.remove("name");
    let consumer = match b.remove("consumer") {
        None | Some(Value::Null) => "back-end".to_string(),
        Some(v) => check_consumer(&v)?,
    };
    let spec = Spec {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        consumer,
        specs: check_specs(&b)?,
    };
    let locked = ctx.dom.lock();
    settings::update(ctx.store(), &locked, |m| {
        let taken = settings::records::<Spec>(m, PREFIX)
            .iter()
            .any(|s| s.name == spec.name);
        if taken {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!("QoS Specs {} already exists.", spec.name.escape_debug()),
            ));
        }
        settings::put(m, PREFIX, &spec.id, &spec)
    })?;
    tracing::info!(tenant = %ctx.tenant.id, qos_specs = %spec.id, "cinder: QoS specs created");
    Ok(reply(200, &one(ctx, &spec)))
}

/// Changes spec `id` with `f` (given the settings too) under the lock.
fn modify(
    ctx: &Ctx,
    id: &str,
    f: impl FnOnce(&mut BTreeMap<String, String>, &mut Spec) -> Result<()>,
) -> Result<()> {
    let locked = ctx.dom.lock();
    settings::update(ctx.store(), &locked, |m| {
        let mut s = find_in(m, id)?;
        f(m, &mut s)?;
        settings::put(m, PREFIX, &s.id, &s)
    })?;
    Ok(())
}

/// `PUT qos-specs/{id}` (admin): sets keys (`consumer` too); the answer
/// has the keys given.
pub fn set_keys(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:qos_specs_manage:update")?;
    let mut b = params::wrapped(ctx, "qos_specs")?;
    if b.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid input received: give at least one key.",
        ));
    }
    let consumer = b
        .remove("consumer")
        .map(|v| check_consumer(&v))
        .transpose()?;
    let add = check_specs(&b)?;
    modify(ctx, id, |_, s| {
        s.specs.extend(add.clone());
        if let Some(c) = &consumer {
            s.consumer = c.clone();
        }
        Ok(())
    })?;
    let mut given = add;
    if let Some(c) = consumer {
        given.insert("consumer".into(), c);
    }
    Ok(reply(200, &QosKeys { qos_specs: given }))
}

/// `PUT qos-specs/{id}/delete_keys` (admin): `{"keys": [...]}`, every
/// one present (404 otherwise, nothing removed).
pub fn delete_keys(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:qos_specs_manage:delete_keys")?;
    let keys: Vec<String> = match ctx.req.json_body()? {
        Some(Value::Object(m)) => match m.get("keys") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|k| k.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    ApiError::bad_request("Invalid input received: keys must be strings.")
                })?,
            _ => {
                return Err(ApiError::bad_request(
                    "Invalid input received: keys must be a non-empty list.",
                ))
            }
        },
        _ => {
            return Err(ApiError::bad_request(
                "Missing required element 'keys' in request body.",
            ))
        }
    };
    modify(ctx, id, |_, s| {
        if let Some(k) = keys.iter().find(|k| !s.specs.contains_key(*k)) {
            return Err(ApiError::not_found(format!(
                "QoS spec {} has no key {}.",
                s.id,
                k.escape_debug()
            )));
        }
        for k in &keys {
            s.specs.remove(k);
        }
        Ok(())
    })?;
    Ok(Reply::empty(202))
}

/// The types associated with spec `id` among `m`.
fn associated(m: &BTreeMap<String, String>, id: &str) -> Vec<VolumeType> {
    let mut v: Vec<VolumeType> = settings::records(m, types::PREFIX);
    v.retain(|t| t.qos_specs_id.as_deref() == Some(id));
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Sets the spec of the types in `m` that `pick` chooses.
fn set_types(
    m: &mut BTreeMap<String, String>,
    pick: impl Fn(&VolumeType) -> bool,
    to: Option<&str>,
) -> Result<()> {
    let all: Vec<VolumeType> = settings::records(m, types::PREFIX);
    for mut t in all.into_iter().filter(|t| pick(t)) {
        t.qos_specs_id = to.map(str::to_string);
        settings::put(m, types::PREFIX, &t.id.clone(), &t)?;
    }
    Ok(())
}

/// `DELETE qos-specs/{id}[?force=true]` (admin): refused while a type
/// is associated unless forced (then the associations go too).
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:qos_specs_manage:delete")?;
    let force = ctx.req.query_param("force").is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on" | "y" | "t"
        )
    });
    let locked = ctx.dom.lock();
    settings::update(ctx.store(), &locked, |m| {
        let s = find_in(m, id)?;
        if !associated(m, &s.id).is_empty() {
            if !force {
                return Err(ApiError::bad_request(format!(
                    "QoS Specs {} is still associated with entities.",
                    s.id
                )));
            }
            set_types(m, |t| t.qos_specs_id.as_deref() == Some(&s.id), None)?;
        }
        m.remove(&format!("{PREFIX}{}", s.id));
        Ok(())
    })?;
    tracing::info!(tenant = %ctx.tenant.id, qos_specs = %id, force, "cinder: QoS specs deleted");
    Ok(Reply::empty(202))
}

/// `GET qos-specs/{id}/associations` (admin).
pub fn associations(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:qos_specs_manage:get")?;
    let s = settings::read(&ctx.store().list());
    let spec = find_in(&s, id)?;
    let qos_associations = associated(&s, &spec.id)
        .into_iter()
        .map(|t| QosAssociation {
            association_type: "volume_type".into(),
            name: t.name,
            id: t.id,
        })
        .collect();
    Ok(reply(200, &QosAssociationList { qos_associations }))
}

/// The `vol_type_id` query parameter (400 when missing).
fn type_param(ctx: &Ctx) -> Result<String> {
    ctx.req
        .query_param("vol_type_id")
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("Volume Type id must not be None."))
}

/// The type `key` among `m` (the default type has no record: 400).
fn type_in(ctx: &Ctx, m: &BTreeMap<String, String>, key: &str) -> Result<VolumeType> {
    let t = types::find_in(ctx, m, key)?;
    if t.id == super::info::DEFAULT_TYPE_ID {
        return Err(ApiError::bad_request(format!(
            "Invalid volume type: the type {} cannot be changed.",
            super::info::DEFAULT_TYPE
        )));
    }
    Ok(t)
}

/// `GET qos-specs/{id}/associate?vol_type_id=` (admin): a type already
/// associated with another spec is refused (400).
pub fn associate(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:qos_specs_manage:update")?;
    let type_key = type_param(ctx)?;
    modify(ctx, id, |m, s| {
        let t = type_in(ctx, m, &type_key)?;
        match t.qos_specs_id.as_deref() {
            Some(other) if other != s.id => Err(ApiError::bad_request(format!(
                "Invalid volume type: Type {} is already associated with another qos specs: {other}",
                t.id
            ))),
            _ => set_types(m, |x| x.id == t.id, Some(&s.id)),
        }
    })?;
    tracing::info!(tenant = %ctx.tenant.id, qos_specs = %id, volume_type = %type_key, "cinder: QoS specs associated");
    Ok(Reply::empty(202))
}

/// `GET qos-specs/{id}/disassociate?vol_type_id=` (admin): 404 when the
/// type is not associated with this spec.
pub fn disassociate(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:qos_specs_manage:update")?;
    let type_key = type_param(ctx)?;
    modify(ctx, id, |m, s| {
        let t = type_in(ctx, m, &type_key)?;
        if t.qos_specs_id.as_deref() != Some(&s.id) {
            return Err(ApiError::not_found(format!(
                "Type {} is not associated with QoS Specs {}.",
                t.id, s.id
            )));
        }
        set_types(m, |x| x.id == t.id, None)
    })?;
    Ok(Reply::empty(202))
}

/// `GET qos-specs/{id}/disassociate_all` (admin).
pub fn disassociate_all(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:qos_specs_manage:update")?;
    modify(ctx, id, |m, s| {
        set_types(m, |t| t.qos_specs_id.as_deref() == Some(&s.id), None)
    })?;
    Ok(Reply::empty(202))
}
