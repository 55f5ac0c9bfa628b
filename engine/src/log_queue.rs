//! The log's write queue: how appended records reach their segment files
//! without the state lock held.
//!
//! Under the state lock an append only assigns the record its sequence
//! number and address, frames it and queues a copy here. The bytes are
//! written from outside the lock, strictly in log order, by whoever holds
//! the *write cursor*: the log's writer thread, or a thread that needs a
//! queued record on the device now (a flush or checkpoint waiting for
//! its records, a reader of a queued chunk, an appender over the queue's
//! bound) and finds the cursor free. The holder takes every queued record
//! of one segment that lies back to back (up to [`BATCH_MAX`] bytes) and
//! writes them as one unit through [`DirectWriter`] (`pwritev`, with the
//! aligned middle `O_DIRECT` when large), so records queued while the
//! device was busy go out together.
//!
//! Invariants:
//! * Records reach the device in log order: a batch starts only after the
//!   previous one is written, so the written records are always a prefix
//!   of the log (`written_seq`, `written_end`) and the on-disk layout is
//!   exactly that of appends written one by one.
//! * A read of bytes some queued record covers waits until they are
//!   written (or writes them itself): readers never see a record that is
//!   not on the device yet (`LogQueue::wait_range`).
//! * A failed write poisons the queue: the queued records are dropped,
//!   every later push, wait and drain fails, and the store fail-stops.
//!   Nothing is reported durable that was not written and synced.

use crate::error::{Error, ErrorKind, Result};
use crate::fault::{FaultPoint, Faults, IoOp};
use crate::log::{segment_path, segment_rel, Segment};
use crate::log_direct::{write_all_vectored_at, DirectWriter, RecordBuf, MIN_DIRECT};
use crate::types::{LogAddr, SegmentNo};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

/// Queued bytes above which client writers wait before appending (and
/// other appenders, above twice this, write queued records themselves).
pub(crate) const QUEUE_LIMIT: u64 = 32 << 20;
/// At most this many bytes are written as one batch.
const BATCH_MAX: u64 = 8 << 20;

/// A record assigned its place in the log but not written yet.
pub(crate) struct Pending {
    pub seg: Arc<Segment>,
    pub offset: u64,
    pub seq: u64,
    pub data: Arc<RecordBuf>,
}

struct Queue {
    recs: VecDeque<Pending>,
    /// Bytes of `recs`.
    bytes: u64,
    /// Someone holds the write cursor (is writing a batch).
    writing: bool,
    /// Every record with a lower sequence number is written.
    written_seq: u64,
    /// Address just past the last record written.
    written_end: LogAddr,
    /// Address just past the last record queued.
    queued_end: LogAddr,
    /// Why a write failed: the queue refuses everything from then on.
    failed: Option<String>,
    /// The writer thread is asked to end (once the queue is empty).
    stop: bool,
}

/// The direct-write handle, for the segment it is open on.
#[derive(Default)]
struct Writer {
    direct: DirectWriter,
    on: Option<SegmentNo>,
}

/// The queue of records on their way to the segment files.
pub(crate) struct LogQueue {
    q: Mutex<Queue>,
    cv: Condvar,
    writer: Mutex<Writer>,
    /// The `segments/` directory.
    dir: PathBuf,
    faults: Arc<Faults>,
}

impl std::fmt::Debug for LogQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogQueue")
    }
}

impl LogQueue {
    pub fn new(dir: PathBuf, faults: Arc<Faults>) -> Arc<LogQueue> {
        Arc::new(LogQueue {
            q: Mutex::new(Queue {
                recs: VecDeque::new(),
                bytes: 0,
                writing: false,
                written_seq: 0,
                written_end: LogAddr::NONE,
                queued_end: LogAddr::NONE,
                failed: None,
                stop: false,
            }),
            cv: Condvar::new(),
            writer: Mutex::new(Writer::default()),
            dir,
            faults,
        })
    }

