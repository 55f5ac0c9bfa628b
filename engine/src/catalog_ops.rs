//! Applying catalogue operations to the in-memory state: validation
//! (which changes nothing, so a refused operation leaves nothing behind)
//! and application, shared by the live store and log replay.

use crate::catalog::{CatalogOp, Entry, ObjectKind};
use crate::error::{Error, ErrorKind, Result};
use crate::map::depth_for;
use crate::state::State;
use crate::types::ChunkId;

impl State {
    /// Checks that a catalogue operation can be applied, changing nothing.
    pub(crate) fn validate_catalog(&self, op: &CatalogOp) -> Result<()> {
        match op {
            CatalogOp::Create { info } => {
                if let Some(n) = &info.name {
                    self.catalog.check_unique(info.kind, n, None)?;
                }
            }
            CatalogOp::Derive {
                source,
                info,
                grow_to,
            } => {
                let src = self.catalog.get(*source)?;
                if grow_to.is_some_and(|g| g < src.info.size) {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "{} {source} is {} bytes; a copy cannot be smaller",
                            src.info.kind, src.info.size
                        ),
                    ));
                }
                if grow_to.is_some() && info.kind != ObjectKind::Volume {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        "only a clone can be larger than its source",
                    ));
                }
                if let Some(n) = &info.name {
                    self.catalog.check_unique(info.kind, n, None)?;
                }
            }
            CatalogOp::Delete { id } => {
                self.catalog.get(*id)?;
            }
            CatalogOp::Resize { id, size } => {
                let e = self.catalog.get(*id)?;
                if e.info.kind != ObjectKind::Volume {
                    return Err(Error::new(
                        ErrorKind::ReadOnly,
                        format!("cannot resize {} {id}", e.info.kind),
                    ));
                }
                if *size < e.info.size {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "volume {id} is {} bytes; shrinking to {size} is not supported",
                            e.info.size
                        ),
                    ));
                }
            }
            CatalogOp::Update { id, update } => {
                let e = self.catalog.get(*id)?;
                if let Some(Some(n)) = &update.name {
                    self.catalog.check_unique(e.info.kind, n, Some(*id))?;
                }
            }
            CatalogOp::Revert { id, source } => {
                let e = self.catalog.get(*id)?;
                let s = self.catalog.get(*source)?;
                if e.info.kind != ObjectKind::Volume || s.info.kind != ObjectKind::Snapshot {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        "revert needs a volume and a snapshot",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Applies a validated (or replayed) catalogue operation.
    pub(crate) fn apply_catalog(&mut self, op: &CatalogOp) -> Result<()> {
        self.validate_catalog(op)?;
        match op {
            CatalogOp::Create { info } => {
                let depth = depth_for(info.size);
                self.catalog.objects.insert(
                    info.id,
                    Entry {
                        info: info.clone(),
                        root: 0,
                        depth,
                    },
                );
            }
            CatalogOp::Derive {
                source,
                info,
                grow_to,
            } => {
                let src = self.catalog.get(*source)?.clone();
                self.incref(src.root())?;
                let mut info = info.clone();
                info.size = src.info.size;
                let mut e = Entry {
                    info,
                    root: src.root,
                    depth: src.depth,
                };
                if let Some(size) = grow_to {
                    self.grow(&mut e, *size)?;
                }
                self.catalog.objects.insert(e.info.id, e);
            }
            CatalogOp::Delete { id } => {
                let e = self.catalog.objects.remove(id).expect("validated");
                self.release(e.root())?;
            }
            CatalogOp::Resize { id, size } => {
                let mut e = self.catalog.get(*id)?.clone();
                self.grow(&mut e, *size)?;
                self.catalog.objects.insert(*id, e);
            }
            CatalogOp::Update { id, update } => {
                let e = self.catalog.get_mut(*id)?;
                if let Some(n) = &update.name {
                    e.info.name = n.clone();
                }
                if let Some(s) = &update.status {
                    e.info.status = s.clone();
                }
                if let Some(m) = &update.metadata {
                    e.info.metadata = m.clone();
                }
            }
            CatalogOp::Revert { id, source } => {
                let src = self.catalog.get(*source)?.clone();
                self.incref(src.root())?;
                let e = self.catalog.get_mut(*id)?;
                let old = e.root();
                e.root = src.root;
                e.depth = src.depth;
                e.info.size = src.info.size;
                self.release(old)?;
            }
        }
        Ok(())
    }
}

impl State {
    /// Grows an entry to `size` bytes, adding map levels above the old
    /// root as the size needs (the old root moves under slot 0).
    fn grow(&mut self, e: &mut Entry, size: u64) -> Result<()> {
        let want = depth_for(size);
        while e.depth < want {
            if e.root() != ChunkId::HOLE {
                let mut n = crate::format::Node::filled(e.depth, ChunkId::HOLE);
                n.slots[0] = e.root;
                e.root = self.node_alloc(n)?.0;
            }
            e.depth += 1;
        }
        e.info.size = size;
        Ok(())
    }
}
