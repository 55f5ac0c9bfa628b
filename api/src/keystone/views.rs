//! The typed response bodies of the Keystone v3 subset: version
//! documents, tokens, the service catalogue, projects, users and the
//! `{"error": {...}}` body. Each derives [`utoipa::ToSchema`], so the
//! OpenAPI document (`openapi.rs`) is generated from the very types the
//! handlers reply with. [`reply`] turns them into a `serde_json::Value`
//! first, so the bytes on the wire are those of the former `json!`
//! literals.

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

/// A link of a version document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Always `self`.
    pub rel: String,
    /// The version root, with a trailing `/`.
    pub href: String,
}

/// A media type a version speaks.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaType {
    /// `application/json`.
    pub base: String,
    /// `application/vnd.openstack.identity-v3+json`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The v3 version document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// `v3.14`.
    pub id: String,
    /// `stable`.
    pub status: String,
    /// When this version was last updated (ISO 8601).
    pub updated: String,
    /// Its root.
    pub links: Vec<Link>,
    /// The media types it speaks.
    #[serde(rename = "media-types")]
    pub media_types: Vec<MediaType>,
}

/// `GET /v3`: the version document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionOne {
    /// The version.
    pub version: Version,
}

/// The versions of `GET /identity`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionValues {
    /// The one version, v3.
    pub values: Vec<Version>,
}

/// `GET /identity` (300): the versions.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionList {
    /// The versions.
    pub versions: VersionValues,
}

/// The one domain, as users and projects of a token name it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainRef {
    /// `default`.
    pub id: String,
    /// `Default`.
    pub name: String,
}

/// A token's user.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenUser {
    /// The tenant's `user`.
    pub id: String,
    /// The same.
    pub name: String,
    /// The one domain.
    pub domain: DomainRef,
    /// Always `null`: passwords do not expire.
    pub password_expires_at: Option<String>,
}

/// A token's project: the tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenProject {
    /// The tenant id.
    pub id: String,
    /// The same.
    pub name: String,
    /// The one domain.
    pub domain: DomainRef,
}

/// A role of a token.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// `role-<name>`.
    pub id: String,
    /// `reader`, `member` or `admin`.
    pub name: String,
}

/// An endpoint of a service.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `blockd-<type>-<interface>`.
    pub id: String,
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// `RegionOne`.
    pub region: String,
    /// `RegionOne`.
    pub region_id: String,
    /// The service's URL on the host the client used.
    pub url: String,
}

/// A service of the catalogue.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `blockd-<type>`.
    pub id: String,
    /// `identity`, `image`, `volumev3` or `block-storage`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `keystone`, `glance`, `cinderv3` or `cinder`.
    pub name: String,
    /// One per interface.
    pub endpoints: Vec<Endpoint>,
}

/// A token.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// How the first token of the chain was obtained.
    pub methods: Vec<String>,
    /// The chain's audit id.
    pub audit_ids: Vec<String>,
    /// ISO 8601.
    pub issued_at: String,
    /// ISO 8601.
    pub expires_at: String,
    /// Always `false`.
    pub is_domain: bool,
    /// The tenant's user.
    pub user: TokenUser,
    /// The tenant's project.
    pub project: TokenProject,
    /// `reader`, `member`, and `admin` for an admin tenant.
    pub roles: Vec<Role>,
    /// The service catalogue; absent with `?nocatalog`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<Vec<Service>>,
}

/// `POST`/`GET auth/tokens`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenOne {
    /// The token (its id is in the `X-Subject-Token` header).
    pub token: Token,
}

/// Links of a collection: `previous` and `next` always `null`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionLinks {
    /// The collection.
    #[serde(rename = "self")]
    pub this: String,
    /// Always `null`.
    pub previous: Option<String>,
    /// Always `null`.
    pub next: Option<String>,
}

/// The link of a resource.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfLink {
    /// The resource.
    #[serde(rename = "self")]
    pub this: String,
}

/// The empty `options` object.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// `GET auth/catalog`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The services.
    pub catalog: Vec<Service>,
    /// The collection's links.
    pub links: CollectionLinks,
}

/// A project: the tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The tenant id.
    pub id: String,
    /// The same.
    pub name: String,
    /// `default`.
    pub domain_id: String,
    /// Empty.
    pub description: String,
    /// Always `true`.
    pub enabled: bool,
    /// Always `false`.
    pub is_domain: bool,
    /// `default`.
    pub parent_id: String,
    /// Always empty.
    pub tags: Vec<String>,
    /// Always `{}`.
    pub options: NoOptions,
    /// The project's own link.
    pub links: SelfLink,
}

/// `GET projects`, `GET auth/projects`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectList {
    /// The caller's project (or none when `?name=` names another).
    pub projects: Vec<Project>,
    /// The collection's links.
    pub links: CollectionLinks,
}

/// `GET projects/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectOne {
    /// The project.
    pub project: Project,
}

/// The one domain.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// `default`.
    pub id: String,
    /// `Default`.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Always `true`.
    pub enabled: bool,
    /// Its link.
    pub links: SelfLink,
}

/// `GET domains`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainList {
    /// The one domain (or none when `?name=` names another).
    pub domains: Vec<Domain>,
    /// The collection's links.
    pub links: CollectionLinks,
}

/// A user: the tenant's.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The tenant's `user`.
    pub id: String,
    /// The same.
    pub name: String,
    /// `default`.
    pub domain_id: String,
    /// The tenant id.
    pub default_project_id: String,
    /// Always `true`.
    pub enabled: bool,
    /// Always `null`.
    pub password_expires_at: Option<String>,
    /// Always `{}`.
    pub options: NoOptions,
    /// The user's own link.
    pub links: SelfLink,
}

/// `GET users/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserOne {
    /// The user.
    pub user: User,
}

/// The body of an error.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The HTTP status.
    pub code: u16,
    /// Its reason phrase.
    pub title: String,
    /// What went wrong.
    pub message: String,
}

/// Keystone's error document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Error {
    /// The error.
    pub error: ErrorBody,
}