    /// Whether large batches may use `O_DIRECT` (on by default).
    pub fn set_direct(&self, on: bool) {
        *self.writer.lock() = Writer {
            direct: DirectWriter::new(on),
            on: None,
        };
    }

    /// Appending starts at `end` with sequence number `next_seq`:
    /// everything before is on the device.
    pub fn start(&self, next_seq: u64, end: LogAddr) {
        let mut q = self.q.lock();
        q.written_seq = next_seq;
        q.written_end = end;
        q.queued_end = end;
    }

    /// Queues records, in log order, with one lock and one wake-up.
    pub fn push_many(&self, recs: Vec<Pending>) -> Result<()> {
        self.push_quiet(recs)?;
        self.cv.notify_all();
        Ok(())
    }

    /// Queues records, in log order, without waking the writer thread: the
    /// caller calls [`LogQueue::wake`] once it has released the store
    /// lock. A thread woken inside the lock may take the CPU from the
    /// holder on a busy machine (milliseconds with the lock held); should
    /// the wake never come, nothing waits forever, as whoever waits for
    /// queued records writes them itself when the cursor is free.
    pub fn push_quiet(&self, recs: Vec<Pending>) -> Result<()> {
        let Some(last) = recs.last() else {
            return Ok(());
        };
        let end = LogAddr::new(last.seg.no, last.offset + last.data.len() as u64);
        let mut q = self.q.lock();
        failed(&q)?;
        q.bytes += recs.iter().map(|r| r.data.len() as u64).sum::<u64>();
        q.queued_end = end;
        q.recs.extend(recs);
        Ok(())
    }

