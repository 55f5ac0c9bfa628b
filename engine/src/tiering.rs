//! Hooks for an object-storage tier (the `blockd-tier` crate): the engine
//! knows nothing of HTTP or buckets, only that someone may want to copy
//! each committed generation somewhere else, and to lay one back down.
//!
//! - [`CommitObserver`]: told, after each checkpoint's superblock slot is
//!   durable, what that generation needs: its slot's bytes and its segment
//!   files, sealed ones whole and the active one up to the replay point
//!   (bytes before it never change; after it, the next generation's).
//! - [`restore_layout`]: writes a data directory's superblock from a slot a
//!   [`Committed`] carried, once its segment files are in place, so that
//!   [`crate::Store::open`] opens exactly that generation.
//!
//! - [`SegmentSource`]: where the bytes of a segment given up to the
//!   object store are read back from, by range (`residency.rs` decides
//!   which reads go there; [`crate::Store::evict_segment`] gives a sealed,
//!   uploaded segment up). [`place_remote_segments`] lays a lazily restored
//!   store's segments down as sparse files and markers.
//!
//! A segment file may be retired (deleted, or renamed into `spare/` and
//! reused under a new number) two checkpoints after the cleaner emptied
//! it; a copier must check that the file it read is still the segment it
//! named (docs/design.md, "Object storage").

use crate::error::{Error, ErrorKind, Result};
use crate::format::{Superblock, SUPER_SLOT_LEN};
use crate::log::segment_path;
use crate::types::{LogAddr, SegmentNo};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One segment file a committed generation needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedSegment {
    /// Its number (log order).
    pub no: SegmentNo,
    /// Its file in the data directory.
    pub path: PathBuf,
    /// `None`: sealed, needed whole (its bytes never change); `Some(n)`:
    /// the active segment, needed up to byte `n` (the replay point).
    pub len: Option<u64>,
}

/// What one committed checkpoint generation consists of.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The superblock generation.
    pub generation: u64,
    /// The store's identity (from its superblock), hyphenated UUID form.
    pub store_id: String,
    /// The superblock slot as written (`SUPER_SLOT_LEN` bytes).
    pub superblock: Vec<u8>,
    /// The segments it needs, in log order; the last is the active one.
    pub segments: Vec<CommittedSegment>,
    /// [`crate::OpStats::log_bytes`] at its replay point: while the
    /// counter still reads this, the log holds nothing this generation
    /// lacks (a later reading means records it does not have, even those
    /// appended while it was being committed).
    pub log_bytes: u64,
}

/// Told of each committed generation, on the committing thread, after the
/// superblock is durable and while no store lock is held: it must return
/// quickly (hand the work to a thread of its own) and must not call back
/// into the store's checkpoint.
pub trait CommitObserver: Send + Sync {
    /// Generation `c.generation` is committed locally.
    fn committed(&self, c: Committed);

    /// A [`crate::Store::flush`] (an NBD FLUSH, a FUA write) made every
    /// record before it durable locally; every record of the log up to
    /// `end` is written to its segment file (end exclusive). Called on the
    /// flushing thread, outside the store lock; an error fails the flush
    /// (the store itself stays usable). The tier's `remote` durability
    /// mode waits here until the bucket holds the log up to `end`.
    fn flushed(&self, end: LogAddr) -> Result<()> {
        let _ = end;
        Ok(())
    }
}

impl crate::Store {
    /// Stops the store taking writes (a fail-stop, as after a failed
    /// fsync: client writes and flushes fail until it is reopened), for a
    /// reason the tier found (fenced by a newer writer of its bucket).
    pub fn stop_writes(&self, why: &str) {
        let _ = self.fail(Error::new(ErrorKind::FailStopped, why));
    }
}

/// Reads segment bytes that are not on the local disk (the tier's ranged
/// GETs of the segment's object). Called from any thread, outside the
/// store lock, and may block; the engine checks what it reads as it checks
/// its own files.
pub trait SegmentSource: Send + Sync + std::fmt::Debug {
    /// Reads up to `buf.len()` bytes of segment `no` at `offset`: all of
    /// them, or fewer only at the end of the segment's remote copy. An
    /// error should name the segment.
    fn read_at(&self, no: SegmentNo, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;
}

/// Lays segments of a restored data directory down as remote: each
/// `(no, len, remote_below)` (`remote_below` may be [`crate::WHOLE`])
/// becomes a sparse file of `len` bytes and a marker, so that the engine
/// reads those bytes through its [`SegmentSource`]; bytes at and after
/// `remote_below` the caller writes into the file itself. Everything is
/// made durable with one `syncfs` at the end (not a sync per file), before
/// the caller writes the superblock.
pub fn place_remote_segments(dir: &Path, segs: &[(SegmentNo, u64, u64)]) -> Result<()> {
    let markers = dir.join("remote");
    std::fs::create_dir_all(&markers)
        .map_err(|e| Error::io(format!("creating {}", markers.display()), e))?;
    for &(no, len, below) in segs {
        let path = segment_file(dir, no);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .and_then(|f| f.set_len(len))
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        crate::residency::write_marker_unsynced(&markers, no, below)?;
    }
    let d =
        std::fs::File::open(dir).map_err(|e| Error::io(format!("opening {}", dir.display()), e))?;
    rustix::fs::syncfs(&d).map_err(|e| Error::io(format!("syncing {}", dir.display()), e.into()))
}

/// The store id of a superblock slot, hyphenated.
pub(crate) fn store_id_string(id: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*id).hyphenated().to_string()
}

/// A superblock slot's generation and store id (validating it).
pub fn slot_identity(slot: &[u8]) -> Result<(u64, String)> {
    let sb =
        Superblock::decode(slot)?.ok_or_else(|| Error::corrupt("not a valid superblock slot"))?;
    Ok((sb.generation, store_id_string(&sb.store_id)))
}

/// The file of segment `no` in data directory `dir`.
pub fn segment_file(dir: &Path, no: SegmentNo) -> PathBuf {
    segment_path(&dir.join("segments"), no)
}

/// Creates the directories a data directory needs before its segment
/// files are written into it.
pub fn prepare_layout(dir: &Path) -> Result<()> {
    for d in [dir.join("segments"), dir.join("spare")] {
        std::fs::create_dir_all(&d)
            .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
    }
    Ok(())
}

/// Installs `slot` (a superblock slot from [`Committed::superblock`]) as
/// the data directory's superblock, atomically and durably: the last step
/// of a restore, once every segment file the generation needs is in place
/// and synced. The slot goes where its generation's checkpoint wrote it.
pub fn restore_layout(dir: &Path, slot: &[u8]) -> Result<()> {
    let sb = Superblock::decode(slot)?
        .ok_or_else(|| Error::corrupt("restoring: not a valid superblock slot"))?;
    let path = dir.join("superblock");
    if path.exists() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{} already holds a store", dir.display()),
        ));
    }
    let mut bytes = vec![0u8; 2 * SUPER_SLOT_LEN];
    let at = (sb.generation % 2) as usize * SUPER_SLOT_LEN;
    bytes[at..at + SUPER_SLOT_LEN].copy_from_slice(&slot[..SUPER_SLOT_LEN]);
    let tmp = dir.join("superblock.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("creating the superblock", e))?;
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("writing the superblock", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("installing the superblock", e))?;
    for d in [dir.join("segments"), dir.to_path_buf()] {
        std::fs::File::open(&d)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(format!("syncing {}", d.display()), e))?;
    }
    Ok(())
}
