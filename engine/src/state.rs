//! The engine's mutable state behind the store lock: the log, the paged
//! chunk table, the map-node cache, segment usage and the catalogue.
//! This file holds the chunk-table and node paging; `map.rs`, `checkpoint.rs`
//! and `replay.rs` add further `impl State` blocks.
//!
//! Invariant: between checkpoints only chunk-table *leaf* pages and map nodes
//! become dirty; interior chunk-table pages change only inside a checkpoint.
//! Dirty pages stay pinned in memory until a checkpoint writes them; clean
//! pages live in bounded LRU caches and are reloaded from the log on demand.

use crate::catalog::Catalog;
use crate::ct_bytes::CtBytes;
use crate::error::{Error, Result};
use crate::format::{
    CtChild, CtEntry, CtPage, Node, RecordKind, CT_CAPACITY, CT_FANOUT, CT_INTERIOR_LEVELS,
    CT_LEAF_ENTRIES, HEADER_LEN, NODE_FANOUT, PAGE_LEN,
};
use crate::log::Log;
use crate::op_stats::Cache;
use crate::types::{ChunkId, LogAddr, SegmentNo};
use lru::LruCache;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::sync::Arc;

/// Bytes a page record occupies in the log.
pub(crate) const PAGE_RECORD: u64 = (HEADER_LEN + PAGE_LEN) as u64;

/// Memory a dirty map node pins: its slots.
const DIRTY_NODE_BYTES: u64 =
    (std::mem::size_of::<Node>() + std::mem::size_of::<[u64; NODE_FANOUT as usize]>()) as u64;
/// Memory a dirty chunk-table leaf pins: its page.
const DIRTY_CT_LEAF_BYTES: u64 = PAGE_LEN as u64;
/// Memory a dirty interior chunk-table page pins: its children, decoded.
const DIRTY_CT_INNER_BYTES: u64 = std::mem::size_of::<[CtChild; CT_FANOUT as usize]>() as u64;

/// Most buffers of evicted chunk-table pages kept for reuse.
const CT_SPARE_BUFFERS: usize = 8;

/// Key of a chunk-table page: (level, index); level 0 is a leaf.
pub(crate) type CtKey = (u8, u64);

pub(crate) struct State {
    pub log: Log,
    pub catalog: Catalog,
    /// Root page of the chunk table (and its crc) as of the last checkpoint.
    pub ct_root: CtChild,
    /// Clean pages as their verified bytes (`ct_bytes.rs`).
    ct_clean: LruCache<CtKey, Arc<CtBytes>, FxBuildHasher>,
    /// Buffers of pages the cache evicted, for the next misses to read
    /// into (no allocation per miss).
    ct_spare: Vec<Box<[u8; PAGE_LEN]>>,
    /// Dirty chunk-table leaves, as page bytes (each change encodes its
    /// entry: `ct_bytes.rs`). Shared (`Arc`) so that a checkpoint can
    /// frame a snapshot of them without the lock; a leaf modified
    /// meanwhile is copied away from the snapshot (`Arc::make_mut`), which
    /// is how the checkpoint sees it changed.
    pub(crate) ct_dirty: FxHashMap<u64, Arc<CtBytes>>,
    /// Interior chunk-table pages changed in memory only: the parents of
    /// leaves a checkpoint's slices wrote before its final hold, naming
    /// the leaves' new places. Until the final hold writes them (and
    /// commits), they are the truth for [`State::ct_page_ref`]; on disk
    /// the last checkpoint's pages still lead to the old leaves.
    pub(crate) ct_dirty_inner: FxHashMap<CtKey, CtPage>,
    nodes_clean: LruCache<ChunkId, Arc<Node>, FxBuildHasher>,
    pub(crate) nodes_dirty: FxHashMap<ChunkId, Arc<Node>>,
    /// Live bytes per segment (chunks and pages still referenced).
    pub usage: BTreeMap<SegmentNo, u64>,
    pub next_data: u64,
    pub next_node: u64,
    /// The superblock generation of the last checkpoint (a copy of the
    /// superblock's, for the counter checks of `counters.rs`).
    pub generation: u64,
    /// Data chunks currently referenced (for store-level space stats).
    pub live_data_chunks: u64,
    /// Their stored bytes (compressed lengths for compressed chunks): the
    /// live bytes that are data; the rest of `usage` is metadata.
    pub live_data_bytes: u64,
    /// Log bytes appended since the last checkpoint (`checkpoint_due`).
    log_since_checkpoint: u64,
    /// Live bytes the cleaner copied forward since the store was opened.
    pub reclaim_moved: u64,
    /// Segments emptied by the cleaner, waiting for the checkpoint that
    /// commits their contents' new locations.
    pub pending_delete: Vec<SegmentNo>,
    /// Segments whose cleaning checkpoint has committed: deleted when the
    /// next one commits, since until then the older superblock slot names
    /// a checkpoint that may still need them.
    pub delete_next: Vec<SegmentNo>,
    /// Chunk-table pages the cleaner moved out of a segment: rewritten by
    /// the next checkpoint even if unchanged.
    pub ct_force: BTreeSet<CtKey>,
    /// Operation counters, shared with the store handle.
    pub(crate) counters: Arc<crate::op_stats::Counters>,
    /// The pending-free queue (a stack): references whose release is
    /// deferred to bounded steps (`free.rs`). Kept in the checkpoint blob.
    pub free_queue: Vec<ChunkId>,
    /// Data references the queue's gather steps took, waiting to be
    /// released in chunk-table order (`free_sorted.rs`). Kept in the blob.
    pub free_sorted: crate::free_sorted::SortedFrees,
    /// Misses noted instead of read, and pages pinned for the request
    /// holding the lock (`fetch.rs`).
    pub(crate) fetch: crate::fetch::FetchMode,
}

