//! The tenant-scoped operations every dialect shares: dialects parse a
//! request, call the domain, and render what it returns in their own
//! format. Nothing here knows of HTTP, paths or wording of a dialect.
//!
//! ```text
//!  mod.rs         Scope (tenant + admin flag), Ctx (the shared context of
//!                 one call), Locked (proof the API lock is held), lookups
//!  visibility.rs  the one visibility rule; per-tenant image names
//!  quota.rs       the one quota rule: usage, effective limits, the check
//!  settings.rs    API-wide settings (quota overrides, volume types) kept
//!                 in one hidden engine object
//!  ops.rs         create, clone, snapshot, capture, attach, detach,
//!                 delete, extend, revert, update, transfer; Txn
//!  import.rs      import sources (file:// directory, remote.rs) and the
//!                 staging volume an import fills before it becomes an image
//! ```
//!
//! **Invariants:** dialect modules never import each other, only the
//! domain; every check-then-act operation takes a [`Locked`], so it runs
//! under the API-wide lock; an operation leaves nothing half-made (one
//! durable engine step, or a [`ops::Txn`] that undoes its steps on
//! failure); images count against the `snapshots` and `gigabytes` quotas
//! in every dialect.

pub(crate) mod import;
pub(crate) mod ops;
pub(crate) mod quota;
pub(crate) mod settings;
pub(crate) mod visibility;

use crate::auth::Tenant;
use crate::error::Result;
use crate::meta;
use crate::ApiState;
use engine::{ObjectId, ObjectInfo, ObjectKind, Store};
use std::collections::BTreeMap;

/// Who is asking: the tenant, and whether it is an operator (`admin` in
/// the auth file), or the command-line operator itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The calling tenant (for the command-line operator, a stand-in with
    /// no quota whose id no auth file can hold).
    pub tenant: &'a Tenant,
    /// True for an operator tenant.
    pub admin: bool,
    /// True for the command-line operator (`crate::operator`): sees and
    /// owns every object; what it makes has no owner, as objects the
    /// command line always made.
    pub operator: bool,
}

impl<'a> Scope<'a> {
    /// The scope of `tenant`, admin as its auth entry says.
    pub fn of(tenant: &'a Tenant) -> Self {
        Scope {
            tenant,
            admin: tenant.admin,
            operator: false,
        }
    }

    /// The command-line operator's scope; `stand_in` is a tenant with no
    /// quota (see [`Scope::tenant`]).
    pub fn operator(stand_in: &'a Tenant) -> Self {
        Scope {
            tenant: stand_in,
            admin: true,
            operator: true,
        }
    }

    /// The tenant id.
    pub fn id(&self) -> &'a str {
        &self.tenant.id
    }
}

/// The shared context of one authenticated call (every dialect's service
/// layer): the API state and the caller's scope.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The API state: store, tenants, lock.
    pub state: &'a ApiState,
    /// The caller.
    pub scope: Scope<'a>,
}

/// Proof that the API-wide lock is held, for check-then-act operations.
pub(crate) struct Locked<'a> {
    _guard: parking_lot::MutexGuard<'a, ()>,
}

impl<'a> Ctx<'a> {
    /// The context of `tenant`'s call.
    pub fn new(state: &'a ApiState, tenant: &'a Tenant) -> Self {
        Ctx {
            state,
            scope: Scope::of(tenant),
        }
    }

