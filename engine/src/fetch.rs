//! Metadata misses read outside the state lock (docs/design.md, "Locking").
//!
//! Client I/O resolves under the lock with the state in *no-I/O mode*: a
//! map node or chunk-table page that is not in memory is not read; the
//! lookup notes what it needs (the page's key, its [`LogAddr`] and the crc
//! its parent holds) and fails. [`Store::lock_resolved`] then releases the
//! lock, reads and verifies the noted pages, takes the lock again, installs
//! each page only if its parent still names that same record (pages at a
//! `LogAddr` never change, but a checkpoint or the cleaner may have given
//! the page a new place meanwhile: then it is dropped and fetched again),
//! and retries. The pages fetched for one request stay *pinned* for its
//! retries (looked up before the LRU, which could evict them under a tiny
//! cache), so every retry makes progress.
//!
//! Writes first run a read-only walk ([`State::prefetch_update`]) over
//! everything applying their record will touch; only when that walk found
//! every page in memory is the record appended and applied, in the same
//! lock hold: a Write or Zero record is never appended unless applying it
//! cannot meet a miss.

use crate::ct_bytes::{no_record, CtBytes};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    slot_chunk, CtChild, Node, RecordKind, CT_CAPACITY, CT_LEAF_ENTRIES, PAGE_LEN,
};
use crate::log::Segment;
use crate::map::entry_span;
use crate::op_stats::Holder;
use crate::state::{CtKey, State};
use crate::store::Store;
use crate::types::{ChunkId, LogAddr, ObjectId};
use parking_lot::MutexGuard;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::Instant;

/// A page a lookup in no-I/O mode needed and did not find in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// A chunk-table page, where its parent (or the superblock) says.
    Table { key: CtKey, child: CtChild },
    /// A map node, where its chunk-table entry says.
    Node { id: ChunkId, loc: LogAddr, crc: u32 },
}

/// Per-lock-hold fetch state kept in [`State`].
#[derive(Default)]
pub(crate) struct FetchMode {
    /// Lookups must not read: a miss is noted in `misses` and fails.
    pub no_io: bool,
    /// In no-I/O mode, pin every page found too (a write's check walk:
    /// its apply must find them all in the same hold).
    pub pin_hits: bool,
    pub misses: Vec<Need>,
    /// Pages fetched for the request holding the lock, valid for this
    /// hold only (cleared when it ends).
    pub pinned_ct: FxHashMap<CtKey, Arc<CtBytes>>,
    pub pinned_nodes: FxHashMap<ChunkId, Arc<Node>>,
    /// A miss whose page is wholly in the OS page cache is read at once,
    /// under the lock, without waiting for the device
    /// ([`StoreOptions::cached_metadata_reads`](crate::StoreOptions)).
    pub cached_reads: bool,
}

/// The error a lookup in no-I/O mode fails with (never seen by callers:
/// [`Store::lock_resolved`] fetches and retries).
pub(crate) fn miss_error() -> Error {
    Error::new(ErrorKind::Io, "metadata page not in memory")
}

/// Pages one request fetched outside the lock, with where they were read.
#[derive(Default)]
pub(crate) struct Fetched {
    ct: FxHashMap<CtKey, (CtChild, Arc<CtBytes>)>,
    nodes: FxHashMap<ChunkId, (LogAddr, u32, Arc<Node>)>,
    /// Also pin the pages found in the caches (see [`FetchMode::pin_hits`]).
    pin_hits: bool,
}

impl Fetched {
    /// For a request that applies what its check walk looked at in the
    /// same hold: every page the walk finds stays pinned for the hold.
    pub(crate) fn for_apply() -> Fetched {
        Fetched {
            pin_hits: true,
            ..Default::default()
        }
    }
}

/// Reads and verifies the chunk-table page `key` at `child` from `seg`,
/// waiting for the device.
pub(crate) fn read_ct_page(seg: Option<&Segment>, key: CtKey, child: CtChild) -> Result<CtBytes> {
    let mut body = CtBytes::buffer();
    let hd = match seg {
        Some(s) => s.read_page_into(child.loc.offset(), &mut body[..])?,
        None => None,
    };
    let hd = hd.ok_or_else(|| no_record(key, child.loc))?;
    CtBytes::verify(body, &hd, key, child)
}

/// Chunk-table page `key` at `child`, if the OS page cache holds all of its
/// record (read without waiting for the device) and it verifies; `None`
/// sends the caller the slow way, which reports damage with context.
/// `body` is the buffer to read into.
pub(crate) fn cached_ct_page(
    seg: Option<&Segment>,
    key: CtKey,
    child: CtChild,
    mut body: Box<[u8; PAGE_LEN]>,
) -> Option<CtBytes> {
    let hd = seg?.read_page_cached_into(child.loc.offset(), &mut body[..])?;
    CtBytes::verify(body, &hd, key, child).ok()
}

