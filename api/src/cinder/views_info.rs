//! The typed response bodies of Cinder's other resources: volume types
//! (with extra specs and access), quota sets and classes, limits,
//! availability zones, extensions, version discovery and the operator
//! views (services, hosts, pools, capabilities). The volume-side bodies
//! and the faults are in `views.rs`, with the conventions for optional and
//! `null` fields.

use super::views::Link;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

// ---- volume types ----

/// A volume type.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeType {
    /// UUID (the default type's is fixed).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Seen by every project.
    pub is_public: bool,
    /// Same as `is_public` (not in update's answer).
    #[serde(
        rename = "os-volume-type-access:is_public",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_is_public: Option<bool>,
    /// Key to value; `capabilities:`-prefixed or bare `storage_protocol`,
    /// `vendor_name`, `volume_backend_name` are matched against the one
    /// backend.
    pub extra_specs: BTreeMap<String, String>,
    /// `null` (not in create's and update's answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub qos_specs_id: Option<Option<String>>,
}

/// `{"volume_type": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeTypeOne {
    /// The type.
    pub volume_type: VolumeType,
}

/// `GET types`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeTypeList {
    /// The types the caller sees, the default first.
    pub volume_types: Vec<VolumeType>,
}

/// `{"extra_specs": {...}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraSpecs {
    /// Key to value.
    pub extra_specs: BTreeMap<String, String>,
}

/// One extra spec, `{key: value}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExtraSpec(pub BTreeMap<String, String>);

/// A project that may use a private type.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypeAccess {
    /// The type.
    pub volume_type_id: String,
    /// The project.
    pub project_id: String,
}

/// `GET types/{id}/os-volume-type-access`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypeAccessList {
    /// The projects.
    pub volume_type_access: Vec<TypeAccess>,
}

// ---- quotas and limits ----

/// One quota with its use (`?usage=true`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaUsage {
    /// The limit, -1 for none.
    pub limit: i64,
    /// What the project holds.
    pub in_use: u64,
    /// Always 0.
    pub reserved: u64,
    /// Always 0.
    pub allocated: u64,
}

/// One quota: its limit (-1 for none), or with `?usage=true` a
/// [`QuotaUsage`].
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Quota {
    /// The limit.
    Limit(i64),
    /// The limit and the use.
    Usage(QuotaUsage),
}

/// A quota set: `volumes`, `snapshots`, `gigabytes`, `backups`,
/// `backup_gigabytes`, `per_volume_gigabytes`, `groups` and per volume type
/// `volumes_<type>`, `snapshots_<type>`, `gigabytes_<type>`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuotaSet {
    /// The project or class (not in update's answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The quotas.
    #[serde(flatten)]
    pub quotas: BTreeMap<String, Quota>,
}

/// `{"quota_set": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaSetOne {
    /// The set.
    pub quota_set: QuotaSet,
}

/// `{"quota_class_set": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaClassSetOne {
    /// The set of the class `default`.
    pub quota_class_set: QuotaSet,
}

/// The tenant's absolute limits and use (-1 for no limit).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AbsoluteLimits {
    /// Volumes.
    pub max_total_volumes: i64,
    /// Snapshots.
    pub max_total_snapshots: i64,
    /// GiB of volumes and snapshots.
    pub max_total_volume_gigabytes: i64,
    /// Backups.
    pub max_total_backups: i64,
    /// GiB of backups.
    pub max_total_backup_gigabytes: i64,
    /// Volumes held.
    pub total_volumes_used: u64,
    /// Snapshots (and images) held.
    pub total_snapshots_used: u64,
    /// GiB held.
    pub total_gigabytes_used: u64,
    /// Backups held.
    pub total_backups_used: u64,
    /// GiB of backups held.
    pub total_backup_gigabytes_used: u64,
}

/// The limits.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsFields {
    /// Always empty: no rate limits.
    #[schema(value_type = Vec<Object>)]
    pub rate: Vec<Value>,
    /// The absolute limits.
    pub absolute: AbsoluteLimits,
}

/// `GET limits`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The limits.
    pub limits: LimitsFields,
}

// ---- zones, extensions, versions ----

/// A zone's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneState {
    /// Always true.
    pub available: bool,
}

/// An availability zone.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Zone {
    /// `nova`.
    pub zone_name: String,
    /// Its state.
    pub zone_state: ZoneState,
}

/// `GET os-availability-zone`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneList {
    /// The one zone.
    pub availability_zone_info: Vec<Zone>,
}

/// An API extension.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    /// Cinder's alias.
    pub alias: String,
    /// Cinder's name.
    pub name: String,
    /// What it adds.
    pub description: String,
    /// Its namespace URL.
    pub namespace: String,
    /// A fixed date.
    pub updated: String,
    /// Always empty.
    pub links: Vec<Link>,
}

