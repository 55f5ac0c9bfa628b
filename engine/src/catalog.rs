//! The catalogue of objects (volumes, snapshots, images): their metadata and
//! map roots, the operations that change it (logged as JSON Catalog records)
//! and name resolution. The catalogue is small and always in memory; a
//! checkpoint writes it whole into the checkpoint blob.

use crate::error::{Error, ErrorKind, Result};
use crate::types::{ChunkId, ObjectId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest object name accepted.
pub const MAX_NAME_LEN: usize = 255;

/// What an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A writable volume (including clones).
    Volume,
    /// A read-only point-in-time copy of a volume.
    Snapshot,
    /// A read-only named source for clones.
    Image,
}

impl ObjectKind {
    /// True for kinds that refuse writes.
    pub fn is_read_only(self) -> bool {
        !matches!(self, ObjectKind::Volume)
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ObjectKind::Volume => "volume",
            ObjectKind::Snapshot => "snapshot",
            ObjectKind::Image => "image",
        })
    }
}

/// The public description of an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// Its id.
    pub id: ObjectId,
    /// Volume, snapshot or image.
    pub kind: ObjectKind,
    /// Optional name, unique among objects of the same kind.
    pub name: Option<String>,
    /// Logical size in bytes.
    pub size: u64,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// A status string front ends manage ("available", "in-use", ...).
    pub status: String,
    /// Free-form string metadata.
    pub metadata: BTreeMap<String, String>,
    /// The object this one was made from (a snapshot's volume, a clone's source).
    pub parent: Option<ObjectId>,
    /// Whether new data chunks of this volume are zstd-compressed.
    pub compress: bool,
}

/// A catalogue entry: the info plus its map root.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub info: ObjectInfo,
    pub root: u64,
    pub depth: u8,
}

impl Entry {
    pub fn root(&self) -> ChunkId {
        ChunkId(self.root)
    }
}

/// Changes to metadata: `None` fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectUpdate {
    /// New name (`Some(None)` clears it).
    pub name: Option<Option<String>>,
    /// New status.
    pub status: Option<String>,
    /// New metadata, replacing the old map.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A logged catalogue operation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum CatalogOp {
    /// A new empty volume.
    Create { info: ObjectInfo },
    /// A snapshot, image or clone sharing `source`'s map root, grown to
    /// `grow_to` bytes when that is larger (clones only).
    Derive {
        source: ObjectId,
        info: ObjectInfo,
        #[serde(default)]
        grow_to: Option<u64>,
    },
    /// Deletion.
    Delete { id: ObjectId },
    /// Growth to a new size.
    Resize { id: ObjectId, size: u64 },
    /// Name, status or metadata change.
    Update { id: ObjectId, update: ObjectUpdate },
    /// A volume's contents replaced by `source`'s (revert to snapshot).
    Revert { id: ObjectId, source: ObjectId },
}

/// All objects by id.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Catalog {
    pub objects: BTreeMap<ObjectId, Entry>,
}

/// Checks an object name: 1 to 255 bytes, no '/', no control characters,
/// not "." or "..", not itself a UUID (ids and names share one namespace
/// in lookups).
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("invalid name '{}': {why}", name.escape_debug()),
        ))
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 255 bytes");
    }
    if name == "." || name == ".." {
        return bad("reserved");
    }
    if name.chars().any(|c| c == '/' || c.is_control()) {
        return bad("contains '/' or a control character");
    }
    if name.parse::<ObjectId>().is_ok() {
        return bad("looks like an id");
    }
    Ok(())
}

impl Catalog {
    /// The entry for `id`.
    pub fn get(&self, id: ObjectId) -> Result<&Entry> {
        self.objects
            .get(&id)
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no object with id {id}")))
    }

    /// The entry for `id`, mutably.
    pub fn get_mut(&mut self, id: ObjectId) -> Result<&mut Entry> {
        self.objects
            .get_mut(&id)
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no object with id {id}")))
    }

    /// Errors when another object of `kind` is called `name`.
    pub fn check_unique(
        &self,
        kind: ObjectKind,
        name: &str,
        except: Option<ObjectId>,
    ) -> Result<()> {
        let clash = self.objects.values().any(|e| {
            e.info.kind == kind && e.info.name.as_deref() == Some(name) && Some(e.info.id) != except
        });
        if clash {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("a {kind} named '{name}' already exists"),
            ));
        }
        Ok(())
    }

    /// Finds an object by id or name, optionally of one kind only.
    pub fn resolve(&self, key: &str, kind: Option<ObjectKind>) -> Result<ObjectId> {
        let wanted = |e: &Entry| kind.is_none_or(|k| e.info.kind == k);
        let what = kind
            .map(|k| k.to_string())
            .unwrap_or_else(|| "object".into());
        if let Ok(id) = key.parse::<ObjectId>() {
            return match self.objects.get(&id) {
                Some(e) if wanted(e) => Ok(id),
                _ => Err(Error::new(
                    ErrorKind::NotFound,
                    format!("no {what} with id {id}"),
                )),
            };
        }
        let hits: Vec<&Entry> = self
            .objects
            .values()
            .filter(|e| wanted(e) && e.info.name.as_deref() == Some(key))
            .collect();
        match hits.as_slice() {
            [] => Err(Error::new(
                ErrorKind::NotFound,
                format!("no {what} named '{key}'"),
            )),
            [one] => Ok(one.info.id),
            many => Err(Error::new(
                ErrorKind::Ambiguous,
                format!(
                    "'{key}' names {} objects ({}); use an id",
                    many.len(),
                    many.iter()
                        .map(|e| format!("{} {}", e.info.kind, e.info.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}