/// Reads and verifies map node `id` at `loc` (crc `crc`) from `seg`.
pub(crate) fn read_node(
    seg: Option<&Segment>,
    seg_size: u64,
    id: ChunkId,
    loc: LogAddr,
    crc: u32,
) -> Result<Node> {
    let what = || format!("map node {}", id.0);
    let rec = read_at(seg, seg_size, loc, &what)?;
    verify_node(&rec, id, crc)
}

/// Checks that `rec` is map node `id` with body crc `crc`, and decodes it.
fn verify_node(rec: &crate::log::ReadRecord, id: ChunkId, crc: u32) -> Result<Node> {
    if rec.header.kind != RecordKind::Node || crc32fast::hash(&rec.body) != crc {
        return Err(Error::corrupt(format!(
            "map node {} fails its checksum",
            id.0
        )));
    }
    Node::decode(&rec.body, id)
}

/// Map node `id` at `loc` (a record body of `len` bytes), if the OS page
/// cache holds all of its record and it verifies (as [`cached_ct_page`]:
/// read straight into its buffer, one crc for the header's and the
/// entry's).
pub(crate) fn cached_node(
    seg: Option<&Segment>,
    id: ChunkId,
    loc: LogAddr,
    crc: u32,
    len: u32,
) -> Option<Node> {
    let mut body = vec![0u8; len as usize];
    let hd = seg?.read_page_cached_into(loc.offset(), &mut body)?;
    let ok = hd.kind == RecordKind::Node
        && hd.crc_len == hd.body_len
        && crc32fast::hash(&body) == crc
        && hd.body_crc == crc;
    ok.then(|| Node::decode(&body, id).ok()).flatten()
}

fn read_at(
    seg: Option<&Segment>,
    seg_size: u64,
    loc: LogAddr,
    what: &dyn Fn() -> String,
) -> Result<crate::log::ReadRecord> {
    let rec = match seg {
        Some(s) => s.read_record(loc.offset(), None, seg_size)?,
        None => None,
    };
    rec.ok_or_else(|| {
        Error::corrupt(format!(
            "{}: no valid record at segment {} offset {}",
            what(),
            loc.segment().0,
            loc.offset()
        ))
    })
}

/// The state lock held by client I/O (or a cleaner batch, or a free
/// step): clears the pinned pages and counts the hold time when dropped.
pub(crate) struct Held<'a> {
    /// Always `Some` until dropped (taken to be unlocked fairly).
    st: Option<MutexGuard<'a, State>>,
    who: Holder,
    since: Instant,
    /// Pages read under the lock before this hold began.
    locked_reads: u64,
    /// Hand the lock straight to a waiting thread when dropped.
    fair: bool,
}

impl<'a> Held<'a> {
    pub(crate) fn new(st: MutexGuard<'a, State>, who: Holder) -> Held<'a> {
        let locked_reads = st.counters.pages_locked();
        Held {
            st: Some(st),
            who,
            since: Instant::now(),
            locked_reads,
            fair: false,
        }
    }

    /// Ends the hold handing the lock straight to a waiting thread, if
    /// any (`MutexGuard::unlock_fair`): a background thread that takes
    /// the lock again at once would otherwise mostly win it back before a
    /// woken client runs.
    pub(crate) fn unlock_fair(mut self) {
        self.fair = true;
    }
}

impl std::ops::Deref for Held<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.st.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.st.as_mut().expect("held until dropped")
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let Some(mut st) = self.st.take() else {
            return;
        };
        let f = &mut st.fetch;
        f.no_io = false;
        f.pin_hits = false;
        f.misses.clear();
        f.pinned_ct.clear();
        f.pinned_nodes.clear();
        let c = &st.counters;
        c.held_in(
            self.who,
            "a client request, cleaner batch or free step",
            self.since.elapsed(),
        );
        if matches!(self.who, Holder::Io) {
            // Only the holder reads under the lock: the difference is ours.
            c.io_pages_locked(c.pages_locked() - self.locked_reads);
        }
        if self.fair {
            MutexGuard::unlock_fair(st);
        }
    }
}