/// `GET extensions`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionList {
    /// The extensions.
    pub extensions: Vec<Extension>,
}

/// A media type of a version.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaType {
    /// `application/json`.
    pub base: String,
    /// `application/vnd.openstack.volume+json;version=3`.
    #[serde(rename = "type")]
    pub media_type: String,
}

/// An API version.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// `v3.0`.
    pub id: String,
    /// `CURRENT`.
    pub status: String,
    /// The newest microversion.
    pub version: String,
    /// The oldest microversion.
    pub min_version: String,
    /// When the version was released.
    pub updated: String,
    /// `describedby` and `self`.
    pub links: Vec<Link>,
    /// The media types.
    #[serde(rename = "media-types")]
    pub media_types: Vec<MediaType>,
}

/// `GET /volume/` (300) and `GET /volume/v3/` (200).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionList {
    /// The one version, v3.
    pub versions: Vec<Version>,
}

// ---- operator views ----

/// A service.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `cinder-scheduler`, `cinder-volume` or `cinder-backup`.
    pub binary: String,
    /// Its host.
    pub host: String,
    /// `nova`.
    pub zone: String,
    /// `enabled`.
    pub status: String,
    /// `up`.
    pub state: String,
    /// Now.
    pub updated_at: String,
    /// Always `null`.
    pub disabled_reason: Option<String>,
    /// Always false.
    pub frozen: bool,
    /// `disabled` (`cinder-volume` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_status: Option<String>,
    /// `null` (`cinder-volume` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub active_backend_id: Option<Option<String>>,
    /// `up` (`cinder-volume` from 3.49).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_state: Option<String>,
}

/// `GET os-services`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceList {
    /// The services.
    pub services: Vec<Service>,
}

/// `PUT os-services/enable`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceEnabled {
    /// The host.
    pub host: String,
    /// The binary.
    pub binary: String,
    /// The binary again.
    pub service: String,
    /// `enabled`.
    pub status: String,
    /// false.
    pub disabled: bool,
    /// `null`.
    pub disabled_reason: Option<String>,
}

/// A host of `GET os-hosts`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// The host.
    pub host_name: String,
    /// The service on it.
    pub service: String,
    /// `nova`.
    pub zone: String,
    /// `available`.
    #[serde(rename = "service-status")]
    pub service_status: String,
    /// `enabled`.
    #[serde(rename = "service-state")]
    pub service_state: String,
    /// Now.
    #[serde(rename = "last-update")]
    pub last_update: String,
}

/// `GET os-hosts`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostList {
    /// The hosts.
    pub hosts: Vec<Host>,
}

/// A project's use of the backend (counts as decimal strings).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostResource {
    /// The backend.
    pub host: String,
    /// A project, or `(total)`.
    pub project: String,
    /// Volumes.
    pub volume_count: String,
    /// Their GiB.
    pub total_volume_gb: String,
    /// Snapshots.
    pub snapshot_count: String,
    /// Their GiB.
    pub total_snapshot_gb: String,
}

/// A row of `GET os-hosts/{host}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostRow {
    /// The row.
    pub resource: HostResource,
}

/// `GET os-hosts/{host}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostShow {
    /// The total first, then a row per project.
    pub host: Vec<HostRow>,
}

/// A pool's capabilities (`?detail=true`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolCapabilities {
    /// `engine`.
    pub volume_backend_name: String,
    /// `blockd`.
    pub vendor_name: String,
    /// blockd's version.
    pub driver_version: String,
    /// `nbd`.
    pub storage_protocol: String,
    /// `unknown`.
    pub total_capacity_gb: String,
    /// `unknown`.
    pub free_capacity_gb: String,
    /// 0.
    pub reserved_percentage: u64,
    /// false.
    #[serde(rename = "QoS_support")]
    pub qos_support: bool,
    /// Now.
    pub timestamp: String,
}

/// A pool.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// `blockd@engine#default`.
    pub name: String,
    /// With `?detail=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<PoolCapabilities>,
}

/// `GET scheduler-stats/get_pools`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolList {
    /// The one pool.
    pub pools: Vec<Pool>,
}

/// `GET capabilities/{host}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// `OS::Storage::Capabilities::blockd@engine`.
    pub namespace: String,
    /// `blockd`.
    pub vendor_name: String,
    /// `engine`.
    pub volume_backend_name: String,
    /// `null`.
    pub pool_name: Option<String>,
    /// blockd's version.
    pub driver_version: String,
    /// `nbd`.
    pub storage_protocol: String,
    /// `null`.
    pub display_name: Option<String>,
    /// `null`.
    pub description: Option<String>,
    /// `null`.
    pub visibility: Option<String>,
    /// Always empty.
    #[schema(value_type = Vec<Object>)]
    pub replication_targets: Vec<Value>,
    /// Always `{}`.
    #[schema(value_type = Object)]
    pub properties: BTreeMap<String, Value>,
}
