//! Backup export and import (admins): `GET backups/{id}/export_record`
//! describes a backup as a `backup_service` name and an opaque
//! `backup_url`; `POST backups/import_record` makes a backup record from
//! them again, in the importer's project, under the id the record names.
//!
//! The `backup_url` is base64 of a JSON object: the backup's `id`, the
//! engine image that holds its data (`image_id`) and its name,
//! description, volume and snapshot, with `mac`, an HMAC-SHA256 over every
//! member but `id` and `mac` (their canonical JSON) under a key the
//! server draws once and keeps in its settings. The id is the importer's
//! to choose (Cinder imports under the exported id, so a client changes
//! it to import a copy beside the original, as Tempest does); everything
//! that names data is protected, so a record cannot be forged to reach an
//! image it did not describe. Importing needs the image to still exist:
//! the new backup is an O(1) image of it (the two share the data; deleting
//! one leaves the other whole), shown under the record's id.

use super::backups::{brief, find_any, BACKUP_ALIAS, BACKUP_AT, BACKUP_SNAPSHOT, BACKUP_VOLUME};
use super::params::{opt_string, wrapped};
use super::views::{reply, BackupBriefOne, BackupRecord, BackupRecordOne};
use super::Ctx;
use crate::domain::{ops, settings};
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::Reply;
use crate::meta;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use engine::{ObjectId, ObjectKind};
use ring::hmac;
use std::collections::BTreeMap;

/// The `backup_service` of every record (an identifier clients echo
/// back; blockd's backups are engine images, not a Cinder driver's).
pub(crate) const SERVICE: &str = "cinder.backup.drivers.blockd_image";
/// The settings key of the record MAC key (hex).
const KEY: &str = "api.cinder_backup_record_key";
/// The record format.
const FORMAT: &str = "blockd-backup-record-1";
/// The longest `backup_url` accepted.
const MAX_URL: usize = 16 * 1024;

/// The members of a record the MAC covers (all but `id` and `mac`).
fn protected(image: &engine::ObjectInfo) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("format".to_string(), FORMAT.to_string());
    m.insert("image_id".to_string(), image.id.to_string());
    for (member, key) in [
        ("name", meta::DISPLAY_NAME),
        ("description", meta::DISPLAY_DESCRIPTION),
        ("volume_id", BACKUP_VOLUME),
        ("snapshot_id", BACKUP_SNAPSHOT),
    ] {
        if let Some(v) = meta::get(image, key) {
            m.insert(member.to_string(), v.to_string());
        }
    }
    m
}

fn mac(key: &hmac::Key, members: &BTreeMap<String, String>) -> String {
    let text = serde_json::to_string(members).unwrap_or_default();
    hex::encode(hmac::sign(key, text.as_bytes()).as_ref())
}

