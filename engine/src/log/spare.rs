//! Spare segment files: a segment the last checkpoints no longer need is
//! kept (renamed into `spare/`, up to a bound and while the disk is not
//! tight) and later renamed to the next segment number and overwritten
//! from offset 0, so that appends land in allocated, usually cached,
//! blocks. Stale records past the tail of a reused file are never read as
//! records: replay requires each record's exact next sequence number.

use super::{free_bytes, Log};
use crate::error::{Error, Result};
use crate::fault::IoOp;
use crate::types::SegmentNo;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// A retired segment file kept for reuse: `spare/<old number>.log`.
#[derive(Debug)]
pub(super) struct Spare {
    pub(super) old: SegmentNo,
    pub(super) file: File,
}

/// A spare file's name relative to the data directory, for recording.
pub(super) fn spare_rel(old: SegmentNo) -> String {
    format!("spare/{:08}.log", old.0)
}

/// The spare file of retired segment `old` in `spare_dir`.
pub(super) fn spare_file(spare_dir: &Path, old: SegmentNo) -> PathBuf {
    spare_dir.join(format!("{:08}.log", old.0))
}

/// Opens the spare files left in `spare_dir` (none when it does not exist).
pub(super) fn open_spares(spare_dir: &Path) -> Result<Vec<Spare>> {
    let rd = match std::fs::read_dir(spare_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("listing {}", spare_dir.display()), e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(format!("listing {}", spare_dir.display()), e))?;
        let name = ent.file_name();
        let Some(old) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(ent.path())
            .map_err(|e| Error::io(format!("opening {}", ent.path().display()), e))?;
        out.push(Spare {
            old: SegmentNo(old),
            file,
        });
    }
    Ok(out)
}

impl Log {
    /// Keeps at most `n` spare segment files, deleting the others.
    pub fn set_max_spares(&mut self, n: usize) -> Result<()> {
        self.max_spares = n;
        while self.spares.len() > n {
            let sp = self.spares.pop().expect("more spares than the bound");
            self.delete_spare(sp)?;
        }
        Ok(())
    }

    /// Bytes of the spare segment files.
    pub fn spare_bytes(&self) -> u64 {
        self.spares
            .iter()
            .map(|s| s.file.metadata().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    pub(super) fn delete_spare(&mut self, sp: Spare) -> Result<()> {
        let rel = spare_rel(sp.old);
        self.faults.record(|| IoOp::Remove { file: rel.clone() });
        let p = self.spare_path(sp.old);
        std::fs::remove_file(&p).map_err(|e| Error::io(format!("removing {}", p.display()), e))
    }

    /// The spare file of retired segment `old` (named as in [`spare_rel`]).
    pub(super) fn spare_path(&self, old: SegmentNo) -> PathBuf {
        spare_file(&self.spare_dir, old)
    }

    /// True when a retired segment may be kept as a spare: the pool has
    /// room and the disk is not tight (a tight disk gets the space back).
    pub(super) fn keep_spare(&self) -> bool {
        self.spares.len() < self.max_spares
            && free_bytes(&self.dir)
                .is_ok_and(|f| f >= self.reserve.saturating_add(2 * self.seg_size))
    }

    /// Deletes every spare segment file, giving its space back.
    pub fn release_spares(&mut self) -> Result<u64> {
        let bytes = self.spare_bytes();
        for sp in std::mem::take(&mut self.spares) {
            self.delete_spare(sp)?;
        }
        Ok(bytes)
    }
}
