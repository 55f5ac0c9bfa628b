//! The store's lifecycle: [`StoreOptions`], opening a data directory
//! (creating it, locking it, reading the superblock, replaying the log,
//! migrating an old format, committing what replay read) and closing it.
//!
//! Invariants: one process owns a directory (the `flock` taken first, held
//! by the handle until dropped); an open that replayed anything, lost
//! anything to salvage, or read an older format commits a checkpoint
//! before the handle is returned, so the next open starts from it.

use super::{read_superblock, Inner, Store, SuperState};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{FORMAT_VERSION, MIGRATED_FORMAT_VERSION, WRITE_ENTRY};
use crate::log::Log;
use crate::state::State;
use crate::types::BLOCK_SIZE;
use parking_lot::Mutex;
use std::fs::OpenOptions;
use std::path::Path;
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
    /// In client I/O, a metadata page missing from the cache is read under
    /// the store lock when the OS page cache holds all of it (`preadv2`
    /// with `RWF_NOWAIT`: nothing waits for the device); only a read that
    /// would block goes outside the lock (`fetch.rs`). Off: every miss is
    /// read outside the lock (the tests of that path).
    pub cached_metadata_reads: bool,
    /// Large log records (client writes of 64 KiB and more) have their
    /// 4 KiB-aligned middle written with `O_DIRECT`, so that a flush does
    /// not wait for page-cache writeback (`log_direct.rs`). Off: every
    /// append goes through the page cache.
    pub direct_log_writes: bool,
    /// A checkpoint writes the dirty map nodes, then the dirty chunk-table
    /// leaves, in slices of at most this many, each in its own short hold
    /// of the store lock, so that client I/O waits for a slice, not for
    /// the whole dirty set (the final hold writes the pages dirtied again
    /// meanwhile, the interior chunk-table pages and the blob). 0 is taken
    /// as 1.
    pub checkpoint_slice_pages: usize,
    /// Where segment bytes given up to an object store are read from
    /// (`residency.rs`; the tier's ranged GETs). A store with remote
    /// segments (evicted, or lazily restored) needs it to open.
    pub segment_source: Option<Arc<dyn crate::tiering::SegmentSource>>,
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
            cached_metadata_reads: true,
            direct_log_writes: true,
            checkpoint_slice_pages: 512,
            segment_source: None,
        }
    }
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
        let mut log = Log::open(&segdir, u64::from(sb.segment_size), faults)?;
        log.set_direct(opts.direct_log_writes);
        *log.tier_source() = opts.segment_source.clone();
        let cache_pages = (opts.cache_bytes / 4096) as usize;
        let mut state = State::from_superblock(log, &sb, cache_pages)?;
        // A version 3 store is migrated below, after a replay that must
        // find nothing to apply (`migrate.rs`).
        let v3 = sb.version == MIGRATED_FORMAT_VERSION;
        if v3 {
            state.v3_require_clean(sb.replay_start, sb.replay_seq)?;
        }
        let replayed = state.replay(sb.replay_start, sb.replay_seq, salvage)?;
        let next_seq = replayed.next_seq;
        state.log.start_append(replayed.tail, next_seq)?;
        // The post-replay checkpoint commits what replay read, which a
        // killed process may have left unsynced in any segment since the
        // replay point: it syncs them all.
        state.log.replayed(sb.replay_start.segment(), sb.replay_seq);
        state.fetch.cached_reads = opts.cached_metadata_reads;
        state.log.reserve = space_reserve(u64::from(sb.segment_size), &opts);
        state.log.set_max_spares(opts.spare_segments)?;
        if v3 {
            tracing::info!(
                version = sb.version,
                "migrating the store to on-disk format version {FORMAT_VERSION}"
            );
            state
                .migrate_v3(sb.ct_root)
                .map_err(|e| e.with_context("migrating a version 3 store"))?;
        }
        let counters = state.counters.clone();
        let queue = state.log.queue();
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
                queue,
                free: Default::default(),
                record_blocks: record_blocks(u64::from(sb.segment_size)),
                aligned: Default::default(),
                opts,
                observer: Mutex::new(None),
                _lock: lock,
            }),
        };
        // An older store's superblock is rewritten in the current version
        // before anything is appended: a record kind its version lacks
        // (kind 12 in a version 7 store) is then never after a durable
        // superblock of a build that would take it for a torn tail.
        if replayed.applied > 0 || !replayed.lost.is_empty() || sb.version < FORMAT_VERSION {
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
}

/// Free space client writes leave for metadata: two segments (for the
/// cleaner's moves and catalogue records) plus the most a checkpoint
/// writes (the dirty-metadata bound).
fn space_reserve(seg_size: u64, opts: &StoreOptions) -> u64 {
    2 * seg_size + opts.dirty_limit_bytes
}
