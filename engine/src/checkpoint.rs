//! Checkpoints: write every dirty map node and chunk-table page out of place,
//! then the checkpoint blob (catalogue, counters, segment usage), fdatasync
//! the log, and flip the superblock slot (then fdatasync it). Until the
//! flip, the previous checkpoint plus the log describe the store; after it,
//! the new one does. See docs/design.md, "Commit protocol".

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::format::{CtChild, CtPage, Node, RecordKind, CT_FANOUT, CT_INTERIOR_LEVELS, HEADER_LEN};
use crate::state::{State, PAGE_RECORD};
use crate::types::{ChunkId, LogAddr, SegmentNo};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Dirty map nodes encoded ahead of a checkpoint, outside the state lock:
/// by id, the node as it was (the very `Arc`), its record framed with room
/// for the header, and its body's crc32.
#[derive(Default)]
pub(crate) struct Encoded(FxHashMap<ChunkId, (Arc<Node>, Vec<u8>, u32)>);

impl Encoded {
    /// Encodes `nodes` (taken with [`State::dirty_nodes`]); runs without
    /// the state lock.
    pub fn new(nodes: Vec<(ChunkId, Arc<Node>)>) -> Encoded {
        Encoded(
            nodes
                .into_iter()
                .map(|(id, n)| {
                    let (framed, crc) = encode_node(id, &n);
                    (id, (n, framed, crc))
                })
                .collect(),
        )
    }

    /// Node `id`'s framed record and crc, if encoded from `node` itself
    /// (a node changed since is a different `Arc`: the snapshot's clone
    /// keeps the old one from being modified in place).
    fn take(&mut self, id: ChunkId, node: &Arc<Node>) -> Option<(Vec<u8>, u32)> {
        match self.0.remove(&id) {
            Some((n, framed, crc)) if Arc::ptr_eq(&n, node) => Some((framed, crc)),
            _ => None,
        }
    }
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
    /// The dirty map nodes, for [`Encoded::new`] (cheap: `Arc` clones).
    pub(crate) fn dirty_nodes(&self) -> Vec<(ChunkId, Arc<Node>)> {
        self.nodes_dirty
            .iter()
            .map(|(id, n)| (*id, n.clone()))
            .collect()
    }

    /// Writes dirty pages and the blob; returns (chunk-table root, blob).
    /// Nodes found unchanged in `pre` are appended as encoded there; the
    /// others are encoded now.
    /// The caller syncs the log and writes the superblock. This is the part
    /// of a checkpoint run under the state lock: its time is counted as a
    /// checkpoint's lock hold.
    pub(crate) fn write_checkpoint(&mut self, pre: Encoded) -> Result<(CtChild, LogAddr)> {
        let started = std::time::Instant::now();
        let r = self.write_checkpoint_pages(pre);
        self.counters
            .held(crate::op_stats::Holder::Checkpoint, started.elapsed());
        r
    }

    fn write_checkpoint_pages(&mut self, mut pre: Encoded) -> Result<(CtChild, LogAddr)> {
        // 1. Map nodes: each dirty node goes to a fresh place in the log,
        // most of them encoded before the lock was taken (`Encoded`).
        // A node leaves the dirty set only once written, so a failed
        // checkpoint leaves memory consistent (and the store fail-stopped).
        let mut ids: Vec<ChunkId> = self.nodes_dirty.keys().copied().collect();
        ids.sort();
        let framed: Vec<(Vec<u8>, u32)> = ids
            .iter()
            .map(|id| {
                let node = &self.nodes_dirty[id];
                pre.take(*id, node)
                    .unwrap_or_else(|| encode_node(*id, node))
            })
            .collect();
        drop(pre);
        // Each body's crc and length (dense page or runs: `Node::encode`).
        let sums: Vec<(u32, u32)> = framed
            .iter()
            .map(|f| (f.1, (f.0.len() - HEADER_LEN) as u32))
            .collect();
        let addrs = self.append_encoded(RecordKind::Node, framed)?;
        for ((id, (crc, len)), addr) in ids.into_iter().zip(sums).zip(addrs) {
            let node = self.nodes_dirty[&id].clone();
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
        // 2. Chunk-table pages, leaves first, then each parent level. Dirty
        // leaves stay pinned until the whole tree is written: until then
        // the old parents on disk do not lead to the new leaves.
        let mut level_pages: BTreeMap<u64, CtPage> =
            self.ct_dirty.iter().map(|(k, p)| (*k, p.clone())).collect();
        let dirty_leaves: Vec<u64> = level_pages.keys().copied().collect();
        let force = std::mem::take(&mut self.ct_force);
        for &(lvl, idx) in &force {
            if lvl == 0 && !level_pages.contains_key(&idx) {
                let p = (*self.ct_load(0, idx)?).clone();
                level_pages.insert(idx, p);
            }
        }
        let mut level = 0u8;
        loop {
            // Each page written is named by its parent with its crc.
            // The level's pages are appended together, many per syscall.
            let mut written: BTreeMap<u64, CtChild> = BTreeMap::new();
            let mut to_write: Vec<(u64, CtPage)> = Vec::new();
            for (idx, page) in level_pages {
                let old = self.ct_page_ref(level, idx)?;
                self.account(old.loc, PAGE_RECORD, false);
                self.ct_forget((level, idx));
                if page.is_empty() && level < CT_INTERIOR_LEVELS {
                    written.insert(idx, CtChild::NONE);
                } else {
                    to_write.push((idx, page));
                }
            }
            let bodies: Vec<Vec<u8>> = to_write.iter().map(|(i, p)| p.encode(level, *i)).collect();
            let addrs = self.append_many(RecordKind::CtPage, &bodies)?;
            for (((idx, _), body), a) in to_write.into_iter().zip(bodies).zip(addrs) {
                self.account(a, PAGE_RECORD, true);
                self.ct_cache((level, idx), &body);
                let crc = crc32fast::hash(&body);
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
                break;
            }
            // Parents of what was written, plus interior pages forced by the cleaner.
            let mut parents: BTreeMap<u64, CtPage> = BTreeMap::new();
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
        Ok(())
    }
}
