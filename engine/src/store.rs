//! [`Store`]: the engine's public handle. It owns a data directory (locked
//! against other processes), serializes metadata changes behind one lock,
//! runs data reads and checksum work outside it, group-commits flushes, and
//! fail-stops after any durability failure.

use crate::catalog::{CatalogOp, ObjectInfo, ObjectKind, ObjectUpdate};
use crate::error::{Error, ErrorKind, Result};
use crate::fault::IoOp;
use crate::format::{
    encode_write_head, RecordKind, Superblock, WriteEntry, ZeroBody, FORMAT_VERSION, HEADER_LEN,
    SUPER_SLOT_LEN, WRITE_ENTRY, WRITE_FIXED,
};
use crate::io::{fetch_blocks, prepare, Prepared};
use crate::log::{bury, sync_segments, Log};
use crate::state::State;
use crate::types::{ChunkId, LogAddr, ObjectId, BLOCK_SIZE, MAX_VOLUME_SIZE};
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Most blocks one Write record carries (less for small segments).
const MAX_RECORD_BLOCKS: u64 = 256;

fn record_blocks(seg_size: u64) -> u64 {
    ((seg_size / 2) / (BLOCK_SIZE + WRITE_ENTRY as u64)).clamp(1, MAX_RECORD_BLOCKS)
}

/// How a store is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Create the data directory and an empty store when absent.
    pub create: bool,
    /// Segment file size for a new store (existing stores keep theirs).
    pub segment_size: u64,
    /// Bound on cached metadata pages, in bytes.
    pub cache_bytes: u64,
    /// A checkpoint runs when dirty metadata exceeds this many bytes.
    pub dirty_limit_bytes: u64,
    /// A checkpoint runs when this many log bytes were written since the last.
    pub checkpoint_log_bytes: u64,
    /// Retired segment files kept for reuse (0: delete them at once).
    pub spare_segments: usize,
    /// Run housekeeping's reclaim on its own thread instead of in the
    /// write that calls for it (which then need not wait for the
    /// checkpoint's syncs). Off by default: tests get a deterministic order.
    pub background_reclaim: bool,
    /// Work off the pending-free queue (deletes, reverts, trims of whole
    /// subtrees) on a thread of its own, so those operations return at
    /// once (`free.rs`). Off by default: the operation frees before it
    /// returns, and tests get a deterministic order.
    pub background_free: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            create: true,
            segment_size: 64 << 20,
            cache_bytes: 256 << 20,
            dirty_limit_bytes: 64 << 20,
            checkpoint_log_bytes: 1 << 30,
            spare_segments: 16,
            background_reclaim: false,
            background_free: false,
        }
    }
}

/// One extent of an allocation map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Byte offset.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// What the range holds.
    pub kind: ExtentKind,
}

/// What an extent holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentKind {
    /// Stored data.
    Data,
    /// Reads as zero, nothing stored, but not a hole (written zeroes).
    Zero,
    /// Unallocated: reads as zero.
    Hole,
}

struct SuperState {
    file: File,
    generation: u64,
    store_id: [u8; 16],
    segment_size: u32,
}

struct Inner {
    dir: PathBuf,
    state: Mutex<State>,
    sb: Mutex<SuperState>,
    failed: AtomicBool,
    sync_lock: Mutex<()>,
    /// Serializes checkpoints (and reclaim and check, which checkpoint):
    /// taken before the state lock.
    ckpt_lock: Mutex<()>,
    /// Segment count when housekeeping last looked.
    segs_seen: AtomicU64,
    /// The background reclaim thread, if one ran.
    reclaimer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Live bytes after the last disk-full reclaim (`u64::MAX`: none yet);
    /// another is tried only once live data has shrunk below it.
    room_live: AtomicU64,
    durable_seq: AtomicU64,
    /// The free thread's controls (`free.rs`).
    free: crate::free::FreeCtl,
    record_blocks: u64,
    opts: StoreOptions,
    /// Operation counters (the state holds them too).
    counters: Arc<crate::op_stats::Counters>,
    _lock: File,
}

