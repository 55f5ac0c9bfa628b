//! Consistency checking (`blockd check`) and scrubbing: walk every map from
//! the catalogue roots, verify each node and data chunk against its
//! checksum, recompute every refcount from reachability and compare with the
//! chunk table. Leaks (space held by nothing) are reported apart from
//! corruption (missing or damaged data, refcounts too low). `repair` fixes
//! refcounts and frees leaks; it cannot restore damaged data.

use crate::error::{Error, Result};
use crate::format::{CtEntry, Node};
use crate::io::fetch_blocks;
use crate::state::State;
use crate::state::PAGE_RECORD;
use crate::store::Store;
use crate::types::{ChunkId, ObjectId, SegmentNo, BLOCK_SIZE};
use crate::walk::{ct_leaves, ct_page_keys, MapVisitor, NodeAt, Walk};
use std::collections::{BTreeMap, HashMap};

/// The findings of a check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Damage: checksum failures, dangling references, refcounts too low.
    pub corruption: Vec<String>,
    /// Space held by nothing: unreachable chunks, refcounts too high.
    pub leaks: Vec<String>,
    /// Map nodes verified.
    pub nodes_checked: u64,
    /// Data chunks verified.
    pub chunks_checked: u64,
    /// Objects walked.
    pub objects_checked: u64,
    /// True when `repair` fixed the leaks and refcounts.
    pub repaired: bool,
}

impl CheckReport {
    /// True when nothing was found.
    pub fn is_clean(&self) -> bool {
        self.corruption.is_empty() && self.leaks.is_empty()
    }
}

/// Recounts the references one map holds, reporting damage as it goes.
/// A subtree is entered only on its first reference, so a subtree shared
/// between maps is walked once (`refs` is the visited set).
struct Recount<'a> {
    obj: ObjectId,
    refs: &'a mut HashMap<ChunkId, u32>,
    /// The blocks of each data chunk some map names (bit k: block k).
    blocks: &'a mut HashMap<ChunkId, u32>,
    report: &'a mut CheckReport,
}

impl MapVisitor for Recount<'_> {
    type Ctx = ();

    fn unreadable(&mut self, _at: NodeAt, e: Error) -> Result<()> {
        let obj = self.obj;
        self.report.corruption.push(format!("object {obj}: {e}"));
        Ok(())
    }

    fn node(&mut self, at: NodeAt, n: &Node) -> Result<bool> {
        self.report.nodes_checked += 1;
        if n.level != at.level {
            self.report.corruption.push(format!(
                "object {}: node {} has level {}, expected {}",
                self.obj, at.id.0, n.level, at.level
            ));
            return Ok(false);
        }
        Ok(true)
    }

    fn entry(
        &mut self,
        _st: &mut State,
        at: NodeAt,
        _index: usize,
        c: ChunkId,
        slot: u64,
        _base: u64,
        _ctx: (),
    ) -> Result<Walk<()>> {
        if c.is_special() {
            return Ok(Walk::Next);
        }
        let ok = if at.level == 0 {
            c.is_data()
        } else {
            c.is_node()
        };
        if !ok {
            self.report.corruption.push(format!(
                "object {}: node {} names chunk {} of the wrong kind",
                self.obj, at.id.0, c.0
            ));
            return Ok(Walk::Next);
        }
        if at.level == 0 {
            // Counted once per leaf by `leaf_extent`.
            *self.blocks.entry(c).or_insert(0) |= 1 << crate::format::slot_index(slot);
            return Ok(Walk::Next);
        }
        let r = self.refs.entry(c).or_insert(0);
        *r += 1;
        Ok(if *r == 1 { Walk::Into(()) } else { Walk::Next })
    }

    fn leaf_extent(&mut self, _st: &mut State, _at: NodeAt, x: ChunkId, _ctx: ()) -> Result<()> {
        if x.is_data() {
            *self.refs.entry(x).or_insert(0) += 1;
        }
        Ok(())
    }
}

impl State {
    fn walk_refs(
        &mut self,
        obj: ObjectId,
        root: ChunkId,
        depth: u8,
        refs: &mut HashMap<ChunkId, u32>,
        blocks: &mut HashMap<ChunkId, u32>,
        report: &mut CheckReport,
    ) -> Result<()> {
        if root.is_special() {
            return Ok(());
        }
        *refs.entry(root).or_insert(0) += 1;
        if !root.is_node() {
            report
                .corruption
                .push(format!("object {obj}: root {} is not a map node", root.0));
        } else if refs[&root] == 1 {
            let mut recount = Recount {
                obj,
                refs,
                blocks,
                report,
            };
            // Damage becomes a finding: the recount's visitor ends no walk.
            self.walk_map(root, depth - 1, (), &mut recount)?;
        }
        Ok(())
    }

