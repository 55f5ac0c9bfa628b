//! The one quota rule, the same in every dialect: a tenant's volumes count
//! against `volumes`; its snapshots and images against `snapshots`; the
//! sizes of all three (whole GB, rounded up) against `gigabytes`. An
//! import's temporary volume has no owner and counts for nobody; the image
//! it becomes is checked before it is made.
//!
//! The limits are the tenant's effective quota ([`effective`]): a value an
//! admin set at runtime (Cinder's `os-quota-sets`, kept durably in the
//! settings object, `settings.rs`), else the tenant's value in the auth
//! file, else the default class's runtime value, else unlimited (-1).
//! Enforced: `volumes`, `snapshots`, `gigabytes`, `per_volume_gigabytes`,
//! and `groups` (Cinder's generic volume groups, counted and checked by
//! `cinder/groups.rs`: groups are Cinder records, not engine objects).
//! `backups` and `backup_gigabytes` are kept and reported; backups count
//! under `snapshots` and `gigabytes` as images do.
//!
//! Messages use OpenStack's wording ("Volume quota exceeded. You cannot
//! create a volume of size 1G ..."), whatever the dialect.

use super::settings;
use crate::auth::Tenant;
use crate::error::{ApiError, Result};
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use std::collections::BTreeMap;

/// The quota keys every tenant has (per-type keys come on top).
pub(crate) const KEYS: [&str; 7] = [
    "volumes",
    "snapshots",
    "gigabytes",
    "backups",
    "backup_gigabytes",
    "per_volume_gigabytes",
    "groups",
];

/// Limits by key; -1 is unlimited.
pub(crate) type Limits = BTreeMap<String, i64>;

/// The settings key of `project`'s runtime value of `key`.
pub(crate) fn project_key(project: &str, key: &str) -> String {
    format!("api.quota.project/{project}/{key}")
}

/// The settings key of the default class's runtime value of `key`.
pub(crate) fn class_key(key: &str) -> String {
    format!("api.quota.class/default/{key}")
}

/// Values under `prefix` in the settings among `all`.
fn stored(all: &[ObjectInfo], prefix: &str) -> Limits {
    settings::read(all)
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.parse().ok()?)))
        .collect()
}

/// The default class's limits: [`KEYS`] at -1, overridden by runtime values.
pub(crate) fn class_defaults(all: &[ObjectInfo]) -> Limits {
    let mut l: Limits = KEYS.iter().map(|k| (k.to_string(), -1)).collect();
    l.extend(stored(all, "api.quota.class/default/"));
    l
}

fn to_limit(v: Option<u64>) -> Option<i64> {
    v.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// `tenant`'s defaults: the auth file's values over the default class.
pub(crate) fn defaults(all: &[ObjectInfo], tenant: &Tenant) -> Limits {
    let mut l = class_defaults(all);
    let q = tenant.quota();
    for (k, v) in [
        ("volumes", q.volumes),
        ("snapshots", q.snapshots),
        ("gigabytes", q.gigabytes),
    ] {
        if let Some(v) = to_limit(v) {
            l.insert(k.to_string(), v);
        }
    }
    l
}

/// `tenant`'s effective limits: runtime values over its defaults.
pub(crate) fn effective(all: &[ObjectInfo], tenant: &Tenant) -> Limits {
    let mut l = defaults(all, tenant);
    l.extend(stored(all, &format!("api.quota.project/{}/", tenant.id)));
    l
}

/// The limit of `key` in `l` (`None`: unlimited).
pub(crate) fn max_of(l: &Limits, key: &str) -> Option<u64> {
    l.get(key).and_then(|&v| u64::try_from(v).ok())
}

/// What a tenant holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Number of volumes.
    pub volumes: u64,
    /// Number of snapshots and images.
    pub snapshots: u64,
    /// GB of volumes, snapshots and images.
    pub gigabytes: u64,
}

/// What an operation adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charge {
    /// A new volume of this many GB.
    Volume(u64),
    /// A new snapshot of this many GB.
    Snapshot(u64),
    /// A new image of this many GB (counted as a snapshot).
    Image(u64),
    /// A volume grows by this many GB.
    Grow(u64),
}

/// The usage of `tenant` among `all`.
pub(crate) fn usage(all: &[ObjectInfo], tenant: &str) -> Usage {
    let mut u = Usage::default();
    for o in all {
        if meta::get(o, meta::TENANT) != Some(tenant) {
            continue;
        }
        match o.kind {
            ObjectKind::Volume => u.volumes += 1,
            ObjectKind::Snapshot | ObjectKind::Image => u.snapshots += 1,
        }
        u.gigabytes = u.gigabytes.saturating_add(meta::gb(o.size));
    }
    u
}

/// Checks that `charge` fits `tenant`'s quota given its usage among `all`
/// (413 otherwise). Run under the API lock, with the state the operation
/// will change.
pub(crate) fn check(all: &[ObjectInfo], tenant: &Tenant, charge: Charge) -> Result<()> {
    check_many(all, tenant, &[charge])
}

