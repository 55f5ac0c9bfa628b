//! The Cinder block storage v3 API, as today's OpenStack clients speak it
//! (`openstack volume ...`, cinderclient, openstacksdk): version discovery
//! at `/volume/` and `/volume/v3/`, and under `/volume/v3/{project_id}/`
//! volumes, their actions and metadata, snapshots, the one volume type,
//! availability zones, limits and quota sets. Clients find it through the
//! catalogue of the minimal Keystone (`keystone/`); `X-Auth-Token` is a
//! token it issued or a tenant's static token, and `{project_id}` is the
//! tenant id.
//!
//! Objects are the engine objects every dialect shares (`meta.rs`): a
//! volume made here is the same object, of the same tenant, in all of
//! them. Requests and responses are snake_case; faults are Cinder's
//! (`fault.rs`); microversions 3.0 to 3.62 (`version.rs`).

mod actions;
pub(crate) mod fault;
mod info;
mod params;
mod snapshots;
pub(crate) mod version;
mod volumes;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::{Reply, Request};
use crate::meta;
use crate::ApiState;
use engine::{ObjectId, ObjectInfo, ObjectKind, Store};
use version::Microversion;
use warp::http::Method;

/// The context of one authenticated call.
pub(crate) struct Ctx<'a> {
    pub state: &'a ApiState,
    pub req: &'a Request,
    pub tenant: &'a Tenant,
    pub version: Microversion,
}

/// What a tenant holds: the figures its quotas limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub volumes: u64,
    pub snapshots: u64,
    /// GB of volumes and snapshots together.
    pub gigabytes: u64,
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
        self.store()
            .list()
            .into_iter()
            .filter(|o| meta::visible(o, kind, &self.tenant.id))
            .collect()
    }

    fn find(&self, key: &str, kind: ObjectKind, what: &str) -> Result<ObjectInfo> {
        let missing = || ApiError::not_found(format!("{what} {key} could not be found."));
        let id: ObjectId = key.parse().map_err(|_| missing())?;
        match self.store().get(id) {
            Ok(o) if meta::visible(&o, kind, &self.tenant.id) => Ok(o),
            Ok(_) => Err(missing()),
            Err(e) if e.kind() == engine::ErrorKind::NotFound => Err(missing()),
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant's volume `key` (404 otherwise).
    pub fn volume(&self, key: &str) -> Result<ObjectInfo> {
        self.find(key, ObjectKind::Volume, "Volume")
    }

    /// The tenant's snapshot `key` (404 otherwise).
    pub fn snapshot(&self, key: &str) -> Result<ObjectInfo> {
        self.find(key, ObjectKind::Snapshot, "Snapshot")
    }

    /// What the tenant holds now.
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for o in self.store().list() {
            if meta::get(&o, meta::TENANT) != Some(self.tenant.id.as_str()) {
                continue;
            }
            match o.kind {
                ObjectKind::Volume => u.volumes += 1,
                ObjectKind::Snapshot => u.snapshots += 1,
                ObjectKind::Image => continue,
            }
            u.gigabytes += meta::gb(o.size);
        }
        u
    }

    /// Checks that `volumes` more volumes, `snapshots` more snapshots and
    /// `gb` more GB fit the tenant's quota (413 overLimit otherwise, with
    /// Cinder's messages). Call under the API lock.
    pub fn check_quota(&self, volumes: u64, snapshots: u64, gb: u64) -> Result<()> {
        let q = self.tenant.quota();
        let u = self.usage();
        let over = |msg: String| Err(ApiError::over_limit(msg, 0));
        if let Some(max) = q
            .volumes
            .filter(|&m| volumes > 0 && u.volumes + volumes > m)
        {
            return over(format!(
                "VolumeLimitExceeded: Maximum number of volumes allowed ({max}) exceeded for quota 'volumes'."
            ));
        }
        if let Some(max) = q
            .snapshots
            .filter(|&m| snapshots > 0 && u.snapshots + snapshots > m)
        {
            return over(format!(
                "SnapshotLimitExceeded: Maximum number of snapshots allowed ({max}) exceeded for quota 'snapshots'."
            ));
        }
        if let Some(max) = q.gigabytes.filter(|&m| gb > 0 && u.gigabytes + gb > m) {
            return over(format!(
                "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed \
                 gigabytes quota. Requested {gb}G, quota is {max}G and {}G has been consumed.",
                u.gigabytes
            ));
        }
        Ok(())
    }

    /// Admin-only calls: 403 for other tenants.
    pub fn require_admin(&self, action: &str) -> Result<()> {
        if self.tenant.admin {
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
            };
            resource(&ctx, rest)
        }
        _ => Err(not_found()),
    }
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
        ["types"] => only(req, "GET").and_then(|_| info::types(ctx)),
        ["types", id] => only(req, "GET").and_then(|_| info::type_show(ctx, id)),
        ["types", id, "extra_specs"] => only(req, "GET").and_then(|_| info::extra_specs(ctx, id)),
        ["os-availability-zone"] => only(req, "GET").map(|_| info::zones()),
        ["limits"] => only(req, "GET").map(|_| info::limits(ctx)),
        ["os-quota-sets", project] => {
            only(req, "GET, PUT, DELETE")?;
            if *m == Method::GET {
                info::quota_set(ctx, project, false)
            } else {
                Err(info::quota_read_only())
            }
        }
        ["os-quota-sets", project, "defaults"] => {
            only(req, "GET").and_then(|_| info::quota_set(ctx, project, true))
        }
        _ => Err(not_found()),
    }
}
