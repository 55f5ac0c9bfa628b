//! The command line's way into the domain: `blockd volume|snapshot|image
//! ...`, `clone` and `import` make and remove objects through the same
//! operations, rules and API-wide lock as the REST dialects, offline (on a
//! store the command opened) and online (on the running server's
//! [`ApiState`], through the admin socket, so a command and an HTTP
//! request never interleave their check-then-act steps).
//!
//! Two scopes:
//! - the **operator** (the default): sees every tenant's objects and may
//!   delete or resize any of them; what it makes has no owner, exactly as
//!   the command line always made it (volumes and snapshots invisible to
//!   API tenants, images public), and no quota applies;
//! - **acting for a tenant** ([`Operator::for_tenant`], `--tenant ID`):
//!   sees and changes only what that tenant sees and owns; what it makes
//!   belongs to the tenant (`api.tenant`, the name as `api.display_name`
//!   or the image's per-tenant name) and counts against its quota.
//!
//! Either way the domain's state rules hold: an attached volume is not
//! deleted ([`ErrorKind::Conflict`]), an image marked deleted makes no new
//! volume. Objects keep their engine names (unique per kind), so the
//! command line finds them by name as before.

use crate::auth::{Auth, Tenant};
use crate::domain::ops::{self, EngineSide, Source};
use crate::domain::{quota, Ctx};
use crate::error::{ApiError, ErrorKind, Result};
use crate::meta;
use crate::ApiState;
use engine::{ObjectId, ObjectInfo, ObjectKind, Store};
use std::collections::BTreeMap;

/// The id the operator's stand-in tenant carries in log lines; no auth
/// file can hold it (tenant ids are `[A-Za-z0-9._-]`).
const OPERATOR_ID: &str = "(operator)";

/// A handle running the domain's operations for the command line.
#[derive(Clone)]
pub struct Operator {
    state: ApiState,
    /// The operator's stand-in (no quota), or the tenant acted for.
    who: Tenant,
    /// True when acting for `who`.
    for_tenant: bool,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("tenant", &self.tenant())
            .finish()
    }
}

impl Operator {
    /// The operator scope over `state` (the running server's, so that its
    /// API-wide lock is shared).
    pub fn new(state: ApiState) -> Self {
        Operator {
            state,
            who: Tenant {
                id: OPERATOR_ID.to_string(),
                token: String::new(),
                user: String::new(),
                password: String::new(),
                admin: true,
                quota: None,
            },
            for_tenant: false,
        }
    }

    /// The operator scope over `store` opened by the command itself, with
    /// the tenants of `auth` (for [`Operator::for_tenant`]).
    pub fn offline(store: Store, auth: Auth) -> Self {
        Self::new(ApiState::new(store, auth))
    }

    /// The same handle acting for tenant `id` of the auth file (a
    /// [`ErrorKind::NotFound`] error when there is none).
    pub fn for_tenant(self, id: &str) -> Result<Self> {
        let Some(t) = self.state.auth().by_id(id).cloned() else {
            return Err(ApiError::not_found(format!(
                "no tenant '{}' in the auth file",
                id.escape_debug()
            )));
        };
        Ok(Operator {
            who: t,
            for_tenant: true,
            ..self
        })
    }