/// Checks that all of `charges` together fit `tenant`'s quota (one
/// operation that makes several objects, as a group snapshot).
pub(crate) fn check_many(all: &[ObjectInfo], tenant: &Tenant, charges: &[Charge]) -> Result<()> {
    let l = effective(all, tenant);
    let mut u = usage(all, &tenant.id);
    for &charge in charges {
        check_one(&l, u, charge)?;
        match charge {
            Charge::Volume(gb) => {
                u.volumes += 1;
                u.gigabytes = u.gigabytes.saturating_add(gb);
            }
            Charge::Snapshot(gb) | Charge::Image(gb) => {
                u.snapshots += 1;
                u.gigabytes = u.gigabytes.saturating_add(gb);
            }
            Charge::Grow(gb) => u.gigabytes = u.gigabytes.saturating_add(gb),
        }
    }
    Ok(())
}

fn check_one(l: &Limits, u: Usage, charge: Charge) -> Result<()> {
    let (what, gb) = match charge {
        Charge::Volume(gb) | Charge::Grow(gb) => ("volume", gb),
        Charge::Snapshot(gb) => ("snapshot", gb),
        Charge::Image(gb) => ("image", gb),
    };
    let over = |msg: String| Err(ApiError::over_limit(msg, 0));
    match charge {
        Charge::Volume(_) => {
            if let Some(max) = max_of(l, "per_volume_gigabytes").filter(|&max| gb > max) {
                return over(format!(
                    "Volume size {gb}G exceeds the per-volume limit of {max}G"
                ));
            }
            if let Some(max) = max_of(l, "volumes").filter(|&max| u.volumes >= max) {
                return over(format!(
                    "Volume quota exceeded. You cannot create a volume of size {gb}G \
                     (maximum number of volumes allowed: {max})"
                ));
            }
        }
        Charge::Snapshot(_) | Charge::Image(_) => {
            if let Some(max) = max_of(l, "snapshots").filter(|&max| u.snapshots >= max) {
                return over(format!(
                    "Snapshot quota exceeded. You cannot create a{} {what} of size {gb}G \
                     (maximum number of snapshots and images allowed: {max})",
                    if what == "image" { "n" } else { "" }
                ));
            }
        }
        Charge::Grow(_) => {}
    }
    if let Some(max) = max_of(l, "gigabytes") {
        if u.gigabytes.saturating_add(gb) > max {
            let used = u.gigabytes;
            let cap = what[..1].to_ascii_uppercase() + &what[1..];
            return over(format!(
                "{cap} quota exceeded. You cannot create a{} {what} of size {gb}G \
                 (quota {max}G, {used}G in use)",
                if what == "image" { "n" } else { "" }
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::collections::BTreeMap;

    fn obj(kind: ObjectKind, tenant: &str, gb: u64) -> ObjectInfo {
        let mut m = BTreeMap::new();
        meta::set(&mut m, meta::TENANT, Some(tenant));
        ObjectInfo {
            id: engine::ObjectId::new_random(),
            kind,
            name: None,
            size: gb * meta::GIB,
            created: 0,
            status: meta::AVAILABLE.into(),
            metadata: m,
            parent: None,
            compress: false,
        }
    }

    #[test]
    fn images_count_as_snapshots_and_gigabytes() {
        let all = vec![
            obj(ObjectKind::Volume, "a", 1),
            obj(ObjectKind::Snapshot, "a", 1),
            obj(ObjectKind::Image, "a", 2),
            obj(ObjectKind::Image, "b", 5),
        ];
        assert_eq!(
            usage(&all, "a"),
            Usage {
                volumes: 1,
                snapshots: 2,
                gigabytes: 4
            }
        );
        let mut t = crate::auth::Tenant {
            id: "a".into(),
            token: "t".into(),
            user: "u".into(),
            password: "p".into(),
            admin: false,
            quota: Some(crate::auth::Quota {
                gigabytes: Some(5),
                volumes: Some(2),
                snapshots: Some(3),
            }),
        };
        assert!(check(&all, &t, Charge::Image(1)).is_ok());
        let e = check(&all, &t, Charge::Image(2)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OverLimit);
        assert!(e.message().starts_with("Image quota exceeded"), "{e}");
        t.quota = Some(crate::auth::Quota {
            snapshots: Some(2),
            ..Default::default()
        });
        let e = check(&all, &t, Charge::Snapshot(0)).unwrap_err();
        assert!(e.message().starts_with("Snapshot quota exceeded"), "{e}");
        assert!(check(&all, &t, Charge::Grow(100)).is_ok());
        // Several at once: each fits alone, not together.
        t.quota = Some(crate::auth::Quota {
            snapshots: Some(4),
            ..Default::default()
        });
        assert!(check_many(&all, &t, &[Charge::Snapshot(0), Charge::Snapshot(0)]).is_ok());
        let e = check_many(&all, &t, &[Charge::Snapshot(0); 3]).unwrap_err();
        assert!(e.message().starts_with("Snapshot quota exceeded"), "{e}");
    }
}