fn hmac_key(hex_key: &str) -> Option<hmac::Key> {
    let bytes = hex::decode(hex_key).ok().filter(|b| b.len() == 32)?;
    Some(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

/// The record key, drawn and kept in the settings on first use.
fn record_key(ctx: &Ctx) -> Result<hmac::Key> {
    if let Some(k) = settings::read_store(ctx.store())
        .get(KEY)
        .and_then(|k| hmac_key(k))
    {
        return Ok(k);
    }
    let locked = ctx.dom.lock();
    let m = settings::update(ctx.store(), &locked, |m| {
        if m.get(KEY).and_then(|k| hmac_key(k)).is_none() {
            use rand::RngCore;
            let mut b = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            m.insert(KEY.to_string(), hex::encode(b));
        }
        Ok(())
    })?;
    m.get(KEY)
        .and_then(|k| hmac_key(k))
        .ok_or_else(|| ApiError::internal("backup record key lost"))
}

/// `GET backups/{id}/export_record` (admins, any project's backup).
pub fn export(ctx: &Ctx, id: &str) -> Result<Reply> {
    ctx.require_admin("backup:export-import")?;
    let o = find_any(ctx, id)?;
    let key = record_key(ctx)?;
    let members = protected(&o);
    let mut record: BTreeMap<String, String> = members.clone();
    record.insert("id".into(), super::backups::backup_id(&o));
    record.insert("mac".into(), mac(&key, &members));
    let json = serde_json::to_string(&record).map_err(|e| ApiError::internal(e.to_string()))?;
    tracing::info!(tenant = %ctx.tenant.id, backup = %id, image = %o.id, "cinder: backup record exported");
    Ok(reply(
        200,
        &BackupRecordOne {
            record: BackupRecord {
                backup_service: SERVICE.into(),
                backup_url: B64.encode(json),
            },
        },
    ))
}

fn invalid(why: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid input received: {why}"))
}

/// The record a `backup_url` holds, checked: (id, image id, the other
/// members).
fn open(ctx: &Ctx, url: &str) -> Result<(String, ObjectId, BTreeMap<String, String>)> {
    let bad = || invalid("backup_url is not a backup record of this server");
    let bytes = B64.decode(url.trim()).map_err(|_| bad())?;
    let mut record: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let id = record.remove("id").ok_or_else(bad)?;
    let tag = record.remove("mac").ok_or_else(bad)?;
    let tag = hex::decode(tag).map_err(|_| bad())?;
    let key = record_key(ctx)?;
    let text = serde_json::to_string(&record).map_err(|_| bad())?;
    hmac::verify(&key, text.as_bytes(), &tag)
        .map_err(|_| invalid("backup_url failed its integrity check"))?;
    if record.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad());
    }
    if id.parse::<uuid::Uuid>().is_err() {
        return Err(invalid("the record's id must be a UUID"));
    }
    let image = record
        .get("image_id")
        .and_then(|i| i.parse::<ObjectId>().ok())
        .ok_or_else(bad)?;
    Ok((id, image, record))
}

/// `POST backups/import_record` (admins): 201 with the new backup.
pub fn import(ctx: &Ctx) -> Result<Reply> {
    ctx.require_admin("backup:export-import")?;
    let body = wrapped(ctx, "backup-record")?;
    let service = opt_string(&body, "backup_service", 255)?
        .ok_or_else(|| invalid("backup_service is required"))?;
    let url = opt_string(&body, "backup_url", MAX_URL)?
        .ok_or_else(|| invalid("backup_url is required"))?;
    if service != SERVICE {
        return Err(ApiError::bad_request(format!(
            "Invalid backup: backup_service {} is not {SERVICE}.",
            service.escape_debug()
        )));
    }
    let (id, image_id, record) = open(ctx, &url)?;
    let locked = ctx.dom.lock();
    let all = ctx.store().list();
    let taken = all
        .iter()
        .any(|o| o.id.to_string() == id || meta::get(o, BACKUP_ALIAS) == Some(id.as_str()));
    if taken {
        return Err(ApiError::bad_request(
            "Invalid backup: Backup already exists in database.",
        ));
    }
    let image = all
        .into_iter()
        .find(|o| o.id == image_id && o.kind == ObjectKind::Image)
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                format!("Backup {id} could not be found: its image {image_id} is gone."),
            )
        })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string();
    let get = |k: &str| record.get(k).map(String::as_str);
    let m = ops::new_metadata(
        &ctx.dom,
        &Default::default(),
        &[
            (meta::DISPLAY_NAME, get("name")),
            (meta::DISPLAY_DESCRIPTION, get("description")),
            (BACKUP_VOLUME, Some(get("volume_id").unwrap_or(""))),
            (BACKUP_SNAPSHOT, get("snapshot_id")),
            (BACKUP_AT, Some(&now)),
            (BACKUP_ALIAS, Some(&id)),
        ],
    );
    let o = ops::capture_image(&ctx.dom, &locked, &image, None, m)?;
    tracing::info!(tenant = %ctx.tenant.id, backup = %id, image = %o.id, source = %image_id, "cinder: backup record imported");
    Ok(reply(
        201,
        &BackupBriefOne {
            backup: brief(ctx, &o),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_covers_every_member_but_id() {
        let key = hmac_key(&"ab".repeat(32)).unwrap();
        let mut m = BTreeMap::new();
        m.insert("image_id".to_string(), "x".to_string());
        let a = mac(&key, &m);
        assert_eq!(a, mac(&key, &m));
        m.insert("name".to_string(), "n".to_string());
        assert_ne!(a, mac(&key, &m));
        assert!(hmac_key("short").is_none());
    }
}
