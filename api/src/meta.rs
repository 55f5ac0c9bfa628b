//! How API-level state lives in the engine, so that every front end sees
//! the same objects: lifecycle in the object's `status` ("available",
//! "in-use", ...), everything else in its metadata map under reserved keys
//! (`api.*`), user metadata under `user.*`. Engine names stay unset for
//! API-created objects (display names are not unique); the NBD export of
//! a volume is its id.
//!
//! **Invariant:** an object with an `api.tenant` key belongs to that tenant
//! and no other tenant ever sees it, except images its owner made public
//! ([`IMAGE_ACCESS`] "1"), which others may see and clone but not change.
//! Volumes and snapshots without one (made by the command line's operator) are
//! invisible to API tenants; images without one are public. The rule
//! itself is `domain::visibility`.

use engine::ObjectInfo;
use std::collections::BTreeMap;

/// The owning tenant's id.
pub const TENANT: &str = "api.tenant";
/// Display name (not unique).
pub const DISPLAY_NAME: &str = "api.display_name";
/// Display description.
pub const DISPLAY_DESCRIPTION: &str = "api.display_description";
/// Availability zone.
pub const AVAILABILITY_ZONE: &str = "api.availability_zone";
/// Volume type (recorded, no effect).
pub const VOLUME_TYPE: &str = "api.volume_type";
/// The snapshot a volume was created from.
pub const SOURCE_SNAPSHOT: &str = "api.snapshot_id";
/// The image a volume was created from.
pub const IMAGE_REF: &str = "api.image_ref";
/// The server a volume is attached to.
pub const ATTACHED_SERVER: &str = "api.attached_server";
/// The device name of that attachment.
pub const ATTACHED_DEVICE: &str = "api.attached_device";
/// The volume a volume was cloned from (Cinder's `source_volid`).
pub const SOURCE_VOLUME: &str = "api.source_volid";
/// "true" for a bootable volume (Cinder's `bootable`; made from an image,
/// or set with `os-set_bootable`).
pub const BOOTABLE: &str = "api.bootable";
/// Prefix of a volume's image metadata keys (Cinder's
/// `volume_image_metadata`, `os-set_image_metadata`).
pub const IMAGE_META_PREFIX: &str = "api.image_meta.";
/// An image's name, per tenant (engine names are global, so image names
/// are not kept there).
pub const IMAGE_NAME: &str = "api.image_name";
/// Marks the hidden staging volume of a running import (its task id).
pub const IMPORT_TMP: &str = "api.danube.import_task";
/// The attachment's NBD secret: the export name that reaches the volume
/// while it is attached (see `nbd_access.rs`).
pub const NBD_SECRET: &str = "api.nbd_secret";
/// A Cinder generic volume group's id, on its member volumes
/// (`cinder/groups.rs`; the record is `domain::settings::GROUP_RECORD`).
pub const GROUP_ID: &str = "api.cinder_group_id";
/// A Cinder group snapshot's id, on its member snapshots
/// (`cinder/group_snapshots.rs`; `domain::settings::GROUP_SNAPSHOT_RECORD`).
pub const GROUP_SNAPSHOT_ID: &str = "api.cinder_group_snapshot_id";
/// Prefix of user metadata keys.
pub const USER_PREFIX: &str = "user.";

/// Status of an object ready for use.
pub const AVAILABLE: &str = "available";
/// Status of an attached volume (the FUSE export refuses to delete these).
pub const IN_USE: &str = "in-use";

/// Bytes per GB as the OpenStack API counts them (GiB).
pub const GIB: u64 = 1 << 30;

/// Size in whole GB, rounded up.
pub fn gb(bytes: u64) -> u64 {
    bytes.div_ceil(GIB)
}

/// A metadata value.
pub fn get<'a>(o: &'a ObjectInfo, key: &str) -> Option<&'a str> {
    o.metadata.get(key).map(String::as_str)
}

/// An image's access level, in Danube Cloud's numbers: "1" public (every
/// tenant sees it and may clone it), "3" private (the default for owned
/// images), "4" deleted (no new volume is made from it).
pub const IMAGE_ACCESS: &str = "api.danube.access";

/// The user metadata (prefix stripped).
pub fn user_metadata(o: &ObjectInfo) -> BTreeMap<String, String> {
    o.metadata
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(USER_PREFIX)
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect()
}

/// `o`'s metadata with the user metadata replaced by `user`.
pub fn with_user_metadata(
    o: &ObjectInfo,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = o
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with(USER_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in user {
        m.insert(format!("{USER_PREFIX}{k}"), v.clone());
    }
    m
}

/// Sets or removes a reserved key.
pub fn set(m: &mut BTreeMap<String, String>, key: &str, value: Option<&str>) {
    match value {
        Some(v) => m.insert(key.to_string(), v.to_string()),
        None => m.remove(key),
    };
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC), as HP's API wrote times.
pub fn format_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_341_000_243), "2012-06-29 20:04:03");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_time(4_102_444_799), "2099-12-31 23:59:59");
    }

    #[test]
    fn sizes() {
        assert_eq!(gb(0), 0);
        assert_eq!(gb(1), 1);
        assert_eq!(gb(GIB), 1);
        assert_eq!(gb(GIB + 1), 2);
    }
}

/// Why a user metadata map was refused (each dialect words it its own way).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadMetadata<'a> {
    /// A key that is empty, longer than `max`, or holds a control character.
    Key(&'a str),
    /// A value that is not a string of at most `max` bytes.
    Value(&'a str),
}

/// The user metadata of a JSON object whose keys are 1 to `max` bytes
/// without control characters and whose values are strings of at most
/// `max` bytes: the rule every JSON dialect applies.
pub(crate) fn check_user_metadata(
    m: &serde_json::Map<String, serde_json::Value>,
    max: usize,
) -> std::result::Result<BTreeMap<String, String>, BadMetadata<'_>> {
    let mut out = BTreeMap::new();
    for (k, v) in m {
        if k.is_empty() || k.len() > max || k.chars().any(char::is_control) {
            return Err(BadMetadata::Key(k));
        }
        match v {
            serde_json::Value::String(s) if s.len() <= max => {
                out.insert(k.clone(), s.clone());
            }
            _ => return Err(BadMetadata::Value(k)),
        }
    }
    Ok(out)
}
