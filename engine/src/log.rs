//! The append-only log: numbered segment files holding framed records.
//! Appends go to the active segment; a full segment is sealed with a Seal
//! record and the log continues in a new file. Sync is `fdatasync` of every
//! segment written since the last sync. A segment the last checkpoints no
//! longer need is deleted, or kept as a *spare* (renamed into `spare/`) and
//! later renamed to the next segment number and overwritten from offset 0
//! (`log/spare.rs`):
//! appends then land in allocated, usually cached, blocks instead of new
//! ones, which makes writing and syncing several times faster. Stale records
//! past the tail of a reused file are never read as records, because replay
//! requires each record's exact next sequence number. An append only
//! numbers, frames and queues its record under the store lock; the bytes
//! reach the file in log order from outside it (`log_queue.rs`), large
//! batches with their aligned middle written with `O_DIRECT`
//! (`log_direct.rs`). Every read of a segment first waits for the queued
//! records it covers.

mod page_read;
mod ready;
mod spare;

use crate::error::{Error, Result};
use crate::fault::{FaultPoint, Faults, IoOp};
use crate::format::{RecordHeader, RecordKind, SealBody, HEADER_LEN};
use crate::log_direct::{Payload, RecordBuf};
use crate::log_queue::{LogQueue, Pending, QUEUE_LIMIT};
use crate::residency::{read_error, Residency, TierHook};
use crate::types::{LogAddr, SegmentNo};
use spare::{open_spares, spare_rel, Spare};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Room always left at a segment's end for its Seal record.
const SEAL_RESERVE: u64 = (HEADER_LEN + 8) as u64;

/// One open segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    pub no: SegmentNo,
    pub file: File,
    /// Which of its bytes are in the object store (`residency.rs`).
    pub res: Residency,
    pub hook: Arc<TierHook>,
    /// The log's write queue: reads wait for the queued records they cover.
    pub gate: Arc<LogQueue>,
}

/// A segment's file name relative to the data directory, for recording.
pub(crate) fn segment_rel(no: SegmentNo) -> String {
    format!("segments/seg-{:08}.log", no.0)
}