/// A handle on an open store; cheap to clone and share between threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (or with `opts.create`, creates) the store in `dir`, replaying
    /// the log since the last checkpoint. A damaged log record that is not
    /// a torn tail fails the open (`Corrupt`, naming it) and nothing is
    /// discarded: see [`Store::survey_log`] and [`Store::open_salvaging`].
    pub fn open(dir: impl AsRef<Path>, opts: StoreOptions) -> Result<Store> {
        Ok(Self::open_with(dir.as_ref(), opts, false, Arc::default())?.0)
    }

    /// Like [`Store::open`], recording every file operation from the start,
    /// recovery's own included (tests only: simulated power cuts during
    /// recovery). [`Store::record_io`] returns the recording.
    #[cfg(feature = "fault-injection")]
    pub fn open_recording(dir: impl AsRef<Path>, opts: StoreOptions) -> Result<Store> {
        let faults = Arc::new(crate::fault::Faults::default());
        faults.set_recording(true);
        Ok(Self::open_with(dir.as_ref(), opts, false, faults)?.0)
    }

    /// [`Store::open`], or with `salvage` [`Store::open_salvaging`]; file
    /// operations go through `faults` (recorded or armed in tests).
    pub(crate) fn open_with(
        dir: &Path,
        opts: StoreOptions,
        salvage: bool,
        faults: Arc<crate::fault::Faults>,
    ) -> Result<(Store, Vec<crate::LostRecord>)> {
        let dir = dir.to_path_buf();
        if !dir.join("superblock").exists() {
            if !opts.create {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("no store in {}", dir.display()),
                ));
            }
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let lock = crate::init::lock_dir(&dir)?;
        let segdir = dir.join("segments");
        let sb_path = dir.join("superblock");
        if !sb_path.exists() {
            crate::init::init(&dir, &opts)?;
        }
        let sb_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&sb_path)
            .map_err(|e| Error::io(format!("opening {}", sb_path.display()), e))?;
        let sb = read_superblock(&sb_file, &sb_path)?;
        // A version 1 store is read through its old chunk table, then
        // migrated and committed by the checkpoint below (`migrate.rs`).
        let v1 = sb.version < 2;
        // Any older version is marked current by the checkpoint below
        // (version 2 differs only in having no pending-free queue).
        let old_version = sb.version < FORMAT_VERSION;
        let log = Log::open(&segdir, u64::from(sb.segment_size), faults)?;
        let cache_pages = (opts.cache_bytes / 4096) as usize;
        let mut state = State::from_superblock(log, &sb, cache_pages)?;
        let replayed = state.replay(sb.replay_start, sb.replay_seq, salvage)?;
        let next_seq = replayed.next_seq;
        state.log.start_append(replayed.tail, next_seq)?;
        // The post-replay checkpoint commits what replay read, which a
        // killed process may have left unsynced in any segment since the
        // replay point: it syncs them all.
        state.log.replayed(sb.replay_start.segment(), sb.replay_seq);
        state.log.reserve = space_reserve(u64::from(sb.segment_size), &opts);
        state.log.set_max_spares(opts.spare_segments)?;
        if v1 {
            tracing::info!(
                version = sb.version,
                "migrating the store to on-disk format version {FORMAT_VERSION}"
            );
            state
                .migrate_v1()
                .map_err(|e| e.with_context("migrating a version 1 store"))?;
        }
        let counters = state.counters.clone();
        let store = Store {
            inner: Arc::new(Inner {
                counters,
                dir,
                state: Mutex::new(state),
                sb: Mutex::new(SuperState {
                    file: sb_file,
                    generation: sb.generation,
                    store_id: sb.store_id,
                    segment_size: sb.segment_size,
                }),
                failed: AtomicBool::new(false),
                sync_lock: Mutex::new(()),
                ckpt_lock: Mutex::new(()),
                segs_seen: AtomicU64::new(0),
                reclaimer: Mutex::new(None),
                room_live: AtomicU64::new(u64::MAX),
                durable_seq: AtomicU64::new(sb.replay_seq),
                free: Default::default(),
                record_blocks: record_blocks(u64::from(sb.segment_size)),
                opts,
                _lock: lock,
            }),
        };
        if replayed.applied > 0 || !replayed.lost.is_empty() || old_version {
            tracing::info!(
                records = replayed.applied,
                lost = replayed.lost.len(),
                "replayed the log since the last checkpoint"
            );
            store.checkpoint()?;
        }
        // Frees a crash interrupted resume in the background; without a
        // free thread, the next operation that frees (or `gc`) ends them.
        if store.background_free() {
            store.kick_free()?;
        }
        Ok((store, replayed.lost))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub(crate) fn check_live(&self) -> Result<()> {
        if self.inner.failed.load(Ordering::Acquire) {
            return Err(Error::new(
                ErrorKind::FailStopped,
                "an earlier write or fsync failed; the store refuses writes until reopened",
            ));
        }
        Ok(())
    }

    /// For a failed append of a client record: ENOSPC is a clean failure
    /// (the log's tail did not move, so the next append overwrites any
    /// partial bytes, and nothing was applied); anything else fail-stops.
    pub(crate) fn fail_append(&self, e: Error) -> Error {
        if e.kind() == ErrorKind::Exhausted {
            return e;
        }
        if e.kind() == ErrorKind::NoSpace {
            tracing::warn!(error = %e, "write refused: no space left");
            return e;
        }
        self.fail(e)
    }

    /// Marks the store failed and passes the error on.
    pub(crate) fn fail(&self, e: Error) -> Error {
        tracing::error!(error = %e, "store failed: refusing further writes until reopened");
        self.inner.counters.fail_stop();
        self.inner.failed.store(true, Ordering::Release);
        e
    }

    // ---- catalogue ----

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

    // ---- I/O ----

    /// Reads `buf.len()` bytes at `offset` of any object.
    pub fn read(&self, id: ObjectId, offset: u64, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let bs = BLOCK_SIZE;
        let first = offset / bs;
        let last = (offset + buf.len() as u64 - 1) / bs;
        let n = last - first + 1;
        let srcs = {
            let mut st = self.inner.state.lock();
            st.check_io(id, offset, buf.len() as u64, false)?;
            st.resolve_blocks(id, first, n)?
        };
        if offset.is_multiple_of(bs) && (buf.len() as u64).is_multiple_of(bs) {
            return fetch_blocks(&srcs, buf, id, first);
        }
        let mut tmp = vec![0u8; (n * bs) as usize];
        fetch_blocks(&srcs, &mut tmp, id, first)?;
        let skip = (offset - first * bs) as usize;
        buf.copy_from_slice(&tmp[skip..skip + buf.len()]);
        Ok(())
    }

    /// Runs a client write; when it meets a full disk, frees what space
    /// reclaim can and tries once more.
    fn with_room(&self, op: impl Fn() -> Result<()>) -> Result<()> {
        match op() {
            Err(e) if e.kind() == ErrorKind::NoSpace && self.make_room()? => op(),
            r => r,
        }
    }

    /// Writes `data` at `offset` of a volume; with `fua`, durable on return.
    /// On a full disk the write fails with [`ErrorKind::NoSpace`] (some of
    /// its blocks may have landed, as with any failed write) and the store
    /// stays usable.
    pub fn write(&self, id: ObjectId, offset: u64, data: &[u8], fua: bool) -> Result<()> {
        self.with_room(|| self.write_once(id, offset, data, fua))
    }

    fn write_once(&self, id: ObjectId, offset: u64, data: &[u8], fua: bool) -> Result<()> {
        self.check_live()?;
        if data.is_empty() {
            return if fua { self.flush() } else { Ok(()) };
        }
        let compress = {
            let st = self.inner.state.lock();
            st.check_io(id, offset, data.len() as u64, true)?.2
        };
        let bs = BLOCK_SIZE;
        let end = offset + data.len() as u64;
        let mut pos = offset;
        while pos < end {
            let first = pos / bs;
            let last = ((end - 1) / bs).min(first + self.inner.record_blocks - 1);
            let piece_end = ((last + 1) * bs).min(end);
            let piece = &data[(pos - offset) as usize..(piece_end - offset) as usize];
            self.write_piece(id, pos, piece, compress)?;
            pos = piece_end;
        }
        if fua {
            self.flush()?;
        }
        self.maybe_checkpoint()
    }

    /// Writes a range within one record's worth of blocks.
    fn write_piece(&self, id: ObjectId, offset: u64, data: &[u8], compress: bool) -> Result<()> {
        let bs = BLOCK_SIZE as usize;
        let first = offset / BLOCK_SIZE;
        let head = (offset % BLOCK_SIZE) as usize;
        let n = (head + data.len()).div_ceil(bs);
        let tail_partial = !(head + data.len()).is_multiple_of(bs);
        // Whole blocks are prepared outside the lock.
        let mut prepared: Vec<Option<Prepared<'_>>> = (0..n)
            .map(|i| {
                let start = (i * bs) as isize - head as isize;
                if start < 0 || (i == n - 1 && tail_partial) {
                    None
                } else {
                    Some(prepare(
                        &data[start as usize..start as usize + bs],
                        compress,
                    ))
                }
            })
            .collect();
        let mut st = self.inner.state.lock();
        self.check_live()?;
        st.check_io(id, offset, data.len() as u64, true)?;
        // Partial blocks: read-modify-write of that one block, under the lock
        // so that concurrent sub-block writes to one block both land.
        let mut merged: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, p) in prepared.iter().enumerate() {
            if p.is_none() {
                let mut blk = vec![0u8; bs];
                let srcs = st.resolve_blocks(id, first + i as u64, 1)?;
                fetch_blocks(&srcs, &mut blk, id, first + i as u64)?;
                let lo = if i == 0 { head } else { 0 };
                let src_start = (i * bs + lo) - head;
                let len = (bs - lo).min(data.len() - src_start);
                blk[lo..lo + len].copy_from_slice(&data[src_start..src_start + len]);
                merged.push((i, blk));
            }
        }
        for (i, blk) in &merged {
            let p = prepare(blk, compress);
            prepared[*i] = Some(Prepared {
                zero: p.zero,
                stored: std::borrow::Cow::Owned(p.stored.into_owned()),
                crc: p.crc,
                flags: p.flags,
            });
        }
        let prepared: Vec<Prepared<'_>> = prepared
            .into_iter()
            .map(|p| p.expect("every block prepared"))
            .collect();
        st.admit(prepared.iter().filter(|p| !p.zero).count() as u64, true)?;
        let mut entries = Vec::with_capacity(n);
        let mut payloads: Vec<&[u8]> = Vec::with_capacity(n);
        for p in &prepared {
            if p.zero {
                entries.push(WriteEntry {
                    chunk: ChunkId::ZERO,
                    crc: 0,
                    stored_len: 0,
                    flags: 0,
                });
            } else {
                let c = ChunkId::data(st.next_data);
                st.next_data += 1;
                entries.push(WriteEntry {
                    chunk: c,
                    crc: p.crc,
                    stored_len: p.stored.len() as u32,
                    flags: p.flags,
                });
                payloads.push(&p.stored);
            }
        }
        let mut head = Vec::with_capacity(HEADER_LEN + WRITE_FIXED + WRITE_ENTRY * n);
        head.resize(HEADER_LEN, 0);
        encode_write_head(&mut head, id.to_bytes(), first, &entries);
        let addr = st
            .append_write(&mut head, &payloads)
            .map_err(|e| self.fail_append(e))?;
        let mut locs = Vec::with_capacity(n);
        let mut off = (HEADER_LEN + WRITE_FIXED + WRITE_ENTRY * n) as u64;
        for e in &entries {
            locs.push(LogAddr(addr.0 + off));
            off += u64::from(e.stored_len);
        }
        st.apply_write(id, first, &entries, &locs)
            .map_err(|e| self.fail(e))
    }

    /// Makes `[offset, offset+len)` read as zero without storing data. With
    /// `punch`, the range becomes a hole (space released, as trim); without,
    /// it is recorded as written zeroes. Partial blocks at the edges are
    /// zeroed by read-modify-write.
    pub fn write_zeroes(
        &self,
        id: ObjectId,
        offset: u64,
        len: u64,
        punch: bool,
        fua: bool,
    ) -> Result<()> {
        self.with_room(|| self.write_zeroes_once(id, offset, len, punch, fua))
    }

    fn write_zeroes_once(
        &self,
        id: ObjectId,
        offset: u64,
        len: u64,
        punch: bool,
        fua: bool,
    ) -> Result<()> {
        self.check_live()?;
        if len == 0 {
            return if fua { self.flush() } else { Ok(()) };
        }
        {
            let st = self.inner.state.lock();
            st.check_io(id, offset, len, true)?;
        }
        let bs = BLOCK_SIZE;
        let end = offset + len;
        let first_full = offset.div_ceil(bs);
        let end_full = end / bs;
        if first_full >= end_full {
            // No whole block: zero the bytes.
            self.write_zero_bytes(id, offset, end)?;
        } else {
            if offset < first_full * bs {
                self.write_zero_bytes(id, offset, first_full * bs)?;
            }
            {
                let mut st = self.inner.state.lock();
                self.check_live()?;
                st.check_io(id, offset, len, true)?;
                st.admit(0, true)?;
                let value = if punch { ChunkId::HOLE } else { ChunkId::ZERO };
                let body = ZeroBody {
                    object: id.to_bytes(),
                    first_block: first_full,
                    blocks: end_full - first_full,
                    value,
                }
                .encode();
                st.append(RecordKind::Zero, &body)
                    .map_err(|e| self.fail_append(e))?;
                st.apply_zero(id, first_full, end_full - first_full, value)
                    .map_err(|e| self.fail(e))?;
            }
            if end > end_full * bs {
                self.write_zero_bytes(id, end_full * bs, end)?;
            }
        }
        if fua {
            self.flush()?;
        }
        self.maybe_checkpoint()?;
        self.kick_free()
    }

    fn write_zero_bytes(&self, id: ObjectId, start: u64, end: u64) -> Result<()> {
        let zeros = vec![0u8; (end - start) as usize];
        self.write_piece(id, start, &zeros, false)
    }

    /// Releases `[offset, offset+len)`: it reads as zero afterwards.
    pub fn trim(&self, id: ObjectId, offset: u64, len: u64, fua: bool) -> Result<()> {
        self.write_zeroes(id, offset, len, true, fua)
    }

    /// Makes every completed write durable (group commit: one fdatasync
    /// serves every flush waiting behind it).
    pub fn flush(&self) -> Result<()> {
        self.check_live()?;
        let target = self.inner.state.lock().log.next_seq();
        let _g = self.inner.sync_lock.lock();
        self.check_live()?;
        if self.inner.durable_seq.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let (to_sync, upto, faults) = {
            let st = self.inner.state.lock();
            (st.log.unsynced(), st.log.next_seq(), st.log.faults.clone())
        };
        sync_segments(&faults, &to_sync.segs).map_err(|e| self.fail(e))?;
        self.inner.state.lock().log.mark_synced(&to_sync);
        self.inner.durable_seq.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// The allocation map of `[offset, offset+len)`, at most `max_extents`
    /// extents (the last one may end before `offset+len`).
    pub fn block_status(
        &self,
        id: ObjectId,
        offset: u64,
        len: u64,
        max_extents: usize,
    ) -> Result<Vec<Extent>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bs = BLOCK_SIZE;
        let mut st = self.inner.state.lock();
        let (size, _, _) = st.check_io(id, offset, len, false)?;
        let first = offset / bs;
        let n = (offset + len).div_ceil(bs) - first;
        let runs = st.runs(
            id,
            first,
            n,
            max_extents.max(1).saturating_mul(4).min(1 << 20),
        )?;
        drop(st);
        let mut out: Vec<Extent> = Vec::new();
        for r in runs {
            let kind = match r.value {
                ChunkId::HOLE => ExtentKind::Hole,
                ChunkId::ZERO => ExtentKind::Zero,
                _ => ExtentKind::Data,
            };
            let s = (r.first * bs).max(offset);
            let e = ((r.first + r.n) * bs).min(offset + len).min(size);
            if e <= s {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.kind == kind && last.offset + last.length == s => {
                    last.length += e - s
                }
                _ => {
                    if out.len() == max_extents {
                        break;
                    }
                    out.push(Extent {
                        offset: s,
                        length: e - s,
                        kind,
                    });
                }
            }
        }
        Ok(out)
    }

    // ---- checkpoints ----

    /// Runs the housekeeping a write may call for: a checkpoint when dirty
    /// metadata or the log since the last one passes its bound, and, each
    /// time the log grows by a segment while over half of it is dead, a
    /// bounded reclaim. Skipped when another thread is already doing it.
    pub(crate) fn maybe_checkpoint(&self) -> Result<()> {
        let (need, n_segs) = {
            let st = self.inner.state.lock();
            let need = (st.dirty_pages() as u64) * 4096 > self.inner.opts.dirty_limit_bytes
                || st.log_since_checkpoint > self.inner.opts.checkpoint_log_bytes;
            (need, st.log.segments().len() as u64)
        };
        if need {
            if let Some(_c) = self.inner.ckpt_lock.try_lock() {
                self.check_live()?;
                self.checkpoint_with(self.inner.state.lock())?;
            }
        }
        let last = self.inner.segs_seen.swap(n_segs, Ordering::AcqRel);
        if n_segs > last && self.garbage_high() {
            self.light_reclaim()?;
        }
        Ok(())
    }

    /// Writes all dirty metadata and flips the superblock: afterwards a
    /// reopen replays nothing.
    pub fn checkpoint(&self) -> Result<()> {
        let _c = self.inner.ckpt_lock.lock();
        self.check_live()?;
        let st = self.inner.state.lock();
        self.checkpoint_with(st)
    }

    /// The checkpoint protocol; the caller holds the checkpoint lock and
    /// hands over the state lock. Pages and the blob are written under the
    /// state lock; the `fdatasync`s and the superblock switch run without
    /// it, so client I/O goes on meanwhile (what it does lands after the
    /// new replay point, and dirties pages for the next checkpoint).
    pub(crate) fn checkpoint_with(&self, st: parking_lot::MutexGuard<'_, State>) -> Result<()> {
        let started = std::time::Instant::now();
        let r = self.checkpoint_protocol(st);
        self.inner.counters.checkpoint(started, r.is_ok());
        r
    }

    fn checkpoint_protocol(&self, mut st: parking_lot::MutexGuard<'_, State>) -> Result<()> {
        let (ct_root, blob) = st.write_checkpoint().map_err(|e| self.fail(e))?;
        let replay_start = st.log.tail();
        let replay_seq = st.log.next_seq();
        let to_sync = st.log.unsynced();
        let faults = st.log.faults.clone();
        let pending = std::mem::take(&mut st.pending_delete);
        drop(st);
        sync_segments(&faults, &to_sync.segs).map_err(|e| self.fail(e))?;
        self.inner.state.lock().log.mark_synced(&to_sync);
        self.inner
            .durable_seq
            .fetch_max(replay_seq, Ordering::AcqRel);
        let mut sb = self.inner.sb.lock();
        // Never reached: client operations stop at `GENERATION_LIMIT`.
        let generation = sb.generation.checked_add(1).ok_or_else(|| {
            self.fail(Error::new(
                ErrorKind::Exhausted,
                "superblock generations are used up",
            ))
        })?;
        let new = Superblock {
            generation,
            segment_size: sb.segment_size,
            ct_root,
            blob,
            replay_start,
            replay_seq,
            store_id: sb.store_id,
            version: FORMAT_VERSION,
        };
        let slot = new.generation % 2;
        faults
            .check(crate::fault::FaultPoint::SuperblockWrite)
            .and_then(|_| {
                sb.file
                    .write_all_at(&new.encode(), slot * SUPER_SLOT_LEN as u64)
            })
            .and_then(|_| sb.file.sync_data())
            .map_err(|e| self.fail(Error::io("writing the superblock", e)))?;
        faults.record(|| IoOp::Write {
            file: "superblock".into(),
            offset: slot * SUPER_SLOT_LEN as u64,
            data: new.encode(),
        });
        faults.record(|| IoOp::Sync {
            file: "superblock".into(),
        });
        sb.generation = new.generation;
        drop(sb);
        // Segments the cleaner emptied before the previous checkpoint go only
        // now that neither superblock slot names a checkpoint needing them;
        // those emptied before this one wait for the next.
        let mut st = self.inner.state.lock();
        st.generation = generation;
        for seg in std::mem::replace(&mut st.delete_next, pending) {
            st.log.remove_segment(seg)?;
            st.usage.remove(&seg);
        }
        let doomed = st.log.take_doomed();
        drop(st);
        bury(doomed)
    }

    /// Checkpoints and closes the store, releasing the directory lock.
    pub fn close(self) -> Result<()> {
        // Pending frees stay queued (the checkpoint keeps the queue).
        self.stop_free();
        self.wait_reclaim();
        if !self.inner.failed.load(Ordering::Acquire) {
            if self.garbage_high() {
                self.reclaim(0.5)?;
            }
            self.checkpoint()?;
        }
        Ok(())
    }

    pub(crate) fn counters(&self) -> &crate::op_stats::Counters {
        &self.inner.counters
    }

    pub(crate) fn state(&self) -> parking_lot::MutexGuard<'_, State> {
        self.inner.state.lock()
    }

    pub(crate) fn reclaimer(&self) -> &Mutex<Option<std::thread::JoinHandle<()>>> {
        &self.inner.reclaimer
    }

    pub(crate) fn background_reclaim(&self) -> bool {
        self.inner.opts.background_reclaim
    }

    pub(crate) fn background_free(&self) -> bool {
        self.inner.opts.background_free
    }

    pub(crate) fn dirty_limit(&self) -> u64 {
        self.inner.opts.dirty_limit_bytes
    }

    pub(crate) fn free_ctl(&self) -> &crate::free::FreeCtl {
        &self.inner.free
    }

    /// Live bytes after the last disk-full reclaim (see `make_room`).
    pub(crate) fn room_live(&self) -> &AtomicU64 {
        &self.inner.room_live
    }

    /// Takes the checkpoint lock (before any state lock).
    pub(crate) fn checkpoint_guard(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.inner.ckpt_lock.lock()
    }

    pub(crate) fn segment_size(&self) -> u64 {
        u64::from(self.inner.sb.lock().segment_size)
    }

    /// Tests only: the next checkpoint writes generation `g + 1` (if higher).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn skip_generation_to(&self, g: u64) {
        let mut sb = self.inner.sb.lock();
        sb.generation = sb.generation.max(g);
    }

    /// True after a durability failure (until reopened).
    pub fn is_failed(&self) -> bool {
        self.inner.failed.load(Ordering::Acquire)
    }
}

/// Reads the superblock slot with the highest generation.
pub(crate) fn read_superblock(sb_file: &File, sb_path: &Path) -> Result<Superblock> {
    let mut best: Option<Superblock> = None;
    for slot in 0..2u64 {
        let mut b = vec![0u8; SUPER_SLOT_LEN];
        if sb_file
            .read_exact_at(&mut b, slot * SUPER_SLOT_LEN as u64)
            .is_ok()
        {
            if let Some(s) = Superblock::decode(&b)? {
                if best.is_none_or(|b| s.generation > b.generation) {
                    best = Some(s);
                }
            }
        }
    }
    best.ok_or_else(|| Error::corrupt(format!("no valid superblock in {}", sb_path.display())))
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

/// Free space client writes leave for metadata: two segments (for the
/// cleaner's moves and catalogue records) plus the most a checkpoint
/// writes (the dirty-metadata bound).
fn space_reserve(seg_size: u64, opts: &StoreOptions) -> u64 {
    2 * seg_size + opts.dirty_limit_bytes
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
