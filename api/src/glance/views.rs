//! The typed response bodies of the read-only Glance v2: version
//! documents, images and the image list. Each derives
//! [`utoipa::ToSchema`], so the OpenAPI document (`openapi.rs`) is
//! generated from the very types the handlers reply with. [`reply`] turns
//! them into a `serde_json::Value` first, so the bytes on the wire are
//! those of the former `json!` literals.

use crate::http::Reply;
use serde::Serialize;
use utoipa::ToSchema;

/// A `status` reply with `body` as JSON.
pub(crate) fn reply<T: Serialize>(status: u16, body: &T) -> Reply {
    Reply::json(
        status,
        serde_json::to_value(body).unwrap_or(serde_json::Value::Null),
    )
}

/// A version's link.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// `self`.
    pub rel: String,
    /// The version's root, with a trailing `/`.
    pub href: String,
}

/// The one version, v2.9.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// `v2.9`.
    pub id: String,
    /// `CURRENT`.
    pub status: String,
    /// Its root.
    pub links: Vec<Link>,
}

/// The versions (`/image` answers them with 300, `/image/v2` with 200).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionList {
    /// The one version.
    pub versions: Vec<Version>,
}

/// An engine image, as Glance shows one.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// The image's UUID.
    pub id: String,
    /// Its name (`null` when unnamed).
    pub name: Option<String>,
    /// Always `active`.
    pub status: String,
    /// `public` (ownerless or shared) or `private`.
    pub visibility: String,
    /// The owning tenant (`null` for an ownerless image).
    pub owner: Option<String>,
    /// Bytes.
    pub size: u64,
    /// Bytes.
    pub virtual_size: u64,
    /// Always `raw`.
    pub disk_format: String,
    /// Always `bare`.
    pub container_format: String,
    /// The size in GiB, rounded up.
    pub min_disk: u64,
    /// Always 0.
    pub min_ram: u64,
    /// Always `false`.
    pub protected: bool,
    /// Always empty.
    pub tags: Vec<String>,
    /// ISO 8601, `Z`.
    pub created_at: String,
    /// The same as `created_at`.
    pub updated_at: String,
    /// `/v2/images/{id}`.
    #[serde(rename = "self")]
    pub this: String,
    /// `/v2/images/{id}/file` (not served: images are read through volumes).
    pub file: String,
    /// `/v2/schemas/image`.
    pub schema: String,
    /// Always `false`.
    pub os_hidden: bool,
    /// Always `null`.
    pub checksum: Option<String>,
    /// Always `null`.
    pub os_hash_algo: Option<String>,
    /// Always `null`.
    pub os_hash_value: Option<String>,
}

/// `GET /image/v2/images`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageList {
    /// The images the tenant sees (with `?name=`, those of that name).
    pub images: Vec<Image>,
    /// `/v2/schemas/images`.
    pub schema: String,
    /// `/v2/images`.
    pub first: String,
}
