//! Cinder volume type encryption (`/v3/{project}/types/{id}/encryption`,
//! admin only): one record per type (provider, cipher, key size, control
//! location), kept durably in the settings object (key
//! `api.venc/{type_id}`). Like Cinder, a type's encryption cannot be
//! made, changed or removed while a volume of the type exists (400).
//!
//! blockd has no key manager, so it cannot encrypt: creating a volume of
//! an encrypted type, or retyping one to it, is refused with a 400 that
//! says so ([`refuse_encrypted`]); every volume shows `encrypted: false`.

use super::params::{self, MAX_FIELD};
use super::types::{self, VolumeType};
use super::views::reply;
use super::views_qos::{Encryption, EncryptionItem, EncryptionOne, EncryptionShow};
use super::Ctx;
use crate::domain::settings;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::ObjectKind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The settings key prefix of an encryption record.
pub(crate) const PREFIX: &str = "api.venc/";
/// The fields a body may have.
const FIELDS: [&str; 4] = ["provider", "cipher", "key_size", "control_location"];

/// A type's encryption record.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    volume_type_id: String,
    encryption_id: String,
    provider: String,
    cipher: Option<String>,
    key_size: Option<u64>,
    control_location: String,
    created: u64,
    updated: Option<u64>,
}

/// A 400 when type `t` is encrypted: blockd has no key manager.
pub(crate) fn refuse_encrypted(ctx: &Ctx, t: &VolumeType) -> Result<()> {
    let s = settings::read_store(ctx.store());
    if settings::record::<Record>(&s, PREFIX, &t.id).is_some() {
        return Err(ApiError::bad_request(format!(
            "Invalid volume type: {} is an encrypted type, and blockd has no key manager to encrypt volumes with.",
            t.name.escape_debug()
        )));
    }
    Ok(())
}

/// The type `id` (admin only; 404 when unknown).
fn the_type(ctx: &Ctx, action: &str, id: &str) -> Result<VolumeType> {
    ctx.require_admin(&format!("volume_extension:volume_type_encryption:{action}"))?;
    types::find(ctx, id)
}

fn in_use(ctx: &Ctx, t: &VolumeType) -> bool {
    ctx.store()
        .list()
        .iter()
        .any(|o| o.kind == ObjectKind::Volume && meta::get(o, types::TYPE_ID) == Some(&t.id))
}

fn not_found(type_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Volume type encryption for type {type_id} does not exist."
    ))
}

/// Checks a body's fields (all optional here) into `r`.
fn apply(b: &Map<String, Value>, r: &mut Record) -> Result<()> {
    if let Some(k) = b.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Invalid input received: unknown encryption field '{}'.",
            k.escape_debug()
        )));
    }
    if b.contains_key("provider") {
        r.provider = params::opt_string(b, "provider", MAX_FIELD)?.ok_or_else(|| {
            ApiError::bad_request(
                "Invalid input for field/attribute provider. Value is not a string.",
            )
        })?;
    }
    if b.contains_key("cipher") {
        r.cipher = params::opt_string(b, "cipher", MAX_FIELD)?;
    }
    match b.get("key_size") {
        None => {}
        Some(Value::Null) => r.key_size = None,
        Some(v) => {
            let n = crate::http::uint_value(v).ok_or_else(|| {
                ApiError::bad_request(
                    "Invalid input for field/attribute key_size. Value must be a whole number.",
                )
            })?;
            r.key_size = Some(n);
        }
    }
    if let Some(v) = b.get("control_location") {
        match v.as_str() {
            Some(c @ ("front-end" | "back-end")) => r.control_location = c.to_string(),
            _ => {
                return Err(ApiError::bad_request(
                    "Invalid input for field/attribute control_location. Value must be 'front-end' or 'back-end'.",
                ))
            }
        }
    }
    Ok(())
}

/// The view of `r`: every member, or those `given` names.
fn view(r: &Record, given: Option<&Map<String, Value>>) -> Encryption {
    let has = |k: &str| given.is_none_or(|g| g.contains_key(k));
    Encryption {
        volume_type_id: given.is_none().then(|| r.volume_type_id.clone()),
        encryption_id: given.is_none().then(|| r.encryption_id.clone()),
        provider: has("provider").then(|| r.provider.clone()),
        cipher: has("cipher").then(|| r.cipher.clone()),
        key_size: has("key_size").then_some(r.key_size),
        control_location: has("control_location").then(|| r.control_location.clone()),
    }
}

fn show_view(r: &Record) -> EncryptionShow {
    EncryptionShow {
        volume_type_id: r.volume_type_id.clone(),
        encryption_id: r.encryption_id.clone(),
        provider: r.provider.clone(),
        cipher: r.cipher.clone(),
        key_size: r.key_size,
        control_location: r.control_location.clone(),
        deleted: false,
        created_at: super::volumes::cinder_time(r.created),
        updated_at: r.updated.map(super::volumes::cinder_time),
        deleted_at: None,
    }
}

