//! The Cinder block storage v3 API, as today's OpenStack clients speak it
//! (`openstack volume ...`, cinderclient, openstacksdk): version discovery
//! at `/volume/` and `/volume/v3/`, and under `/volume/v3/{project_id}/`
//! volumes, their actions and metadata, snapshots, attachments (3.27+),
//! backups, volume types (`types.rs`) with their encryption
//! (`encryption.rs`), QoS specs (`qos.rs`, enforced by the NBD server;
//! bodies in `views_qos.rs`), user messages (`messages.rs`),
//! availability zones, limits, quota
//! sets, extensions, volume transfers (`transfers.rs`), generic volume
//! groups, group types and group snapshots (`groups.rs`, `group_types.rs`,
//! `group_snapshots.rs`, bodies in `group_views.rs`), and the read-only
//! operator views (`admin.rs`). Clients find it through the
//! catalogue of the minimal Keystone (`keystone/`); `X-Auth-Token` is a
//! token it issued or a tenant's static token, and `{project_id}` is the
//! tenant id.
//!
//! Objects are the engine objects every dialect shares (`meta.rs`), made,
//! changed and deleted through the domain layer (`domain/`: one quota
//! rule, one visibility rule): a volume made here is the same object, of
//! the same tenant, in all of them. Requests and responses are snake_case; faults are Cinder's
//! (`fault.rs`); microversions 3.0 to 3.62 (`version.rs`). Every response
//! body is a typed view (`views.rs`, `views_info.rs`) the OpenAPI document
//! is generated from.

mod actions;
mod admin;
mod attachments;
mod backup_records;
mod backups;
mod encryption;
pub(crate) mod fault;
mod group_snapshots;
mod group_types;
mod group_views;
mod groups;
mod info;
mod messages;
mod openapi;
mod params;
pub(crate) mod qos;
mod quotas;
mod snapshots;
mod transfers;
mod types;
pub(crate) mod version;
mod views;
mod views_info;
mod views_qos;
mod volumes;

use crate::auth::Tenant;
use crate::domain::{self, quota};
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::{Reply, Request};
use crate::meta;
use crate::ApiState;
use engine::{ObjectInfo, ObjectKind, Store};
use version::Microversion;
use warp::http::Method;

/// The context of one authenticated call: the domain's context (lookups,
/// the one visibility and quota rules, the operations) plus the request
/// and its microversion.
pub(crate) struct Ctx<'a> {
    pub state: &'a ApiState,
    pub req: &'a Request,
    pub tenant: &'a Tenant,
    pub version: Microversion,
    pub dom: domain::Ctx<'a>,
}

