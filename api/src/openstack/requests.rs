//! The request bodies of this dialect (snake_case, but `imageRef` and the
//! attachment's camelCase), typed for the OpenAPI document. The handlers
//! parse bodies by hand, leniently and with OpenStack's exact messages;
//! these types say what they accept, and the tests below hold them to the
//! seed's example requests. Only the document and the tests read them.
#![allow(dead_code)]

use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// `?limit=` and `?offset=` on lists.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Most items to return (0 or absent: 1000, the most).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<u64>,
    /// Items to skip.
    #[param(minimum = 0)]
    pub offset: Option<u64>,
}

/// A size in GB: an integer, or a string of one (`"1"`).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SizeGb {
    /// `1`.
    Number(u64),
    /// `"1"`.
    Text(String),
}

/// A boolean, or one of the strings OpenStack's `bool_from_string` takes.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Flag {
    /// `true`.
    Bool(bool),
    /// `"yes"`, `"1"`, `"t"`, ...
    Text(String),
}

/// The fields of a new volume.
#[derive(Deserialize, ToSchema)]
pub struct VolumeCreateFields {
    /// GB; required unless `snapshot_id` or `imageRef`.
    pub size: Option<SizeGb>,
    /// Make it from this snapshot.
    pub snapshot_id: Option<String>,
    /// Make it from this image (id or name); exclusive with `snapshot_id`.
    #[serde(rename = "imageRef")]
    pub image_ref: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Display description.
    pub display_description: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// Volume type.
    pub volume_type: Option<String>,
    /// User metadata.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `POST os-volumes`.
#[derive(Deserialize, ToSchema)]
pub struct VolumeCreate {
    /// The new volume.
    pub volume: VolumeCreateFields,
}

/// The fields an update may change.
#[derive(Deserialize, ToSchema)]
pub struct VolumeUpdateFields {
    /// Display name.
    pub display_name: Option<String>,
    /// Display description.
    pub display_description: Option<String>,
    /// User metadata (replaces it).
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `PUT os-volumes/{volume_id}`.
#[derive(Deserialize, ToSchema)]
pub struct VolumeUpdate {
    /// The changes.
    pub volume: VolumeUpdateFields,
}

/// `os-extend`'s argument.
#[derive(Deserialize, ToSchema)]
pub struct Extend {
    /// The new size in GB, larger than the current.
    pub new_size: SizeGb,
}

/// `revert`'s argument.
#[derive(Deserialize, ToSchema)]
pub struct Revert {
    /// The volume's latest snapshot.
    pub snapshot_id: String,
}

/// `POST os-volumes/{volume_id}/action`: one action.
#[derive(Deserialize, ToSchema)]
pub enum VolumeAction {
    /// Grow the volume.
    #[serde(rename = "os-extend")]
    Extend(Extend),
    /// Roll the volume back to a snapshot.
    #[serde(rename = "revert")]
    Revert(Revert),
}

/// The fields of a new snapshot.
#[derive(Deserialize, ToSchema)]
pub struct SnapshotCreateFields {
    /// The volume to snapshot.
    pub volume_id: String,
    /// Needed for an in-use volume.
    pub force: Option<Flag>,
    /// Display name.
    pub display_name: Option<String>,
    /// Display description.
    pub display_description: Option<String>,
}

/// `POST os-snapshots`.
#[derive(Deserialize, ToSchema)]
pub struct SnapshotCreate {
    /// The new snapshot.
    pub snapshot: SnapshotCreateFields,
}

/// The fields of a new attachment.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentCreateFields {
    /// The volume to attach.
    pub volume_id: String,
    /// `/dev/[a-z]+[0-9]*`, unique on the server; chosen when absent.
    #[schema(pattern = "^/dev/[a-z]+[0-9]*$")]
    pub device: Option<String>,
}

/// `POST servers/{server_id}/os-volume_attachments`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentCreate {
    /// The attachment.
    pub volume_attachment: AttachmentCreateFields,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seed_examples_fit() {
        let v: VolumeCreate = serde_json::from_value(json!({"volume": {"size": "1",
            "display_name": "n", "metadata": {"k": "v"}}}))
        .unwrap();
        assert!(matches!(v.volume.size, Some(SizeGb::Text(_))));
        let v: VolumeCreate =
            serde_json::from_value(json!({"volume": {"imageRef": "img"}})).unwrap();
        assert_eq!(v.volume.image_ref.as_deref(), Some("img"));
        let a: VolumeAction =
            serde_json::from_value(json!({"os-extend": {"new_size": 2}})).unwrap();
        assert!(matches!(a, VolumeAction::Extend(_)));
        let a: VolumeAction =
            serde_json::from_value(json!({"revert": {"snapshot_id": "s"}})).unwrap();
        assert!(matches!(a, VolumeAction::Revert(_)));
        let s: SnapshotCreate =
            serde_json::from_value(json!({"snapshot": {"volume_id": "v", "force": "yes"}}))
                .unwrap();
        assert!(matches!(s.snapshot.force, Some(Flag::Text(_))));
        let a: AttachmentCreate = serde_json::from_value(
            json!({"volumeAttachment": {"volumeId": "v", "device": "/dev/vdb"}}),
        )
        .unwrap();
        assert_eq!(a.volume_attachment.device.as_deref(), Some("/dev/vdb"));
    }
}
