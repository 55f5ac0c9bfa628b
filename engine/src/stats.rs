//! Space accounting: per-object logical, allocated, unique and shared bytes
//! (computed by walking the object's map with `walk.rs`), and store totals from the
//! segment usage table and the files on disk.

use crate::catalog::ObjectKind;
use crate::counters::CounterHeadroom;
use crate::error::Result;
use crate::format::{CT_LEAF_ENTRIES, NODE_FANOUT};
use crate::state::{State, PAGE_RECORD};
use crate::store::Store;
use crate::types::{ChunkId, ObjectId, BLOCK_SIZE};
use crate::walk::{MapVisitor, NodeAt, Walk};
use serde::Serialize;

/// Space used by one object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ObjectStats {
    /// The object.
    pub id: Option<ObjectId>,
    /// Its name.
    pub name: Option<String>,
    /// Its kind.
    pub kind: Option<ObjectKind>,
    /// Logical size.
    pub logical_bytes: u64,
    /// Bytes of blocks mapped to stored data.
    pub allocated_bytes: u64,
    /// Allocated bytes no other object shares.
    pub unique_bytes: u64,
    /// Allocated bytes shared with another object.
    pub shared_bytes: u64,
    /// This object's share of the live metadata: each map node record it
    /// reaches and each chunk-table entry (its share of a table leaf
    /// record) for those nodes and its data blocks, divided among the
    /// references to them, so that the objects' shares add up to the
    /// store's map and leaf metadata (table interior pages and checkpoint
    /// blobs belong to no object).
    pub metadata_bytes: u64,
}

/// Space used by the whole store.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoreStats {
    /// Per object.
    pub objects: Vec<ObjectStats>,
    /// Sum of volume sizes.
    pub logical_bytes: u64,
    /// Distinct data blocks stored, in bytes (4 KiB each, before compression).
    pub allocated_bytes: u64,
    /// Allocated bytes that only one object references.
    pub unique_bytes: u64,
    /// Allocated bytes referenced by more than one object (or more than once).
    pub shared_bytes: u64,
    /// Live stored bytes (data and metadata still referenced).
    pub live_bytes: u64,
    /// Live bytes of data payloads (compressed lengths where compressed).
    pub data_stored_bytes: u64,
    /// Live bytes of metadata as of the last checkpoint: map node and
    /// chunk-table page records (`live_bytes - data_stored_bytes`).
    pub metadata_bytes: u64,
    /// `metadata_bytes` per distinct data block stored (0 with none): about
    /// 20 for a volume written at random 4 KiB at a time (a 16-byte
    /// chunk-table entry and a 3- to 5-byte slot of a packed map leaf; 24
    /// before format version 7, whose leaves were dense).
    pub metadata_bytes_per_block: f64,
    /// Bytes of segment files on disk.
    pub disk_bytes: u64,
    /// Number of segment files.
    pub segments: u64,
    /// Bytes of retired segment files kept for reuse (not in `disk_bytes`).
    pub spare_bytes: u64,
    /// Live bytes the cleaner copied forward since the store was opened
    /// (the write amplification space reclaim caused).
    pub reclaim_moved_bytes: u64,
    /// References on the pending-free queue (deleted, reverted or trimmed
    /// data whose space is still being given back).
    pub pending_free_refs: u64,
    /// References released by free steps since the store was opened.
    pub freed_refs: u64,
    /// Metadata pinned dirty in memory until the next checkpoint.
    pub dirty_bytes: u64,
    /// Headroom of the counters that must never wrap (ids, sequence
    /// numbers, generation, segment numbers).
    pub counters: Vec<CounterHeadroom>,
}

/// Counts one map's allocated blocks, and those owned exclusively: every
/// reference on the path from the root is the only one, and every
/// reference to the block's extent comes from a leaf so reached (an extent
/// spanning two leaves of one volume has two references, both its own);
/// and its share of the metadata: a node or entry reached through shared
/// nodes counts `1 / refcount` of each on the path.
#[derive(Default)]
struct Space {
    allocated: u64,
    unique: u64,
    metadata: f64,
    /// Per extent met through exclusively owned leaves: those leaves
    /// (references), the blocks they map and the first block of the last
    /// of them. An extent's blocks lie at one place in every map, so one
    /// map names it from at most two adjacent leaves; the walk visits
    /// leaves in block order, so an extent is settled (`settle`) once the
    /// walk is more than a leaf away, and the map stays small.
    owned: rustc_hash::FxHashMap<ChunkId, (u32, u64, u64)>,
}

impl Space {
    /// Counts the blocks of the extents in `owned` that the walk, now at
    /// the leaf covering `base` (`None`: done), can meet no more, as
    /// unique when all their references are leaves of this map.
    fn settle(&mut self, st: &mut State, base: Option<u64>) -> Result<()> {
        let far = |at: u64| base.is_none_or(|b| at.abs_diff(b) > NODE_FANOUT);
        let done: Vec<ChunkId> = self
            .owned
            .iter()
            .filter(|(_, v)| far(v.2))
            .map(|(&x, _)| x)
            .collect();
        for x in done {
            let (leaves, blocks, _) = self.owned.remove(&x).expect("listed");
            if st.ct_get(x)?.refcount == leaves {
                self.unique += blocks * BLOCK_SIZE;
            }
        }
        Ok(())
    }
}