impl Ctx<'_> {
    pub fn store(&self) -> &Store {
        self.state.store()
    }

    /// `http://host/volume/v3/{project}`.
    pub fn base(&self) -> String {
        format!(
            "{}{}/{}",
            self.req.base_url(),
            crate::CINDER_V3_PATH,
            self.tenant.id
        )
    }

    /// `http://host/volume/{project}` (bookmark links).
    pub fn bookmark(&self) -> String {
        format!("{}/volume/{}", self.req.base_url(), self.tenant.id)
    }

    /// The tenant's objects of `kind`, oldest first.
    pub fn objects(&self, kind: ObjectKind) -> Vec<ObjectInfo> {
        self.dom.objects(kind)
    }

    fn find(&self, key: &str, kind: ObjectKind, what: &str) -> Result<ObjectInfo> {
        self.dom
            .find(kind, key)?
            .ok_or_else(|| ApiError::not_found(format!("{what} {key} could not be found.")))
    }

    /// The tenant's volume `key` (404 otherwise).
    pub fn volume(&self, key: &str) -> Result<ObjectInfo> {
        self.find(key, ObjectKind::Volume, "Volume")
    }

    /// The tenant's snapshot `key` (404 otherwise).
    pub fn snapshot(&self, key: &str) -> Result<ObjectInfo> {
        self.find(key, ObjectKind::Snapshot, "Snapshot")
    }

    /// Volume `key` of any tenant for an admin (operator reads and admin
    /// actions), else the tenant's own (404 otherwise).
    pub fn volume_any(&self, key: &str) -> Result<ObjectInfo> {
        self.dom
            .find_any(ObjectKind::Volume, key)?
            .ok_or_else(|| ApiError::not_found(format!("Volume {key} could not be found.")))
    }

    /// Snapshot `key` of any tenant for an admin, else the tenant's own.
    pub fn snapshot_any(&self, key: &str) -> Result<ObjectInfo> {
        self.dom
            .find_any(ObjectKind::Snapshot, key)?
            .ok_or_else(|| ApiError::not_found(format!("Snapshot {key} could not be found.")))
    }

    /// The objects of `kind` a list shows: the tenant's own, or with
    /// `?all_tenants=1` from an admin every tenant's (`?project_id=` one).
    pub fn listed(&self, kind: ObjectKind) -> Vec<ObjectInfo> {
        let all = self.req.query_param("all_tenants").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
        if all && self.dom.scope.admin {
            let project = self.req.query_param("project_id").filter(|p| !p.is_empty());
            self.dom.objects_any(kind, project)
        } else {
            self.objects(kind)
        }
    }

    /// The owner of `o` (its tenant id and user) as views show it.
    pub fn owner_of(&self, o: &ObjectInfo) -> (String, String) {
        match meta::get(o, meta::TENANT) {
            Some(t) if t != self.tenant.id => {
                let user = self
                    .state
                    .auth()
                    .by_id(t)
                    .map_or_else(|| t.to_string(), |x| x.user.clone());
                (t.to_string(), user)
            }
            _ => (self.tenant.id.clone(), self.tenant.user.clone()),
        }
    }

    /// What the tenant holds now, by the one quota rule (images count as
    /// snapshots).
    pub fn usage(&self) -> quota::Usage {
        quota::usage(&self.store().list(), &self.tenant.id)
    }

    /// Admin-only calls: 403 for other tenants.
    pub fn require_admin(&self, action: &str) -> Result<()> {
        if self.dom.scope.admin {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("Policy doesn't allow {action} to be performed."),
            ))
        }
    }
}

fn only(req: &Request, allow: &'static str) -> Result<()> {
    if allow.split(", ").any(|m| m == req.method.as_str()) {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(allow))
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

/// Handles one request under `/volume`, faults included.
pub(crate) fn dispatch(state: &ApiState, req: &Request) -> Reply {
    let v = match Microversion::of(req) {
        Ok(v) => v,
        Err(refused) => return fault::with_version(refused.reply(), Microversion::MIN),
    };
    let r = route(state, req, v).unwrap_or_else(|e| fault::fault(&e));
    fault::with_version(r, v)
}

fn route(state: &ApiState, req: &Request, version: Microversion) -> Result<Reply> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["volume"] => only(req, "GET").map(|_| version::versions(req, 300)),
        ["volume", "v3", "openapi.json"] => {
            only(req, "GET").map(|_| Reply::json(200, openapi::generate(&req.base_url())))
        }
        ["volume", "v3"] | ["volume", "v3", _] => {
            only(req, "GET").map(|_| version::versions(req, 200))
        }
        ["volume", "v3", project, rest @ ..] => {
            let token = req
                .header("x-auth-token")
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorKind::Unauthorized,
                        "The request you have made requires authentication.",
                    )
                })?;
            let tenant = state.authenticate(token).ok_or_else(|| {
                ApiError::new(
                    ErrorKind::Unauthorized,
                    "The request you have made requires authentication.",
                )
            })?;
            if tenant.id != *project {
                return Err(ApiError::new(
                    ErrorKind::Forbidden,
                    "Policy doesn't allow this project to be accessed with this token.",
                ));
            }
            let ctx = Ctx {
                state,
                req,
                tenant,
                version,
                dom: domain::Ctx::new(state, tenant),
            };
            // `volumes/` names the item with an empty id (404), as in
            // Cinder, not the collection.
            let mut rest = rest.to_vec();
            if req.path.ends_with('/') && !rest.is_empty() {
                rest.push("");
            }
            resource(&ctx, &rest)
        }
        _ => Err(not_found()),
    }
}

