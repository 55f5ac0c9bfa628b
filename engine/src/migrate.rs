//! Opening a format-version-3 store: its metadata is rewritten in format
//! version 4, its data stays where it is. Version 3 had chunk-table leaves
//! of 127 entries of 32 bytes under 5 interior levels, data ids even and
//! map node ids odd; version 4 has leaves of 255 entries of 16 bytes under
//! 7 levels, data ids from 2 and node ids from 2⁵⁷ (docs/design.md,
//! "Format versions").
//!
//! [`State::migrate_v3`] reads every leaf of the old table in index order
//! (each page verified against the crc its parent holds, as always): data
//! entries keep their ids, which are valid version 4 data ids, and go
//! into the new table as they are; map nodes get new ids, in the order of
//! their old ones, and each node is read, its children renamed (interior
//! nodes) and appended as a new Node record under its new id, with the
//! same refcount. Catalogue roots and the pending-free queue are renamed
//! the same way, the counters continue past every old id, and the
//! segments' live bytes are counted afresh (the old table and node pages
//! become garbage for the cleaner). The open's checkpoint then writes the
//! new table and a version 4 superblock. Until that superblock is written
//! the version 3 slot still names the old table and nodes, all still on
//! disk (nothing is retired before two checkpoints name the new state),
//! and what the migration appended lies past its replay point, holding no
//! operations: a crash during migration leaves a store that migrates again
//! on the next open.
//!
//! Only a store with no operations to replay is migrated (one closed
//! cleanly): replaying version 3 records needs version 3's node-id rule
//! (Free records name node ids as they were allocated). Any other is
//! refused, untouched, with a message saying to open and close it once
//! with a format-3 build.

use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    check_stored, decode_v3_leaf, CtChild, CtEntry, CtPage, RecordKind, CT_FANOUT, FORMAT_VERSION,
    REFCOUNT_MAX, V3_INTERIOR_LEVELS, V3_LEAF_ENTRIES,
};
use crate::state::State;
use crate::types::{ChunkId, LogAddr};
use rustc_hash::FxHashMap;

/// The version 3 chunk table being read: its root and the last interior
/// page read at each level (leaves are read in order).
struct V3Table {
    root: CtChild,
    last: Vec<Option<(u64, CtPage)>>,
}