    /// Counts the pending-free queue's references, walking each queued
    /// node's subtree like an object's map.
    fn walk_queued(
        &mut self,
        refs: &mut HashMap<ChunkId, u32>,
        blocks: &mut HashMap<ChunkId, u32>,
        report: &mut CheckReport,
    ) -> Result<()> {
        let mut queued = self.free_queue.clone();
        queued.extend(self.free_sorted.iter());
        let nil = ObjectId(uuid::Uuid::nil());
        for id in queued {
            if id.is_data() {
                *refs.entry(id).or_insert(0) += 1;
                // Every block of a queued extent is verified.
                *blocks.entry(id).or_insert(0) |= u32::MAX;
                continue;
            }
            match self.node_get(id) {
                Ok(n) => self.walk_refs(nil, id, n.level + 1, refs, blocks, report)?,
                Err(e) => {
                    *refs.entry(id).or_insert(0) += 1;
                    report.corruption.push(format!("pending-free queue: {e}"));
                }
            }
        }
        Ok(())
    }

    /// Verifies the payload of every block of a data chunk that a map
    /// names (an extent's blocks no map names any more are not read: a
    /// salvaging replay may have left one damaged there).
    fn verify_data(&mut self, blocks: &HashMap<ChunkId, u32>, report: &mut CheckReport) {
        let mut ids: Vec<(ChunkId, u32)> = blocks
            .iter()
            .map(|(&c, &m)| (c, m))
            .filter(|(c, _)| c.is_data())
            .collect();
        ids.sort();
        let mut buf = vec![0u8; BLOCK_SIZE as usize];
        for (id, mask) in ids {
            let e = match self.ct_get(id) {
                Ok(e) => e,
                Err(err) => {
                    report.corruption.push(err.to_string());
                    continue;
                }
            };
            if !e.is_live() || e.loc.is_none() {
                continue; // reported by the refcount comparison
            }
            let seg = match self.log.segment(e.loc.segment()) {
                Some(s) => s,
                None => {
                    report.corruption.push(format!(
                        "chunk {} lies in missing segment {}",
                        id.0,
                        e.loc.segment().0
                    ));
                    continue;
                }
            };
            for k in (0..e.blocks() as u8).filter(|&k| mask & (1 << k) != 0) {
                let Some(src) = crate::io::block_src(seg.clone(), id, e, k) else {
                    continue;
                };
                if let Err(err) = fetch_blocks(&[src], &mut buf, ObjectId(uuid::Uuid::nil()), 0) {
                    report
                        .corruption
                        .push(format!("chunk {} block {k}: {err}", id.0));
                }
            }
            report.chunks_checked += 1;
        }
    }

    /// Compares the chunk table with recomputed references.
    fn compare_refcounts(
        &mut self,
        refs: &HashMap<ChunkId, u32>,
        repair: bool,
        report: &mut CheckReport,
    ) -> Result<()> {
        let mut seen = 0usize;
        let mut live_data = 0u64;
        let mut live_bytes = 0u64;
        let mut fixes: Vec<(ChunkId, u32, CtEntry)> = Vec::new();
        for leaf in ct_leaves(self.ct_leaf_ranges()) {
            let es = match self.ct_leaf_entries(leaf) {
                Ok(es) => es,
                Err(e) => {
                    report.corruption.push(e.to_string());
                    continue;
                }
            };
            for (i, e) in es.iter().enumerate() {
                let id = crate::state::chunk_at(leaf, i);
                let want = refs.get(&id).copied().unwrap_or(0);
                if e.is_live() && id.is_data() {
                    live_data += e.blocks();
                    live_bytes += u64::from(e.stored_len);
                }
                if want > 0 {
                    seen += 1;
                }
                if e.refcount == want {
                    continue;
                }
                if e.refcount < want {
                    report.corruption.push(format!(
                        "chunk {} has refcount {} but {want} references",
                        id.0, e.refcount
                    ));
                } else if want == 0 {
                    report.leaks.push(format!(
                        "chunk {} (refcount {}) is referenced by nothing",
                        id.0, e.refcount
                    ));
                    fixes.push((id, 0, *e));
                } else {
                    report.leaks.push(format!(
                        "chunk {} has refcount {} but only {want} references",
                        id.0, e.refcount
                    ));
                    fixes.push((id, want, *e));
                }
            }
        }
        if seen < refs.keys().filter(|c| !c.is_special()).count() {
            report
                .corruption
                .push("some referenced chunks lie beyond the chunk table".into());
        }
        let counter_off = live_data != self.live_data_chunks || live_bytes != self.live_data_bytes;
        if counter_off {
            report.leaks.push(format!(
                "space accounting counts {} live data chunks of {} bytes, the chunk table holds \
                 {live_data} of {live_bytes} bytes",
                self.live_data_chunks, self.live_data_bytes
            ));
        }
        if repair && report.corruption.is_empty() && (!fixes.is_empty() || counter_off) {
            self.live_data_chunks = live_data;
            self.live_data_bytes = live_bytes;
            for (id, want, mut e) in fixes {
                if want == 0 {
                    self.account(e.loc, e.live_bytes(id), false);
                    if id.is_node() {
                        self.node_forget(id);
                    } else {
                        self.live_data_chunks -= e.blocks();
                        self.live_data_bytes -= u64::from(e.stored_len);
                    }
                    self.ct_set(id, CtEntry::default())?;
                } else {
                    e.refcount = want;
                    self.ct_set(id, e)?;
                }
            }
            report.repaired = true;
        }
        Ok(())
    }
}