impl Segment {
    /// Reads and validates the record at `offset`; `None` when no valid
    /// record (with sequence `expect_seq`, if given) starts there. Segment
    /// handles stay readable after the file is deleted, so this may run
    /// outside the store lock.
    pub fn read_record(
        &self,
        offset: u64,
        expect_seq: Option<u64>,
        seg_size: u64,
    ) -> Result<Option<ReadRecord>> {
        let mut h = [0u8; HEADER_LEN];
        self.gate
            .wait_range(self.no, offset, offset + HEADER_LEN as u64)?;
        match self.pread(&mut h, offset) {
            Ok(n) if n == HEADER_LEN => {}
            Ok(_) => return Ok(None),
            Err(e) => return Err(read_error(format!("reading segment {}", self.no.0), e)),
        }
        let header = match RecordHeader::decode(&h) {
            Some(h) => h,
            None => return Ok(None),
        };
        if expect_seq.is_some_and(|s| s != header.seq) || u64::from(header.body_len) > seg_size {
            return Ok(None);
        }
        let mut body = vec![0u8; header.body_len as usize];
        let at = offset + HEADER_LEN as u64;
        self.gate.wait_range(self.no, at, at + body.len() as u64)?;
        match self.pread(&mut body, at) {
            Ok(n) if n == body.len() => {}
            Ok(_) => return Ok(None),
            Err(e) => return Err(read_error(format!("reading segment {}", self.no.0), e)),
        }
        if !header.body_ok(&body) {
            return Ok(None);
        }
        let mut next = LogAddr::new(self.no, offset + HEADER_LEN as u64 + body.len() as u64);
        if header.kind == RecordKind::Seal {
            if let Ok(seal) = SealBody::decode(&body) {
                next = LogAddr::new(seal.next, 0);
            }
        }
        Ok(Some(ReadRecord { header, body, next }))
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.gate
            .wait_range(self.no, offset, offset + buf.len() as u64)?;
        let mut done = 0;
        let r = loop {
            if done == buf.len() {
                break Ok(());
            }
            match self.pread(&mut buf[done..], offset + done as u64) {
                Ok(0) => break Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        r.map_err(|e| {
            read_error(
                format!("reading segment {} at offset {offset}", self.no.0),
                e,
            )
        })
    }
}

/// Segments to sync, taken by [`Log::unsynced`].
pub(crate) struct ToSync {
    pub segs: Vec<Arc<Segment>>,
    /// The segment holding the end of the written records when they were
    /// taken: earlier ones hold no unwritten record.
    active: SegmentNo,
    /// Every record below this sequence number was written when they were
    /// taken: once they are synced, all of them are durable.
    upto: u64,
}

impl ToSync {
    /// Every record below this sequence number is durable once synced.
    pub fn upto(&self) -> u64 {
        self.upto
    }
}

/// A record read back from the log.
pub(crate) struct ReadRecord {
    pub header: RecordHeader,
    pub body: Vec<u8>,
    /// Address just past this record.
    pub next: LogAddr,
}

/// The set of segment files and the append position.
pub(crate) struct Log {
    dir: PathBuf,
    pub seg_size: u64,
    segments: BTreeMap<SegmentNo, Arc<Segment>>,
    active: Arc<Segment>,
    tail: u64,
    next_seq: u64,
    unsynced: Vec<Arc<Segment>>,
    /// Every record up to this sequence number has completed an
    /// `fdatasync` (0: none known). Each appended record's header claims it
    /// (see [`RecordHeader::set_claim`]), so that replay can tell a damaged
    /// synced record from a torn tail.
    synced_through: u64,
    /// Free disk bytes client records may not use when the log needs a new
    /// segment: room kept for checkpoints, catalogue records (deletes) and
    /// the cleaner, so that a full disk refuses writes cleanly and can
    /// still free space.
    pub reserve: u64,
    /// Armed fault points (tests only).
    pub faults: Arc<Faults>,
    /// The directory of spare segment files (`spare/`, beside `segments/`).
    spare_dir: PathBuf,
    /// Retired segment files waiting for reuse.
    spares: Vec<Spare>,
    /// At most this many spares are kept (see [`Log::set_max_spares`]).
    max_spares: usize,
    /// Retired segment files waiting to be deleted (see [`Log::take_doomed`]).
    doomed: Vec<Doomed>,
    /// The next segment gets at least this number (tests skip ahead with
    /// it; a Seal names its successor, so numbers may skip).
    pub min_next_segment: u32,
    /// Segments' remote bytes: the source, markers, recency
    /// (`residency.rs`).
    pub tier: Arc<TierHook>,
    /// Records on their way to the segment files (`log_queue.rs`).
    queue: Arc<LogQueue>,
    /// The thread writing queued records, once appending started.
    writer: Option<std::thread::JoinHandle<()>>,
    /// Records held back to be queued together (see
    /// [`Log::append_encoded_many`]), in log order.
    held: Option<Vec<Pending>>,
    /// The next segment file, made ready outside the store lock
    /// (`log/ready.rs`).
    ready: Option<Arc<Segment>>,
    /// The number of the segment file being made ready, if one is.
    making: Option<SegmentNo>,
    /// The active segment for which no file could be made ready (the
    /// disk too full): not asked again until the next roll.
    ready_declined: Option<SegmentNo>,
    /// Segment files made under the store lock by a roll that found none
    /// ready, and the time they took (for the long-hold log).
    pub made_in_lock: (u64, std::time::Duration),
}

impl Drop for Log {
    /// Lets the writer thread write what is queued, and waits for it: no
    /// write may reach a segment after the store's lock file is released.
    fn drop(&mut self) {
        self.queue.stop();
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

/// A retired segment file to delete. Unlinking and closing the last handle
/// free its blocks, which on a filesystem mounted with `discard` waits for
/// the device to discard them (tens to hundreds of milliseconds for a
/// segment), so it is done outside the store lock.
pub(crate) struct Doomed {
    path: PathBuf,
    seg: Arc<Segment>,
}

/// Deletes retired segment files (outside the store lock). A reader still
/// holding one keeps reading it until it lets go.
pub(crate) fn bury(doomed: Vec<Doomed>) -> Result<()> {
    for d in doomed {
        std::fs::remove_file(&d.path)
            .map_err(|e| Error::io(format!("removing {}", d.path.display()), e))?;
        drop(d.seg);
    }
    Ok(())
}

pub(crate) fn segment_path(dir: &Path, no: SegmentNo) -> PathBuf {
    dir.join(format!("seg-{:08}.log", no.0))
}

fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io(format!("opening {}", dir.display()), e))?;
    d.sync_all()
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))
}

