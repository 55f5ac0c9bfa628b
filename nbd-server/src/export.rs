//! Exports: how NBD export names map to store objects. Every volume
//! (read-write), snapshot and image (read-only) is an export, reachable by
//! its id or by its name when that name is unique across all kinds. The
//! catalogue is read at each lookup, so objects created or deleted while the
//! server runs appear or vanish for new connections (LIST, INFO, GO).
//!
//! A connection already open on an object that is then deleted stays open;
//! every request on it fails with EIO ("export deleted": the engine answers
//! NotFound for the id), except FLUSH, which is store-wide. Size and
//! read-only flag are fixed at negotiation.
//!
//! With an [`AccessPolicy`] (see `access.rs`) names resolve only through an
//! attachment secret or, for a tenant's client certificate, to that
//! tenant's own objects.

use crate::access::{same_secret, AccessPolicy, Client, Grant};
use engine::{ByteSize, ErrorKind, ObjectId, ObjectInfo, Store};

/// One resolved export.
#[derive(Debug, Clone)]
pub struct Export {
    /// The object served.
    pub id: ObjectId,
    /// The name the client asked for (canonical for INFO_NAME).
    pub name: String,
    /// Size in bytes, fixed for the connection.
    pub size: u64,
    /// Snapshots and images are read-only.
    pub read_only: bool,
    /// Human description.
    pub description: String,
    /// How the client was granted it.
    pub grant: Grant,
}

/// The human description of an object (LIST and INFO_DESCRIPTION).
pub fn describe(o: &ObjectInfo) -> String {
    format!(
        "{} {}, {}{}",
        o.kind,
        o.id,
        ByteSize(o.size),
        if o.kind.is_read_only() {
            ", read-only"
        } else {
            ""
        }
    )
}

/// Resolves export names against a store.
#[derive(Clone)]
pub struct Exports {
    store: Store,
    default_export: Option<String>,
    policy: Option<AccessPolicy>,
}

impl Exports {
    /// Exports of `store`; `default_export` names the object served for the
    /// empty name (none when `None`); `policy` restricts who reaches what.
    pub fn new(store: Store, default_export: Option<String>, policy: Option<AccessPolicy>) -> Self {
        Exports {
            store,
            default_export,
            policy,
        }
    }

    /// The object `client` reaches by `name`, or `None` (unknown, or not
    /// this client's: the two are not told apart).
    pub fn lookup(&self, name: &str, client: &Client) -> Option<Export> {
        let Some(policy) = &self.policy else {
            return self.lookup_open(name);
        };
        if name.is_empty() {
            return if policy.enforce {
                None
            } else {
                self.lookup_open(name)
            };
        }
        let all = self.store.list();
        if let Some(o) = all.iter().find(|o| {
            o.metadata
                .get(&policy.secret_key)
                .is_some_and(|s| same_secret(s, name))
        }) {
            return Some(export(o, name, Grant::Attachment));
        }
        if !policy.enforce {
            return self.lookup_open(name);
        }
        let Client::Tenant(tenant) = client else {
            return None;
        };
        let mine = |o: &&ObjectInfo| o.metadata.get(&policy.tenant_key) == Some(tenant);
        let id = self.store.resolve(name, None).ok()?;
        let o = all.iter().find(|o| o.id == id).filter(mine)?;
        Some(export(o, name, Grant::Tenant))
    }

    /// Without a policy: the object named `name` (an id or a unique name).
    fn lookup_open(&self, name: &str) -> Option<Export> {
        let key = if name.is_empty() {
            self.default_export.as_deref()?
        } else {
            name
        };
        let id = match self.store.resolve(key, None) {
            Ok(id) => id,
            Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::Ambiguous => {
                return None
            }
            Err(e) => {
                tracing::warn!(error = %e, "export lookup failed");
                return None;
            }
        };
        let info = self.store.get(id).ok()?;
        Some(export(&info, name, Grant::Open))
    }

    /// The exports `client` may see, as (name, description): the object's
    /// name when it is unique, else its id; plus "" when a default export
    /// is set. With a policy: a tenant's own objects by id; nothing for
    /// anonymous clients (attachment secrets are never listed).
    pub fn list(&self, client: &Client) -> Vec<(String, String)> {
        let all = self.store.list();
        if let Some(policy) = self.policy.as_ref().filter(|p| p.enforce) {
            let Client::Tenant(tenant) = client else {
                return Vec::new();
            };
            return all
                .iter()
                .filter(|o| o.metadata.get(&policy.tenant_key) == Some(tenant))
                .map(|o| (o.id.to_string(), describe(o)))
                .collect();
        }
        let mut out = Vec::with_capacity(all.len() + 1);
        if let Some(d) = &self.default_export {
            if let Some(e) = self.lookup_open(d) {
                out.push((String::new(), format!("default: {}", e.description)));
            }
        }
        for o in &all {
            let unique = o
                .name
                .as_deref()
                .filter(|n| all.iter().filter(|x| x.name.as_deref() == Some(n)).count() == 1);
            let name = unique
                .map(str::to_string)
                .unwrap_or_else(|| o.id.to_string());
            out.push((name, describe(o)));
        }
        out
    }
}

fn export(o: &ObjectInfo, name: &str, grant: Grant) -> Export {
    Export {
        id: o.id,
        name: name.to_string(),
        size: o.size,
        read_only: o.kind.is_read_only(),
        description: describe(o),
        grant,
    }
}
