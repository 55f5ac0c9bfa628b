//! Catalogue operations on the [`Store`] handle: create, derive (snapshot,
//! clone, image), delete, resize, update, revert, and the lookups (list,
//! get, resolve).
//!
//! Invariants: each operation is validated against the current catalogue,
//! logged as one Catalog record, applied, and synced before it returns
//! (`catalog_op`), so an acknowledged catalogue change survives a crash;
//! snapshots, clones, images and reverts touch only a root reference (O(1)),
//! and what a delete or revert drops goes on the pending-free queue.

use super::Store;
use crate::catalog::{CatalogOp, ObjectInfo, ObjectKind, ObjectUpdate};
use crate::error::{Error, ErrorKind, Result};
use crate::format::RecordKind;
use crate::types::{ObjectId, MAX_VOLUME_SIZE};

impl Store {
    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// Validates, logs, applies and syncs one catalogue operation.
    fn catalog_op(&self, op: CatalogOp) -> Result<()> {
        self.check_live()?;
        {
            let mut st = self.inner.state.lock();
            st.validate_catalog(&op)?;
            // Deleting and renaming allocate nothing: allowed to the end.
            let nodes = !matches!(op, CatalogOp::Delete { .. } | CatalogOp::Update { .. });
            st.admit(0, nodes)?;
            let body = serde_json::to_vec(&op)
                .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
            st.append(RecordKind::Catalog, &body)
                .map_err(|e| self.fail_append(e))?;
            st.apply_catalog(&op).map_err(|e| self.fail(e))?;
        }
        self.flush()?;
        self.maybe_checkpoint()?;
        self.kick_free()
    }

    fn new_info(
        kind: ObjectKind,
        name: Option<&str>,
        size: u64,
        parent: Option<ObjectId>,
        compress: bool,
    ) -> Result<ObjectInfo> {
        if let Some(n) = name {
            crate::catalog::validate_name(n)?;
        }
        Ok(ObjectInfo {
            id: ObjectId::new_random(),
            kind,
            name: name.map(str::to_string),
            size,
            created: Self::now(),
            status: "available".into(),
            metadata: Default::default(),
            parent,
            compress,
        })
    }

    /// Creates an empty thin volume of `size` bytes (a multiple of 512).
    pub fn create_volume(
        &self,
        name: Option<&str>,
        size: u64,
        compress: bool,
    ) -> Result<ObjectInfo> {
        self.create_volume_with(name, size, compress, ObjectUpdate::default())
    }

    /// Like [`Store::create_volume`], with the status and metadata of
    /// `extra` set in the same durable step (its `name` is ignored).
    pub fn create_volume_with(
        &self,
        name: Option<&str>,
        size: u64,
        compress: bool,
        extra: ObjectUpdate,
    ) -> Result<ObjectInfo> {
        check_size(size)?;
        let mut info = Self::new_info(ObjectKind::Volume, name, size, None, compress)?;
        apply_extra(&mut info, extra);
        self.catalog_op(CatalogOp::Create { info: info.clone() })?;
        Ok(info)
    }

    /// Makes a `kind` object sharing `source`'s data in O(1), in one
    /// durable step with `extra`'s status and metadata; a volume may be
    /// grown to `grow_to` bytes in the same step.
    pub fn derive_with(
        &self,
        source: ObjectId,
        kind: ObjectKind,
        name: Option<&str>,
        grow_to: Option<u64>,
        extra: ObjectUpdate,
    ) -> Result<ObjectInfo> {
        if kind == ObjectKind::Snapshot {
            self.require_kind(source, &[ObjectKind::Volume], "snapshot")?;
        }
        if let Some(g) = grow_to {
            check_size(g)?;
        }
        let src = self.get(source)?;
        let mut info = Self::new_info(kind, name, src.size, Some(source), src.compress)?;
        apply_extra(&mut info, extra);
        self.catalog_op(CatalogOp::Derive {
            source,
            info: info.clone(),
            grow_to,
        })?;
        self.get(info.id)
    }

    /// Takes a read-only point-in-time snapshot of a volume, in O(1).
    pub fn snapshot(&self, volume: ObjectId, name: Option<&str>) -> Result<ObjectInfo> {
        self.derive_with(
            volume,
            ObjectKind::Snapshot,
            name,
            None,
            ObjectUpdate::default(),
        )
    }

    /// Creates a writable volume from a snapshot or image (or volume), in O(1).
    pub fn clone_volume(&self, source: ObjectId, name: Option<&str>) -> Result<ObjectInfo> {
        self.derive_with(
            source,
            ObjectKind::Volume,
            name,
            None,
            ObjectUpdate::default(),
        )
    }

    /// Captures a volume or snapshot as a read-only image, in O(1).
    pub fn create_image(&self, source: ObjectId, name: Option<&str>) -> Result<ObjectInfo> {
        self.derive_with(
            source,
            ObjectKind::Image,
            name,
            None,
            ObjectUpdate::default(),
        )
    }

    fn require_kind(&self, id: ObjectId, kinds: &[ObjectKind], what: &str) -> Result<()> {
        let info = self.get(id)?;
        if !kinds.contains(&info.kind) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("cannot {what} {} {id}", info.kind),
            ));
        }
        Ok(())
    }

    /// Deletes an object; data still referenced by others stays.
    pub fn delete(&self, id: ObjectId) -> Result<()> {
        self.catalog_op(CatalogOp::Delete { id })
    }

    /// Grows a volume to `size` bytes.
    pub fn resize(&self, id: ObjectId, size: u64) -> Result<()> {
        check_size(size)?;
        self.catalog_op(CatalogOp::Resize { id, size })
    }

    /// Changes name, status or metadata.
    pub fn update(&self, id: ObjectId, update: ObjectUpdate) -> Result<()> {
        if let Some(Some(n)) = &update.name {
            crate::catalog::validate_name(n)?;
        }
        self.catalog_op(CatalogOp::Update { id, update })
    }

    /// Replaces a volume's contents (and size) with a snapshot's, in O(1).
    pub fn revert(&self, volume: ObjectId, snapshot: ObjectId) -> Result<()> {
        self.catalog_op(CatalogOp::Revert {
            id: volume,
            source: snapshot,
        })
    }

    /// Every object, ordered by creation time then id.
    pub fn list(&self) -> Vec<ObjectInfo> {
        let st = self.inner.state.lock();
        let mut v: Vec<ObjectInfo> = st
            .catalog
            .objects
            .values()
            .map(|e| e.info.clone())
            .collect();
        v.sort_by_key(|a| (a.created, a.id));
        v
    }

    /// One object's description.
    pub fn get(&self, id: ObjectId) -> Result<ObjectInfo> {
        Ok(self.inner.state.lock().catalog.get(id)?.info.clone())
    }

    /// Finds an object by id or name (optionally of one kind).
    pub fn resolve(&self, key: &str, kind: Option<ObjectKind>) -> Result<ObjectId> {
        self.inner.state.lock().catalog.resolve(key, kind)
    }
}

/// Puts `extra`'s status and metadata into a new object's info.
fn apply_extra(info: &mut ObjectInfo, extra: ObjectUpdate) {
    if let Some(s) = extra.status {
        info.status = s;
    }
    if let Some(m) = extra.metadata {
        info.metadata = m;
    }
}

fn check_size(size: u64) -> Result<()> {
    if size == 0 || !size.is_multiple_of(512) || size > MAX_VOLUME_SIZE {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("invalid volume size {size}: must be a non-zero multiple of 512 up to 256 TiB"),
        ));
    }
    Ok(())
}
