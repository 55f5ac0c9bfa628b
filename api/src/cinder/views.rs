//! The typed response bodies of the Cinder v3 dialect: volumes,
//! snapshots, attachments, backups, transfers, user messages and the
//! faults. The handlers build these and serialize them; each derives
//! [`utoipa::ToSchema`], so the OpenAPI document (`openapi.rs`) is
//! generated from the very types on the wire. Types, quotas, limits, zones,
//! extensions, version discovery and the operator views are in
//! `views_info.rs`.
//!
//! Fields that only some microversions (or only admins) see are
//! `Option`s skipped when `None`; a field that is there but `null` is an
//! `Option` that is not skipped (or, when it is both, an
//! `Option<Option<_>>`). Replies go through a `serde_json::Value`, so the
//! members on the wire are in the order the former `json!` literals had
//! (sorted).

use crate::http::Reply;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A reply with `status` and `body`.
pub(crate) fn reply<T: Serialize>(status: u16, body: &T) -> Reply {
    Reply::json(status, serde_json::to_value(body).unwrap_or(Value::Null))
}

/// A link of a resource or a page.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Where.
    pub href: String,
    /// `self`, `bookmark`, `next` or `describedby`.
    pub rel: String,
    /// The media type, on `describedby` only.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

impl Link {
    /// A link without a media type.
    pub fn new(rel: &str, href: String) -> Link {
        Link {
            href,
            rel: rel.into(),
            media_type: None,
        }
    }
}

// ---- faults ----

/// The inside of a fault.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultBody {
    /// The HTTP status.
    pub code: u16,
    /// What went wrong.
    pub message: String,
    /// Seconds to wait (a decimal string), on `overLimit` only.
    #[serde(rename = "retryAfter", skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
}

/// A fault: one member (badRequest, unauthorized, forbidden, itemNotFound,
/// badMethod, notAcceptable, conflictingRequest, overLimit, badMediaType,
/// notImplemented, serviceUnavailable, computeFault) whose value is a
/// [`FaultBody`].
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Fault(pub BTreeMap<String, FaultBody>);

impl Fault {
    /// The fault `name` with `code` and `message`.
    pub fn new(name: &str, code: u16, message: String) -> Fault {
        let body = FaultBody {
            code,
            message,
            retry_after: None,
        };
        Fault(BTreeMap::from([(name.to_string(), body)]))
    }
}

// ---- volumes ----

/// A volume's attachment, in its `attachments`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeAttachment {
    /// The volume's id (one attachment per volume).
    pub id: String,
    /// The same id.
    pub attachment_id: String,
    /// The volume's id.
    pub volume_id: String,
    /// The server (instance) it is attached to.
    pub server_id: String,
    /// Always `null`.
    pub host_name: Option<String>,
    /// The device name, `""` when none was given.
    pub device: String,
    /// When.
    pub attached_at: String,
}

/// A volume, as show, create, update and the detailed list write it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// UUID.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// `available`, `in-use`, `error`, `awaiting-transfer`, `reserved`, ...
    pub status: String,
    /// GiB.
    pub size: u64,
    /// Always `nova`.
    pub availability_zone: String,
    /// Creation time, `YYYY-MM-DDTHH:MM:SS.000000`.
    pub created_at: String,
    /// Same as `created_at`.
    pub updated_at: String,
    /// At most one.
    pub attachments: Vec<VolumeAttachment>,
    /// `"true"` or `"false"` (a string, as Cinder writes it).
    pub bootable: String,
    /// Always false.
    pub encrypted: bool,
    /// Always false.
    pub multiattach: bool,
    /// The volume type's name.
    pub volume_type: String,
    /// The snapshot it was made from.
    pub snapshot_id: Option<String>,
    /// The volume it was cloned from.
    pub source_volid: Option<String>,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// `self` and `bookmark`.
    pub links: Vec<Link>,
    /// The owner's user.
    pub user_id: String,
    /// Always `null`.
    pub replication_status: Option<String>,
    /// Always `null`.
    pub consistencygroup_id: Option<String>,
    /// `null`, admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub migration_status: Option<Option<String>>,
    /// The generic volume group it is in, or `null`, from 3.13.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub group_id: Option<Option<String>>,
    /// false, from 3.48.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_targets: Option<bool>,
    /// `null`, from 3.48.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub service_uuid: Option<Option<String>>,
    /// The owner project (show and detailed list).
    #[serde(
        rename = "os-vol-tenant-attr:tenant_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub tenant_id: Option<String>,
    /// The image metadata, when there is any (show and detailed list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_image_metadata: Option<BTreeMap<String, String>>,
    /// The pool, admins only (show and detailed list).
    #[serde(
        rename = "os-vol-host-attr:host",
        skip_serializing_if = "Option::is_none"
    )]
    pub host: Option<String>,
    /// `null`, admins only (show and detailed list).
    #[serde(
        rename = "os-vol-mig-status-attr:migstat",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub migstat: Option<Option<String>>,
    /// `null`, admins only (show and detailed list).
    #[serde(
        rename = "os-vol-mig-status-attr:name_id",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub name_id: Option<Option<String>>,
}