impl State {
    /// Recomputes live bytes per segment from the chunk table and the
    /// chunk-table pages, and compares with the usage table the cleaner
    /// trusts (a segment it believes empty is deleted without a scan).
    fn verify_usage(&mut self, repair: bool, report: &mut CheckReport) -> Result<()> {
        let leaves = self.ct_leaf_ranges();
        let mut live: BTreeMap<SegmentNo, u64> = BTreeMap::new();
        // Unreadable pages are reported (once, by `compare_refcounts` for
        // leaves) and make the recount incomplete: compare nothing then.
        let mut unreadable = false;
        for leaf in ct_leaves(leaves.clone()) {
            let es = match self.ct_leaf_entries(leaf) {
                Ok(es) => es,
                Err(_) => {
                    unreadable = true;
                    continue;
                }
            };
            for (i, e) in es.iter().enumerate() {
                if e.is_live() && !e.loc.is_none() {
                    let id = crate::state::chunk_at(leaf, i);
                    *live.entry(e.loc.segment()).or_default() += e.live_bytes(id);
                }
            }
        }
        for (level, index) in ct_page_keys(leaves) {
            // Loading the parent verifies it against its own parent's crc.
            let loc = match self.ct_page_ref(level, index) {
                Ok(c) => c.loc,
                Err(e) => {
                    unreadable = true;
                    report.corruption.push(e.to_string());
                    continue;
                }
            };
            if !loc.is_none() {
                *live.entry(loc.segment()).or_default() += PAGE_RECORD;
            }
        }
        if unreadable {
            return Ok(());
        }
        let segs: std::collections::BTreeSet<SegmentNo> =
            live.keys().chain(self.usage.keys()).copied().collect();
        let mut off = false;
        for seg in segs {
            let want = live.get(&seg).copied().unwrap_or(0);
            let have = self.usage.get(&seg).copied().unwrap_or(0);
            if want != have {
                off = true;
                report.corruption.push(format!(
                    "segment {} is accounted {have} live bytes but holds {want}",
                    seg.0
                ));
            }
        }
        if repair && off {
            self.usage = live;
            report.repaired = true;
        }
        Ok(())
    }
}

impl Store {
    /// Checks the whole store; with `repair`, fixes refcounts and frees
    /// leaked chunks (only when no corruption was found).
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        let _c = self.checkpoint_guard();
        self.check_live()?;
        self.checkpoint_with(self.state())?;
        let mut report = CheckReport::default();
        let mut st = self.state();
        let objects = st.map_roots();
        let mut refs: HashMap<ChunkId, u32> = HashMap::new();
        let mut blocks: HashMap<ChunkId, u32> = HashMap::new();
        for (id, root, depth) in objects {
            st.walk_refs(id, root, depth, &mut refs, &mut blocks, &mut report)?;
            report.objects_checked += 1;
        }
        // References on the pending-free queue are references too: their
        // chunks (and what nodes among them reach) stay stored until freed.
        st.walk_queued(&mut refs, &mut blocks, &mut report)?;
        st.verify_data(&blocks, &mut report);
        st.compare_refcounts(&refs, repair, &mut report)?;
        st.verify_usage(repair, &mut report)?;
        if report.repaired {
            self.checkpoint_with(st)?;
        }
        Ok(report)
    }
}