/// Reserves `len` bytes of disk for a segment file without changing its
/// size, so that appends inside it cannot run out of space. Filesystems
/// without `fallocate` are left as they are (appends may then meet ENOSPC,
/// which client writes handle cleanly).
fn preallocate(seg: &Segment, len: u64) -> Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    match fallocate(&seg.file, FallocateFlags::KEEP_SIZE, 0, len) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::OPNOTSUPP => Ok(()),
        Err(e) => Err(Error::io(
            format!("allocating segment {}", seg.no.0),
            e.into(),
        )),
    }
}

/// Bytes free for an unprivileged writer on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Result<u64> {
    let st = rustix::fs::statvfs(dir)
        .map_err(|e| Error::io(format!("statvfs {}", dir.display()), e.into()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

fn open_segment(
    dir: &Path,
    no: SegmentNo,
    create: bool,
    hook: &Arc<TierHook>,
    gate: &Arc<LogQueue>,
) -> Result<Arc<Segment>> {
    let path = segment_path(dir, no);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    Ok(Arc::new(Segment {
        no,
        file,
        res: if create {
            Residency::default()
        } else {
            hook.residency(no)
        },
        hook: hook.clone(),
        gate: gate.clone(),
    }))
}

/// Lists the segment numbers present in `dir`.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegmentNo>> {
    let mut out = Vec::new();
    let rd =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let name = ent.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_prefix("seg-")
            .and_then(|s| s.strip_suffix(".log"))
        {
            if let Ok(n) = n.parse::<u32>() {
                out.push(SegmentNo(n));
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Log {
    /// Opens the existing segments of `dir` for reading (replay). Appending
    /// starts after [`Log::start_append`]. `faults` is the store's fault
    /// points and I/O recording (tests record recovery's own I/O too).
    pub fn open(dir: &Path, seg_size: u64, faults: Arc<Faults>) -> Result<Log> {
        let spare_dir = dir.with_file_name("spare");
        let spares = open_spares(&spare_dir)?;
        let tier = TierHook::open(dir)?;
        let queue = LogQueue::new(dir.to_path_buf(), faults.clone());
        let mut segments = BTreeMap::new();
        for no in list_segments(dir)? {
            segments.insert(no, open_segment(dir, no, false, &tier, &queue)?);
        }
        let active = match segments.values().next() {
            Some(s) => s.clone(),
            None => {
                let s = open_segment(dir, SegmentNo(1), true, &tier, &queue)?;
                sync_dir(dir)?;
                faults.record(|| IoOp::Create {
                    file: segment_rel(SegmentNo(1)),
                });
                segments.insert(SegmentNo(1), s.clone());
                s
            }
        };
        Ok(Log {
            dir: dir.to_path_buf(),
            seg_size,
            segments,
            unsynced: Vec::new(),
            synced_through: 0,
            active,
            tail: 0,
            next_seq: 1,
            reserve: 0,
            faults,
            spare_dir,
            max_spares: spares.len(),
            spares,
            doomed: Vec::new(),
            min_next_segment: 0,
            tier,
            queue,
            writer: None,
            held: None,
            ready: None,
            making: None,
            ready_declined: None,
            made_in_lock: Default::default(),
        })
    }

    /// Tests only: the next record gets sequence number `n` (if higher). The
    /// caller checkpoints right after, so replay never spans the jump.
    #[cfg(feature = "fault-injection")]
    pub fn skip_seq_to(&mut self, n: u64) {
        self.next_seq = self.next_seq.max(n);
    }

    /// Whether large appends may use `O_DIRECT` (before
    /// [`Log::start_append`]; on by default).
    pub fn set_direct(&mut self, on: bool) {
        self.queue.set_direct(on);
    }

    /// The write queue (flushes and checkpoints wait on it outside the
    /// store lock).
    pub fn queue(&self) -> Arc<LogQueue> {
        self.queue.clone()
    }

    /// Waits until every record appended so far is written (not synced).
    pub fn drain(&self) -> Result<()> {
        self.queue.drain(self.next_seq)
    }

    /// Makes the log append at `tail` (the end of replay) with sequence
    /// `next_seq`. Later segments and bytes past `tail` are a torn,
    /// unacknowledged tail and are removed.
    pub fn start_append(&mut self, tail: LogAddr, next_seq: u64) -> Result<()> {
        let later: Vec<SegmentNo> = self
            .segments
            .keys()
            .copied()
            .filter(|&n| n > tail.segment())
            .collect();
        for no in later {
            self.segments.remove(&no);
            let p = segment_path(&self.dir, no);
            std::fs::remove_file(&p)
                .map_err(|e| Error::io(format!("removing {}", p.display()), e))?;
            self.faults.record(|| IoOp::Remove {
                file: segment_rel(no),
            });
        }
        let active = match self.segments.get(&tail.segment()) {
            Some(s) => s.clone(),
            None => {
                let s = open_segment(&self.dir, tail.segment(), true, &self.tier, &self.queue)?;
                sync_dir(&self.dir)?;
                self.faults.record(|| IoOp::Create {
                    file: segment_rel(tail.segment()),
                });
                self.segments.insert(tail.segment(), s.clone());
                s
            }
        };
        let len = active
            .file
            .metadata()
            .map_err(|e| Error::io("reading segment length", e))?
            .len();
        if len != tail.offset() {
            active
                .file
                .set_len(tail.offset())
                .map_err(|e| Error::io("truncating the torn log tail", e))?;
            active
                .file
                .sync_data()
                .map_err(|e| Error::io("syncing the truncated log tail", e))?;
            self.faults.record(|| IoOp::Truncate {
                file: segment_rel(active.no),
                len: tail.offset(),
            });
        }
        // Best effort: an older or truncated active segment gets its space.
        if let Err(e) = preallocate(&active, self.seg_size) {
            tracing::warn!(error = %e, "cannot preallocate the active segment");
        }
        self.unsynced = vec![active.clone()];
        self.active = active;
        self.tail = tail.offset();
        self.next_seq = next_seq;
        self.queue.start(next_seq, tail);
        if self.writer.is_none() {
            let q = self.queue.clone();
            let h = std::thread::Builder::new()
                .name("blockd-log-writer".into())
                .spawn(move || q.run())
                .map_err(|e| Error::io("starting the log writer thread", e))?;
            self.writer = Some(h);
        }
        Ok(())
    }

    /// After replay and [`Log::start_append`]: the records replayed (from
    /// segment `from` on) were read back but may never have been synced (a
    /// killed process leaves them in the page cache), so their segments
    /// join the to-sync list; only the records before the replay point
    /// (`replay_seq`), which the last checkpoint synced, are known durable.
    pub fn replayed(&mut self, from: SegmentNo, replay_seq: u64) {
        for (no, seg) in self.segments.range(from..) {
            if !self.unsynced.iter().any(|s| s.no == *no) {
                self.unsynced.push(seg.clone());
            }
        }
        self.synced_through = replay_seq.saturating_sub(1);
    }

    /// The address the next record will get (unless a seal intervenes).
    pub fn tail(&self) -> LogAddr {
        LogAddr::new(self.active.no, self.tail)
    }

    /// The sequence number of the next record.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The segment files, by number.
    pub fn segments(&self) -> &BTreeMap<SegmentNo, Arc<Segment>> {
        &self.segments
    }

    /// The active segment's number.
    pub fn active_no(&self) -> SegmentNo {
        self.active.no
    }

    /// Bytes the log occupies on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segments
            .values()
            .map(|s| s.file.metadata().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// Appends one record and returns its address. A failure leaves the
    /// log in an unknown state: the caller must fail-stop.
    pub fn append(&mut self, kind: RecordKind, body: &[u8]) -> Result<LogAddr> {
        let mut framed = Vec::with_capacity(HEADER_LEN + body.len());
        framed.resize(HEADER_LEN, 0);
        framed.extend_from_slice(body);
        let need = framed.len() as u64;
        self.frame(kind, &mut framed, &[], need, None)?;
        self.push(framed)
    }

    /// Appends records already framed (each a `HEADER_LEN`-byte
    /// placeholder, then the body, whose crc32 comes with it): only the
    /// headers are made here, and the records are queued together (a
    /// checkpoint's map nodes), without waking the writer thread (the
    /// caller calls [`LogQueue::wake`] once it has released the store
    /// lock). Not for Write records. A failure leaves the records before
    /// the failing one queued: the caller must fail-stop.
    pub fn append_encoded_many(
        &mut self,
        kind: RecordKind,
        framed: Vec<(Vec<u8>, u32)>,
    ) -> Result<Vec<LogAddr>> {
        let mine = self.hold_appends();
        let mut addrs = Vec::with_capacity(framed.len());
        let mut r = Ok(());
        for (mut f, crc) in framed {
            let need = f.len() as u64;
            match self
                .frame(kind, &mut f, &[], need, Some(crc))
                .and_then(|_| self.push(f))
            {
                Ok(a) => addrs.push(a),
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        if mine {
            self.queue_held()?;
        }
        r.map(|_| addrs)
    }

    /// Holds back the records appended from now on (in log order), to be
    /// queued together by [`Log::queue_held`]: one queue lock and wake-up
    /// for a batch (the cleaner's moves) instead of one per record. False
    /// when a hold is already on (the caller then leaves queueing to whoever
    /// started it). Whoever starts a hold must end it with
    /// [`Log::queue_held`] before releasing the store lock, failure or
    /// not: until then no reader can wait for the held records.
    pub fn hold_appends(&mut self) -> bool {
        if self.held.is_some() {
            return false;
        }
        self.held = Some(Vec::new());
        true
    }

    /// Queues the records held back since [`Log::hold_appends`] and ends
    /// the hold, without waking the writer thread: the caller calls
    /// [`LogQueue::wake`] once it has released the store lock (see
    /// [`LogQueue::push_quiet`]).
    pub fn queue_held(&mut self) -> Result<()> {
        let held = self.held.take().unwrap_or_default();
        self.queue.push_quiet(held)?;
        if self.faults.recording() {
            self.queue.drain(self.next_seq)?;
        }
        Ok(())
    }

    /// Appends a Write record from its checksummed head (`HEADER_LEN`-byte
    /// placeholder, fixed part and entries) and its payloads, copied into
    /// one queued buffer.
    pub fn append_write(
        &mut self,
        kind: RecordKind,
        head: &mut [u8],
        payloads: &[&[u8]],
    ) -> Result<LogAddr> {
        self.append_parts(kind, head, payloads)
    }

    fn append_parts(
        &mut self,
        kind: RecordKind,
        head: &mut [u8],
        payloads: &[&[u8]],
    ) -> Result<LogAddr> {
        let need = head.len() as u64 + payloads.iter().map(|p| p.len() as u64).sum::<u64>();
        self.frame(kind, head, payloads, need, None)?;
        // Laid out in memory for direct writes from where it will land.
        let mut data = RecordBuf::placed(self.tail, need as usize);
        data.extend_from_slice(head);
        for p in payloads {
            data.extend_from_slice(p);
        }
        self.push(data)
    }

    /// Appends an aligned extent Write record (kind 12): `head` is its
    /// `HEADER_LEN`-byte placeholder and its body up to the crc arrays
    /// ([`crate::format::encode_aligned_write_head`]); the padding that
    /// brings `payload` to a 4 KiB-aligned file offset is added here, once
    /// the record's place is known, and the payloads are queued in the
    /// buffer they are in (written `O_DIRECT` from it). Returns the
    /// record's address and the body offset of its payloads.
    pub fn append_aligned(
        &mut self,
        mut head: Vec<u8>,
        payload: Payload,
    ) -> Result<(LogAddr, usize)> {
        let plen = (payload.to - payload.from) as u64;
        let kind = RecordKind::WriteAligned;
        // Room for the most padding there can be (a roll moves the tail);
        // the header is encoded once the padding is known.
        let most = head.len() as u64 + crate::format::ALIGNED_PAGE - 1 + plen;
        self.make_room(kind, most)?;
        crate::format::finish_aligned_write_head(&mut head, HEADER_LEN, self.tail);
        let need = head.len() as u64 + plen;
        self.stamp(kind, &mut head, &[&[]], need, None)?;
        let payloads_at = head.len() - HEADER_LEN;
        let mut framed = RecordBuf::placed(self.tail, head.len());
        framed.extend_from_slice(&head);
        let a = self.push(RecordBuf::with_payload(framed, payload))?;
        Ok((a, payloads_at))
    }

    /// Queues the record `data` (framed by [`Log::frame`]) at the tail.
    fn push(&mut self, data: impl Into<RecordBuf>) -> Result<LogAddr> {
        let data = data.into();
        let addr = self.tail();
        let need = data.len() as u64;
        self.enqueue(self.tail, data)?;
        self.tail += need;
        self.next_seq += 1;
        Ok(addr)
    }

    /// Queues record `next_seq` at `offset` of the active segment (or
    /// holds it back, keeping log order, while records are held).
    fn enqueue(&mut self, offset: u64, data: impl Into<RecordBuf>) -> Result<()> {
        let p = Pending {
            seg: self.active.clone(),
            offset,
            seq: self.next_seq,
            data: Arc::new(data.into()),
        };
        match &mut self.held {
            Some(h) => {
                h.push(p);
                Ok(())
            }
            None => {
                self.queue.push_many(vec![p])?;
                self.written_if_recording()
            }
        }
    }

    /// While file operations are recorded (power-cut tests), every record
    /// is written before its append returns, so that a recording, and the
    /// crash images cut from it, depend only on the workload and not on
    /// when the writer thread ran (a failing chain replays exactly). The
    /// queue is the same; only its writes are not left for later.
    fn written_if_recording(&self) -> Result<()> {
        if self.faults.recording() {
            self.queue.drain(self.next_seq + 1)?;
        }
        Ok(())
    }

    /// Makes room for a record of `need` bytes (rolling to a new segment
    /// if it does not fit), fills in its header at the start of `head`
    /// (the payloads follow `head`; `body_crc`, when given, is the crc of
    /// the whole body after the header) and checks its fault point.
    fn frame(
        &mut self,
        kind: RecordKind,
        head: &mut [u8],
        payloads: &[&[u8]],
        need: u64,
        body_crc: Option<u32>,
    ) -> Result<()> {
        self.make_room(kind, need)?;
        self.stamp(kind, head, payloads, need, body_crc)
    }

    /// The first half of [`Log::frame`]: room at the tail for a record of
    /// at most `need` bytes.
    fn make_room(&mut self, kind: RecordKind, need: u64) -> Result<()> {
        // Never reached: client records stop at `SEQ_LIMIT`, far below.
        if self.next_seq >= crate::counters::SEQ_END {
            return Err(Error::new(
                crate::ErrorKind::Exhausted,
                format!("record sequence number {} is at its limit", self.next_seq),
            ));
        }
        if need + SEAL_RESERVE > self.seg_size {
            return Err(Error::new(
                crate::ErrorKind::InvalidArgument,
                format!("record of {need} bytes exceeds the segment size"),
            ));
        }
        // Client writes, the cleaner's moves and free steps wait for room
        // in the queue before they take the store lock
        // (`Store::wait_queue_room`); checkpoint pages are bounded by the
        // dirty limit. Waiting here, with the lock held, stopped every
        // request: after a checkpoint's final hold queued its pages (86 MB
        // past a 16 GiB random fill), the next write waited 54 ms in its
        // hold for the queue to drain. Only the other appenders (catalogue
        // changes, write-zeroes and trims: small records) are bounded here.
        let waited = matches!(
            kind,
            RecordKind::Node
                | RecordKind::CtPage
                | RecordKind::Checkpoint
                | RecordKind::Write
                | RecordKind::WriteExtents
                | RecordKind::WriteAligned
                | RecordKind::Reloc
                | RecordKind::RelocExtent
                | RecordKind::Free
        );
        if !waited && self.queue.queued_bytes() > 2 * QUEUE_LIMIT {
            self.queue.wait_room(QUEUE_LIMIT)?;
        }
        if self.tail + need + SEAL_RESERVE > self.seg_size {
            self.roll(matches!(
                kind,
                RecordKind::Write | RecordKind::WriteExtents | RecordKind::WriteAligned
            ))?;
        }
        Ok(())
    }

    /// The second half of [`Log::frame`]: the header of a record of `need`
    /// bytes, placed at the tail, at the start of `head`; then its fault
    /// point.
    fn stamp(
        &mut self,
        kind: RecordKind,
        head: &mut [u8],
        payloads: &[&[u8]],
        need: u64,
        body_crc: Option<u32>,
    ) -> Result<()> {
        let mut h = if let Some(crc) = body_crc {
            RecordHeader::encode_with_crc(
                kind,
                self.next_seq,
                crc,
                (need - HEADER_LEN as u64) as u32,
            )
        } else if payloads.is_empty() {
            RecordHeader::encode(kind, self.next_seq, &head[HEADER_LEN..])
        } else {
            RecordHeader::encode_covered(
                kind,
                self.next_seq,
                &head[HEADER_LEN..],
                (need - HEADER_LEN as u64) as u32,
            )
        };
        RecordHeader::set_claim(&mut h, self.next_seq, self.synced_through);
        head[..HEADER_LEN].copy_from_slice(&h);
        let point = match kind {
            RecordKind::Write
            | RecordKind::WriteExtents
            | RecordKind::WriteAligned
            | RecordKind::Zero
            | RecordKind::Free => FaultPoint::LogAppend,
            RecordKind::Catalog => FaultPoint::CatalogAppend,
            RecordKind::Reloc | RecordKind::RelocExtent => FaultPoint::ReclaimMove,
            RecordKind::Seal => FaultPoint::SegmentSeal,
            RecordKind::Node | RecordKind::CtPage | RecordKind::Checkpoint => {
                FaultPoint::CheckpointPage
            }
        };
        self.faults
            .check(point)
            .map_err(|e| Error::io(format!("appending to segment {}", self.active.no.0), e))
    }

    /// Seals the active segment and starts the next one. The next file is
    /// created, its space allocated and its directory synced before the
    /// Seal record points at it, so a failure leaves the log as it was.
    /// A `client` record may not dip into the reserve: it gets a clean
    /// ENOSPC instead.
    fn roll(&mut self, client: bool) -> Result<()> {
        let next = self.next_segment_no()?;
        if client && self.tier.is_full() {
            return Err(Error::new(
                crate::ErrorKind::NoSpace,
                "the data directory is at its --cache-dir-size bound and nothing more can be evicted (uploads lag)",
            ));
        }
        let seg = match self.take_ready(next) {
            Some(seg) => seg,
            None => {
                let t = std::time::Instant::now();
                let seg = self.make_segment(next, client)?;
                let d = t.elapsed();
                self.made_in_lock.0 += 1;
                self.made_in_lock.1 += d;
                if d >= crate::op_stats::SLOW_HOLD {
                    tracing::warn!(
                        segment = next.0,
                        ms = d.as_millis() as u64,
                        "segment file made under the store lock (none was ready)"
                    );
                }
                seg
            }
        };
        let seal_body = SealBody { next }.encode();
        let mut seal_h = RecordHeader::encode(RecordKind::Seal, self.next_seq, &seal_body);
        RecordHeader::set_claim(&mut seal_h, self.next_seq, self.synced_through);
        let mut seal = seal_h.to_vec();
        seal.extend_from_slice(&seal_body);
        self.faults
            .check(FaultPoint::SegmentSeal)
            .map_err(|e| Error::io(format!("sealing segment {}", self.active.no.0), e))?;
        self.enqueue(self.tail, seal)?;
        self.next_seq += 1;
        self.segments.insert(next, seg.clone());
        self.unsynced.push(seg.clone());
        self.active = seg;
        self.tail = 0;
        Ok(())
    }

    /// Segment file `next` made under the store lock (no ready one): a
    /// spare renamed, or a new file; its directory synced. A `client`
    /// record may not dip into the reserve for a new file.
    fn make_segment(&mut self, next: SegmentNo, client: bool) -> Result<Arc<Segment>> {
        let spare = self.spares.pop();
        if client {
            // A spare costs no new disk space; a new file costs a segment.
            let need = if spare.is_some() { 0 } else { self.seg_size };
            let free = free_bytes(&self.dir)?;
            if free < need + self.reserve {
                self.spares.extend(spare);
                return Err(Error::new(
                    crate::ErrorKind::NoSpace,
                    format!(
                        "no space left for a new segment: {free} bytes free, {} kept for metadata",
                        self.reserve
                    ),
                ));
            }
        }
        self.plan_for(next, spare).make()
    }

    /// The segments written since they were last synced, for a sync done
    /// outside the caller's lock, and how far the written records reach:
    /// the sync makes durable every record the queue has written (call
    /// [`LogQueue::drain`] first for those a flush needs). They stay
    /// listed until
    /// [`Log::mark_synced`] says the sync is done: a flush or checkpoint
    /// running meanwhile must sync them itself rather than count on a sync
    /// still in progress elsewhere (it would report durable what is not
    /// yet, or commit a checkpoint naming records not yet on disk).
    pub fn unsynced(&self) -> ToSync {
        let (upto, end) = self.queue.written();
        ToSync {
            segs: self.unsynced.clone(),
            active: if end.is_none() {
                self.active.no
            } else {
                end.segment()
            },
            upto,
        }
    }

    /// Records that every segment of `t` was synced: those before the
    /// segment the written records then reached hold nothing newer and
    /// leave the list; that one and later ones stay (records may have been
    /// written since, or still be queued). Every record written before `t`
    /// was taken is now durable: later records claim so.
    pub fn mark_synced(&mut self, t: &ToSync) {
        self.unsynced
            .retain(|s| s.no >= t.active || !t.segs.iter().any(|x| x.no == s.no));
        self.synced_through = self.synced_through.max(t.upto.saturating_sub(1));
    }

    /// Reads and validates the record at `addr`; `None` when no valid record
    /// with sequence `expect_seq` (if given) starts there.
    pub fn read_record(
        &self,
        addr: LogAddr,
        expect_seq: Option<u64>,
    ) -> Result<Option<ReadRecord>> {
        match self.segments.get(&addr.segment()) {
            Some(seg) => seg.read_record(addr.offset(), expect_seq, self.seg_size),
            None => Ok(None),
        }
    }

    /// Reads a record that must be valid (a checkpointed page or blob).
    pub fn read_required(&self, addr: LogAddr, what: &dyn Fn() -> String) -> Result<ReadRecord> {
        self.read_record(addr, None)?.ok_or_else(|| {
            Error::corrupt(format!(
                "{}: no valid record at segment {} offset {}",
                what(),
                addr.segment().0,
                addr.offset()
            ))
        })
    }

    /// The segment handle for `no`.
    pub fn segment(&self, no: SegmentNo) -> Option<Arc<Segment>> {
        self.segments.get(&no).cloned()
    }

    /// Retires a segment file the last checkpoint no longer needs: kept as
    /// a spare when nobody else holds it open (a reader outside the store
    /// lock may still read a deleted file, but must never see it rewritten)
    /// and [`Log::keep_spare`] allows, else queued for deletion by
    /// [`bury`] outside the store lock (see [`Log::take_doomed`]).
    pub fn remove_segment(&mut self, no: SegmentNo) -> Result<()> {
        if no == self.active.no {
            return Ok(());
        }
        self.unsynced.retain(|s| s.no != no);
        let p = segment_path(&self.dir, no);
        let Some(seg) = self.segments.remove(&no) else {
            return Ok(());
        };
        self.tier.forget(&seg);
        let seg = match (self.keep_spare(), Arc::try_unwrap(seg)) {
            (true, Ok(seg)) => {
                let to = self.spare_path(no);
                let moved =
                    std::fs::create_dir_all(&self.spare_dir).and_then(|_| std::fs::rename(&p, &to));
                match moved {
                    Ok(()) => {
                        self.faults.record(|| IoOp::Rename {
                            from: segment_rel(no),
                            to: spare_rel(no),
                        });
                        self.spares.push(Spare {
                            old: no,
                            file: seg.file,
                        });
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot keep a spare segment");
                        Arc::new(seg)
                    }
                }
            }
            (_, Ok(seg)) => Arc::new(seg),
            (_, Err(seg)) => seg,
        };
        self.faults.record(|| IoOp::Remove {
            file: segment_rel(no),
        });
        self.doomed.push(Doomed { path: p, seg });
        Ok(())
    }

    /// Segment files retired for deletion since the last call, to be
    /// deleted with [`bury`] once the store lock is released.
    pub fn take_doomed(&mut self) -> Vec<Doomed> {
        std::mem::take(&mut self.doomed)
    }
}

/// fdatasyncs each segment; an error must fail-stop the store.
pub(crate) fn sync_segments(faults: &Faults, segs: &[Arc<Segment>]) -> Result<()> {
    for s in segs {
        faults
            .check(FaultPoint::Fsync)
            .and_then(|_| s.file.sync_data())
            .inspect(|_| {
                faults.record(|| IoOp::Sync {
                    file: segment_rel(s.no),
                })
            })
            .map_err(|e| Error::io(format!("fdatasync of segment {}", s.no.0), e))?;
    }
    Ok(())
}
