//! The typed JSON bodies of the Deltacloud dialect (its XML is written in
//! `views.rs`): storage volumes and snapshots, their collections, the
//! entry point, errors, and the form parameters requests take. Each
//! derives [`utoipa::ToSchema`], so the OpenAPI document (`openapi.rs`) is
//! generated from the very types the JSON answers are serialized from.
//! [`bytes`] serializes through a `serde_json::Value`, so the bytes on the
//! wire are those of the former `json!` literals.

use serde::Serialize;
use utoipa::ToSchema;

/// The JSON bytes of `v` (these types never fail to serialize).
pub(crate) fn bytes<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_value(v)
        .unwrap_or(serde_json::Value::Null)
        .to_string()
        .into_bytes()
}

/// A reference to another resource.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ref {
    /// Its id.
    pub id: String,
    /// Its absolute URL.
    pub href: String,
}

/// A volume's realm (its zone).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Realm {
    /// The realm id (`nova` unless created with another).
    pub id: String,
}

/// The device name of an attachment.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// `/dev/vdb` and the like.
    pub name: String,
}

/// How an attached volume is reached over NBD (blockd's extension).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Nbd {
    /// The NBD export name (the attachment's secret).
    pub export: String,
    /// An NBD URI of the export.
    pub uri: String,
}

/// Where a volume is attached.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// The instance.
    pub instance: Ref,
    /// The device on it.
    pub device: Device,
    /// The NBD export, when the server serves NBD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbd: Option<Nbd>,
}

/// An action the volume's state allows.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// `attach`, `detach`, `destroy` or `snapshot`.
    pub rel: String,
    /// `post` or `delete`.
    pub method: String,
    /// Where to send it.
    pub href: String,
}

/// A storage volume.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageVolume {
    /// The volume's UUID.
    pub id: String,
    /// Its absolute URL.
    pub href: String,
    /// As `Thu Jul 28 21:54:19 UTC 2011`.
    pub created: String,
    /// Whole GB, as a string.
    pub capacity: String,
    /// Always `GB`.
    pub capacity_unit: String,
    /// Its name (`null` when unnamed).
    pub name: Option<String>,
    /// Its description, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its realm.
    pub realm: Realm,
    /// `AVAILABLE`, `IN-USE`, `CREATING`, `ERROR`...
    pub state: String,
    /// Where it is attached, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<Mount>,
    /// What can be done with it now.
    pub actions: Vec<Action>,
}

/// A storage snapshot.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageSnapshot {
    /// The snapshot's UUID.
    pub id: String,
    /// Its absolute URL.
    pub href: String,
    /// As `Thu Jul 28 21:54:19 UTC 2011`.
    pub created: String,
    /// The volume it was taken of.
    pub storage_volume: Ref,
    /// `PENDING`, `COMPLETED` or `ERROR`.
    pub state: String,
    /// Its name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its description, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One volume.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeOne {
    /// The volume.
    pub storage_volume: StorageVolume,
}

/// The tenant's volumes.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeList {
    /// The volumes.
    pub storage_volumes: Vec<StorageVolume>,
}

/// One snapshot.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotOne {
    /// The snapshot.
    pub storage_snapshot: StorageSnapshot,
}

/// The tenant's snapshots.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotList {
    /// The snapshots.
    pub storage_snapshots: Vec<StorageSnapshot>,
}

/// A collection the entry point links to.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionLink {
    /// `storage_snapshots` or `storage_volumes`.
    pub rel: String,
    /// Its absolute URL.
    pub href: String,
    /// Always empty.
    pub features: Vec<String>,
}

/// The entry point's content.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// `blockd`.
    pub driver: String,
    /// The Deltacloud API version, `1.1.0`.
    pub version: String,
    /// The collections.
    pub links: Vec<CollectionLink>,
}

/// `GET /api`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryPoint {
    /// The API.
    pub api: Api,
}

/// An error.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Error {
    /// The HTTP status.
    pub code: u16,
    /// What went wrong.
    pub message: String,
    /// The status's reason phrase.
    pub error: String,
}

/// `POST /api/storage_volumes` parameters (query string, form or
/// multipart body).
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)]
pub struct VolumeCreateForm {
    /// Whole GB, default 1 (or the snapshot's).
    pub capacity: Option<String>,
    /// A snapshot to clone.
    pub snapshot_id: Option<String>,
    /// The realm (zone): letters, digits and `-_.:`.
    pub realm_id: Option<String>,
    /// A name.
    pub name: Option<String>,
    /// A description.
    pub description: Option<String>,
}

/// `POST /api/storage_volumes/{id}/attach` parameters.
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)]
pub struct AttachForm {
    /// The instance.
    pub instance_id: String,
    /// `/dev/[a-z]+[0-9]*`; default the first free `/dev/vdb`..`/dev/vdz`.
    pub device: Option<String>,
}

/// `POST /api/storage_snapshots` parameters.
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)]
pub struct SnapshotCreateForm {
    /// The volume to snapshot.
    pub volume_id: String,
    /// A name.
    pub name: Option<String>,
    /// A description.
    pub description: Option<String>,
}