impl State {
    pub fn new(log: Log, catalog: Catalog, ct_root: CtChild, cache_pages: usize) -> State {
        let half = NonZeroUsize::new((cache_pages / 2).max(64)).expect("nonzero");
        State {
            log,
            catalog,
            ct_root,
            ct_clean: LruCache::with_hasher(half, FxBuildHasher),
            ct_spare: Vec::new(),
            ct_dirty: FxHashMap::default(),
            ct_dirty_inner: FxHashMap::default(),
            nodes_clean: LruCache::with_hasher(half, FxBuildHasher),
            nodes_dirty: FxHashMap::default(),
            usage: BTreeMap::new(),
            next_data: 0,
            next_node: 0,
            generation: 0,
            live_data_chunks: 0,
            live_data_bytes: 0,
            log_since_checkpoint: 0,
            reclaim_moved: 0,
            pending_delete: Vec::new(),
            delete_next: Vec::new(),
            ct_force: BTreeSet::new(),
            counters: Arc::default(),
            free_queue: Vec::new(),
            free_sorted: Default::default(),
            fetch: Default::default(),
        }
    }

    /// The state a superblock describes, before replay: its chunk table,
    /// its checkpoint blob and generation. Shared by every open, salvaging
    /// and surveying ones included.
    pub(crate) fn from_superblock(
        log: Log,
        sb: &crate::format::Superblock,
        cache_pages: usize,
    ) -> Result<State> {
        // A version 3 table is read only by the migration (`migrate.rs`).
        let root = if sb.version == crate::format::MIGRATED_FORMAT_VERSION {
            CtChild::NONE
        } else {
            sb.ct_root
        };
        let mut state = State::new(log, Catalog::default(), root, cache_pages);
        state.load_blob(sb.blob)?;
        if sb.version == 4 {
            state.v4_refcounts_fit()?;
        }
        state.generation = sb.generation;
        Ok(state)
    }

    /// Memory the dirty pages pin, as they are held: a map node's 510
    /// slots (about a page), a chunk-table leaf's page, an interior
    /// chunk-table page's decoded children. This, not the page count, is
    /// what the dirty limit bounds.
    pub fn dirty_bytes(&self) -> u64 {
        self.nodes_dirty.len() as u64 * DIRTY_NODE_BYTES
            + self.ct_dirty.len() as u64 * DIRTY_CT_LEAF_BYTES
            + self.ct_dirty_inner.len() as u64 * DIRTY_CT_INNER_BYTES
    }