impl State {
    /// Installs (pins, and caches) the pages of `fetched` whose parents
    /// still name the record they were read from; drops the others.
    fn install(&mut self, fetched: &mut Fetched) {
        self.fetch.no_io = true;
        // Parents first: a page's parent may itself be one just fetched.
        let mut keys: Vec<CtKey> = fetched.ct.keys().copied().collect();
        keys.sort_by(|a, b| b.cmp(a));
        for key in keys {
            let (child, page) = fetched.ct[&key].clone();
            // A dirty page (a leaf, or an interior page a checkpoint's
            // slice changed) is not replaced by what was read.
            let dirty = if key.0 == 0 {
                self.ct_dirty.contains_key(&key.1)
            } else {
                self.ct_dirty_inner.contains_key(&key)
            };
            let current = (!dirty)
                .then(|| self.ct_page_ref(key.0, key.1).ok())
                .flatten();
            if current == Some(child) {
                self.fetch.pinned_ct.insert(key, page.clone());
                self.ct_clean_put(key, page);
            } else {
                fetched.ct.remove(&key);
                self.counters.fetch_retry();
            }
        }
        let ids: Vec<ChunkId> = fetched.nodes.keys().copied().collect();
        for id in ids {
            let (loc, crc, node) = fetched.nodes[&id].clone();
            let current = if self.nodes_dirty.contains_key(&id) {
                None
            } else {
                self.ct_get(id).ok()
            };
            if current.is_some_and(|e| e.is_live() && e.loc == loc && e.crc == crc) {
                self.fetch.pinned_nodes.insert(id, node.clone());
                self.node_cache(id, node);
            } else {
                fetched.nodes.remove(&id);
                self.counters.fetch_retry();
            }
        }
        self.fetch.misses.clear();
        self.fetch.no_io = false;
    }

    /// Looks up the chunk-table entries of `ids` (special ones skipped),
    /// one lookup per leaf run, so that their leaves are known in memory.
    pub(crate) fn touch_ids(&mut self, ids: impl IntoIterator<Item = ChunkId>) -> Result<()> {
        let mut last = None;
        for id in ids {
            if id.is_special() {
                continue;
            }
            let leaf = id.table_index() / CT_LEAF_ENTRIES;
            if last != Some(leaf) {
                self.ct_get(id)?;
                last = Some(leaf);
            }
        }
        Ok(())
    }

    /// A read-only walk over every page applying an update of blocks
    /// `[first, first+n)` of `id` will look up (with `uniform`, the range
    /// becomes that special value; else per-block values, `new_data` of
    /// them new data chunks): it mirrors `map_update`, `own`, `release`
    /// and `decref` without changing anything. Run in no-I/O mode it fails
    /// at the first page not in memory; when it succeeds, the apply that
    /// follows in the same lock hold reads nothing.
    pub(crate) fn prefetch_update(
        &mut self,
        id: ObjectId,
        first: u64,
        n: u64,
        uniform: Option<ChunkId>,
        new_data: u64,
    ) -> Result<()> {
        let e = self.catalog.get(id)?;
        let (root, depth) = (e.root(), e.depth);
        let mut allocs = 0u64;
        let walk = Walk {
            start: first,
            end: first + n,
            uniform,
        };
        self.prefetch_walk(&walk, root, depth - 1, 0, false, &mut allocs)?;
        let (nd, nn) = (self.next_data, self.next_node);
        // Ids past the table's capacity are refused by `admit`, not here.
        let in_table = |c: &ChunkId| c.table_index() < CT_CAPACITY;
        self.touch_ids(
            (0..new_data)
                .map(|k| ChunkId::data(nd + k))
                .filter(in_table),
        )?;
        self.touch_ids((0..allocs).map(|k| ChunkId::node(nn + k)).filter(in_table))
    }

    fn prefetch_walk(
        &mut self,
        w: &Walk,
        slot: ChunkId,
        level: u8,
        base: u64,
        shared: bool,
        allocs: &mut u64,
    ) -> Result<()> {
        let span = entry_span(level + 1);
        if let Some(v) = w.uniform {
            if w.start <= base && w.end >= base.saturating_add(span) {
                // `release`: the entry's refcount decides queue or decref.
                return self.touch_ids([slot]);
            }
            if slot == v {
                return Ok(());
            }
        }
        let child_span = entry_span(level);
        let lo = ((w.start.max(base) - base) / child_span) as usize;
        let hi = ((w.end.min(base.saturating_add(span)) - base).div_ceil(child_span)) as usize;
        if slot.is_special() {
            // A new node filled with `slot`: its children are special.
            *allocs += 1;
            if level > 0 {
                for i in lo..hi {
                    let cb = base + i as u64 * child_span;
                    self.prefetch_walk(w, slot, level - 1, cb, false, allocs)?;
                }
            }
            return Ok(());
        }
        if !slot.is_node() {
            // Corrupt: the apply reports it as before.
            return Ok(());
        }
        let e = self.ct_get(slot)?;
        let node = self.node_get(slot)?;
        if node.level != level {
            return Ok(());
        }
        // Shadowed when shared: the copy takes a reference on each child
        // (whose entries must be in memory), so every child is shared too.
        let shadow = shared || e.refcount != 1;
        if shadow {
            self.touch_ids(node.slots.iter().map(|&c| slot_chunk(level, c)))?;
            *allocs += 1;
        }
        if level == 0 {
            // The extents replaced are released.
            return self.touch_ids(node.slots[lo..hi].iter().map(|&c| slot_chunk(0, c)));
        }
        for i in lo..hi {
            let c = ChunkId(node.slots[i]);
            let cb = base + i as u64 * child_span;
            self.prefetch_walk(w, c, level - 1, cb, shadow, allocs)?;
        }
        Ok(())
    }
}

