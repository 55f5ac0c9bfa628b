//! The next segment file, made ready outside the store lock. Rolling to a
//! new segment under the lock used to create (or rename a spare to) the
//! next file and sync its directory there: under heavy writeback a
//! directory sync waits for the filesystem's journal, and one took over
//! 100 ms while a checkpoint slice held the lock. Now the next file is
//! made ahead ([`Log::plan_next`] under the lock, [`NextSegment::make`]
//! outside it, [`Log::install_next`] under it again), and a roll that
//! finds it ready only seals into it. A roll that finds none (the first
//! one, or one racing the maker) makes its own as before, under a number
//! past the one being made.
//!
//! Crash safety: a ready file is an empty or stale file under the next
//! segment number, synced into its directory, that no durable Seal names
//! yet. Recovery ends the log before it, and [`Log::start_append`]
//! removes segment files past the tail, as it removes a torn roll's.

use super::spare::{spare_file, spare_rel, Spare};
use super::{
    free_bytes, open_segment, preallocate, segment_path, segment_rel, sync_dir, Log, Segment,
};
use crate::error::{Error, Result};
use crate::fault::{Faults, IoOp};
use crate::log_queue::LogQueue;
use crate::residency::TierHook;
use crate::types::SegmentNo;
use std::path::PathBuf;
use std::sync::Arc;

/// What making the next segment file needs: taken under the store lock by
/// [`Log::plan_next`], done outside it by [`NextSegment::make`].
pub(crate) struct NextSegment {
    no: SegmentNo,
    spare: Option<Spare>,
    dir: PathBuf,
    spare_dir: PathBuf,
    seg_size: u64,
    tier: Arc<TierHook>,
    queue: Arc<LogQueue>,
    faults: Arc<Faults>,
}

impl NextSegment {
    /// Makes the file: a spare renamed to the segment's name, or a new file
    /// with its space allocated; then its directories synced.
    pub fn make(self) -> Result<Arc<Segment>> {
        let to = segment_path(&self.dir, self.no);
        if let Some(sp) = self.spare {
            let from = spare_file(&self.spare_dir, sp.old);
            std::fs::rename(&from, &to).map_err(|e| {
                Error::io(
                    format!("renaming {} to {}", from.display(), to.display()),
                    e,
                )
            })?;
            sync_dir(&self.dir)?;
            sync_dir(&self.spare_dir)?;
            self.faults.record(|| IoOp::Rename {
                from: spare_rel(sp.old),
                to: segment_rel(self.no),
            });
            let seg = Arc::new(Segment {
                no: self.no,
                file: sp.file,
                res: Default::default(),
                hook: self.tier.clone(),
                gate: self.queue.clone(),
            });
            let len = seg.file.metadata().map(|m| m.len()).unwrap_or(0);
            if len < self.seg_size {
                if let Err(e) = preallocate(&seg, self.seg_size) {
                    tracing::warn!(error = %e, "cannot preallocate a reused segment");
                }
            }
            return Ok(seg);
        }
        let seg = open_segment(&self.dir, self.no, true, &self.tier, &self.queue)?;
        if let Err(e) = preallocate(&seg, self.seg_size) {
            drop(seg);
            let _ = std::fs::remove_file(&to);
            return Err(e);
        }
        sync_dir(&self.dir)?;
        self.faults.record(|| IoOp::Create {
            file: segment_rel(self.no),
        });
        Ok(seg)
    }
}

impl Log {
    /// The number the next segment gets.
    pub(super) fn next_segment_no(&self) -> Result<SegmentNo> {
        // Never reached: client records stop at `SEGMENT_LIMIT`, far below.
        let mut n = self
            .active
            .no
            .0
            .checked_add(1)
            .map(|n| n.max(self.min_next_segment))
            .ok_or_else(|| {
                Error::new(
                    crate::ErrorKind::Exhausted,
                    "segment numbers are used up: the log cannot grow",
                )
            })?;
        if self.making == Some(SegmentNo(n)) {
            // Being made outside the lock: never the same file twice.
            n = n.checked_add(1).ok_or_else(|| {
                Error::new(crate::ErrorKind::Exhausted, "segment numbers are used up")
            })?;
        }
        Ok(SegmentNo(n))
    }

    /// Under the store lock: the next segment file to make ready, once
    /// the active segment is half full and none is ready or being made,
    /// with a spare to reuse or, failing one, room on the disk for a new
    /// file beyond the reserve (asked once per active segment).
    pub fn plan_next(&mut self) -> Option<NextSegment> {
        if self.ready.is_some()
            || self.making.is_some()
            || self.writer.is_none()
            || self.tail < self.seg_size / 2
            || self.ready_declined == Some(self.active.no)
        {
            return None;
        }
        let no = self.next_segment_no().ok()?;
        let spare = self.spares.pop();
        if spare.is_none()
            && !free_bytes(&self.dir)
                .is_ok_and(|f| f >= self.reserve.saturating_add(2 * self.seg_size))
        {
            self.ready_declined = Some(self.active.no);
            return None;
        }
        self.making = Some(no);
        Some(self.plan_for(no, spare))
    }

    /// What making segment file `no` (from `spare`, or new) needs.
    pub(super) fn plan_for(&self, no: SegmentNo, spare: Option<Spare>) -> NextSegment {
        NextSegment {
            no,
            spare,
            dir: self.dir.clone(),
            spare_dir: self.spare_dir.clone(),
            seg_size: self.seg_size,
            tier: self.tier.clone(),
            queue: self.queue.clone(),
            faults: self.faults.clone(),
        }
    }

    /// Under the store lock: keeps what [`NextSegment::make`] made as the
    /// ready segment if the next roll will still use its number; else
    /// removes the file (a roll that raced the maker used another).
    pub fn install_next(&mut self, made: Result<Arc<Segment>>) {
        let Some(no) = self.making.take() else {
            return;
        };
        match made {
            Ok(seg) if self.next_segment_no().ok() == Some(no) => self.ready = Some(seg),
            Ok(seg) => self.discard(seg),
            Err(e) => {
                tracing::warn!(error = %e, segment = no.0, "cannot make the next segment ready")
            }
        }
    }

    /// The ready segment, if it is segment `next` (a stale one is removed).
    pub(super) fn take_ready(&mut self, next: SegmentNo) -> Option<Arc<Segment>> {
        let seg = self.ready.take()?;
        if seg.no == next {
            return Some(seg);
        }
        self.discard(seg);
        None
    }

    /// Removes a made segment file no Seal will name.
    fn discard(&mut self, seg: Arc<Segment>) {
        let no = seg.no;
        let p = segment_path(&self.dir, no);
        drop(seg);
        match std::fs::remove_file(&p) {
            Ok(()) => self.faults.record(|| IoOp::Remove {
                file: segment_rel(no),
            }),
            Err(e) => {
                tracing::warn!(error = %e, path = %p.display(), "cannot remove an unused segment")
            }
        }
    }
}