/// The transfers collection: `os-volume-transfer`, and `volume-transfers`
/// from 3.55.
fn is_transfers(ctx: &Ctx, c: &str) -> bool {
    c == "os-volume-transfer" || (c == "volume-transfers" && ctx.version.at_least(55))
}

fn resource(ctx: &Ctx, rest: &[&str]) -> Result<Reply> {
    let req = ctx.req;
    let m = &req.method;
    match rest {
        ["volumes"] => {
            only(req, "GET, POST")?;
            if *m == Method::GET {
                volumes::list(ctx, false)
            } else {
                volumes::create(ctx)
            }
        }
        ["volumes", "detail"] => only(req, "GET").and_then(|_| volumes::list(ctx, true)),
        ["volumes", "summary"] if ctx.version.at_least(12) => {
            only(req, "GET").and_then(|_| volumes::summary(ctx))
        }
        ["volumes", id] => {
            only(req, "GET, PUT, DELETE")?;
            match m.as_str() {
                "GET" => volumes::show(ctx, id),
                "PUT" => volumes::update(ctx, id),
                _ => volumes::delete(ctx, id, false),
            }
        }
        ["volumes", id, "action"] => only(req, "POST").and_then(|_| actions::action(ctx, id)),
        ["volumes", id, "metadata"] => {
            only(req, "GET, POST, PUT")?;
            volumes::metadata(ctx, id)
        }
        ["volumes", id, "metadata", key] => {
            only(req, "GET, PUT, DELETE")?;
            volumes::metadata_item(ctx, id, key)
        }
        ["snapshots"] => {
            only(req, "GET, POST")?;
            if *m == Method::GET {
                snapshots::list(ctx, false)
            } else {
                snapshots::create(ctx)
            }
        }
        ["snapshots", "detail"] => only(req, "GET").and_then(|_| snapshots::list(ctx, true)),
        ["snapshots", id] => {
            only(req, "GET, PUT, DELETE")?;
            match m.as_str() {
                "GET" => snapshots::show(ctx, id),
                "PUT" => snapshots::update(ctx, id),
                _ => snapshots::delete(ctx, id),
            }
        }
        ["snapshots", id, "metadata"] => {
            only(req, "GET, POST, PUT")?;
            snapshots::metadata(ctx, id)
        }
        ["snapshots", id, "action"] => only(req, "POST").and_then(|_| snapshots::action(ctx, id)),
        ["snapshots", id, "metadata", key] => {
            only(req, "GET, PUT, DELETE")?;
            snapshots::metadata_item(ctx, id, key)
        }
        ["attachments"] if ctx.version.at_least(27) => {
            only(req, "GET, POST")?;
            if *m == Method::GET {
                attachments::list(ctx, false)
            } else {
                attachments::create(ctx)
            }
        }
        ["attachments", "detail"] if ctx.version.at_least(27) => {
            only(req, "GET").and_then(|_| attachments::list(ctx, true))
        }
        ["attachments", id] if ctx.version.at_least(27) => {
            only(req, "GET, PUT, DELETE")?;
            match m.as_str() {
                "GET" => attachments::show(ctx, id),
                "PUT" => attachments::update(ctx, id),
                _ => attachments::delete(ctx, id),
            }
        }
        ["attachments", id, "action"] if ctx.version.at_least(27) => {
            only(req, "POST").and_then(|_| attachments::action(ctx, id))
        }
        [c] if is_transfers(ctx, c) => {
            only(req, "GET, POST")?;
            if *m == Method::GET {
                transfers::list(ctx, false)
            } else {
                transfers::create(ctx)
            }
        }
        [c, "detail"] if is_transfers(ctx, c) => {
            only(req, "GET").and_then(|_| transfers::list(ctx, true))
        }
        [c, id] if is_transfers(ctx, c) => {
            only(req, "GET, DELETE")?;
            if *m == Method::GET {
                transfers::show(ctx, id)
            } else {
                transfers::delete(ctx, id)
            }
        }
        [c, id, "accept"] if is_transfers(ctx, c) => {
            only(req, "POST").and_then(|_| transfers::accept(ctx, id))
        }
        ["backups"] => {
            only(req, "GET, POST")?;
            if *m == Method::GET {
                backups::list(ctx, false)
            } else {
                backups::create(ctx)
            }
        }
        ["backups", "detail"] => only(req, "GET").and_then(|_| backups::list(ctx, true)),
        ["backups", "import_record"] => only(req, "POST").and_then(|_| backup_records::import(ctx)),
        ["backups", id, "export_record"] => {
            only(req, "GET").and_then(|_| backup_records::export(ctx, id))
        }
        ["backups", id] => {
            only(req, "GET, PUT, DELETE")?;
            match m.as_str() {
                "GET" => backups::show(ctx, id),
                "PUT" if ctx.version.at_least(9) => backups::update(ctx, id),
                "PUT" => Err(ApiError::method_not_allowed("GET, DELETE")),
                _ => backups::delete(ctx, id),
            }
        }
        ["backups", id, "action"] => only(req, "POST").and_then(|_| backups::action(ctx, id)),
        ["backups", id, "restore"] => only(req, "POST").and_then(|_| backups::restore(ctx, id)),
        ["types"] => {
            only(req, "GET, POST")?;
            if *m == Method::GET {
                types::list(ctx)
            } else {
                types::create(ctx)
            }
        }
        ["types", id] => {
            only(req, "GET, PUT, DELETE")?;
            match m.as_str() {
                "GET" => types::show(ctx, id),
                "PUT" => types::update(ctx, id),
                _ => types::delete(ctx, id),
            }
        }
        ["types", id, "extra_specs"] => {
            only(req, "GET, POST")?;
            types::extra_specs(ctx, id)
        }
        ["types", id, "extra_specs", key] => {
            only(req, "GET, PUT, DELETE")?;
            types::extra_spec(ctx, id, key)
        }
        ["types", id, "action"] => only(req, "POST").and_then(|_| types::action(ctx, id)),
        ["types", id, "os-volume-type-access"] => {
            only(req, "GET").and_then(|_| types::access_list(ctx, id))
        }
        ["types", id, "encryption"] => {
            only(req, "GET, POST")?;
            if *m == Method::GET {
                encryption::show(ctx, id)
            } else {
                encryption::create(ctx, id)
            }
        }
        ["types", id, "encryption", key] => {
            only(req, "GET, PUT, DELETE")?;
            match m.as_str() {
                "GET" => encryption::show_item(ctx, id, key),
                "PUT" => encryption::update(ctx, id, key),
                _ => encryption::delete(ctx, id, key),
            }
        }
        ["qos-specs"] => {
            only(req, "GET, POST")?;
            if *m == Method::GET {
                qos::list(ctx)
            } else {
                qos::create(ctx)
            }
        }
        ["qos-specs", id] => {
            only(req, "GET, PUT, DELETE")?;
            match m.as_str() {
                "GET" => qos::show(ctx, id),
                "PUT" => qos::set_keys(ctx, id),
                _ => qos::delete(ctx, id),
            }
        }
        ["qos-specs", id, "delete_keys"] => {
            only(req, "PUT").and_then(|_| qos::delete_keys(ctx, id))
        }
        ["qos-specs", id, "associations"] => {
            only(req, "GET").and_then(|_| qos::associations(ctx, id))
        }
        ["qos-specs", id, "associate"] => only(req, "GET").and_then(|_| qos::associate(ctx, id)),
        ["qos-specs", id, "disassociate"] => {
            only(req, "GET").and_then(|_| qos::disassociate(ctx, id))
        }
        ["qos-specs", id, "disassociate_all"] => {
            only(req, "GET").and_then(|_| qos::disassociate_all(ctx, id))
        }
        ["group_types"] if ctx.version.at_least(11) => {
            only(req, "GET, POST")?;
            if *m == Method::GET {
                group_types::list(ctx)
            } else {
                group_types::create(ctx)
            }
        }
        ["group_types", id] if ctx.version.at_least(11) => {
            only(req, "GET, PUT, DELETE")?;
            match m.as_str() {
                "GET" => group_types::show(ctx, id),
                "PUT" => group_types::update(ctx, id),
                _ => group_types::delete(ctx, id),
            }
        }
        ["group_types", id, "group_specs"] if ctx.version.at_least(11) => {
            only(req, "GET, POST")?;
            group_types::group_specs(ctx, id)
        }
        ["group_types", id, "group_specs", key] if ctx.version.at_least(11) => {
            only(req, "GET, PUT, DELETE")?;
            group_types::group_spec(ctx, id, key)
        }
        ["groups"] if ctx.version.at_least(13) => {
            only(req, "GET, POST")?;
            if *m == Method::GET {
                groups::list(ctx, false)
            } else {
                groups::create(ctx)
            }
        }
        ["groups", "detail"] if ctx.version.at_least(13) => {
            only(req, "GET").and_then(|_| groups::list(ctx, true))
        }
        ["groups", "action"] if ctx.version.at_least(14) => {
            only(req, "POST").and_then(|_| groups::create_from_src(ctx))
        }
        ["groups", id] if ctx.version.at_least(13) => {
            only(req, "GET, PUT")?;
            if *m == Method::GET {
                groups::show(ctx, id)
            } else {
                groups::update(ctx, id)
            }
        }
        ["groups", id, "action"] if ctx.version.at_least(13) => {
            only(req, "POST").and_then(|_| groups::action(ctx, id))
        }
        ["group_snapshots"] if ctx.version.at_least(14) => {
            only(req, "GET, POST")?;
            if *m == Method::GET {
                group_snapshots::list(ctx, false)
            } else {
                group_snapshots::create(ctx)
            }
        }
        ["group_snapshots", "detail"] if ctx.version.at_least(14) => {
            only(req, "GET").and_then(|_| group_snapshots::list(ctx, true))
        }
        ["group_snapshots", id] if ctx.version.at_least(14) => {
            only(req, "GET, DELETE")?;
            if *m == Method::GET {
                group_snapshots::show(ctx, id)
            } else {
                group_snapshots::delete(ctx, id)
            }
        }
        ["group_snapshots", id, "action"] if ctx.version.at_least(14) => {
            only(req, "POST").and_then(|_| group_snapshots::action(ctx, id))
        }
        ["messages"] if ctx.version.at_least(3) => {
            only(req, "GET").and_then(|_| messages::list(ctx))
        }
        ["messages", id] if ctx.version.at_least(3) => {
            only(req, "GET, DELETE")?;
            if *m == Method::GET {
                messages::show(ctx, id)
            } else {
                messages::delete(ctx, id)
            }
        }
        ["os-availability-zone"] => only(req, "GET").map(|_| info::zones()),
        ["extensions"] => only(req, "GET").map(|_| info::extensions()),
        ["os-services"] => only(req, "GET").and_then(|_| admin::services(ctx)),
        ["os-services", action] => {
            only(req, "PUT").and_then(|_| admin::service_action(ctx, action))
        }
        ["os-hosts"] => only(req, "GET").and_then(|_| admin::hosts(ctx)),
        ["os-hosts", host] => only(req, "GET").and_then(|_| admin::host(ctx, host)),
        ["scheduler-stats", "get_pools"] => only(req, "GET").and_then(|_| admin::pools(ctx)),
        ["capabilities", host] => only(req, "GET").and_then(|_| admin::capabilities(ctx, host)),
        ["os-quota-class-sets", class] => {
            only(req, "GET, PUT")?;
            if *m == Method::GET {
                quotas::class_show(ctx, class)
            } else {
                quotas::class_update(ctx, class)
            }
        }
        ["limits"] => only(req, "GET").map(|_| info::limits(ctx)),
        ["os-quota-sets", project] => {
            only(req, "GET, PUT, DELETE")?;
            match m.as_str() {
                "GET" => quotas::show(ctx, project, false),
                "PUT" => quotas::update(ctx, project),
                _ => quotas::delete(ctx, project),
            }
        }
        ["os-quota-sets", project, "defaults"] => {
            only(req, "GET").and_then(|_| quotas::show(ctx, project, true))
        }
        _ => Err(not_found()),
    }
}