impl State {
    /// Refuses a version 3 store whose log holds operations after its
    /// replay point (`start`, sequence `seq`): only page, checkpoint and
    /// seal records may follow, as after a clean close (or an interrupted
    /// migration).
    pub(crate) fn v3_require_clean(&mut self, start: LogAddr, seq: u64) -> Result<()> {
        let (mut addr, mut seq) = (start, seq);
        let mut ops = 0u64;
        while let Some(rec) = self.log.read_record(addr, Some(seq))? {
            match rec.header.kind {
                RecordKind::Node
                | RecordKind::CtPage
                | RecordKind::Checkpoint
                | RecordKind::Seal => {}
                _ => ops += 1,
            }
            addr = rec.next;
            seq += 1;
        }
        if ops > 0 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the store has on-disk format version 3 and was not closed cleanly \
                     ({ops} operations in its log since its last checkpoint): this build \
                     migrates only a cleanly closed version 3 store to version 4; open it \
                     once with a blockd of format version 3 (which recovers it) and close it \
                     (stop the server, or run `blockd check`), then open it with this build"
                ),
            ));
        }
        Ok(())
    }

    /// The pointer to version 3 page (level, index), from its parent.
    fn v3_child(&mut self, t: &mut V3Table, level: u8, index: u64) -> Result<CtChild> {
        if level == V3_INTERIOR_LEVELS {
            return Ok(if index == 0 { t.root } else { CtChild::NONE });
        }
        let (pl, pi) = (level + 1, index / CT_FANOUT);
        let cached = matches!(&t.last[usize::from(pl)], Some((i, _)) if *i == pi);
        if !cached {
            let c = self.v3_child(t, pl, pi)?;
            let page = if c.loc.is_none() {
                CtPage::empty(pl)
            } else {
                CtPage::decode(&self.v3_read(c, pl, pi)?, pl, pi)?
            };
            t.last[usize::from(pl)] = Some((pi, page));
        }
        match &t.last[usize::from(pl)] {
            Some((_, CtPage::Inner(cs))) => Ok(cs[(index % CT_FANOUT) as usize]),
            _ => Err(Error::corrupt("version 3 chunk table: leaf above level 0")),
        }
    }

    /// The body of version 3 page (level, index) at `c`, verified against
    /// the crc its parent holds.
    fn v3_read(&mut self, c: CtChild, level: u8, index: u64) -> Result<Vec<u8>> {
        let what = || format!("version 3 chunk-table page (level {level}, index {index})");
        let rec = self.log.read_required(c.loc, &what)?;
        if rec.header.kind != RecordKind::CtPage || !c.matches(&rec.body) {
            return Err(Error::corrupt(format!(
                "{} fails the checksum its parent holds",
                what()
            )));
        }
        Ok(rec.body)
    }

    /// Rewrites the metadata of a version 3 store, whose chunk table's root
    /// is `root`, in version 4 (see the module doc). The state holds the
    /// version 3 blob's catalogue, counters and queue, and an empty table.
    pub(crate) fn migrate_v3(&mut self, root: CtChild) -> Result<()> {
        let mut t = V3Table {
            root,
            last: vec![None; usize::from(V3_INTERIOR_LEVELS) + 1],
        };
        // Version 3 ids: data 2 + 2n, nodes 3 + 2n.
        let (n_data, n_node) = (self.next_data, self.next_node);
        let max_id = (2 + 2 * n_data).max(3 + 2 * n_node);
        self.usage.clear();
        self.live_data_chunks = 0;
        self.live_data_bytes = 0;
        let mut nodes: Vec<(u64, CtEntry)> = Vec::new();
        for leaf in 0..=max_id / V3_LEAF_ENTRIES {
            let c = self.v3_child(&mut t, 0, leaf)?;
            if c.loc.is_none() {
                continue;
            }
            let es = decode_v3_leaf(&self.v3_read(c, 0, leaf)?, leaf)?;
            for (i, e) in es.into_iter().enumerate() {
                let id = leaf * V3_LEAF_ENTRIES + i as u64;
                if !e.is_live() {
                    continue;
                }
                if id < 2 || (e.loc.is_none() && id.is_multiple_of(2)) {
                    return Err(Error::corrupt(format!(
                        "version 3 chunk {id} has a malformed entry {e:?}"
                    )));
                }
                if e.refcount > REFCOUNT_MAX {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "chunk {id} has {} references; format version {FORMAT_VERSION} \
                             holds at most {REFCOUNT_MAX} per chunk",
                            e.refcount
                        ),
                    ));
                }
                if id % 2 == 1 {
                    nodes.push((id, e));
                    continue;
                }
                check_stored(e.stored_len, e.flags)
                    .map_err(|x| x.with_context(format!("version 3 data chunk {id}")))?;
                self.ct_set(ChunkId(id), e)?;
                self.account(e.loc, u64::from(e.stored_len), true);
                self.live_data_chunks += 1;
                self.live_data_bytes += u64::from(e.stored_len);
            }
        }
        // New node ids in the order of the old ones.
        let renamed: FxHashMap<u64, u64> = nodes
            .iter()
            .enumerate()
            .map(|(k, (old, _))| (*old, ChunkId::node(k as u64).0))
            .collect();
        let rename = |x: u64| -> Result<u64> {
            if x < 2 {
                return Ok(x);
            }
            renamed.get(&x).copied().ok_or_else(|| {
                Error::corrupt(format!("version 3 node reference {x} names no live node"))
            })
        };
        for (k, (old, e)) in nodes.iter().enumerate() {
            let new = ChunkId::node(k as u64);
            if e.loc.is_none() {
                return Err(Error::corrupt(format!(
                    "version 3 map node {old} was never written"
                )));
            }
            let seg = self.log.segment(e.loc.segment());
            let mut n = crate::fetch::read_node(
                seg.as_deref(),
                self.log.seg_size,
                ChunkId(*old),
                e.loc,
                e.crc,
            )?;
            if n.level > 0 {
                for s in n.slots.iter_mut() {
                    *s = rename(*s)?;
                }
            } else if let Some(s) = n.slots.iter().find(|&&s| s >= 2 && s % 2 == 1) {
                return Err(Error::corrupt(format!(
                    "version 3 map leaf {old} names node {s} as data"
                )));
            }
            let body = n.encode(new);
            let loc = self.append(RecordKind::Node, &body)?;
            let entry = CtEntry {
                loc,
                refcount: e.refcount,
                crc: crc32fast::hash(&body),
                stored_len: body.len() as u32,
                flags: 0,
                nblocks: 0,
                gap: 0,
            };
            self.account(loc, entry.live_bytes(new), true);
            self.ct_set(new, entry)?;
        }
        for o in self.catalog.objects.values_mut() {
            o.root = rename(o.root)?;
        }
        for q in self.free_queue.iter_mut() {
            if q.0 % 2 == 1 {
                *q = ChunkId(rename(q.0)?);
            }
        }
        // Past every old id: data ids up to 2 n_data were taken.
        self.next_data = 2 * n_data;
        self.next_node = nodes.len() as u64;
        Ok(())
    }
}

impl State {
    /// Refuses a version 4 store whose entries might not read right in
    /// version 5 ([`v4_refcounts_fit`]).
    pub(crate) fn v4_refcounts_fit(&self) -> Result<()> {
        v4_refcounts_fit(self.catalog.objects.len(), self.free_queue.len())
    }
}

/// A version 4 store opens as it is in version 5, whose chunk-table
/// entries keep a node's record length in the high 12 bits of the word
/// version 4 gave wholly to its refcount (and version 4 wrote every node
/// dense: length field 0). That reads version 4 entries right while every
/// refcount is below 2²⁰, which holds when the blob's `objects` and
/// `queued` references are fewer than 2¹⁹: a node's references are its
/// parents (at most one per object or queued subtree reaching its place
/// in the map), the objects whose root it is and the queue entries naming
/// it; a data chunk's likewise. A store with more is refused, untouched
/// (never reached in practice).
pub(crate) fn v4_refcounts_fit(objects: usize, queued: usize) -> Result<()> {
    // Fewer than 2^19 holders keep every refcount at most 2^20 - 1.
    const MAX_HOLDERS: u64 = (REFCOUNT_MAX as u64 + 1) >> 1;
    let holders = objects as u64 + queued as u64;
    if holders >= MAX_HOLDERS {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "the store has on-disk format version 4 and {holders} objects and queued \
                 frees; this build opens version 4 stores with fewer than {MAX_HOLDERS} (a \
                 chunk could hold more references than format version {FORMAT_VERSION} keeps)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn v4_stores_open_while_refcounts_fit() {
        assert!(super::v4_refcounts_fit(0, 0).is_ok());
        assert!(super::v4_refcounts_fit(300_000, 224_287).is_ok());
        let e = super::v4_refcounts_fit(300_000, 224_288).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Unsupported);
        let m = e.to_string();
        assert!(m.contains("format version 4 and 524288 objects"), "{m}");
        assert!(m.contains("fewer than 524288"), "{m}");
    }
}
