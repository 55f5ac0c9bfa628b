//! API-wide settings kept in the engine, so they are as durable as the
//! objects: runtime quota overrides (`quota.rs`), Cinder's volume types,
//! groups, QoS specs and encryption types, and the projects admins make
//! through Keystone live in the metadata map of one hidden object, a 512-byte volume named
//! [`NAME`] marked with [`MARK`]. It has no owner, so no API tenant ever
//! sees it or is charged for it (the visibility rule); the command line
//! lists it like any other ownerless volume.
//!
//! Reads take the catalogue as the caller listed it (`store.list()`), so a
//! quota check sees the settings of the same moment as the usage it
//! counts. Writes run under the API-wide lock ([`Locked`]) and are one
//! durable engine step (create, or replace the metadata).

use super::Locked;
use crate::error::Result;
use crate::meta;
use engine::{ObjectInfo, ObjectKind, ObjectUpdate, Store};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;

/// The settings key prefix of a Cinder generic volume group record
/// (`cinder/groups.rs`).
pub(crate) const GROUP_RECORD: &str = "api.group/";
/// The settings key prefix of a Cinder group snapshot record
/// (`cinder/group_snapshots.rs`).
pub(crate) const GROUP_SNAPSHOT_RECORD: &str = "api.gsnap/";

/// The settings object's engine name.
pub(crate) const NAME: &str = "blockd-api-settings";
/// The key marking it (value "1").
pub(crate) const MARK: &str = "api.settings";
/// Its size: the engine's smallest volume.
const SIZE: u64 = 512;

/// The settings object among `all`, if it was ever written.
pub(crate) fn find(all: &[ObjectInfo]) -> Option<&ObjectInfo> {
    all.iter()
        .find(|o| o.kind == ObjectKind::Volume && meta::get(o, MARK).is_some())
}

/// The settings among `all` (empty when never written).
pub(crate) fn read(all: &[ObjectInfo]) -> BTreeMap<String, String> {
    find(all).map(|o| o.metadata.clone()).unwrap_or_default()
}

/// The settings now, found by the object's engine name (no full listing).
pub(crate) fn read_store(store: &Store) -> BTreeMap<String, String> {
    store
        .resolve(NAME, Some(ObjectKind::Volume))
        .and_then(|id| store.get(id))
        .ok()
        .filter(|o| meta::get(o, MARK).is_some())
        .map(|o| o.metadata)
        .unwrap_or_default()
}

/// Changes the settings with `f` (which may refuse), under the lock, in
/// one durable step; returns the new map.
pub(crate) fn update(
    store: &Store,
    _locked: &Locked,
    f: impl FnOnce(&mut BTreeMap<String, String>) -> Result<()>,
) -> Result<BTreeMap<String, String>> {
    let all = store.list();
    let current = find(&all);
    let mut m = current.map(|o| o.metadata.clone()).unwrap_or_default();
    f(&mut m)?;
    m.insert(MARK.to_string(), "1".to_string());
    let update = ObjectUpdate {
        metadata: Some(m.clone()),
        ..Default::default()
    };
    match current {
        Some(o) => store.update(o.id, update)?,
        None => {
            store.create_volume_with(
                Some(NAME),
                SIZE,
                false,
                ObjectUpdate {
                    status: Some(meta::AVAILABLE.to_string()),
                    ..update
                },
            )?;
        }
    }
    Ok(m)
}

/// The records under `prefix` in `s` (unreadable ones skipped).
pub(crate) fn records<T: DeserializeOwned>(s: &BTreeMap<String, String>, prefix: &str) -> Vec<T> {
    s.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .filter_map(|(_, v)| serde_json::from_str(v).ok())
        .collect()
}

/// The record `prefix + id` in `s`.
pub(crate) fn record<T: DeserializeOwned>(
    s: &BTreeMap<String, String>,
    prefix: &str,
    id: &str,
) -> Option<T> {
    s.get(&format!("{prefix}{id}"))
        .and_then(|v| serde_json::from_str(v).ok())
}

/// Stores `r` as `prefix + id` in `m`.
pub(crate) fn put<T: Serialize>(
    m: &mut BTreeMap<String, String>,
    prefix: &str,
    id: &str,
    r: &T,
) -> Result<()> {
    let v =
        serde_json::to_string(r).map_err(|e| crate::error::ApiError::internal(e.to_string()))?;
    m.insert(format!("{prefix}{id}"), v);
    Ok(())
}