/// A volume in the brief list.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeBrief {
    /// UUID.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// `self` and `bookmark`.
    pub links: Vec<Link>,
}

/// `{"volume": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeOne {
    /// The volume.
    pub volume: Volume,
}

/// `GET volumes/detail`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeList {
    /// One page.
    pub volumes: Vec<Volume>,
    /// The next page, when this one is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes_links: Option<Vec<Link>>,
    /// How many match, with `?with_count=true` from 3.45.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}

/// `GET volumes`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeBriefList {
    /// One page.
    pub volumes: Vec<VolumeBrief>,
    /// The next page, when this one is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes_links: Option<Vec<Link>>,
    /// How many match, with `?with_count=true` from 3.45.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}

/// The tenant's volumes in sum.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeSummaryFields {
    /// How many volumes.
    pub total_count: usize,
    /// Their GiB.
    pub total_size: u64,
    /// Every metadata key with its distinct values, from 3.36.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, Vec<String>>>,
}

/// `GET volumes/summary` (3.12+).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeSummary {
    /// The sums.
    #[serde(rename = "volume-summary")]
    pub summary: VolumeSummaryFields,
}

/// `{"metadata": {...}}`: a volume's or snapshot's user metadata, or a
/// volume's image metadata.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Key to value.
    pub metadata: BTreeMap<String, String>,
}

/// `{"meta": {key: value}}`: one metadata item.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaItem {
    /// The one key and its value.
    pub meta: BTreeMap<String, String>,
}

/// How a volume is reached over NBD (Cinder's `connection_info`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionInfo {
    /// Always `nbd`.
    pub driver_volume_type: String,
    /// `export_name`, `uris`, `discard`, and where present `uri`,
    /// `unix_uri`, `host`, `port`, `socket`, `tls`, `access_mode`.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// `os-initialize_connection`'s answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionOne {
    /// The connection.
    pub connection_info: ConnectionInfo,
}

// ---- snapshots ----

/// A snapshot.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// UUID.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// `available`, `creating`, `error`, `deleting`, `error_deleting`.
    pub status: String,
    /// GiB.
    pub size: u64,
    /// Its volume.
    pub volume_id: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Same as `created_at`.
    pub updated_at: String,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// The owner project (show and detailed list).
    #[serde(
        rename = "os-extended-snapshot-attributes:project_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<String>,
    /// `100%` unless set (show and detailed list).
    #[serde(
        rename = "os-extended-snapshot-attributes:progress",
        skip_serializing_if = "Option::is_none"
    )]
    pub progress: Option<String>,
    /// The group snapshot it is part of, or `null`, from 3.14.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub group_snapshot_id: Option<Option<String>>,
    /// The owner's user, from 3.41.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// `{"snapshot": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotOne {
    /// The snapshot.
    pub snapshot: Snapshot,
}

/// `GET snapshots` and `GET snapshots/detail`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotList {
    /// One page.
    pub snapshots: Vec<Snapshot>,
    /// The next page, when this one is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshots_links: Option<Vec<Link>>,
}

// ---- attachments (3.27+) ----

/// An attachment (one per volume; its id is the volume's).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// The volume's id.
    pub id: String,
    /// The volume's id.
    pub volume_id: String,
    /// The instance, `null` for a reservation without one.
    pub instance: Option<String>,
    /// `reserved` or `attached`.
    pub status: String,
    /// When it was made, `null` while reserved (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub attached_at: Option<Option<String>>,
    /// `null` (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub detached_at: Option<Option<String>>,
    /// `rw` (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach_mode: Option<String>,
    /// The connection, `{}` while reserved or without NBD (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_info: Option<AttachmentConnection>,
}

/// The empty object: no connection (yet).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// An attachment's connection: the [`ConnectionInfo`], or `{}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AttachmentConnection {
    /// Attached, with NBD served.
    Connected(ConnectionInfo),
    /// Reserved, or no NBD: `{}`.
    None(Empty),
}