    /// Wakes the writer thread for records queued with
    /// [`LogQueue::push_quiet`].
    pub fn wake(&self) {
        self.cv.notify_all();
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> u64 {
        self.q.lock().bytes
    }

    /// Waits until at most `limit` bytes are queued.
    pub fn wait_room(&self, limit: u64) -> Result<()> {
        let mut q = self.q.lock();
        loop {
            failed(&q)?;
            if q.bytes <= limit {
                return Ok(());
            }
            self.help_or_wait(&mut q);
        }
    }

    /// Waits until every record below sequence number `seq` is written.
    pub fn drain(&self, seq: u64) -> Result<()> {
        let mut q = self.q.lock();
        loop {
            failed(&q)?;
            if q.written_seq >= seq {
                return Ok(());
            }
            if q.recs.is_empty() && !q.writing {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "log record {} was never queued (written up to {})",
                        q.written_seq, seq
                    ),
                ));
            }
            self.help_or_wait(&mut q);
        }
    }

    /// What is written: every record below the returned sequence number,
    /// and nothing of the log past the returned address.
    pub fn written(&self) -> (u64, LogAddr) {
        let q = self.q.lock();
        (q.written_seq, q.written_end)
    }

    /// True when a queued record covers part of bytes `[a, b)` of segment
    /// `seg` (they are not all on the device yet).
    pub fn pending(&self, seg: SegmentNo, a: u64, b: u64) -> bool {
        let q = self.q.lock();
        overlaps(&q, seg, a, b)
    }

    /// Waits until no queued record covers bytes `[a, b)` of `seg`.
    pub fn wait_range(&self, seg: SegmentNo, a: u64, b: u64) -> Result<()> {
        let mut q = self.q.lock();
        loop {
            if !overlaps(&q, seg, a, b) {
                return Ok(());
            }
            failed(&q)?;
            self.help_or_wait(&mut q);
        }
    }

    /// Takes the write cursor and writes a batch if it is free and there
    /// is something to write; else waits for the next change.
    fn help_or_wait(&self, q: &mut MutexGuard<'_, Queue>) {
        if !q.writing && !q.recs.is_empty() {
            self.write_batch(q);
        } else {
            self.cv.wait(q);
        }
    }

    /// Writes the next batch (the caller checked the cursor is free and
    /// the queue not empty). The queue lock is released meanwhile.
    fn write_batch(&self, q: &mut MutexGuard<'_, Queue>) {
        let mut batch: Vec<Pending> = Vec::new();
        let mut len = 0u64;
        while let Some(r) = q.recs.front() {
            if let Some(first) = batch.first() {
                let back_to_back = r.seg.no == first.seg.no && r.offset == first.offset + len;
                if !back_to_back || len + r.data.len() as u64 > BATCH_MAX {
                    break;
                }
            }
            len += r.data.len() as u64;
            batch.push(q.recs.pop_front().expect("front exists"));
        }
        q.writing = true;
        let r = MutexGuard::unlocked(q, || self.write_out(&batch, len));
        q.writing = false;
        q.bytes -= len;
        match r {
            Ok(()) => {
                let last = batch.last().expect("batch not empty");
                q.written_seq = last.seq + 1;
                q.written_end = LogAddr::new(last.seg.no, last.offset + last.data.len() as u64);
            }
            Err(e) => {
                tracing::error!(error = %e, "log write failed: the store fail-stops");
                q.failed = Some(e.to_string());
                q.recs.clear();
                q.bytes = 0;
            }
        }
        self.cv.notify_all();
    }

    /// Writes a batch of back-to-back records of one segment.
    fn write_out(&self, batch: &[Pending], len: u64) -> Result<()> {
        let first = &batch[0];
        let seg = &first.seg;
        let mut w = self.writer.lock();
        if w.on != Some(seg.no) {
            w.direct.open(&segment_path(&self.dir, seg.no));
            w.on = Some(seg.no);
        }
        let recs: Vec<Arc<RecordBuf>> = batch.iter().map(|p| p.data.clone()).collect();
        // Only a batch holding a large record (a big client write) goes
        // direct: small records stay in the page cache, where reads of
        // what was just written find them, as when each was appended
        // alone.
        let large = batch.iter().any(|p| p.data.len() as u64 >= MIN_DIRECT);
        self.faults.log_write();
        self.faults
            .check(FaultPoint::LogWrite)
            .and_then(|_| {
                if large {
                    w.direct.write(&seg.file, &recs, first.offset)
                } else {
                    let parts: Vec<&[u8]> = recs.iter().flat_map(|r| r.parts()).collect();
                    write_all_vectored_at(&seg.file, &parts, first.offset)
                }
            })
            .map_err(|e| {
                Error::io(
                    format!(
                        "writing {len} bytes of log records to segment {} at offset {}",
                        seg.no.0, first.offset
                    ),
                    e,
                )
            })?;
        for p in batch {
            self.faults.record(|| IoOp::Write {
                file: segment_rel(p.seg.no),
                offset: p.offset,
                data: p.data.to_vec(),
            });
        }
        Ok(())
    }

    /// The writer thread's loop: writes whatever is queued, until asked to
    /// stop (then once the queue is empty) or the queue failed.
    pub fn run(&self) {
        let mut q = self.q.lock();
        loop {
            if q.failed.is_some() || (q.stop && q.recs.is_empty() && !q.writing) {
                return;
            }
            self.help_or_wait(&mut q);
        }
    }

    /// Asks the writer thread to end once everything queued is written.
    pub fn stop(&self) {
        self.q.lock().stop = true;
        self.cv.notify_all();
    }
}

fn failed(q: &Queue) -> Result<()> {
    match &q.failed {
        Some(why) => Err(Error::new(
            ErrorKind::Io,
            format!("an earlier log write failed: {why}"),
        )),
        None => Ok(()),
    }
}

/// True when bytes `[a, b)` of `seg` overlap the queued, unwritten part of
/// the log, `[written_end, queued_end)`.
fn overlaps(q: &Queue, seg: SegmentNo, a: u64, b: u64) -> bool {
    a < b && LogAddr::new(seg, a).0 < q.queued_end.0 && LogAddr::new(seg, b).0 > q.written_end.0
}
