//! Creating a store and claiming its data directory: the `flock` on
//! `DIR/lock` that keeps other processes out, and the first superblock and
//! segment of a new store (written to a temporary file and renamed into
//! place, so a crash leaves either no store or a whole one).

use crate::catalog::Catalog;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{CtChild, Superblock, FORMAT_VERSION, SUPER_SLOT_LEN};
use crate::log::{sync_segments, Log};
use crate::state::State;
use crate::store::StoreOptions;
use crate::types::{LogAddr, ObjectId};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

pub(crate) fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("lock");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            return Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "data directory {} is in use by process {}",
                    dir.display(),
                    holder.trim()
                ),
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Error::io(format!("locking {}", path.display()), e))
        }
    }
    f.set_len(0)
        .map_err(|e| Error::io("writing lock file", e))?;
    let _ = write!(f, "{}", std::process::id());
    Ok(f)
}

/// Writes an empty store: segment 1 with an empty checkpoint, then the
/// superblock file, atomically renamed into place.
pub(crate) fn init(dir: &Path, opts: &StoreOptions) -> Result<()> {
    let seg_size = opts.segment_size.clamp(1 << 20, 1 << 31);
    let segdir = dir.join("segments");
    if segdir.exists() {
        // A crash during an earlier init: nothing in it was ever acknowledged.
        std::fs::remove_dir_all(&segdir).map_err(|e| Error::io("clearing a half-made store", e))?;
    }
    std::fs::create_dir_all(&segdir)
        .map_err(|e| Error::io(format!("creating {}", segdir.display()), e))?;
    let mut log = Log::open(&segdir, seg_size, std::sync::Arc::default())?;
    log.start_append(LogAddr::new(crate::types::SegmentNo(1), 0), 1)?;
    let mut state = State::new(log, Catalog::default(), CtChild::NONE, 1024);
    let (ct_root, blob) = state.write_checkpoint(Default::default())?;
    state.log.drain()?;
    let to_sync = state.log.unsynced();
    sync_segments(&state.log.faults.clone(), &to_sync.segs)?;
    state.log.mark_synced(&to_sync);
    let sb = Superblock {
        generation: 1,
        segment_size: seg_size as u32,
        ct_root,
        blob,
        replay_start: state.log.tail(),
        replay_seq: state.log.next_seq(),
        store_id: *ObjectId::new_random().0.as_bytes(),
        version: FORMAT_VERSION,
    };
    let tmp = dir.join("superblock.tmp");
    // Generation 1 goes in slot 1 (checkpoint `g` writes slot `g % 2`),
    // so that the first checkpoint, writing slot 0, cannot destroy it.
    let mut bytes = vec![0u8; SUPER_SLOT_LEN];
    bytes.extend(sb.encode());
    let mut f = File::create(&tmp).map_err(|e| Error::io("creating superblock", e))?;
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("writing superblock", e))?;
    std::fs::rename(&tmp, dir.join("superblock"))
        .map_err(|e| Error::io("installing superblock", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing data directory", e))?;
    Ok(())
}