    /// True when a checkpoint is due: more than `dirty_limit` bytes of
    /// metadata pinned dirty ([`State::dirty_bytes`]), or more than
    /// `log_limit` bytes of log appended since the last checkpoint.
    pub(crate) fn checkpoint_due(&self, dirty_limit: u64, log_limit: u64) -> bool {
        self.dirty_bytes() > dirty_limit || self.log_since_checkpoint > log_limit
    }

    /// A checkpoint has written everything: count log bytes afresh.
    pub(crate) fn checkpoint_written(&mut self) {
        self.log_since_checkpoint = 0;
    }

    /// Adds or removes live bytes of a segment.
    pub fn account(&mut self, loc: LogAddr, bytes: u64, add: bool) {
        if loc.is_none() {
            return;
        }
        let e = self.usage.entry(loc.segment()).or_insert(0);
        if add {
            *e += bytes;
        } else {
            *e = e.saturating_sub(bytes);
        }
    }

    /// Appends an aligned extent Write record ([`Log::append_aligned`]):
    /// its address and the body offset of its payloads.
    pub fn append_aligned(
        &mut self,
        head: Vec<u8>,
        payload: crate::log_direct::Payload,
    ) -> Result<(LogAddr, usize)> {
        let plen = (payload.to - payload.from) as u64;
        let (a, at) = self.log.append_aligned(head, payload)?;
        let n = (HEADER_LEN + at) as u64 + plen;
        self.log_since_checkpoint += n;
        self.counters.appended(n);
        Ok((a, at))
    }

    /// Appends a Write record from its head and payloads (see
    /// [`Log::append_write`]), counting it toward the next checkpoint.
    pub fn append_write(
        &mut self,
        kind: RecordKind,
        head: &mut [u8],
        payloads: &[&[u8]],
    ) -> Result<LogAddr> {
        let a = self.log.append_write(kind, head, payloads)?;
        let n = head.len() as u64 + payloads.iter().map(|p| p.len() as u64).sum::<u64>();
        self.log_since_checkpoint += n;
        self.counters.appended(n);
        Ok(a)
    }

    /// Appends a record, counting it toward the next checkpoint.
    pub fn append(&mut self, kind: RecordKind, body: &[u8]) -> Result<LogAddr> {
        let a = self.log.append(kind, body)?;
        self.log_since_checkpoint += (HEADER_LEN + body.len()) as u64;
        self.counters.appended((HEADER_LEN + body.len()) as u64);
        Ok(a)
    }

    /// Appends records framed and checksummed beforehand (see
    /// [`Log::append_encoded_many`]), counting them toward the next checkpoint.
    pub fn append_encoded(
        &mut self,
        kind: RecordKind,
        framed: Vec<(Vec<u8>, u32)>,
    ) -> Result<Vec<LogAddr>> {
        let n: u64 = framed.iter().map(|f| f.0.len() as u64).sum();
        let addrs = self.log.append_encoded_many(kind, framed)?;
        self.log_since_checkpoint += n;
        self.counters.appended(n);
        Ok(addrs)
    }

    // ---- chunk table ----

    /// Loads a chunk-table page from disk through its parents, verifying
    /// it against the crc its parent (or the superblock) holds for it, as
    /// its verified bytes (`ct_bytes.rs`).
    /// In no-I/O mode (`fetch.rs`) a page not in memory is noted and the
    /// lookup fails; for a write's check walk every page found is pinned
    /// for the rest of the hold.
    pub(crate) fn ct_bytes(&mut self, level: u8, index: u64) -> Result<Arc<CtBytes>> {
        let key = (level, index);
        if let Some(p) = self.fetch.pinned_ct.get(&key) {
            self.counters.lookup(Cache::Table, true);
            return Ok(p.clone());
        }
        if let Some(p) = self.ct_clean.get(&key) {
            self.counters.lookup(Cache::Table, true);
            let p = p.clone();
            if self.fetch.no_io && self.fetch.pin_hits {
                self.fetch.pinned_ct.insert(key, p.clone());
            }
            return Ok(p);
        }
        self.counters.lookup(Cache::Table, false);
        let child = self.ct_page_ref(level, index)?;
        let page = if child.loc.is_none() {
            CtBytes::of_page(&CtPage::empty(level), key)
        } else if self.fetch.no_io {
            let buf = self.ct_spare.pop().unwrap_or_else(CtBytes::buffer);
            match self.cached_read(
                |seg| crate::fetch::cached_ct_page(seg, key, child, buf),
                child.loc,
            ) {
                Some(p) => p,
                None => {
                    self.fetch
                        .misses
                        .push(crate::fetch::Need::Table { key, child });
                    return Err(crate::fetch::miss_error());
                }
            }
        } else {
            self.log.faults.page_read();
            self.counters.page_read(false);
            let seg = self.log.segment(child.loc.segment());
            crate::fetch::read_ct_page(seg.as_deref(), key, child)?
        };
        let page = Arc::new(page);
        if self.fetch.no_io && self.fetch.pin_hits {
            self.fetch.pinned_ct.insert(key, page.clone());
        }
        self.ct_clean_put(key, page.clone());
        Ok(page)
    }