    /// The tenant acted for, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.for_tenant.then_some(self.who.id.as_str())
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.state.store()
    }

    fn ctx(&self) -> Ctx<'_> {
        if self.for_tenant {
            Ctx::new(&self.state, &self.who)
        } else {
            Ctx::operator(&self.state, &self.who)
        }
    }

    /// The objects of `kind` this scope sees, oldest first.
    pub fn list(&self, kind: ObjectKind) -> Vec<ObjectInfo> {
        self.ctx().objects(kind)
    }

    /// The object `key` (an engine name or an id) of one of `kinds` that
    /// this scope sees. Another tenant's object is "not found", as in the
    /// API.
    pub fn resolve(&self, key: &str, kinds: &[ObjectKind]) -> Result<ObjectInfo> {
        let ctx = self.ctx();
        let mut found = Vec::new();
        let mut last_err = None;
        for &k in kinds {
            let hidden = || {
                let what = if key.parse::<ObjectId>().is_ok() {
                    format!("no {k} with id {key}")
                } else {
                    format!("no {k} named '{key}'")
                };
                ApiError::not_found(what)
            };
            match self.store().resolve(key, Some(k)) {
                Ok(id) => match self.store().get(id) {
                    Ok(o) if ctx.sees(&o, k) => found.push(o),
                    Ok(_) => last_err = Some(hidden()),
                    Err(e) if e.kind() == engine::ErrorKind::NotFound => last_err = Some(e.into()),
                    Err(e) => return Err(e.into()),
                },
                Err(e) if e.kind() == engine::ErrorKind::NotFound => last_err = Some(e.into()),
                Err(e) => return Err(e.into()),
            }
        }
        if found.len() > 1 {
            return Err(ApiError::bad_request(format!(
                "'{key}' is ambiguous: it names more than one object; use an id"
            )));
        }
        if let Some(o) = found.pop() {
            return Ok(o);
        }
        match last_err {
            Some(_) if kinds.len() > 1 => {
                let what: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
                Err(ApiError::not_found(format!(
                    "no {} named or with id '{key}'",
                    what.join(" or ")
                )))
            }
            Some(e) => Err(e),
            None => Err(ApiError::not_found(format!("'{key}' not found"))),
        }
    }

    /// Metadata of a new object called `name`: none for the operator's
    /// (its engine name is its name); the display name (volumes,
    /// snapshots) for a tenant's.
    fn new_metadata(&self, ctx: &Ctx, name: &str, kind: ObjectKind) -> BTreeMap<String, String> {
        if !self.for_tenant || kind == ObjectKind::Image {
            return ops::new_metadata(ctx, &BTreeMap::new(), &[]);
        }
        ops::new_metadata(ctx, &BTreeMap::new(), &[(meta::DISPLAY_NAME, Some(name))])
    }

    /// Creates an empty volume called `name` of `size` bytes.
    pub fn create_volume(&self, name: &str, size: u64, compress: bool) -> Result<ObjectInfo> {
        let ctx = self.ctx();
        let locked = ctx.lock();
        let m = self.new_metadata(&ctx, name, ObjectKind::Volume);
        let engine = EngineSide {
            name: Some(name),
            compress,
        };
        ops::create_volume_as(&ctx, &locked, Source::Empty, size, m, engine)
    }

    /// Creates volume `name` from snapshot or image `src`.
    pub fn clone_volume(&self, src: &ObjectInfo, name: &str) -> Result<ObjectInfo> {
        let ctx = self.ctx();
        let locked = ctx.lock();
        let src = self.fresh(&ctx, src)?;
        let source = match src.kind {
            ObjectKind::Snapshot => Source::Snapshot(&src),
            ObjectKind::Image => Source::Image(&src),
            ObjectKind::Volume => {
                return Err(ApiError::bad_request(format!(
                    "{} is a volume: clone a snapshot or an image",
                    src.id
                )))
            }
        };
        let m = self.new_metadata(&ctx, name, ObjectKind::Volume);
        let engine = EngineSide {
            name: Some(name),
            compress: false,
        };
        ops::create_volume_as(&ctx, &locked, source, 0, m, engine)
    }

    /// Snapshots volume `vol` as `name`.
    pub fn snapshot(&self, vol: &ObjectInfo, name: &str) -> Result<ObjectInfo> {
        let ctx = self.ctx();
        let locked = ctx.lock();
        let vol = self.fresh(&ctx, vol)?;
        let m = self.new_metadata(&ctx, name, ObjectKind::Snapshot);
        ops::snapshot_as(&ctx, &locked, &vol, m, Some(name))
    }

    /// Captures volume or snapshot `src` as image `name`.
    pub fn capture_image(&self, src: &ObjectInfo, name: &str) -> Result<ObjectInfo> {
        let ctx = self.ctx();
        let locked = ctx.lock();
        let src = self.fresh(&ctx, src)?;
        let m = self.new_metadata(&ctx, name, ObjectKind::Image);
        // A tenant's image names are per tenant (unique among its own);
        // the operator's image is named by its engine name.
        let image_name = self.for_tenant.then_some(name);
        ops::capture_image_as(&ctx, &locked, &src, image_name, m, Some(name))
    }

    /// Deletes `o`. An attached volume is refused ([`ErrorKind::Conflict`],
    /// naming the server), as every dialect refuses it; so is a volume
    /// in a passing state of an API operation (not available, not error).
    pub fn delete(&self, o: &ObjectInfo) -> Result<()> {
        let ctx = self.ctx();
        let locked = ctx.lock();
        let o = self.fresh(&ctx, o)?;
        if o.kind == ObjectKind::Volume && ops::attached(&o) {
            let to = match (
                meta::get(&o, meta::ATTACHED_SERVER),
                meta::get(&o, meta::ATTACHED_DEVICE),
            ) {
                (Some(s), Some(d)) => format!(" to server {} as {d}", s.escape_debug()),
                (Some(s), None) => format!(" to server {}", s.escape_debug()),
                _ => String::new(),
            };
            return Err(ApiError::conflict(format!(
                "volume {} is attached{to} (status {}): detach it through the API first",
                o.id, o.status
            )));
        }
        // A volume in the middle of an API workflow (a Cinder attachment
        // reserved, a backup running...) is not deleted under it either.
        if o.kind == ObjectKind::Volume && !settled(&o.status) {
            return Err(ApiError::conflict(format!(
                "volume {} is {} (an API operation is using it): try again when it is available",
                o.id, o.status
            )));
        }
        ops::delete(&ctx, &locked, &o)
    }

    /// Grows volume `vol` to `size` bytes; a tenant's growth is checked
    /// against its gigabytes quota.
    pub fn resize(&self, vol: &ObjectInfo, size: u64) -> Result<ObjectInfo> {
        let ctx = self.ctx();
        let _locked = ctx.lock();
        let vol = self.fresh(&ctx, vol)?;
        let store = self.store();
        let grow = meta::gb(size).saturating_sub(meta::gb(vol.size));
        quota::check(&store.list(), ctx.tenant(), quota::Charge::Grow(grow))?;
        store.resize(vol.id, size)?;
        tracing::info!(tenant = ctx.tenant_id(), volume = %vol.id, size, "api: volume resized");
        Ok(store.get(vol.id)?)
    }

    /// `o` as it is now, under the lock (a command resolves its arguments
    /// before it takes the lock); gone or no longer visible is not found.
    fn fresh(&self, ctx: &Ctx, o: &ObjectInfo) -> Result<ObjectInfo> {
        match ctx.find(o.kind, &o.id.to_string())? {
            Some(n) => Ok(n),
            None => Err(ApiError::new(
                ErrorKind::NotFound,
                format!("no {} with id {}", o.kind, o.id),
            )),
        }
    }
}

