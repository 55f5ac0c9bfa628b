//! Named fault points and I/O recording, for tests: with the
//! `fault-injection` feature a test can arm a point to fail once with an
//! errno (EIO, ENOSPC...) after letting a number of passes through, and can
//! record every write, sync, truncation, creation and removal the engine
//! makes to its files (to build simulated power-cut images). Without the
//! feature every hook is a no-op the compiler removes.

use std::io;

/// A place where the engine writes or syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// Appending a Write or Zero record (client data), or a Free step.
    LogAppend,
    /// The device write of queued log records (by the log writer).
    LogWrite,
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

/// One recorded file operation; `file` is relative to the data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// Bytes written at an offset (not yet durable).
    Write {
        /// The file.
        file: String,
        /// Byte offset.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A completed fdatasync: every earlier write to the file is durable.
    Sync {
        /// The file.
        file: String,
    },
    /// The file was cut to `len` and synced.
    Truncate {
        /// The file.
        file: String,
        /// New length.
        len: u64,
    },
    /// The file was created (and its directory synced).
    Create {
        /// The file.
        file: String,
    },
    /// The file was removed.
    Remove {
        /// The file.
        file: String,
    },
    /// The file was renamed (a retired segment kept as a spare, or a spare
    /// reused as a new segment: then both directories were synced).
    Rename {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
}

/// The armed faults and the I/O recording of one store.
#[derive(Default)]
pub(crate) struct Faults {
    #[cfg(feature = "fault-injection")]
    armed: parking_lot::Mutex<Vec<(FaultPoint, i32, u32)>>,
    #[cfg(feature = "fault-injection")]
    recording: parking_lot::Mutex<Option<Vec<IoOp>>>,
    /// Called before each metadata page is read from disk (tests: stall
    /// one miss and see who waits for it).
    #[cfg(feature = "fault-injection")]
    page_hook: parking_lot::Mutex<Option<PageHook>>,
    #[cfg(feature = "fault-injection")]
    log_write_hook: parking_lot::Mutex<Option<PageHook>>,
    /// Called after each slice of a checkpoint's map nodes, and before its
    /// final hold, without the state lock (tests: client I/O between
    /// slices).
    #[cfg(feature = "fault-injection")]
    slice_hook: parking_lot::Mutex<Option<PageHook>>,
}

#[cfg(feature = "fault-injection")]
type PageHook = std::sync::Arc<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Faults")
    }
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

    /// Whether a test armed a page-read hook (then no page is read under
    /// the lock from the page cache: the hook must see every miss).
    #[inline]
    pub fn page_hook_armed(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            self.page_hook.lock().is_some()
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            false
        }
    }

    /// A metadata page (map node or chunk-table page) is about to be read
    /// from disk: runs the test hook, if one is set (it may block).
    #[inline]
    pub fn page_read(&self) {
        #[cfg(feature = "fault-injection")]
        {
            let hook = self.page_hook.lock().clone();
            if let Some(h) = hook {
                h();
            }
        }
    }

    /// Records `op` when recording is on.
    /// Runs the log-write hook, if set (before each batch of queued log
    /// records is written).
    #[inline]
    pub fn log_write(&self) {
        #[cfg(feature = "fault-injection")]
        {
            let hook = self.log_write_hook.lock().clone();
            if let Some(h) = hook {
                h();
            }
        }
    }

    /// A slice of a checkpoint's map nodes is written, or the final hold
    /// is next (the state lock is not held): runs the test hook, if set.
    #[inline]
    pub fn checkpoint_slice(&self) {
        #[cfg(feature = "fault-injection")]
        {
            let hook = self.slice_hook.lock().clone();
            if let Some(h) = hook {
                h();
            }
        }
    }

    /// True while file operations are recorded (tests only).
    #[inline]
    pub fn recording(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            self.recording.lock().is_some()
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            false
        }
    }

    #[inline]
    pub fn record(&self, op: impl FnOnce() -> IoOp) {
        #[cfg(feature = "fault-injection")]
        if let Some(log) = self.recording.lock().as_mut() {
            log.push(op());
        }
        let _ = op;
    }

    /// Starts recording, or stops it and returns what was recorded.
    #[cfg(feature = "fault-injection")]
    pub fn set_recording(&self, on: bool) -> Vec<IoOp> {
        let mut r = self.recording.lock();
        let old = r.take().unwrap_or_default();
        if on {
            *r = Some(Vec::new());
        }
        old
    }

    /// How many operations were recorded so far.
    #[cfg(feature = "fault-injection")]
    pub fn recorded(&self) -> usize {
        self.recording.lock().as_ref().map_or(0, Vec::len)
    }

    /// Arms `p` to fail once with `errno` after `skip` successful passes.
    #[cfg(feature = "fault-injection")]
    pub fn arm(&self, p: FaultPoint, errno: i32, skip: u32) {
        self.armed.lock().push((p, errno, skip));
    }
}

#[cfg(feature = "fault-injection")]
impl crate::Store {
    /// Arms fault point `point` to fail once with `errno` after `skip`
    /// successful passes (tests only).
    pub fn inject_fault(&self, point: FaultPoint, errno: i32, skip: u32) {
        self.state().log.faults.arm(point, errno, skip);
    }

    /// Starts recording every file operation (`on`), or stops and returns
    /// the recording (tests only: simulated power cuts).
    pub fn record_io(&self, on: bool) -> Vec<IoOp> {
        self.state().log.faults.set_recording(on)
    }

    /// Sets (or with `None` clears) a hook run before every metadata page
    /// read from disk, inside or outside the state lock (tests only: a
    /// hook that blocks stalls that miss).
    pub fn on_page_read(&self, hook: Option<std::sync::Arc<dyn Fn() + Send + Sync>>) {
        *self.state().log.faults.page_hook.lock() = hook;
    }

    /// Sets (or with `None` clears) a hook run by whoever writes queued
    /// log records, before each batch (tests only: a hook that blocks
    /// keeps records queued, not on the device).
    pub fn on_log_write(&self, hook: Option<std::sync::Arc<dyn Fn() + Send + Sync>>) {
        *self.state().log.faults.log_write_hook.lock() = hook;
    }

    /// Sets (or with `None` clears) a hook run after each slice of a
    /// checkpoint's map nodes and before its final hold (after the nodes
    /// left were encoded), on the checkpointing thread, with the state
    /// lock released and the checkpoint lock held (tests only: client I/O
    /// racing a sliced checkpoint, at chosen points). The hook may do
    /// client I/O on the store but nothing that takes the checkpoint lock
    /// (a checkpoint, reclaim or check; deletes and trims free with
    /// `background_free` then).
    pub fn on_checkpoint_slice(&self, hook: Option<std::sync::Arc<dyn Fn() + Send + Sync>>) {
        *self.state().log.faults.slice_hook.lock() = hook;
    }

    /// How many operations were recorded so far (tests only: marks
    /// positions in the recording from outside).
    pub fn io_recorded(&self) -> usize {
        self.state().log.faults.recorded()
    }
}
