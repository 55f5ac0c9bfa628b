//! The typed response bodies of this dialect: the views the handlers
//! serialize (camelCase, every field present, `null` for an unset
//! optional string) and the faults. Each derives [`utoipa::ToSchema`], so
//! the OpenAPI document (`openapi.rs`) is generated from the very types
//! the handlers reply with. Request bodies are in `requests.rs`.
//!
//! Responses go through [`to_value`] into a `serde_json::Value` so the
//! bytes on the wire are those of the former `json!` literals.

use crate::http::Reply;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A value serialized to JSON (these types never fail to serialize).
pub(crate) fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A 200 reply with `body`.
pub(crate) fn ok<T: Serialize>(body: &T) -> Reply {
    Reply::json(200, to_value(body))
}

// ---- responses ----

/// A volume attached to a server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attachment {
    /// The volume's id (Nova's attachment id is the volume id).
    pub id: String,
    /// The volume's id.
    pub volume_id: String,
    /// The server it is attached to.
    pub server_id: String,
    /// The device name on the server, `/dev/[a-z]+[0-9]*`.
    pub device: String,
    /// How the attachment is reached over NBD: blockd's extension, on the
    /// attachment resource (not in a volume's `attachments`); its export
    /// name is the attachment's secret.
    #[serde(
        rename = "connection_info",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_info: Option<ConnectionInfo>,
}

/// Cinder-style connection information of an attachment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionInfo {
    /// Always `nbd`.
    pub driver_volume_type: String,
    /// `export_name`, `uris`, and where present `uri`, `unix_uri`,
    /// `host`, `port`, `socket`, `tls`, `access_mode`.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// The empty object a detached volume lists as its attachment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Detached {}

/// One entry of a volume's `attachments`: `{}` when detached.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AttachmentSlot {
    /// Attached.
    Attached(Attachment),
    /// Detached: `{}`.
    Detached(Detached),
}

/// A volume.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    /// UUID.
    pub id: String,
    /// `creating`, `available`, `in-use` or `error`.
    #[schema(example = "available")]
    pub status: String,
    /// Size in GB.
    #[schema(minimum = 1)]
    pub size: u64,
    /// Availability zone (`nova` unless set).
    pub availability_zone: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    #[schema(example = "2012-06-29 19:24:03")]
    pub created_at: String,
    /// Exactly one entry: `{}` when detached, else the attachment.
    #[schema(min_items = 1, max_items = 1)]
    pub attachments: Vec<AttachmentSlot>,
    /// Display name.
    #[schema(required = true)]
    pub display_name: Option<String>,
    /// Display description.
    #[schema(required = true)]
    pub display_description: Option<String>,
    /// Volume type.
    #[schema(required = true)]
    pub volume_type: Option<String>,
    /// The snapshot it was made from, `""` when none.
    pub snapshot_id: String,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
}

/// A snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    /// UUID.
    pub id: String,
    /// The volume it was taken of.
    pub volume_id: String,
    /// `creating`, `available` or `error`.
    #[schema(example = "available")]
    pub status: String,
    /// Size in GB.
    #[schema(minimum = 1)]
    pub size: u64,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    #[schema(example = "2012-06-29 19:24:03")]
    pub created_at: String,
    /// Display name.
    #[schema(required = true)]
    pub display_name: Option<String>,
    /// Display description.
    #[schema(required = true)]
    pub display_description: Option<String>,
}

/// `{"volume": Volume}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeOne {
    /// The volume.
    pub volume: Volume,
}

/// `{"volumes": [Volume]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeList {
    /// The page of volumes.
    pub volumes: Vec<Volume>,
}

/// `{"snapshot": Snapshot}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotOne {
    /// The snapshot.
    pub snapshot: Snapshot,
}

/// `{"snapshots": [Snapshot]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotList {
    /// The page of snapshots.
    pub snapshots: Vec<Snapshot>,
}

/// `{"volumeAttachment": Attachment}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachmentOne {
    /// The attachment.
    pub volume_attachment: AttachmentSlot,
}

/// `{"volumeAttachments": [Attachment]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachmentList {
    /// The page of attachments.
    pub volume_attachments: Vec<AttachmentSlot>,
}

/// The inside of a fault.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultBody {
    /// The HTTP status.
    pub code: u16,
    /// What went wrong.
    pub message: String,
    /// Seconds to wait, on `overLimit` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// A fault: one key (badRequest, unauthorized, forbidden, itemNotFound,
/// badMethod, conflictingRequest, overLimit, badMediaType,
/// unprocessableEntity, notImplemented, serviceUnavailable,
/// cloudServersFault) whose value is a [`FaultBody`].
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Fault(pub BTreeMap<String, FaultBody>);
