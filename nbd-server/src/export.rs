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
}

impl Exports {
    /// Exports of `store`; `default_export` names the object served for the
    /// empty name (none when `None`).
    pub fn new(store: Store, default_export: Option<String>) -> Self {
        Exports {
            store,
            default_export,
        }
    }

    /// The object named `name` (an id or a unique name), or `None`.
    pub fn lookup(&self, name: &str) -> Option<Export> {
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
        Some(Export {
            id,
            name: name.to_string(),
            size: info.size,
            read_only: info.kind.is_read_only(),
            description: describe(&info),
        })
    }

    /// Every export as (name, description): the object's name when it is
    /// unique, else its id; plus "" when a default export is set.
    pub fn list(&self) -> Vec<(String, String)> {
        let all = self.store.list();
        let mut out = Vec::with_capacity(all.len() + 1);
        if let Some(d) = &self.default_export {
            if let Some(e) = self.lookup(d) {
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
