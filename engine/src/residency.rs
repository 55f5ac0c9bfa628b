//! Segments whose bytes live, wholly or below some offset, in an object
//! store instead of the local file: the local disk as a bounded cache
//! (docs/design.md, "Object storage").
//!
//! A segment is *resident* up to `remote_below`: bytes at offsets below it
//! are read through the store's [`SegmentSource`] (the tier's ranged GETs),
//! bytes from it on from the file. `0` is an ordinary local segment;
//! [`WHOLE`] a sealed segment evicted whole; a number in between the active
//! segment of a lazily restored store (its prefix is in the bucket, appends
//! after it are local). The state is kept durably as a marker file
//! `DIR/remote/seg-NNNNNNNN.log` holding the number, written before the
//! local bytes are given up (the file is truncated to nothing and back to
//! its length: a sparse file of the same size), so a crash in between
//! leaves bytes that are both local and remote, never neither.
//!
//! Only reads are redirected: every check the engine makes of what it
//! reads (record crc, chunk crc, self-location) applies to fetched ranges
//! as to local ones, so a damaged fetch is an error naming the segment,
//! never silent. The engine knows no HTTP: the source is a trait object.

use crate::error::{Error, ErrorKind, Result};
use crate::log::Segment;
use crate::store::Store;
use crate::tiering::SegmentSource;
use crate::types::SegmentNo;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// `remote_below` of a segment evicted whole.
pub const WHOLE: u64 = u64::MAX;

/// What the log's segments share: the source of remote bytes, the marker
/// directory, the read clock (recency for eviction), the over-bound flag.
#[derive(Debug)]
pub(crate) struct TierHook {
    source: RwLock<Option<Arc<dyn SegmentSource>>>,
    marker_dir: PathBuf,
    /// Markers found when the log was opened, by segment.
    at_open: HashMap<SegmentNo, u64>,
    clock: AtomicU64,
    /// Set by the tier when the data directory is over its bound and
    /// nothing more can be evicted: client records needing a new segment
    /// get `NoSpace`.
    full: AtomicBool,
}

/// One segment's residency (beside its file in [`Segment`]).
#[derive(Debug, Default)]
pub(crate) struct Residency {
    remote_below: RwLock<u64>,
    last_read: AtomicU64,
}

/// The marker file of segment `no` in `marker_dir`.
fn marker_path(marker_dir: &Path, no: SegmentNo) -> PathBuf {
    marker_dir.join(format!("seg-{:08}.log", no.0))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))
}

/// Writes segment `no`'s marker (durably) into `marker_dir`.
pub(crate) fn write_marker(marker_dir: &Path, no: SegmentNo, remote_below: u64) -> Result<()> {
    std::fs::create_dir_all(marker_dir)
        .map_err(|e| Error::io(format!("creating {}", marker_dir.display()), e))?;
    let path = marker_path(marker_dir, no);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{remote_below}\n"))
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    sync_dir(marker_dir)
}