/// The range and fill of a [`State::prefetch_update`] walk.
struct Walk {
    start: u64,
    end: u64,
    uniform: Option<ChunkId>,
}

impl Store {
    /// Runs `f` under the state lock in no-I/O mode; while it fails on
    /// metadata misses, releases the lock, reads the missing pages outside
    /// it, and runs `f` again with them pinned. Returns the lock still held
    /// (pinned pages included) with `f`'s result, so that the caller can
    /// apply what `f` checked in the same hold.
    pub(crate) fn lock_resolved<T>(
        &self,
        fetched: &mut Fetched,
        f: impl FnMut(&mut State) -> Result<T>,
    ) -> Result<(Held<'_>, T)> {
        self.lock_resolved_as(Holder::Io, fetched, f)
    }

    /// Runs `f` under the state lock in no-I/O mode only if nothing has to
    /// wait: the lock is free now, and every page `f` looks up is in memory
    /// or in the OS page cache. `None` when the lock is busy or `f` met a
    /// miss (nothing was read from the device): run it with
    /// [`Store::lock_resolved`] from a thread that may block.
    pub(crate) fn try_resolved<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T>,
    ) -> Option<Result<(Held<'_>, T)>> {
        let mut st = Held::new(self.try_state()?, Holder::Io);
        st.fetch.no_io = true;
        let r = f(&mut st);
        st.fetch.no_io = false;
        if !st.fetch.misses.is_empty() {
            return None;
        }
        Some(r.map(|v| (st, v)))
    }

    /// [`Store::lock_resolved`] for `who` (client I/O, or a cleaner batch).
    pub(crate) fn lock_resolved_as<T>(
        &self,
        who: Holder,
        fetched: &mut Fetched,
        mut f: impl FnMut(&mut State) -> Result<T>,
    ) -> Result<(Held<'_>, T)> {
        loop {
            let mut st = Held::new(self.state(), who);
            st.install(fetched);
            st.fetch.no_io = true;
            st.fetch.pin_hits = fetched.pin_hits;
            let r = f(&mut st);
            st.fetch.no_io = false;
            let misses = std::mem::take(&mut st.fetch.misses);
            let e = match r {
                Ok(v) => return Ok((st, v)),
                Err(e) if misses.is_empty() => return Err(e),
                Err(e) => e,
            };
            drop(e);
            let seg_size = st.log.seg_size;
            let faults = st.log.faults.clone();
            let segs: Vec<Option<Arc<Segment>>> = misses
                .iter()
                .map(|m| {
                    let loc = match m {
                        Need::Table { child, .. } => child.loc,
                        Need::Node { loc, .. } => *loc,
                    };
                    st.log.segment(loc.segment())
                })
                .collect();
            drop(st);
            let mut failed = false;
            for (m, seg) in misses.into_iter().zip(segs) {
                faults.page_read();
                self.counters().page_read(true);
                match m {
                    Need::Table { key, child } => match read_ct_page(seg.as_deref(), key, child) {
                        Ok(p) => {
                            fetched.ct.insert(key, (child, Arc::new(p)));
                        }
                        Err(_) => failed = true,
                    },
                    Need::Node { id, loc, crc } => {
                        match read_node(seg.as_deref(), seg_size, id, loc, crc) {
                            Ok(n) => {
                                fetched.nodes.insert(id, (loc, crc, Arc::new(n)));
                            }
                            Err(_) => failed = true,
                        }
                    }
                }
            }
            if failed {
                // A page failing verification may have moved meanwhile, or
                // be damaged: `f` runs once more reading under the lock,
                // which reports damage with its full context as before.
                let mut st = Held::new(self.state(), who);
                st.install(fetched);
                let v = f(&mut st)?;
                return Ok((st, v));
            }
        }
    }
}