    /// The store.
    pub fn store(&self) -> &'a Store {
        self.state.store()
    }

    /// The calling tenant.
    pub fn tenant(&self) -> &'a Tenant {
        self.scope.tenant
    }

    /// The calling tenant's id.
    pub fn tenant_id(&self) -> &'a str {
        self.scope.id()
    }

    /// Takes the API-wide lock (held until the value is dropped).
    pub fn lock(&self) -> Locked<'a> {
        Locked {
            _guard: self.state.lock(),
        }
    }

    /// The context of the command-line operator (see [`Scope::operator`]).
    pub fn operator(state: &'a ApiState, stand_in: &'a Tenant) -> Self {
        Ctx {
            state,
            scope: Scope::operator(stand_in),
        }
    }

    /// True when the caller may see `o` as an object of `kind`.
    pub fn sees(&self, o: &ObjectInfo, kind: ObjectKind) -> bool {
        if self.scope.operator {
            o.kind == kind
        } else {
            visibility::visible(o, kind, self.tenant_id())
        }
    }

    /// True when the caller may make a new volume from image `o`.
    pub fn image_usable(&self, o: &ObjectInfo) -> bool {
        if self.scope.operator {
            o.kind == ObjectKind::Image && meta::get(o, meta::IMAGE_ACCESS) != Some("4")
        } else {
            visibility::image_usable(o, self.tenant_id())
        }
    }

    /// The owner recorded on what the caller makes: its tenant id, or
    /// none for the command-line operator.
    pub fn owner(&self) -> Option<&'a str> {
        (!self.scope.operator).then(|| self.scope.id())
    }

    /// The objects of `kind` the caller sees, oldest first.
    pub fn objects(&self, kind: ObjectKind) -> Vec<ObjectInfo> {
        self.store()
            .list()
            .into_iter()
            .filter(|o| self.sees(o, kind))
            .collect()
    }

    /// The object `key` (an id) of `kind` if the caller sees it; `None`
    /// for a missing one and another tenant's private one alike, so the
    /// dialect answers both with the same 404.
    pub fn find(&self, kind: ObjectKind, key: &str) -> Result<Option<ObjectInfo>> {
        let Ok(id) = key.parse::<ObjectId>() else {
            return Ok(None);
        };
        match self.store().get(id) {
            Ok(o) if self.sees(&o, kind) => Ok(Some(o)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == engine::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// For an operator (admin scope), the object `key` of `kind` of any
    /// tenant (objects without an owner stay hidden); for anyone else, as
    /// [`Ctx::find`]. Only operator reads and admin actions use it.
    pub fn find_any(&self, kind: ObjectKind, key: &str) -> Result<Option<ObjectInfo>> {
        if !self.scope.admin {
            return self.find(kind, key);
        }
        let Ok(id) = key.parse::<ObjectId>() else {
            return Ok(None);
        };
        match self.store().get(id) {
            Ok(o) if o.kind == kind && meta::get(&o, meta::TENANT).is_some() => Ok(Some(o)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == engine::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// For an operator, the objects of `kind` of every tenant (or of
    /// tenant `project`), oldest first; for anyone else, as
    /// [`Ctx::objects`].
    pub fn objects_any(&self, kind: ObjectKind, project: Option<&str>) -> Vec<ObjectInfo> {
        if !self.scope.admin {
            return self.objects(kind);
        }
        self.store()
            .list()
            .into_iter()
            .filter(|o| {
                o.kind == kind
                    && meta::get(o, meta::TENANT).is_some_and(|t| project.is_none_or(|p| p == t))
            })
            .collect()
    }

    /// The image `key` (an id, or a name as the caller sees names: its own
    /// image first, then a public one) if the caller sees it.
    pub fn find_image(&self, key: &str) -> Result<Option<ObjectInfo>> {
        if let Some(o) = self.find(ObjectKind::Image, key)? {
            return Ok(Some(o));
        }
        Ok(visibility::image_by_name(
            &self.store().list(),
            self.tenant_id(),
            key,
        ))
    }

    /// True when the caller owns `o` (the command-line operator owns
    /// everything).
    pub fn owns(&self, o: &ObjectInfo) -> bool {
        self.scope.operator || visibility::owned(o, self.tenant_id())
    }

    /// The volumes the caller has attached to `server`.
    pub fn attached_to(&self, server: &str) -> Vec<ObjectInfo> {
        self.objects(ObjectKind::Volume)
            .into_iter()
            .filter(|o| meta::get(o, meta::ATTACHED_SERVER) == Some(server))
            .collect()
    }

    /// Writes an object's status and metadata; returns the object.
    pub fn save(
        &self,
        _locked: &Locked,
        id: ObjectId,
        status: &str,
        m: BTreeMap<String, String>,
    ) -> Result<ObjectInfo> {
        self.store().update(
            id,
            engine::ObjectUpdate {
                name: None,
                status: Some(status.to_string()),
                metadata: Some(m),
            },
        )?;
        Ok(self.store().get(id)?)
    }
}

/// A new store in a temporary directory, for unit tests.
#[cfg(test)]
pub(crate) fn scratch_store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let options = engine::StoreOptions {
        create: true,
        ..Default::default()
    };
    let store = Store::open(tmp.path().join("data"), options).expect("store");
    (tmp, store)
}

/// Longest device name accepted.
pub(crate) const MAX_DEVICE: usize = 32;

/// True for a device name every dialect accepts: `/dev/` + lowercase
/// letters + optional digits, at most [`MAX_DEVICE`] bytes.
pub(crate) fn valid_device(d: &str) -> bool {
    let Some(rest) = d.strip_prefix("/dev/") else {
        return false;
    };
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    d.len() <= MAX_DEVICE && letters > 0 && rest[letters..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::valid_device;

    #[test]
    fn devices() {
        for ok in ["/dev/vdb", "/dev/sdf", "/dev/xvdc1", "/dev/a"] {
            assert!(valid_device(ok), "{ok}");
        }
        for bad in [
            "",
            "vdb",
            "/dev/",
            "/dev/VDB",
            "/dev/vd b",
            "/dev/1",
            "/dev/vdb/x",
            "/dev/../etc",
        ] {
            assert!(!valid_device(bad), "{bad}");
        }
    }
}