/// Writes segment `no`'s marker into `marker_dir` without syncing it (a
/// restore syncs the whole filesystem once).
pub(crate) fn write_marker_unsynced(marker_dir: &Path, no: SegmentNo, below: u64) -> Result<()> {
    let path = marker_path(marker_dir, no);
    std::fs::write(&path, format!("{below}\n"))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// The markers in `marker_dir` (none when it does not exist).
fn read_markers(marker_dir: &Path) -> Result<HashMap<SegmentNo, u64>> {
    let rd = match std::fs::read_dir(marker_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(Error::io(format!("listing {}", marker_dir.display()), e)),
    };
    let mut out = HashMap::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(format!("listing {}", marker_dir.display()), e))?;
        let name = ent.file_name();
        let Some(no) = name
            .to_str()
            .and_then(|n| n.strip_prefix("seg-")?.strip_suffix(".log"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let text = std::fs::read_to_string(ent.path())
            .map_err(|e| Error::io(format!("reading {}", ent.path().display()), e))?;
        let below = text.trim().parse::<u64>().map_err(|_| {
            Error::corrupt(format!(
                "{}: not a remote-segment marker",
                ent.path().display()
            ))
        })?;
        out.insert(SegmentNo(no), below);
    }
    Ok(out)
}

impl TierHook {
    /// The hook of the log in `segdir` (markers in `remote/` beside it).
    pub(crate) fn open(segdir: &Path) -> Result<Arc<TierHook>> {
        let marker_dir = segdir.with_file_name("remote");
        let at_open = read_markers(&marker_dir)?;
        Ok(Arc::new(TierHook {
            source: RwLock::new(None),
            marker_dir,
            at_open,
            clock: AtomicU64::new(1),
            full: AtomicBool::new(false),
        }))
    }

    /// A fresh residency for segment `no` (remote as its marker says).
    pub(crate) fn residency(&self, no: SegmentNo) -> Residency {
        Residency {
            remote_below: RwLock::new(self.at_open.get(&no).copied().unwrap_or(0)),
            last_read: AtomicU64::new(0),
        }
    }

    /// Segment `no` was retired: its marker goes (best effort; a stale
    /// marker names a number never used again).
    pub(crate) fn forget(&self, seg: &Segment) {
        if *seg.res.remote_below.read() > 0 {
            let _ = std::fs::remove_file(marker_path(&self.marker_dir, seg.no));
        }
    }

    /// Whether client records needing a new segment are refused.
    pub(crate) fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }
}

/// A failed read of remote bytes (no source, or the source failed): its
/// message says so, and [`read_error`] makes it the engine error's own.
#[derive(Debug)]
struct RemoteRead(String);

impl std::fmt::Display for RemoteRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RemoteRead {}

/// The engine error of a failed segment read: a remote read's own message
/// (which names the segment and the object store), else `context`.
pub(crate) fn read_error(context: String, e: std::io::Error) -> Error {
    match e.get_ref().and_then(|r| r.downcast_ref::<RemoteRead>()) {
        Some(r) => Error::new(ErrorKind::Io, r.0.clone()),
        None => Error::io(context, e),
    }
}

impl Segment {
    /// Reads up to `buf.len()` bytes at `offset` (fewer only at the end of
    /// the data): the part below `remote_below` through the source, the
    /// rest from the file, which is not given up while it is read.
    pub(crate) fn pread(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.touch_read();
        let end = offset + buf.len() as u64;
        let guard = self.res.remote_below.read();
        if offset >= *guard {
            return self.file.read_at(buf, offset);
        }
        // Remote below: that never shrinks, so the guard may go.
        let split = (*guard).min(end);
        drop(guard);
        let want = (split - offset) as usize;
        let source = self.hook.source.read().clone().ok_or_else(|| {
            std::io::Error::other(RemoteRead(format!(
                "segment {} is in the object store: open the store with --object-store",
                self.no.0
            )))
        })?;
        let n = source
            .read_at(self.no, offset, &mut buf[..want])
            .map_err(|e| {
                std::io::Error::other(RemoteRead(format!(
                    "reading segment {} at offset {offset}: {e}",
                    self.no.0
                )))
            })?;
        if n < want || want == buf.len() {
            return Ok(n);
        }
        let guard = self.res.remote_below.read();
        if split < *guard {
            drop(guard);
            return Ok(n + self.pread(&mut buf[want..], split)?);
        }
        Ok(n + self.file.read_at(&mut buf[want..], split)?)
    }

    /// Whether the byte at `offset` is remote.
    /// Notes a read of the segment (for the tier's eviction order).
    pub(crate) fn touch_read(&self) {
        self.res.last_read.store(
            self.hook.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn remote_at(&self, offset: u64) -> bool {
        offset < *self.res.remote_below.read()
    }
}

/// One segment's place, for the tier's eviction policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentResidency {
    /// The segment.
    pub no: SegmentNo,
    /// Its length in bytes.
    pub len: u64,
    /// Bytes its file occupies on disk.
    pub allocated: u64,
    /// Bytes below this offset are remote (0: all local; [`WHOLE`]: all).
    pub remote_below: u64,
    /// When it was last read (a logical clock: larger is more recent; 0:
    /// never since open).
    pub last_read: u64,
    /// It is the active segment (never evicted).
    pub active: bool,
}

impl Store {
    /// Sets where remote segment bytes are read from (the tier); `None`
    /// makes reads of them fail with a message asking for it. Also set at
    /// open by [`crate::StoreOptions::segment_source`], which a store with
    /// remote segments needs to open at all.
    pub fn set_segment_source(&self, source: Option<Arc<dyn SegmentSource>>) {
        *self.state().log.tier.source.write() = source;
    }