/// `GET types/{id}/encryption`: the record, or `{}` when the type has
/// none.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let t = the_type(ctx, "get", id)?;
    let s = settings::read_store(ctx.store());
    Ok(match settings::record::<Record>(&s, PREFIX, &t.id) {
        Some(r) => reply(200, &show_view(&r)),
        None => Reply::json(200, json!({})),
    })
}

/// `GET types/{id}/encryption/{key}`: `{key: value}` of one field.
pub fn show_item(ctx: &Ctx, id: &str, key: &str) -> Result<Reply> {
    let t = the_type(ctx, "get", id)?;
    let s = settings::read_store(ctx.store());
    let r = settings::record::<Record>(&s, PREFIX, &t.id).ok_or_else(|| not_found(&t.id))?;
    let all = serde_json::to_value(show_view(&r)).unwrap_or(Value::Null);
    let v = all
        .get(key)
        .filter(|_| !matches!(key, "deleted" | "deleted_at"))
        .ok_or_else(|| not_found(&t.id))?;
    Ok(reply(
        200,
        &EncryptionItem(BTreeMap::from([(key.to_string(), v.clone())])),
    ))
}

/// Changes the record of type `t` with `f` under the lock (refused while
/// a volume has the type).
fn change(
    ctx: &Ctx,
    t: &VolumeType,
    what: &str,
    f: impl FnOnce(&mut BTreeMap<String, String>, Option<Record>) -> Result<()>,
) -> Result<()> {
    let locked = ctx.dom.lock();
    if in_use(ctx, t) {
        return Err(ApiError::bad_request(format!(
            "Cannot {what} encryption specs. Volume type in use."
        )));
    }
    settings::update(ctx.store(), &locked, |m| {
        let r = settings::record::<Record>(m, PREFIX, &t.id);
        f(m, r)
    })?;
    Ok(())
}

/// `POST types/{id}/encryption`: `provider` and `control_location`
/// required, `cipher` and `key_size` optional.
pub fn create(ctx: &Ctx, id: &str) -> Result<Reply> {
    let t = the_type(ctx, "create", id)?;
    let b = params::wrapped(ctx, "encryption")?;
    for k in ["provider", "control_location"] {
        if b.get(k).is_none_or(Value::is_null) {
            return Err(ApiError::bad_request(format!(
                "Invalid input received: '{k}' is a required property."
            )));
        }
    }
    let mut r = Record {
        volume_type_id: t.id.clone(),
        encryption_id: uuid::Uuid::new_v4().to_string(),
        provider: String::new(),
        cipher: None,
        key_size: None,
        control_location: String::new(),
        created: super::group_types::now(),
        updated: None,
    };
    apply(&b, &mut r)?;
    change(ctx, &t, "create", |m, old| {
        if old.is_some() {
            return Err(ApiError::bad_request(format!(
                "Volume type encryption for type {} already exists.",
                t.id
            )));
        }
        settings::put(m, PREFIX, &t.id, &r)
    })?;
    tracing::info!(tenant = %ctx.tenant.id, volume_type = %t.id, "cinder: volume type encryption created");
    Ok(reply(
        200,
        &EncryptionOne {
            encryption: view(&r, None),
        },
    ))
}

/// `PUT types/{id}/encryption/{encryption_id}`: any of the fields; the
/// answer has the ones given.
pub fn update(ctx: &Ctx, id: &str, encryption_id: &str) -> Result<Reply> {
    let t = the_type(ctx, "update", id)?;
    let b = params::wrapped(ctx, "encryption")?;
    let mut out = None;
    change(ctx, &t, "update", |m, old| {
        let mut r = old
            .filter(|r| r.encryption_id == encryption_id)
            .ok_or_else(|| not_found(&t.id))?;
        apply(&b, &mut r)?;
        r.updated = Some(super::group_types::now());
        settings::put(m, PREFIX, &t.id, &r)?;
        out = Some(r);
        Ok(())
    })?;
    let r = out.ok_or_else(|| ApiError::internal("encryption update lost"))?;
    Ok(reply(
        200,
        &EncryptionOne {
            encryption: view(&r, Some(&b)),
        },
    ))
}

/// `DELETE types/{id}/encryption/{encryption_id}`.
pub fn delete(ctx: &Ctx, id: &str, encryption_id: &str) -> Result<Reply> {
    let t = the_type(ctx, "delete", id)?;
    change(ctx, &t, "delete", |m, old| {
        old.filter(|r| r.encryption_id == encryption_id)
            .ok_or_else(|| not_found(&t.id))?;
        m.remove(&format!("{PREFIX}{}", t.id));
        Ok(())
    })?;
    tracing::info!(tenant = %ctx.tenant.id, volume_type = %t.id, "cinder: volume type encryption deleted");
    Ok(Reply::empty(202))
}
