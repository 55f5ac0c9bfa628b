//! The typed response bodies of Cinder's QoS specs (`qos.rs`) and volume
//! type encryption (`encryption.rs`), in the conventions of `views.rs`.

use super::views::Link;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

// ---- QoS specs ----

/// A QoS spec.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QosSpec {
    /// UUID.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `front-end` (the client enforces: in `connection_info`),
    /// `back-end` (blockd's NBD server enforces) or `both`.
    pub consumer: String,
    /// Key to value; blockd's NBD server honours `total_bytes_sec`,
    /// `read_bytes_sec`, `write_bytes_sec`, `total_iops_sec`,
    /// `read_iops_sec`, `write_iops_sec` and their `_max` bursts.
    pub specs: BTreeMap<String, String>,
}

/// `{"qos_specs": ..., "links": [...]}` (create, show).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QosSpecOne {
    /// The spec.
    pub qos_specs: QosSpec,
    /// `self` and `bookmark`.
    pub links: Vec<Link>,
}

/// `GET qos-specs`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QosSpecList {
    /// Every spec, by name.
    pub qos_specs: Vec<QosSpec>,
}

/// `PUT qos-specs/{id}`'s answer: the keys set.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QosKeys {
    /// Key to value, as given.
    pub qos_specs: BTreeMap<String, String>,
}

/// A volume type a spec is associated with.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QosAssociation {
    /// Always `volume_type`.
    pub association_type: String,
    /// The type's name.
    pub name: String,
    /// The type's id.
    pub id: String,
}

/// `GET qos-specs/{id}/associations`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QosAssociationList {
    /// The associated volume types.
    pub qos_associations: Vec<QosAssociation>,
}

// ---- encryption types ----

/// A volume type's encryption, as created (every member) or updated
/// (the members given).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// The type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_type_id: Option<String>,
    /// UUID of this encryption record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_id: Option<String>,
    /// The encryptor, e.g. `luks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The cipher (or `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cipher: Option<Option<String>>,
    /// Key size in bits (or `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub key_size: Option<Option<u64>>,
    /// `front-end` or `back-end`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_location: Option<String>,
}

/// `{"encryption": ...}` (create, update).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptionOne {
    /// The encryption.
    pub encryption: Encryption,
}

/// `GET types/{id}/encryption` when the type has one (otherwise `{}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptionShow {
    /// The type.
    pub volume_type_id: String,
    /// UUID of this encryption record.
    pub encryption_id: String,
    /// The encryptor.
    pub provider: String,
    /// The cipher.
    pub cipher: Option<String>,
    /// Key size in bits.
    pub key_size: Option<u64>,
    /// `front-end` or `back-end`.
    pub control_location: String,
    /// Always false.
    pub deleted: bool,
    /// When it was made.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: Option<String>,
    /// Always `null`.
    pub deleted_at: Option<String>,
}

/// `GET types/{id}/encryption/{field}`: `{field: value}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct EncryptionItem(pub BTreeMap<String, serde_json::Value>);
