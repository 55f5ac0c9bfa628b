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

    /// Takes read-only snapshots of several volumes at ONE point in time
    /// (a group snapshot): every snapshot is validated first, then all are
    /// logged and applied under one hold of the state lock, so no write
    /// lands between them, and synced once. `extra` gives each snapshot's
    /// status and metadata. Returns the snapshots in the order asked.
    ///
    /// A volume that is not a volume (or is named twice) refuses the whole
    /// call before anything is logged; a log failure part way fail-stops
    /// the store, as any failed append does.
    pub fn snapshot_many(&self, volumes: &[(ObjectId, ObjectUpdate)]) -> Result<Vec<ObjectInfo>> {
        self.check_live()?;
        let mut infos = Vec::with_capacity(volumes.len());
        {
            let mut st = self.inner.state.lock();
            let mut ops = Vec::with_capacity(volumes.len());
            for (i, (vol, extra)) in volumes.iter().enumerate() {
                if volumes[..i].iter().any(|(v, _)| v == vol) {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        format!("volume {vol} named twice in one group snapshot"),
                    ));
                }
                let src = st.catalog.get(*vol)?.info.clone();
                if src.kind != ObjectKind::Volume {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        format!("cannot snapshot {} {vol}", src.kind),
                    ));
                }
                let mut info = Self::new_info(
                    ObjectKind::Snapshot,
                    None,
                    src.size,
                    Some(*vol),
                    src.compress,
                )?;
                apply_extra(&mut info, extra.clone());
                let op = CatalogOp::Derive {
                    source: *vol,
                    info: info.clone(),
                    grow_to: None,
                };
                st.validate_catalog(&op)?;
                ops.push(op);
                infos.push(info);
            }
            for op in &ops {
                st.admit(0, true)?;
                let body = serde_json::to_vec(op)
                    .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
                st.append(RecordKind::Catalog, &body)
                    .map_err(|e| self.fail_append(e))?;
                st.apply_catalog(op).map_err(|e| self.fail(e))?;
            }
        }
        self.flush()?;
        self.maybe_checkpoint()?;
        self.kick_free()?;
        infos.into_iter().map(|i| self.get(i.id)).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    fn counter(s: &Store, id: ObjectId) -> u64 {
        let mut b = [0u8; 8];
        s.read(id, 0, &mut b).expect("read");
        u64::from_le_bytes(b)
    }

    /// A writer bumps a counter in volume `a`, then in `b`, over and
    /// over; a group snapshot taken meanwhile sees `a` equal to `b` or one
    /// ahead, never behind (which a snapshot of `b` taken later than `a`'s
    /// could show). The snapshots survive a reopen.
    #[test]
    fn snapshot_many_is_one_point_in_time_and_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = || StoreOptions {
            create: true,
            segment_size: 1 << 20,
            ..Default::default()
        };
        let mut taken = Vec::new();
        {
            let s = Store::open(dir.path(), opts()).expect("open");
            let a = s.create_volume(None, 1 << 20, false).expect("a").id;
            let b = s.create_volume(None, 1 << 20, false).expect("b").id;
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = {
                let (s, stop) = (s.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut k = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        k += 1;
                        s.write(a, 0, &k.to_le_bytes(), false).expect("write a");
                        s.write(b, 0, &k.to_le_bytes(), false).expect("write b");
                    }
                    k
                })
            };
            for _ in 0..40 {
                let extra = ObjectUpdate {
                    status: Some("available".into()),
                    ..Default::default()
                };
                let snaps = s
                    .snapshot_many(&[(a, extra.clone()), (b, extra)])
                    .expect("snapshot_many");
                assert_eq!(snaps.len(), 2);
                assert_eq!(snaps[0].parent, Some(a));
                assert_eq!(snaps[1].parent, Some(b));
                assert_eq!(snaps[0].kind, ObjectKind::Snapshot);
                let (x, y) = (counter(&s, snaps[0].id), counter(&s, snaps[1].id));
                assert!(x == y || x == y + 1, "a={x} b={y}: not one point in time");
                taken.push((snaps[0].id, snaps[1].id, x, y));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(writer.join().expect("writer") > 0);
            // Refusals come before anything is logged.
            let before = s.list().len();
            let e = s
                .snapshot_many(&[(a, ObjectUpdate::default()), (a, ObjectUpdate::default())])
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            let e = s
                .snapshot_many(&[
                    (a, ObjectUpdate::default()),
                    (taken[0].0, ObjectUpdate::default()),
                ])
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert_eq!(s.list().len(), before);
        }
        let s = Store::open(dir.path(), opts()).expect("reopen");
        for (sa, sb, x, y) in taken {
            assert_eq!((counter(&s, sa), counter(&s, sb)), (x, y));
        }
    }
}
