//! The read-only Cinder resources: the default volume type's name and id
//! (types are `types.rs`),
//! availability zones (one, `nova`), `limits` (the tenant's effective
//! quota and use; quota sets are `quotas.rs`).

use super::views::reply;
use super::views_info::{
    AbsoluteLimits, Extension, ExtensionList, Limits, LimitsFields, Zone, ZoneList, ZoneState,
};
use super::Ctx;
use crate::http::Reply;

/// The one volume type's name.
pub(crate) const DEFAULT_TYPE: &str = "__DEFAULT__";
/// Its id (fixed, so clients may remember it across restarts).
pub(crate) const DEFAULT_TYPE_ID: &str = "b10cd000-0000-4000-8000-000000000001";
/// The one availability zone.
pub(crate) const ZONE: &str = "nova";

/// The names of every volume type among `all`.
pub(crate) fn type_names(_ctx: &Ctx, all: &[engine::ObjectInfo]) -> Vec<String> {
    super::types::names(all)
}

/// `GET os-availability-zone`.
pub fn zones() -> Reply {
    reply(
        200,
        &ZoneList {
            availability_zone_info: vec![Zone {
                zone_name: ZONE.into(),
                zone_state: ZoneState { available: true },
            }],
        },
    )
}

/// A limit as Cinder writes it: -1 for unlimited.
fn limit(v: Option<u64>) -> i64 {
    v.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
        .unwrap_or(-1)
}

/// `GET limits`.
pub fn limits(ctx: &Ctx) -> Reply {
    let l = crate::domain::quota::effective(&ctx.store().list(), ctx.tenant);
    let q = |k: &str| crate::domain::quota::max_of(&l, k);
    let u = ctx.usage();
    let (backups, backup_gb) = super::backups::usage(ctx);
    let absolute = AbsoluteLimits {
        max_total_volumes: limit(q("volumes")),
        max_total_snapshots: limit(q("snapshots")),
        max_total_volume_gigabytes: limit(q("gigabytes")),
        max_total_backups: limit(q("backups")),
        max_total_backup_gigabytes: limit(q("backup_gigabytes")),
        total_volumes_used: u.volumes,
        total_snapshots_used: u.snapshots,
        total_gigabytes_used: u.gigabytes,
        total_backups_used: backups,
        total_backup_gigabytes_used: backup_gb,
    };
    reply(
        200,
        &Limits {
            limits: LimitsFields {
                rate: Vec::new(),
                absolute,
            },
        },
    )
}

/// The API extensions blockd implements (Cinder's aliases and names), for
/// `GET extensions`.
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("os-admin-actions", "AdminActions", "Enable admin actions."),
    (
        "os-availability-zone",
        "AvailabilityZones",
        "Describe Availability Zones.",
    ),
    ("backups", "Backups", "Backups support."),
    (
        "os-extended-snapshot-attributes",
        "ExtendedSnapshotAttributes",
        "Extended SnapshotAttributes support.",
    ),
    ("os-quota-sets", "Quotas", "Quota management support."),
    (
        "os-used-limits",
        "UsedLimits",
        "Provide data on limited resources that are being used.",
    ),
    (
        "os-vol-host-attr",
        "VolumeHostAttribute",
        "Expose host as an attribute of a volume.",
    ),
    (
        "os-vol-image-meta",
        "VolumeImageMetadata",
        "Show image metadata associated with the volume.",
    ),
    (
        "os-vol-mig-status-attr",
        "VolumeMigStatusAttribute",
        "Expose migration_status as an attribute of a volume.",
    ),
    (
        "os-vol-tenant-attr",
        "VolumeTenantAttribute",
        "Expose the internal project_id as an attribute of a volume.",
    ),
    (
        "os-volume-actions",
        "VolumeActions",
        "Enable volume actions.",
    ),
];

/// `GET extensions`.
pub fn extensions() -> Reply {
    let extensions = EXTENSIONS
        .iter()
        .map(|(alias, name, description)| Extension {
            alias: alias.to_string(),
            name: name.to_string(),
            description: description.to_string(),
            namespace: format!("https://docs.openstack.org/volume/ext/{alias}/api/v1"),
            updated: "2012-12-12T00:00:00+00:00".into(),
            links: Vec::new(),
        })
        .collect();
    reply(200, &ExtensionList { extensions })
}