/// One chunk-table entry's share of its leaf record.
const ENTRY_SHARE: f64 = PAGE_RECORD as f64 / CT_LEAF_ENTRIES as f64;

impl Space {
    fn block(&mut self, exclusive: bool) {
        self.allocated += BLOCK_SIZE;
        if exclusive {
            self.unique += BLOCK_SIZE;
        }
    }
}

impl MapVisitor for Space {
    /// Exclusively owned along the path so far, and the fraction of the
    /// path this object holds.
    type Ctx = (bool, f64);

    fn enter(&mut self, st: &mut State, at: NodeAt, ctx: Self::Ctx) -> Result<Option<Self::Ctx>> {
        if at.id.is_special() {
            return Ok(None);
        }
        if at.level == 0 {
            self.settle(st, Some(at.base))?;
        }
        let e = st.ct_get(at.id)?;
        let rc = e.refcount;
        let excl = ctx.0 && rc == 1;
        let frac = ctx.1 / f64::from(rc.max(1));
        if at.id.is_data() {
            self.block(excl);
            self.metadata += ENTRY_SHARE * frac;
            return Ok(None);
        }
        self.metadata += (e.live_bytes(at.id) as f64 + ENTRY_SHARE) * frac;
        Ok(Some((excl, frac)))
    }

    fn entry(
        &mut self,
        _st: &mut State,
        at: NodeAt,
        _index: usize,
        x: ChunkId,
        _slot: u64,
        _base: u64,
        ctx: Self::Ctx,
    ) -> Result<Walk<Self::Ctx>> {
        if at.level > 0 {
            return Ok(if x.is_special() {
                Walk::Next
            } else {
                Walk::Into(ctx)
            });
        }
        if x.is_data() {
            self.block(false);
            if ctx.0 {
                self.owned.entry(x).or_default().1 += 1;
            }
        }
        Ok(Walk::Next)
    }

    fn leaf_extent(
        &mut self,
        st: &mut State,
        at: NodeAt,
        x: ChunkId,
        ctx: Self::Ctx,
    ) -> Result<()> {
        if x.is_data() {
            // The leaf's share of the extent's entry.
            let rc = st.ct_get(x)?.refcount;
            self.metadata += ENTRY_SHARE * ctx.1 / f64::from(rc.max(1));
            if ctx.0 {
                let o = self.owned.entry(x).or_default();
                o.0 += 1;
                o.2 = at.base;
            }
        }
        Ok(())
    }
}

impl State {
    fn object_stats(&mut self, id: ObjectId) -> Result<ObjectStats> {
        let e = self.catalog.get(id)?.clone();
        let mut s = ObjectStats {
            id: Some(id),
            name: e.info.name.clone(),
            kind: Some(e.info.kind),
            logical_bytes: e.info.size,
            ..Default::default()
        };
        let mut space = Space::default();
        self.walk_map(e.root(), e.depth - 1, (true, 1.0), &mut space)?;
        // Blocks of extents all of whose references this map's own leaves
        // hold are unique to it.
        space.settle(self, None)?;
        s.allocated_bytes = space.allocated;
        s.metadata_bytes = space.metadata.round() as u64;
        s.unique_bytes = space.unique;
        s.shared_bytes = s.allocated_bytes - s.unique_bytes;
        Ok(s)
    }
}

impl Store {
    /// Space used by one object (walks its map).
    pub fn object_stats(&self, id: ObjectId) -> Result<ObjectStats> {
        self.state().object_stats(id)
    }

    /// Space used by every object and the store.
    pub fn stats(&self) -> Result<StoreStats> {
        let mut st = self.state();
        let ids: Vec<ObjectId> = st.catalog.objects.keys().copied().collect();
        let mut out = StoreStats::default();
        for id in ids {
            let s = st.object_stats(id)?;
            if s.kind == Some(ObjectKind::Volume) {
                out.logical_bytes += s.logical_bytes;
            }
            out.unique_bytes += s.unique_bytes;
            out.objects.push(s);
        }
        out.allocated_bytes = st.live_data_chunks * BLOCK_SIZE;
        out.shared_bytes = out.allocated_bytes.saturating_sub(out.unique_bytes);
        out.live_bytes = st.usage.values().sum();
        out.data_stored_bytes = st.live_data_bytes;
        out.metadata_bytes = out.live_bytes.saturating_sub(st.live_data_bytes);
        if st.live_data_chunks > 0 {
            out.metadata_bytes_per_block = out.metadata_bytes as f64 / st.live_data_chunks as f64;
        }
        out.disk_bytes = st.log.disk_bytes();
        out.segments = st.log.segments().len() as u64;
        out.spare_bytes = st.log.spare_bytes();
        out.reclaim_moved_bytes = st.reclaim_moved;
        out.counters = st.headroom();
        out.pending_free_refs = st.free_refs_pending();
        out.dirty_bytes = st.dirty_bytes();
        drop(st);
        out.freed_refs = self.freed_total();
        Ok(out)
    }
}