    /// A clean chunk-table page decoded whole (checkpoints and checks;
    /// lookups decode only the entry they need).
    /// An interior page changed in memory by a checkpoint's slices is
    /// returned as changed.
    pub(crate) fn ct_load(&mut self, level: u8, index: u64) -> Result<Arc<CtPage>> {
        if let Some(p) = self.ct_dirty_inner.get(&(level, index)) {
            return Ok(Arc::new(p.clone()));
        }
        Ok(Arc::new(
            self.ct_bytes(level, index)?.decode((level, index))?,
        ))
    }

    /// Caches a clean chunk-table page (one fetched outside the lock).
    /// The buffer of a page it evicts is kept for the next miss.
    pub(crate) fn ct_clean_put(&mut self, key: CtKey, page: Arc<CtBytes>) {
        if let Some((_, old)) = self.ct_clean.push(key, page) {
            if self.ct_spare.len() < CT_SPARE_BUFFERS {
                if let Ok(old) = Arc::try_unwrap(old) {
                    self.ct_spare.push(old.into_buffer());
                }
            }
        }
    }

    /// Where a chunk-table page lies on disk as of the last checkpoint, and
    /// its crc: from its parent page, or the superblock for the root (for
    /// a leaf a checkpoint's slice has written since, where it was
    /// written: its parent is changed in memory).
    pub(crate) fn ct_page_ref(&mut self, level: u8, index: u64) -> Result<CtChild> {
        if level == CT_INTERIOR_LEVELS {
            if index != 0 {
                return Err(Error::new(
                    crate::ErrorKind::Exhausted,
                    format!(
                        "chunk-table page (level {level}, index {index}) lies beyond the \
                         table's capacity of {CT_CAPACITY} ids"
                    ),
                ));
            }
            return Ok(self.ct_root);
        }
        let parent = (level + 1, index / CT_FANOUT);
        if let Some(p) = self.ct_dirty_inner.get(&parent) {
            return match p {
                CtPage::Inner(cs) => Ok(cs[(index % CT_FANOUT) as usize]),
                CtPage::Leaf(_) => Err(Error::corrupt(
                    "chunk-table leaf page held as an interior page",
                )),
            };
        }
        self.ct_bytes(parent.0, parent.1)?
            .child(parent, (index % CT_FANOUT) as usize)
    }

    /// Drops a clean cached chunk-table page (after a checkpoint rewrote it).
    pub(crate) fn ct_forget(&mut self, key: CtKey) {
        self.fetch.pinned_ct.remove(&key);
        self.ct_clean.pop(&key);
    }

    /// Caches a chunk-table page just written by a checkpoint, as the
    /// record body written.
    pub(crate) fn ct_cache(&mut self, key: CtKey, page: Arc<CtBytes>) {
        self.fetch.pinned_ct.remove(&key);
        self.ct_clean_put(key, page);
    }

    /// The entry of chunk `id`.
    pub fn ct_get(&mut self, id: ChunkId) -> Result<CtEntry> {
        let (leaf, slot) = leaf_slot(id);
        if let Some(p) = self.ct_dirty.get(&leaf) {
            return p.entry(leaf, slot);
        }
        self.ct_bytes(0, leaf)?.entry(leaf, slot)
    }