/// `{"attachment": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentOne {
    /// The attachment.
    pub attachment: Attachment,
}

/// `GET attachments` (and `DELETE`'s answer, empty).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentList {
    /// The attachments.
    pub attachments: Vec<Attachment>,
}

// ---- backups ----

/// A backup in the brief list, and create's and update's answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupBrief {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// `self` and `bookmark`.
    pub links: Vec<Link>,
}

/// A backup in detail.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// `self` and `bookmark`.
    pub links: Vec<Link>,
    /// Description.
    pub description: Option<String>,
    /// `available` or `error`.
    pub status: String,
    /// GiB.
    pub size: u64,
    /// The backed-up volume.
    pub volume_id: Option<String>,
    /// The snapshot backed up, if one was.
    pub snapshot_id: Option<String>,
    /// Always `nova`.
    pub availability_zone: String,
    /// Always `null`.
    pub container: Option<String>,
    /// Always 0.
    pub object_count: u64,
    /// Always `null`.
    pub fail_reason: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Same as `created_at`.
    pub updated_at: String,
    /// Same as `created_at`.
    pub data_timestamp: String,
    /// Made incrementally on another backup.
    pub is_incremental: bool,
    /// Another backup is incremental on this one.
    pub has_dependent_backups: bool,
    /// The owner project, from 3.18.
    #[serde(
        rename = "os-backup-project-attr:project_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<String>,
    /// User metadata, from 3.43.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// The owner's user, from 3.56.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// `{"backup": ...}` in detail.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupOne {
    /// The backup.
    pub backup: Backup,
}

/// `{"backup": ...}` brief (create, update).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupBriefOne {
    /// The backup.
    pub backup: BackupBrief,
}

/// `GET backups/detail`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupList {
    /// One page.
    pub backups: Vec<Backup>,
    /// The next page, when this one is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backups_links: Option<Vec<Link>>,
}

/// `GET backups`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupBriefList {
    /// One page.
    pub backups: Vec<BackupBrief>,
    /// The next page, when this one is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backups_links: Option<Vec<Link>>,
}

/// An exported backup record.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRecord {
    /// `cinder.backup.drivers.blockd_image`: pass it back to import.
    pub backup_service: String,
    /// Base64 of a JSON record (`id`, `image_id`, name, description,
    /// volume, snapshot, `mac`); the `id` may be changed before importing,
    /// any other member breaks its integrity check.
    pub backup_url: String,
}

/// `GET backups/{id}/export_record`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRecordOne {
    /// The record.
    #[serde(rename = "backup-record")]
    pub record: BackupRecord,
}

/// What a restore made or overwrote.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    /// The backup.
    pub backup_id: String,
    /// The volume restored to.
    pub volume_id: String,
    /// Its name.
    pub volume_name: Option<String>,
}

/// `POST backups/{id}/restore`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreOne {
    /// The restore.
    pub restore: Restore,
}

// ---- transfers ----

/// A volume transfer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// The volume offered.
    pub volume_id: String,
    /// `self` and `bookmark`.
    pub links: Vec<Link>,
    /// When it was offered (detail, show, create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// From 3.55 (detail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_snapshots: Option<bool>,
    /// The offering project, from 3.57 (detail).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub source_project_id: Option<Option<String>>,
    /// `null`, from 3.57 (detail).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub destination_project_id: Option<Option<String>>,
    /// false, from 3.57 (detail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
    /// The key the receiver needs, in create's answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_key: Option<String>,
}

/// `{"transfer": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOne {
    /// The transfer.
    pub transfer: Transfer,
}

/// `GET os-volume-transfer` (or `volume-transfers`), brief or detail.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferList {
    /// The tenant's offers.
    pub transfers: Vec<Transfer>,
}

// ---- user messages (3.3+) ----

/// A user message.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// UUID.
    pub id: String,
    /// The request that caused it.
    pub request_id: String,
    /// Cinder's event id, e.g. `VOLUME_VOLUME_001_002`.
    pub event_id: String,
    /// `ERROR`.
    pub message_level: String,
    /// The text.
    pub user_message: String,
    /// `VOLUME`.
    pub resource_type: String,
    /// The resource's id.
    pub resource_uuid: String,
    /// When.
    pub created_at: String,
    /// Kept until.
    pub guaranteed_until: String,
    /// `self`.
    pub links: Vec<Link>,
}

/// `{"message": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageOne {
    /// The message.
    pub message: Message,
}

/// `GET messages`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageList {
    /// Newest first.
    pub messages: Vec<Message>,
}
