//! The typed response bodies of the Danube Cloud dialect: the status
//! envelope around each result (image, snapshot, lists, messages, task
//! states) and the exceptions. Each derives [`utoipa::ToSchema`], so the
//! OpenAPI document (`openapi.rs`) is generated from the very types the
//! handlers reply with. Replies go through a `serde_json::Value`, so the
//! bytes on the wire are those of the former `json!` literals.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `v` as JSON (these types never fail to serialize).
pub(crate) fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A server disk image.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Its name (per tenant).
    pub name: String,
    /// Its UUID.
    pub uuid: String,
    /// Its alias (the name unless set).
    pub alias: String,
    /// Its version (`1.0` unless set).
    pub version: String,
    /// The owning tenant (`admin` for an ownerless image).
    pub owner: String,
    /// 1 public, 3 private, 4 deleted.
    pub access: i64,
    /// Its description.
    pub desc: String,
    /// OS type, 1 to 7.
    pub ostype: i64,
    /// MB, rounded up.
    pub size: u64,
    /// Whether it can resize the disk at deploy.
    pub resize: bool,
    /// Whether it shuts the server down after the first start.
    pub deploy: bool,
    /// Its tags.
    #[schema(value_type = Vec<String>)]
    pub tags: Value,
    /// 1 ok, 2 pending.
    pub status: u8,
    /// ISO 8601.
    pub created: String,
    /// Whether it is bound to a datacenter.
    pub dc_bound: bool,
    /// With `extended`: its datacenters (`["main"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dcs: Option<Vec<String>>,
    /// With `extended`: the caller's servers using it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vms: Option<Vec<String>>,
}

/// A VM disk snapshot.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// The VM (server id).
    pub hostname: String,
    /// Its UUID.
    pub id: String,
    /// Its name (the UUID when unnamed).
    pub name: String,
    /// The VM's disk number, from 1.
    pub disk_id: usize,
    /// Its note.
    pub note: String,
    /// Always 2 (manual).
    #[serde(rename = "type")]
    pub kind: u8,
    /// 1 ok, 2 pending.
    pub status: u8,
    /// MB, rounded up.
    pub size: u64,
    /// ISO 8601.
    pub created: String,
}

/// A list entry: a name, or with `full`/`extended` the whole image.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ImageItem {
    /// The image's name.
    Name(String),
    /// The image.
    Image(Box<Image>),
}

/// A list entry: a name, or with `full` the whole snapshot.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum SnapshotItem {
    /// The snapshot's name.
    Name(String),
    /// The snapshot.
    Snapshot(Snapshot),
}

/// What a delete answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// `Image NAME deleted`, `Snapshot NAME deleted`.
    pub message: String,
}

/// The result of a started import.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportStarted {
    /// The image's name.
    pub name: String,
    /// 2: pending.
    pub status: u8,
}

/// An exception: 401, 403, 404, 405, 406, 409, 412, 413, 415, 417, 423,
/// 428, 500.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Detail {
    /// What went wrong.
    pub detail: String,
}

/// The status envelope of every non-exception reply.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    /// `SUCCESS` (200), `PENDING` (201) or `FAILURE` (400).
    pub status: String,
    /// What the call gave.
    pub result: T,
    /// The task's id (`sync-UUID` for a synchronous call).
    pub task_id: String,
}

impl<T: Serialize> Envelope<T> {
    /// The envelope as JSON.
    pub fn value(&self) -> Value {
        to_value(self)
    }
}

/// Field errors: `{"field": ["message", ...]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = std::collections::BTreeMap<String, Vec<String>>)]
pub struct FieldErrors(pub Map<String, Value>);

/// What a task ended with: an image (import), `{"detail"}` (failure),
/// or `null` while pending.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(transparent)]
pub struct TaskResult(pub Value);

/// The fields `PUT /image/{name}/`, an import and an image from a
/// snapshot may set (request body; the document's description only).
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)]
pub struct ImageUpdate {
    /// The alias.
    pub alias: Option<String>,
    /// The version.
    pub version: Option<String>,
    /// 1 public, 3 private, 4 deleted.
    pub access: Option<i64>,
    /// A new owner (an operator's action).
    pub owner: Option<String>,
    /// The description.
    pub desc: Option<String>,
    /// Resize at deploy.
    pub resize: Option<bool>,
    /// Shut down after the first start.
    pub deploy: Option<bool>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Bound to a datacenter.
    pub dc_bound: Option<bool>,
    /// Only a snapshot of this disk (image from a snapshot).
    pub disk_id: Option<i64>,
}

/// `POST /image/{name}/`: the import's sources and the image's fields.
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)]
pub struct ImportRequest {
    /// The imgadm manifest's URL (an allowed host).
    pub manifest_url: String,
    /// The file's URL, when not next to the manifest.
    pub file_url: Option<String>,
    /// The image's description (the other fields of `ImageUpdate`
    /// are taken too).
    pub desc: Option<String>,
}

/// A snapshot's `disk_id` and `note` (request body).
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)]
pub struct SnapshotNote {
    /// The VM's disk number, from 1 (default 1; create only).
    pub disk_id: Option<i64>,
    /// The note.
    pub note: Option<String>,
}