    /// A copy of the entries of chunk-table leaf `leaf`.
    pub fn ct_leaf_entries(&mut self, leaf: u64) -> Result<[CtEntry; CT_LEAF_ENTRIES as usize]> {
        let page = match self.ct_dirty.get(&leaf) {
            Some(p) => p.clone(),
            None => self.ct_bytes(0, leaf)?,
        };
        match page.decode((0, leaf))? {
            CtPage::Leaf(es) => Ok(*es),
            CtPage::Inner(_) => Err(Error::corrupt("chunk-table interior page found at level 0")),
        }
    }

    /// Chunk-table leaf `leaf`, dirtied for modification: taken from the
    /// clean cache as it is (no decode), or read.
    fn ct_leaf_mut(&mut self, leaf: u64) -> Result<&mut CtBytes> {
        if !self.ct_dirty.contains_key(&leaf) {
            let page = self.ct_bytes(0, leaf)?;
            self.ct_clean.pop(&(0, leaf));
            self.fetch.pinned_ct.remove(&(0, leaf));
            self.ct_dirty.insert(leaf, page);
        }
        self.ct_dirty
            .get_mut(&leaf)
            .map(Arc::make_mut)
            .ok_or_else(|| Error::corrupt("a dirtied chunk-table leaf vanished"))
    }

    /// Changes the entry of chunk `id` with `f`, dirtying its leaf;
    /// returns what `f` returns.
    pub fn ct_update<T>(&mut self, id: ChunkId, f: impl FnOnce(&mut CtEntry) -> T) -> Result<T> {
        let (leaf, slot) = leaf_slot(id);
        let page = self.ct_leaf_mut(leaf)?;
        let mut e = page.entry(leaf, slot)?;
        let r = f(&mut e);
        page.set_entry(leaf, slot, &e);
        Ok(r)
    }

    /// Sets the entry of chunk `id`, dirtying its leaf.
    pub fn ct_set(&mut self, id: ChunkId, e: CtEntry) -> Result<()> {
        let (leaf, slot) = leaf_slot(id);
        self.ct_leaf_mut(leaf)?.set_entry(leaf, slot, &e);
        Ok(())
    }

    /// Adds one reference to each chunk in `ids` (special values skipped),
    /// touching each chunk-table leaf once per run of ids that share it:
    /// shadowing a node increments up to 510 children.
    pub fn incref_many(&mut self, ids: &[u64]) -> Result<()> {
        let mut i = 0;
        while i < ids.len() {
            let id = ChunkId(ids[i]);
            if id.is_special() {
                i += 1;
                continue;
            }
            let leaf = leaf_slot(id).0;
            let page = self.ct_leaf_mut(leaf)?;
            while i < ids.len() {
                let id = ChunkId(ids[i]);
                if id.is_special() {
                    i += 1;
                    continue;
                }
                let (in_leaf, slot) = leaf_slot(id);
                if in_leaf != leaf {
                    break;
                }
                let mut e = page.entry(leaf, slot)?;
                if !e.is_live() {
                    return Err(Error::corrupt(format!(
                        "chunk {} is referenced but free",
                        id.0
                    )));
                }
                e.refcount = e
                    .refcount
                    .checked_add(1)
                    .filter(|&r| r <= e.max_refs())
                    .ok_or_else(|| {
                        Error::new(
                            crate::ErrorKind::Unsupported,
                            format!("chunk {} has too many references", id.0),
                        )
                    })?;
                page.set_entry(leaf, slot, &e);
                i += 1;
            }
        }
        Ok(())
    }

    /// In no-I/O mode, reads a missing page with `read` when the OS page
    /// cache holds it (no wait for the device), if cached reads are on and
    /// no test hook wants to see the page read: `None` means note the miss.
    fn cached_read<T>(
        &mut self,
        read: impl FnOnce(Option<&crate::log::Segment>) -> Option<T>,
        loc: LogAddr,
    ) -> Option<T> {
        if !self.fetch.cached_reads || self.log.faults.page_hook_armed() {
            return None;
        }
        let seg = self.log.segment(loc.segment());
        let page = read(seg.as_deref())?;
        self.counters.page_read_cached();
        Some(page)
    }

