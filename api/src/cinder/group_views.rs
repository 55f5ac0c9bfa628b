//! The typed bodies of Cinder's generic volume groups (`groups.rs`), group
//! types (`group_types.rs`) and group snapshots (`group_snapshots.rs`),
//! named and shaped as Cinder's view builders make them. Each derives
//! [`utoipa::ToSchema`]; fields a microversion adds are `None` (left out)
//! below it, and `Some(None)` is a JSON `null`.

use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A group type (`group_types/{id}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupTypeView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub group_specs: BTreeMap<String, String>,
}

/// `{"group_type": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupTypeBody {
    pub group_type: GroupTypeView,
}

/// `{"group_types": [...]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupTypesBody {
    pub group_types: Vec<GroupTypeView>,
}

/// `{"group_specs": {...}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupSpecsBody {
    pub group_specs: BTreeMap<String, String>,
}

/// One group spec, `{key: value}` (`group_specs/{key}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupSpec(pub BTreeMap<String, String>);

/// A group as create answers and brief lists show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupBrief {
    pub id: String,
    pub name: Option<String>,
}

/// `{"group": {id, name}}` (create, create-from-src).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupBriefBody {
    pub group: GroupBrief,
}

/// `{"groups": [{id, name}]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupsBriefBody {
    pub groups: Vec<GroupBrief>,
}

/// A group in detail (show, `groups/detail`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupView {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: String,
    pub availability_zone: String,
    pub created_at: String,
    /// The group type's id.
    pub group_type: String,
    /// The volume types' ids.
    pub volume_types: Vec<String>,
    /// 3.14+.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub group_snapshot_id: Option<Option<String>>,
    /// 3.14+.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub source_group_id: Option<Option<String>>,
    /// 3.25+ with `?list_volume=true`: the member volumes' ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<String>>,
    /// 3.38+.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub replication_status: Option<Option<String>>,
    /// 3.58+.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

/// `{"group": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupBody {
    pub group: GroupView,
}

/// `{"groups": [...]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupsBody {
    pub groups: Vec<GroupView>,
}

/// A group snapshot as create answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupSnapshotCreated {
    pub id: String,
    pub name: Option<String>,
    pub group_type_id: String,
}

/// `{"group_snapshot": {id, name, group_type_id}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupSnapshotCreatedBody {
    pub group_snapshot: GroupSnapshotCreated,
}

/// A group snapshot in brief lists.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupSnapshotBrief {
    pub id: String,
    pub name: Option<String>,
}

/// `{"group_snapshots": [{id, name}]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupSnapshotsBriefBody {
    pub group_snapshots: Vec<GroupSnapshotBrief>,
}

/// A group snapshot in detail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupSnapshotView {
    pub id: String,
    pub group_id: String,
    pub group_type_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: String,
    pub created_at: String,
    /// 3.58+.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

/// `{"group_snapshot": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupSnapshotBody {
    pub group_snapshot: GroupSnapshotView,
}

/// `{"group_snapshots": [...]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GroupSnapshotsBody {
    pub group_snapshots: Vec<GroupSnapshotView>,
}

/// Serializes a typed body into a JSON reply.
pub(crate) fn reply<T: Serialize>(
    status: u16,
    body: &T,
) -> crate::error::Result<crate::http::Reply> {
    let v =
        serde_json::to_value(body).map_err(|e| crate::error::ApiError::internal(e.to_string()))?;
    Ok(crate::http::Reply::json(status, v))
}
