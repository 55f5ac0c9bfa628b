//! Checkpoints: write every dirty map node and chunk-table page out of place,
//! then the checkpoint blob (catalogue, counters, segment usage), fdatasync
//! the log, and flip the superblock slot (then fdatasync it). Until the
//! flip, the previous checkpoint plus the log describe the store; after it,
//! the new one does. See docs/design.md, "Commit protocol".
//!
//! The map nodes, then the chunk-table leaves, are written in slices, each
//! in its own short hold of the state lock ([`State::write_node_slice`],
//! [`State::write_leaf_slice`]), from a snapshot encoded outside it; a leaf
//! written by a slice is named by its parent, changed in memory only
//! (`State::ct_dirty_inner`). The final hold ([`State::write_checkpoint`])
//! writes the nodes and leaves dirtied again meanwhile, the interior
//! chunk-table pages and the blob, and fixes what is committed.

use crate::catalog::Catalog;
use crate::ct_bytes::CtBytes;
use crate::error::{Error, Result};
use crate::format::{
    CtChild, CtPage, Node, RecordKind, CT_FANOUT, CT_INTERIOR_LEVELS, HEADER_LEN, PAGE_LEN,
};
use crate::free_sorted::{EncodedSorted, SortedFrees};
use crate::state::{CtKey, State, PAGE_RECORD};
use crate::types::{ChunkId, LogAddr, SegmentNo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Dirty map nodes encoded ahead of a checkpoint, outside the state lock,
/// in id order: each with the node as it was (the very `Arc`), its record
/// framed with room for the header, and its body's crc32.
#[derive(Default)]
pub(crate) struct Encoded(Vec<EncodedNode>);

struct EncodedNode {
    id: ChunkId,
    node: Arc<Node>,
    framed: Vec<u8>,
    crc: u32,
}

impl Encoded {
    /// Encodes `nodes` (taken with [`State::dirty_nodes`], in the order
    /// they are to be written); runs without the state lock.
    pub fn new(nodes: Vec<(ChunkId, Arc<Node>)>) -> Encoded {
        Encoded(
            nodes
                .into_iter()
                .map(|(id, node)| {
                    let (framed, crc) = encode_node(id, &node);
                    EncodedNode {
                        id,
                        node,
                        framed,
                        crc,
                    }
                })
                .collect(),
        )
    }

    /// How many nodes were encoded.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Dirty chunk-table leaves encoded ahead of a checkpoint's slice, outside
/// the state lock: each with the leaf as it was (the very `Arc`: a leaf
/// modified since is a copy, `Arc::make_mut` having cloned it away from
/// the snapshot), its record framed with room for the header (none for an
/// empty leaf, which its parent names as no page), its body's crc32 and
/// its bytes for the clean cache.
#[derive(Default)]
pub(crate) struct EncodedLeaves(Vec<EncodedLeaf>);

struct EncodedLeaf {
    idx: u64,
    page: Arc<CtBytes>,
    framed: Option<(Vec<u8>, u32)>,
}

impl EncodedLeaves {
    /// Frames `leaves` (taken with [`State::dirty_leaves`]); runs without
    /// the state lock.
    pub fn new(leaves: Vec<(u64, Arc<CtBytes>)>) -> EncodedLeaves {
        EncodedLeaves(
            leaves
                .into_iter()
                .map(|(idx, page)| {
                    let framed = (!page.is_empty_leaf()).then(|| frame_ct_bytes(&page));
                    EncodedLeaf { idx, page, framed }
                })
                .collect(),
        )
    }
}

/// What a checkpoint encoded without the state lock just before its final
/// hold: the dirty nodes and leaves left, and the pending-free sorted set.
/// The hold uses each part still current and encodes the rest itself.
#[derive(Default)]
pub(crate) struct PreEncoded {
    pub nodes: Encoded,
    pub leaves: EncodedLeaves,
    pub sorted: EncodedSorted,
}

/// The checkpoint blob, JSON in a Checkpoint record.
#[derive(Serialize, Deserialize)]
pub(crate) struct Blob {
    pub catalog: Catalog,
    pub next_data: u64,
    pub next_node: u64,
    #[serde(default)]
    pub live_data_chunks: u64,
    /// Their stored bytes (format version 4 on).
    #[serde(default)]
    pub live_data_bytes: u64,
    pub usage: Vec<(u32, u64)>,
    /// The pending-free queue, bottom first (format version 3; absent in
    /// older blobs).
    #[serde(default)]
    pub free_queue: Vec<u64>,
    /// The sorted data references (`free_sorted.rs`): ascending, each as
    /// its difference from the one before (absent when there are none, and
    /// in older blobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_sorted: Option<Box<serde_json::value::RawValue>>,
    /// True while a sweep of them is under way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub free_sweeping: bool,
}

/// A chunk-table page framed as a CtPage record (room for the header, then
/// the page) and its body's crc32.
fn frame_ct_page(page: &CtPage, level: u8, idx: u64) -> (Vec<u8>, u32) {
    let mut framed = vec![0u8; HEADER_LEN + PAGE_LEN];
    page.encode_into(level, idx, &mut framed[HEADER_LEN..]);
    let crc = crc32fast::hash(&framed[HEADER_LEN..]);
    (framed, crc)
}

/// A dirty chunk-table leaf's bytes framed as a CtPage record, and their
/// crc32.
fn frame_ct_bytes(page: &CtBytes) -> (Vec<u8>, u32) {
    let mut framed = Vec::with_capacity(HEADER_LEN + PAGE_LEN);
    framed.resize(HEADER_LEN, 0);
    framed.extend_from_slice(page.bytes());
    (framed, crc32fast::hash(page.bytes()))
}

/// Node `id`'s record, framed with room for the header, and its body's
/// crc32.
fn encode_node(id: ChunkId, n: &Node) -> (Vec<u8>, u32) {
    let body = n.encode(id);
    let crc = crc32fast::hash(&body);
    let mut framed = Vec::with_capacity(HEADER_LEN + body.len());
    framed.resize(HEADER_LEN, 0);
    framed.extend_from_slice(&body);
    (framed, crc)
}

impl State {
    /// The dirty map nodes, for [`Encoded::new`] (cheap: `Arc` clones),
    /// unsorted: the caller sorts them by id outside the lock. The caller
    /// releases the lock right after, so the time this takes is counted as
    /// a checkpoint's lock hold.
    pub(crate) fn dirty_nodes(&self) -> Vec<(ChunkId, Arc<Node>)> {
        let started = std::time::Instant::now();
        let nodes = self
            .nodes_dirty
            .iter()
            .map(|(id, n)| (*id, n.clone()))
            .collect();
        self.counters.held_in(
            crate::op_stats::Holder::Checkpoint,
            "checkpoint: snapshot of dirty nodes",
            started.elapsed(),
        );
        nodes
    }

    /// The dirty chunk-table leaves, by index, unsorted (for the slices
    /// of [`State::write_leaf_slice`]).
    pub(crate) fn dirty_leaf_indices(&self) -> Vec<u64> {
        let started = std::time::Instant::now();
        let idxs = self.ct_dirty.keys().copied().collect();
        self.counters.held_in(
            crate::op_stats::Holder::Checkpoint,
            "checkpoint: dirty leaf indices",
            started.elapsed(),
        );
        idxs
    }

    /// Every dirty leaf, unsorted, for [`EncodedLeaves::new`] just before
    /// the final hold (cheap: `Arc` clones).
    pub(crate) fn all_dirty_leaves(&self) -> Vec<(u64, Arc<CtBytes>)> {
        self.ct_dirty.iter().map(|(i, p)| (*i, p.clone())).collect()
    }

    /// The leaves of `idxs` still dirty, for [`EncodedLeaves::new`]
    /// (cheap: `Arc` clones).
    pub(crate) fn dirty_leaves(&self, idxs: &[u64]) -> Vec<(u64, Arc<CtBytes>)> {
        let started = std::time::Instant::now();
        let leaves = idxs
            .iter()
            .filter_map(|i| self.ct_dirty.get(i).map(|p| (*i, p.clone())))
            .collect();
        self.counters.held_in(
            crate::op_stats::Holder::Checkpoint,
            "checkpoint: snapshot of dirty leaves",
            started.elapsed(),
        );
        leaves
    }

    /// One slice of a checkpoint's chunk-table leaves, in a short hold of
    /// the state lock: the leaves of `slice` still dirty and unchanged
    /// since encoded are appended; each one's parent, changed in memory
    /// (`ct_dirty_inner`), names its new place, and it leaves the dirty
    /// set for the clean cache. A leaf modified since stays dirty, for a
    /// later slice or the final hold. As with node slices, nothing is
    /// committed: replay skips these records until a superblock names a
    /// checkpoint, and the final hold writes the changed parents (up to
    /// the root) with the state at that hold. Returns how many leaves were
    /// written.
    pub(crate) fn write_leaf_slice(&mut self, slice: EncodedLeaves) -> Result<usize> {
        let started = std::time::Instant::now();
        let r = self.write_unchanged_leaves(slice);
        self.counters.held_in(
            crate::op_stats::Holder::Checkpoint,
            "checkpoint: leaf slice",
            started.elapsed(),
        );
        if let Ok(n) = r {
            self.counters.leaves_sliced(n);
        }
        r
    }

    fn write_unchanged_leaves(&mut self, pre: EncodedLeaves) -> Result<usize> {
        let leaves: Vec<EncodedLeaf> = pre
            .0
            .into_iter()
            .filter(|e| {
                self.ct_dirty
                    .get(&e.idx)
                    .is_some_and(|p| Arc::ptr_eq(p, &e.page))
            })
            .collect();
        // Everything that may read the disk (and fail) comes before the
        // append, so a failure leaves memory as it was: each parent made
        // an in-memory page, each leaf's place as of now.
        let mut olds = Vec::with_capacity(leaves.len());
        for e in &leaves {
            let pkey = (1, e.idx / CT_FANOUT);
            if !self.ct_dirty_inner.contains_key(&pkey) {
                let parent = (*self.ct_load(pkey.0, pkey.1)?).clone();
                self.ct_forget(pkey);
                self.ct_dirty_inner.insert(pkey, parent);
            }
            olds.push(self.ct_page_ref(0, e.idx)?);
        }
        let n = leaves.len();
        let mut framed = Vec::with_capacity(n);
        let mut placed = Vec::with_capacity(n);
        for e in leaves {
            let crc = e.framed.map(|(f, crc)| {
                framed.push((f, crc));
                crc
            });
            placed.push((e.idx, crc, e.page));
        }
        self.counters.leaves_written(framed.len());
        let mut addrs = self.append_encoded(RecordKind::CtPage, framed)?.into_iter();
        for ((idx, written, page), old) in placed.into_iter().zip(olds) {
            self.account(old.loc, PAGE_RECORD, false);
            let child = match written {
                None => {
                    self.ct_forget((0, idx));
                    CtChild::NONE
                }
                Some(crc) => {
                    let loc = addrs
                        .next()
                        .ok_or_else(|| Error::corrupt("a chunk-table leaf slice lost an append"))?;
                    self.account(loc, PAGE_RECORD, true);
                    // The very bytes written, unchanged: cached as they are.
                    self.ct_cache((0, idx), page);
                    CtChild { loc, crc }
                }
            };
            match self.ct_dirty_inner.get_mut(&(1, idx / CT_FANOUT)) {
                Some(CtPage::Inner(cs)) => cs[(idx % CT_FANOUT) as usize] = child,
                _ => return Err(Error::corrupt("chunk-table leaf page above level 0")),
            }
            self.ct_dirty.remove(&idx);
            self.ct_force.remove(&(0, idx));
        }
        Ok(n)
    }

    /// One slice of a checkpoint, in a short hold of the state lock: the
    /// nodes of `slice` still dirty *and unchanged since encoded* (the same
    /// `Arc`: a node modified since is a new one, `Arc::make_mut` having
    /// cloned it away from the snapshot) are appended, and their chunk-table
    /// entries get the new places; they leave the dirty set. A node
    /// modified or freed since is left as it is, for a later slice or the
    /// final hold. Nothing here commits anything: until the superblock
    /// names a checkpoint, these records are skipped by replay like any
    /// checkpoint page, and the in-memory state is the same as if the
    /// nodes had been written by the final hold. Returns how many nodes
    /// were written.
    pub(crate) fn write_node_slice(&mut self, slice: Encoded) -> Result<usize> {
        let started = std::time::Instant::now();
        let r = self.write_unchanged_nodes(slice);
        self.counters.held_in(
            crate::op_stats::Holder::Checkpoint,
            "checkpoint: node slice",
            started.elapsed(),
        );
        r
    }

    /// Appends the nodes of `pre` still dirty and unchanged since encoded,
    /// and installs their new places; returns how many.
    fn write_unchanged_nodes(&mut self, pre: Encoded) -> Result<usize> {
        let mut nodes = Vec::with_capacity(pre.0.len());
        let mut framed = Vec::with_capacity(pre.0.len());
        for e in pre.0 {
            if self
                .nodes_dirty
                .get(&e.id)
                .is_some_and(|n| Arc::ptr_eq(n, &e.node))
            {
                nodes.push((e.id, e.node));
                framed.push((e.framed, e.crc));
            }
        }
        let n = nodes.len();
        self.write_nodes(nodes, framed)?;
        Ok(n)
    }

    /// Appends the framed records of dirty `nodes` and gives each its new
    /// place in the chunk table (accounting the old place dead and the new
    /// one live); each leaves the dirty set for the clean cache. A node
    /// leaves the dirty set only once written, so a failure leaves memory
    /// consistent (and the store fail-stopped).
    fn write_nodes(
        &mut self,
        nodes: Vec<(ChunkId, Arc<Node>)>,
        framed: Vec<(Vec<u8>, u32)>,
    ) -> Result<()> {
        if nodes.is_empty() {
            return Ok(());
        }
        // Each body's crc and length (dense page or runs: `Node::encode`).
        let sums: Vec<(u32, u32)> = framed
            .iter()
            .map(|f| (f.1, (f.0.len() - HEADER_LEN) as u32))
            .collect();
        let addrs = self.append_encoded(RecordKind::Node, framed)?;
        for (((id, node), (crc, len)), addr) in nodes.into_iter().zip(sums).zip(addrs) {
            self.nodes_dirty.remove(&id);
            let mut e = self.ct_get(id)?;
            self.account(e.loc, e.live_bytes(id), false);
            e.loc = addr;
            e.crc = crc;
            e.stored_len = len;
            self.ct_set(id, e)?;
            self.account(addr, e.live_bytes(id), true);
            self.node_cache(id, node);
        }
        Ok(())
    }

    /// The final hold of a checkpoint: writes the dirty pages left and the
    /// blob; returns (chunk-table root, blob). Nodes found unchanged in
    /// `pre` are appended as encoded there; the others are encoded now.
    /// What it commits is the state at this hold. The caller syncs the log
    /// and writes the superblock. Its time is counted as a checkpoint's
    /// lock hold.
    pub(crate) fn write_checkpoint(&mut self, pre: PreEncoded) -> Result<(CtChild, LogAddr)> {
        let started = std::time::Instant::now();
        let times = crate::thread_times::ThreadTimes::now();
        let (reads, segs) = (self.counters.pages_locked(), self.log.segments().len());
        let made = self.log.made_in_lock;
        let (nodes, leaves) = (self.nodes_dirty.len(), self.ct_dirty.len());
        let r = self.write_checkpoint_pages(pre);
        let d = started.elapsed();
        self.counters.held_in(
            crate::op_stats::Holder::Checkpoint,
            "checkpoint: final hold",
            d,
        );
        if d >= crate::op_stats::SLOW_HOLD {
            // Where its time went: the pages it wrote, what may have
            // waited for the device (pages read, segment files made), and
            // the thread's CPU, run-queue and fault figures.
            let t = times.zip(crate::thread_times::ThreadTimes::now());
            let t = t.map(|(a, b)| a.since(b));
            tracing::warn!(
                nodes,
                leaves,
                pages_read = self.counters.pages_locked() - reads,
                segments_rolled = self.log.segments().len().saturating_sub(segs),
                segments_made = self.log.made_in_lock.0 - made.0,
                making_ms = (self.log.made_in_lock.1 - made.1).as_secs_f64() * 1e3,
                cpu_ms = t.map(|t| t.cpu_ms),
                runq_ms = t.map(|t| t.runq_ms),
                minflt = t.map(|t| t.minflt),
                majflt = t.map(|t| t.majflt),
                "long checkpoint final hold"
            );
        }
        r
    }

    fn write_checkpoint_pages(&mut self, pre: PreEncoded) -> Result<(CtChild, LogAddr)> {
        let PreEncoded {
            nodes: pre,
            leaves: pre_leaves,
            sorted: pre_sorted,
        } = pre;
        // 1. Map nodes: each dirty node goes to a fresh place in the log.
        // Most were written by earlier slices (`Store::checkpoint_with`);
        // those left were encoded just before this hold (`pre`), but for
        // any dirtied since, which are encoded now.
        self.write_unchanged_nodes(pre)?;
        let mut ids: Vec<ChunkId> = self.nodes_dirty.keys().copied().collect();
        ids.sort_unstable();
        let mut nodes = Vec::with_capacity(ids.len());
        let mut framed = Vec::with_capacity(ids.len());
        for id in ids {
            let node = self.nodes_dirty[&id].clone();
            framed.push(encode_node(id, &node));
            nodes.push((id, node));
        }
        self.write_nodes(nodes, framed)?;
        // 2. Chunk-table pages, leaves first, then each parent level. The
        // leaves unchanged since they were framed just before this hold
        // (`pre_leaves`) go as a slice would (their parents changed in
        // memory); those changed since (by the node writes above, or by
        // requests meanwhile) are framed here.
        self.write_unchanged_leaves(pre_leaves)?;
        // The other dirty leaves stay pinned until the whole tree is
        // written: until then the old parents on disk do not lead to the
        // new leaves. They are framed straight from the dirty set, not
        // copied first (a copy of a 64 MiB dirty set took RSS far past its
        // bounds); only the leaves the cleaner forces and the parent levels
        // are loaded as pages of their own.
        let mut dirty_leaves: Vec<u64> = self.ct_dirty.keys().copied().collect();
        dirty_leaves.sort_unstable();
        let force = std::mem::take(&mut self.ct_force);
        let mut level_pages: BTreeMap<u64, CtPage> = BTreeMap::new();
        for &(lvl, idx) in &force {
            if lvl == 0 && !self.ct_dirty.contains_key(&idx) {
                let p = (*self.ct_load(0, idx)?).clone();
                level_pages.insert(idx, p);
            }
        }
        let mut level = 0u8;
        loop {
            // Each page of the level framed (None: an empty interior page,
            // which its parent names as no page), in index order.
            let mut keys: Vec<u64> = level_pages.keys().copied().collect();
            if level == 0 {
                keys.extend_from_slice(&dirty_leaves);
                keys.sort_unstable();
            }
            // A dirty leaf is cached as the very bytes written (its `Arc`);
            // a page loaded for this hold, from its framed body.
            let mut framed_pages = Vec::with_capacity(keys.len());
            for idx in keys {
                let f = match level_pages.get(&idx) {
                    Some(page) => (!page.is_empty() || level == CT_INTERIOR_LEVELS)
                        .then(|| (frame_ct_page(page, level, idx), None)),
                    None => {
                        let page = self.ct_dirty.get(&idx).ok_or_else(|| {
                            Error::corrupt(format!("dirty chunk-table leaf {idx} vanished"))
                        })?;
                        (!page.is_empty_leaf()).then(|| (frame_ct_bytes(page), Some(page.clone())))
                    }
                };
                framed_pages.push((idx, f));
            }
            drop(level_pages);
            // Each page written is named by its parent with its crc.
            // The level's pages are appended together, many per syscall.
            let mut written: BTreeMap<u64, CtChild> = BTreeMap::new();
            let mut to_write = Vec::with_capacity(framed_pages.len());
            let mut framed = Vec::with_capacity(framed_pages.len());
            for (idx, f) in framed_pages {
                let old = self.ct_page_ref(level, idx)?;
                self.account(old.loc, PAGE_RECORD, false);
                self.ct_forget((level, idx));
                match f {
                    None => {
                        written.insert(idx, CtChild::NONE);
                    }
                    Some(((f, crc), bytes)) => {
                        let bytes =
                            bytes.unwrap_or_else(|| Arc::new(CtBytes::of_body(&f[HEADER_LEN..])));
                        to_write.push((idx, crc, bytes));
                        framed.push((f, crc));
                    }
                }
            }
            if level == 0 {
                self.counters.leaves_written(to_write.len());
            }
            let addrs = self.append_encoded(RecordKind::CtPage, framed)?;
            for ((idx, crc, bytes), a) in to_write.into_iter().zip(addrs) {
                self.account(a, PAGE_RECORD, true);
                self.ct_cache((level, idx), bytes);
                written.insert(idx, CtChild { loc: a, crc });
            }
            if level == CT_INTERIOR_LEVELS {
                // Chunk ids stay below the table's capacity (`counters.rs`),
                // so the root is the only page of this level; anything else
                // is an error, never silently dropped.
                for (idx, child) in written {
                    if idx != 0 {
                        return Err(Error::new(
                            crate::ErrorKind::Exhausted,
                            format!(
                                "chunk-table root index {idx}: ids beyond the table's capacity"
                            ),
                        ));
                    }
                    self.ct_root = child;
                }
                for k in dirty_leaves {
                    self.ct_dirty.remove(&k);
                }
                if !self.ct_dirty_inner.is_empty() {
                    return Err(Error::corrupt(
                        "a changed chunk-table page was left out of a checkpoint",
                    ));
                }
                break;
            }
            // Parents of what was written, plus interior pages forced by the
            // cleaner, plus those the slices changed in memory (taken as
            // they are: they name the leaves the slices wrote).
            let mut parents: BTreeMap<u64, CtPage> = BTreeMap::new();
            let changed: Vec<CtKey> = self
                .ct_dirty_inner
                .keys()
                .filter(|k| k.0 == level + 1)
                .copied()
                .collect();
            for k in changed {
                if let Some(p) = self.ct_dirty_inner.remove(&k) {
                    parents.insert(k.1, p);
                }
            }
            let forced: Vec<u64> = force
                .iter()
                .filter(|k| k.0 == level + 1)
                .map(|k| k.1)
                .chain(written.keys().map(|i| i / CT_FANOUT))
                .collect();
            for pidx in forced {
                if let std::collections::btree_map::Entry::Vacant(v) = parents.entry(pidx) {
                    v.insert((*self.ct_load(level + 1, pidx)?).clone());
                }
            }
            for (idx, child) in written {
                match parents.get_mut(&(idx / CT_FANOUT)) {
                    Some(CtPage::Inner(cs)) => cs[(idx % CT_FANOUT) as usize] = child,
                    _ => return Err(Error::corrupt("chunk-table leaf page above level 0")),
                }
            }
            level_pages = parents;
            level += 1;
        }
        // 3. The blob.
        let blob = Blob {
            catalog: self.catalog.clone(),
            next_data: self.next_data,
            next_node: self.next_node,
            live_data_chunks: self.live_data_chunks,
            live_data_bytes: self.live_data_bytes,
            usage: self.usage.iter().map(|(s, b)| (s.0, *b)).collect(),
            free_queue: self.free_queue.iter().map(|c| c.0).collect(),
            free_sorted: self.free_sorted.blob_json(pre_sorted),
            free_sweeping: self.free_sorted.sweeping,
        };
        let body = serde_json::to_vec(&blob)
            .map_err(|e| Error::corrupt(format!("encoding checkpoint: {e}")))?;
        let blob_addr = self.append(RecordKind::Checkpoint, &body)?;
        self.checkpoint_written();
        Ok((self.ct_root, blob_addr))
    }

    /// Loads the blob at `addr` into this state.
    pub(crate) fn load_blob(&mut self, addr: LogAddr) -> Result<()> {
        let rec = self
            .log
            .read_required(addr, &|| "checkpoint blob".to_string())?;
        if rec.header.kind != RecordKind::Checkpoint {
            return Err(Error::corrupt(
                "superblock points at a record that is not a checkpoint",
            ));
        }
        let blob: Blob = serde_json::from_slice(&rec.body)
            .map_err(|e| Error::corrupt(format!("checkpoint blob: {e}")))?;
        self.catalog = blob.catalog;
        self.next_data = blob.next_data;
        self.next_node = blob.next_node;
        self.live_data_chunks = blob.live_data_chunks;
        self.live_data_bytes = blob.live_data_bytes;
        self.usage = blob
            .usage
            .into_iter()
            .map(|(s, b)| (SegmentNo(s), b))
            .collect();
        self.free_queue = blob.free_queue.into_iter().map(ChunkId).collect();
        if self.free_queue.iter().any(|c| c.is_special()) {
            return Err(Error::corrupt(
                "checkpoint blob: the pending-free queue names a special chunk",
            ));
        }
        self.free_sorted = SortedFrees::from_blob(blob.free_sorted.as_deref(), blob.free_sweeping)?;
        Ok(())
    }
}
