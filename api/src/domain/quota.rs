//! The one quota rule, the same in every dialect: a tenant's volumes count
//! against `volumes`; its snapshots and images against `snapshots`; the
//! sizes of all three (whole GB, rounded up) against `gigabytes`. An
//! import's temporary volume has no owner and counts for nobody; the image
//! it becomes is checked before it is made.
//!
//! Messages use OpenStack's wording ("Volume quota exceeded. You cannot
//! create a volume of size 1G ..."), whatever the dialect.

use crate::auth::Tenant;
use crate::error::{ApiError, Result};
use crate::meta;
use engine::{ObjectInfo, ObjectKind};

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
    let q = tenant.quota();
    let u = usage(all, &tenant.id);
    let (what, gb) = match charge {
        Charge::Volume(gb) | Charge::Grow(gb) => ("volume", gb),
        Charge::Snapshot(gb) => ("snapshot", gb),
        Charge::Image(gb) => ("image", gb),
    };
    let over = |msg: String| Err(ApiError::over_limit(msg, 0));
    match charge {
        Charge::Volume(_) => {
            if let Some(max) = q.volumes.filter(|&max| u.volumes >= max) {
                return over(format!(
                    "Volume quota exceeded. You cannot create a volume of size {gb}G \
                     (maximum number of volumes allowed: {max})"
                ));
            }
        }
        Charge::Snapshot(_) | Charge::Image(_) => {
            if let Some(max) = q.snapshots.filter(|&max| u.snapshots >= max) {
                return over(format!(
                    "Snapshot quota exceeded. You cannot create a{} {what} of size {gb}G \
                     (maximum number of snapshots and images allowed: {max})",
                    if what == "image" { "n" } else { "" }
                ));
            }
        }
        Charge::Grow(_) => {}
    }
    if let Some(max) = q.gigabytes {
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
    }
}
