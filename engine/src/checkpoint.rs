//! Checkpoints: write every dirty map node and chunk-table page out of place,
//! then the checkpoint blob (catalogue, counters, segment usage), fdatasync
//! the log, and flip the superblock slot (then fdatasync it). Until the
//! flip, the previous checkpoint plus the log describe the store; after it,
//! the new one does. See docs/design.md, "Commit protocol".

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::format::{CtChild, CtPage, RecordKind, CT_FANOUT, CT_INTERIOR_LEVELS};
use crate::state::{State, PAGE_RECORD};
use crate::types::{ChunkId, LogAddr, SegmentNo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The checkpoint blob, JSON in a Checkpoint record.
#[derive(Serialize, Deserialize)]
pub(crate) struct Blob {
    pub catalog: Catalog,
    pub next_data: u64,
    pub next_node: u64,
    #[serde(default)]
    pub live_data_chunks: u64,
    /// Their stored bytes (format version 4).
    #[serde(default)]
    pub live_data_bytes: u64,
    pub usage: Vec<(u32, u64)>,
    /// The pending-free queue, bottom first (format version 3; absent in
    /// older blobs).
    #[serde(default)]
    pub free_queue: Vec<u64>,
}

impl State {
    /// Writes dirty pages and the blob; returns (chunk-table root, blob).
    /// The caller syncs the log and writes the superblock. This is the part
    /// of a checkpoint run under the state lock: its time is counted as a
    /// checkpoint's lock hold.
    pub(crate) fn write_checkpoint(&mut self) -> Result<(CtChild, LogAddr)> {
        let started = std::time::Instant::now();
        let r = self.write_checkpoint_pages();
        self.counters
            .held(crate::op_stats::Holder::Checkpoint, started.elapsed());
        r
    }

    fn write_checkpoint_pages(&mut self) -> Result<(CtChild, LogAddr)> {
        // 1. Map nodes: each dirty node goes to a fresh place in the log.
        // A node leaves the dirty set only once written, so a failed
        // checkpoint leaves memory consistent (and the store fail-stopped).
        // They are appended together, many per syscall.
        let mut ids: Vec<ChunkId> = self.nodes_dirty.keys().copied().collect();
        ids.sort();
        let bodies: Vec<Vec<u8>> = ids
            .iter()
            .map(|id| self.nodes_dirty[id].encode(*id))
            .collect();
        let addrs = self.append_many(RecordKind::Node, &bodies)?;
        for ((id, body), addr) in ids.into_iter().zip(bodies).zip(addrs) {
            let node = self.nodes_dirty[&id].clone();
            self.nodes_dirty.remove(&id);
            let mut e = self.ct_get(id)?;
            self.account(e.loc, PAGE_RECORD, false);
            e.loc = addr;
            e.crc = crc32fast::hash(&body);
            self.ct_set(id, e)?;
            self.account(addr, PAGE_RECORD, true);
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
            for (((idx, page), body), a) in to_write.into_iter().zip(bodies).zip(addrs) {
                self.account(a, PAGE_RECORD, true);
                self.ct_cache((level, idx), page);
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