    /// Every segment's residency, in log order.
    pub fn segment_residency(&self) -> Vec<SegmentResidency> {
        let (segs, active) = {
            let st = self.state();
            let segs: Vec<Arc<Segment>> = st.log.segments().values().cloned().collect();
            (segs, st.log.active_no())
        };
        segs.into_iter()
            .map(|s| {
                let m = s.file.metadata().ok();
                SegmentResidency {
                    no: s.no,
                    len: m.as_ref().map_or(0, |m| m.len()),
                    allocated: m.as_ref().map_or(0, |m| m.blocks() * 512),
                    remote_below: *s.res.remote_below.read(),
                    last_read: s.res.last_read.load(Ordering::Relaxed),
                    active: s.no == active,
                }
            })
            .collect()
    }

    /// Gives up the local bytes of sealed segment `no`, whose whole copy
    /// the caller knows is committed in the object store: its marker is
    /// written durably, then its file is emptied to a sparse one of the
    /// same length. Returns the bytes freed. The active segment is refused.
    pub fn evict_segment(&self, no: SegmentNo) -> Result<u64> {
        let (seg, active, marker_dir) = {
            let st = self.state();
            (
                st.log.segment(no),
                st.log.active_no(),
                st.log.tier.marker_dir.clone(),
            )
        };
        let seg =
            seg.ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no segment {}", no.0)))?;
        if no >= active {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "segment {} is not sealed: only sealed segments are evicted",
                    no.0
                ),
            ));
        }
        let meta = seg
            .file
            .metadata()
            .map_err(|e| Error::io(format!("reading segment {}", no.0), e))?;
        if *seg.res.remote_below.read() == WHOLE {
            return Ok(0);
        }
        write_marker(&marker_dir, no, WHOLE)?;
        let mut g = seg.res.remote_below.write();
        *g = WHOLE;
        // The handle is ours while a reader or the cleaner may hold it too:
        // a retired segment held by anyone is deleted, never reused.
        seg.file
            .set_len(0)
            .and_then(|_| seg.file.set_len(meta.len()))
            .map_err(|e| Error::io(format!("emptying evicted segment {}", no.0), e))?;
        drop(g);
        Ok(meta.blocks() * 512)
    }

    /// Reads up to `buf.len()` bytes of segment `no` at `offset` as the
    /// engine does (remote parts through the source): how the tier copies
    /// a segment that is partly remote. `Ok(0)` when there is no such
    /// segment.
    pub fn read_segment_at(&self, no: SegmentNo, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let Some(seg) = self.state().log.segment(no) else {
            return Ok(0);
        };
        let mut done = 0;
        while done < buf.len() {
            let n = seg
                .pread(&mut buf[done..], offset + done as u64)
                .map_err(|e| read_error(format!("reading segment {}", no.0), e))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Whether any of segment `no` is remote.
    pub fn segment_is_remote(&self, no: SegmentNo) -> bool {
        self.state().log.segment(no).is_some_and(|s| s.remote_at(0))
    }

    /// Refuses (or allows again) client records that need a new segment:
    /// the tier sets it while the data directory is over its bound and
    /// nothing more can be evicted (uploads lag), so writes fail with
    /// `NoSpace` instead of overrunning it.
    pub fn set_cache_full(&self, full: bool) {
        self.state().log.tier.full.store(full, Ordering::Relaxed);
    }
}

impl crate::log::Log {
    /// The source of remote segment bytes (set before replay reads any).
    pub(crate) fn tier_source(
        &self,
    ) -> parking_lot::RwLockWriteGuard<'_, Option<Arc<dyn SegmentSource>>> {
        self.tier.source.write()
    }
}