/// True for a volume status no API operation is in the middle of:
/// available, or one of the error states.
fn settled(status: &str) -> bool {
    status == meta::AVAILABLE || status == "error" || status.starts_with("error_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Operator) {
        let (tmp, store) = crate::domain::scratch_store();
        let auth = Auth::parse(
            r#"
[[tenants]]
id = "t1"
token = "t1-token"
user = "t1"
password = "p"
[tenants.quota]
volumes = 1
"#,
        )
        .expect("auth");
        (tmp, Operator::offline(store, auth))
    }

    #[test]
    fn the_operator_sees_all_and_owns_nothing_it_makes() {
        let (_tmp, op) = setup();
        let mine = op.create_volume("ops", 1 << 20, false).expect("create");
        assert_eq!(mine.name.as_deref(), Some("ops"));
        assert!(meta::get(&mine, meta::TENANT).is_none());
        let t1 = op.clone().for_tenant("t1").expect("tenant");
        let theirs = t1.create_volume("v", 1 << 20, false).expect("create");
        assert_eq!(meta::get(&theirs, meta::TENANT), Some("t1"));
        assert_eq!(meta::get(&theirs, meta::DISPLAY_NAME), Some("v"));
        assert_eq!(op.list(ObjectKind::Volume).len(), 2);
        assert_eq!(t1.list(ObjectKind::Volume).len(), 1);
        let e = t1.resolve("ops", &[ObjectKind::Volume]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = t1.create_volume("w", 1 << 20, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OverLimit, "{e}");
        assert_eq!(
            op.clone().for_tenant("nobody").unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn operations_take_the_api_lock_of_the_state_they_share() {
        let (_tmp, store) = crate::domain::scratch_store();
        let state = ApiState::new(store, Auth::new(Vec::new()).expect("auth"));
        let op = Operator::new(state.clone());
        // An HTTP request's check-then-act holds the lock...
        let guard = state.lock();
        let t = std::thread::spawn(move || op.create_volume("v", 1 << 20, false));
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!t.is_finished(), "the command waits for the request");
        assert!(state.store().list().is_empty());
        // ...and the command runs when it is done.
        drop(guard);
        t.join().expect("thread").expect("create");
        assert_eq!(state.store().list().len(), 1);
    }

    #[test]
    fn busy_volumes_are_not_deleted() {
        let (_tmp, op) = setup();
        let v = op.create_volume("v", 1 << 20, false).expect("create");
        for (status, server) in [(meta::IN_USE, Some("vm-1")), ("reserved", None)] {
            let mut m = v.metadata.clone();
            meta::set(&mut m, meta::ATTACHED_SERVER, server);
            op.store()
                .update(
                    v.id,
                    engine::ObjectUpdate {
                        name: None,
                        status: Some(status.to_string()),
                        metadata: Some(m),
                    },
                )
                .expect("update");
            let e = op.delete(&v).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            assert!(e.message().contains(status), "{e}");
        }
        op.store()
            .update(
                v.id,
                engine::ObjectUpdate {
                    name: None,
                    status: Some("error".into()),
                    metadata: Some(BTreeMap::new()),
                },
            )
            .expect("update");
        op.delete(&v).expect("an errored volume goes");
        assert!(op.list(ObjectKind::Volume).is_empty());
    }
}