    // ---- map nodes ----

    /// Reads map node `id`, verifying checksum and self-identity.
    pub fn node_get(&mut self, id: ChunkId) -> Result<Arc<Node>> {
        if let Some(n) = self.nodes_dirty.get(&id) {
            self.counters.lookup(Cache::Node, true);
            return Ok(n.clone());
        }
        if let Some(n) = self.fetch.pinned_nodes.get(&id) {
            self.counters.lookup(Cache::Node, true);
            return Ok(n.clone());
        }
        if let Some(n) = self.nodes_clean.get(&id) {
            self.counters.lookup(Cache::Node, true);
            let n = n.clone();
            if self.fetch.no_io && self.fetch.pin_hits {
                self.fetch.pinned_nodes.insert(id, n.clone());
            }
            return Ok(n);
        }
        self.counters.lookup(Cache::Node, false);
        let e = self.ct_get(id)?;
        if !e.is_live() || e.loc.is_none() {
            return Err(Error::corrupt(format!(
                "map node {} is referenced but not stored (entry {e:?})",
                id.0
            )));
        }
        let (loc, crc, len) = (e.loc, e.crc, e.stored_len);
        let n = if self.fetch.no_io {
            match self.cached_read(|seg| crate::fetch::cached_node(seg, id, loc, crc, len), loc) {
                Some(n) => n,
                None => {
                    self.fetch
                        .misses
                        .push(crate::fetch::Need::Node { id, loc, crc });
                    return Err(crate::fetch::miss_error());
                }
            }
        } else {
            self.log.faults.page_read();
            self.counters.page_read(false);
            let seg = self.log.segment(loc.segment());
            crate::fetch::read_node(seg.as_deref(), self.log.seg_size, id, loc, crc)?
        };
        let n = Arc::new(n);
        if self.fetch.no_io && self.fetch.pin_hits {
            self.fetch.pinned_nodes.insert(id, n.clone());
        }
        self.nodes_clean.put(id, n.clone());
        Ok(n)
    }

    /// Replaces the contents of node `id` (which must be exclusively owned).
    pub fn node_put(&mut self, id: ChunkId, n: Arc<Node>) {
        self.fetch.pinned_nodes.remove(&id);
        self.nodes_clean.pop(&id);
        self.nodes_dirty.insert(id, n);
    }

    /// Caches a node just written by a checkpoint.
    pub fn node_cache(&mut self, id: ChunkId, n: Arc<Node>) {
        self.nodes_clean.put(id, n);
    }

    /// Forgets a freed node.
    pub fn node_forget(&mut self, id: ChunkId) {
        self.fetch.pinned_nodes.remove(&id);
        self.nodes_clean.pop(&id);
        self.nodes_dirty.remove(&id);
    }

    /// Allocates a new node holding `n`, with refcount 1.
    pub fn node_alloc(&mut self, n: Node) -> Result<ChunkId> {
        // Never reached: client operations stop at `NODE_ID_LIMIT`, far below.
        if self.next_node >= crate::counters::NODE_ID_END {
            return Err(Error::new(
                crate::ErrorKind::Exhausted,
                "map node ids are used up",
            ));
        }
        let id = ChunkId::node(self.next_node);
        self.next_node += 1;
        self.ct_set(
            id,
            CtEntry {
                loc: LogAddr::NONE,
                refcount: 1,
                crc: 0,
                stored_len: PAGE_LEN as u32,
                flags: 0,
                nblocks: 0,
                gap: 0,
            },
        )?;
        self.node_put(id, Arc::new(n));
        Ok(id)
    }
}

/// The chunk-table leaf holding chunk `id`'s entry, and its slot there.
pub(crate) fn leaf_slot(id: ChunkId) -> (u64, usize) {
    let i = id.table_index();
    (i / CT_LEAF_ENTRIES, (i % CT_LEAF_ENTRIES) as usize)
}

/// The chunk whose entry is `slot` of chunk-table leaf `leaf` (the inverse
/// of [`leaf_slot`]).
pub(crate) fn chunk_at(leaf: u64, slot: usize) -> ChunkId {
    ChunkId(leaf * CT_LEAF_ENTRIES + slot as u64)
}
