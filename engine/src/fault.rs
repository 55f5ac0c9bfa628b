//! Named fault points, for tests: with the `fault-injection` feature a test
//! can arm a point to fail once with an errno (EIO, ENOSPC...) after
//! letting a number of passes through. Without the feature every check is
//! a no-op the compiler removes.

use std::io;

/// A place where the engine writes or syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// Appending a Write or Zero record (client data).
    LogAppend,
    /// Appending a catalogue record.
    CatalogAppend,
    /// Appending a checkpoint page or blob.
    CheckpointPage,
    /// Writing a segment's Seal record and creating the next segment.
    SegmentSeal,
    /// Appending a record that moves a chunk during space reclaim.
    ReclaimMove,
    /// fdatasync of a segment.
    Fsync,
    /// Writing and syncing the superblock slot.
    SuperblockWrite,
}

/// The armed faults of one store.
#[derive(Default, Debug)]
pub(crate) struct Faults {
    #[cfg(feature = "fault-injection")]
    armed: parking_lot::Mutex<Vec<(FaultPoint, i32, u32)>>,
}

impl Faults {
    /// Fails with the armed errno when `p` is armed and its skip count is used up.
    #[inline]
    pub fn check(&self, p: FaultPoint) -> io::Result<()> {
        #[cfg(feature = "fault-injection")]
        {
            let mut armed = self.armed.lock();
            if let Some(i) = armed.iter().position(|a| a.0 == p) {
                if armed[i].2 == 0 {
                    let (_, errno, _) = armed.remove(i);
                    return Err(io::Error::from_raw_os_error(errno));
                }
                armed[i].2 -= 1;
            }
        }
        let _ = p;
        Ok(())
    }

    /// Arms `p` to fail once with `errno` after `skip` successful passes.
    #[cfg(feature = "fault-injection")]
    pub fn arm(&self, p: FaultPoint, errno: i32, skip: u32) {
        self.armed.lock().push((p, errno, skip));
    }
}
