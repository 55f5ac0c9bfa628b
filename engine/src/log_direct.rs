//! How a batch of log records reaches its segment file (the write queue,
//! `log_queue.rs`, hands over records lying back to back in one segment).
//! A small batch takes one buffered `pwrite`/`pwritev`. A large one (a
//! 1 MiB client write, or several queued together) has the 4 KiB-aligned
//! middle of its byte range written through a second, `O_DIRECT` handle on
//! its segment, as up to four concurrent pieces by writer threads (the
//! disk then sees a queue depth of four instead of one); its unaligned
//! head and tail still go through the page cache. A large record is framed
//! into a [`RecordBuf`] whose bytes sit at memory addresses congruent to
//! their file offsets modulo 4 KiB, so a piece inside one record is written
//! straight from it; only a piece spanning two records is copied into an
//! aligned staging buffer first. [`DirectWriter::write`] returns only once
//! every piece is written.
//!
//! Why: on a flush, `fdatasync` of a segment whose megabytes sit dirty in
//! the page cache waits for kernel writeback, several times slower than the
//! disk takes direct writes (see BENCHMARKS.md, "Sequential writes against
//! the disk"). Direct writes leave only a device cache flush to the sync.
//!
//! Why the split: a 4 KiB block of the file is only ever written one way in
//! a segment's life. Direct writes never rewrite a block that buffered
//! writes may hold dirty (the block holding the previous batch's end, or
//! the next batch's start), so the page cache and the disk cannot
//! disagree; the kernel drops cached pages of a directly written range, so
//! buffered reads afterwards see the new bytes. Nothing is written past the
//! batch's end, so the on-disk layout is exactly that of buffered appends.
//! Durability is unchanged: a record counts as durable only after the
//! segment's `fdatasync`, which also flushes the device cache the direct
//! writes went to. Where `O_DIRECT` is refused (open or first write fails
//! with `EINVAL`, as on some filesystems), every append stays buffered.

use crate::aligned::AlignedBuf;
use rustix::fs::OFlags;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{mpsc, Arc};

/// Alignment of direct writes (offset, length and memory): 4 KiB, a
/// multiple of every common logical block size.
const ALIGN: u64 = 4096;
/// A record goes direct only when its aligned middle is at least this big:
/// below it the page cache is cheaper than the extra syscalls.
pub(crate) const MIN_DIRECT: u64 = 64 << 10;
/// Direct writes of one record run on up to this many threads at once: a
/// single 1 MiB write waits for the device alone (about half the disk's
/// speed on the benchmark VM), four 256 KiB ones keep it busy.
const LANES: usize = 4;
/// A record's middle is split into pieces of at least this size.
const MIN_PIECE: u64 = 128 << 10;
/// Bytes staged (copied into a lane's aligned buffer) per direct write.
const STAGE: usize = 2 << 20;
/// How far past the first aligned offset of a batch the direct middle may
/// start instead, at the start of a part (an aligned write's payloads):
/// more than the head of any aligned extent Write record.
const HEAD_SLACK: u64 = 3 * ALIGN;

/// A queued record's bytes. A record large enough to go direct is laid
/// out so that each byte sits at a memory address congruent to its file
/// offset modulo [`ALIGN`]: the aligned middle of its range is then already
/// aligned in memory, and is written `O_DIRECT` from here without a copy.
/// (Should the buffer ever be reallocated, the alignment is merely lost:
/// every direct write checks it and stages what is not aligned.)
///
/// An aligned extent Write record (kind 12) is two parts: its head, framed
/// here, and its payloads, the client's own buffer ([`Payload`]), which
/// starts at a 4 KiB-aligned file offset and address and is written from
/// where it is.
#[derive(Debug, Default)]
pub(crate) struct RecordBuf {
    buf: Vec<u8>,
    /// Where the record starts in `buf` (the padding before it only moves
    /// it to the right alignment).
    start: usize,
    /// The payloads following the head, in the buffer they arrived in.
    payload: Option<Payload>,
}

/// Bytes `[from, to)` of an owned aligned buffer: the payloads of an
/// aligned extent Write record.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    pub buf: Arc<AlignedBuf>,
    pub from: usize,
    pub to: usize,
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        &self.buf[self.from..self.to]
    }
}

impl RecordBuf {
    /// An empty record of `len` bytes to be written at file offset
    /// `offset`, placed for direct writes when it is large enough to take
    /// them.
    pub fn placed(offset: u64, len: usize) -> RecordBuf {
        if (len as u64) < MIN_DIRECT {
            return RecordBuf {
                buf: Vec::with_capacity(len),
                start: 0,
                payload: None,
            };
        }
        let mut buf = Vec::with_capacity(len + ALIGN as usize - 1);
        let at = buf.as_ptr() as u64 % ALIGN;
        let start = ((offset % ALIGN + ALIGN - at) % ALIGN) as usize;
        buf.resize(start, 0);
        RecordBuf {
            buf,
            start,
            payload: None,
        }
    }

    /// A record of `head` (framed, placed for its offset) followed by
    /// `payload`, written from the buffer it is in.
    pub fn with_payload(head: RecordBuf, payload: Payload) -> RecordBuf {
        debug_assert!(head.payload.is_none());
        RecordBuf {
            payload: Some(payload),
            ..head
        }
    }

    /// Appends `bytes` to the record (before any payload part).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        debug_assert!(self.payload.is_none());
        self.buf.extend_from_slice(bytes);
    }

    /// The record's bytes, as its parts: the framed bytes, then the
    /// payloads when they are the client's buffer.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(&self.buf[self.start..]).chain(self.payload.iter().map(Payload::bytes))
    }

    /// Part `i` of [`RecordBuf::parts`].
    fn part(&self, i: usize) -> &[u8] {
        self.parts().nth(i).unwrap_or(&[])
    }

    /// Length of the record.
    pub fn len(&self) -> usize {
        self.parts().map(<[u8]>::len).sum()
    }

    /// The record's bytes in one vector (fault recordings).
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts().flatten().copied().collect()
    }
}

impl From<Vec<u8>> for RecordBuf {
    fn from(buf: Vec<u8>) -> RecordBuf {
        RecordBuf {
            buf,
            start: 0,
            payload: None,
        }
    }
}

/// Where a direct write's bytes are: a lane's staging buffer, or a queued
/// record itself.
#[derive(Debug)]
enum Source {
    Stage(Vec<u8>),
    /// Part `.1` of a record.
    Record(Arc<RecordBuf>, usize),
}

impl Source {
    fn bytes(&self, from: usize, to: usize) -> &[u8] {
        match self {
            Source::Stage(b) => &b[from..to],
            Source::Record(r, i) => &r.part(*i)[from..to],
        }
    }
}

/// A direct write for a lane: bytes `[skip, skip + n)` of `buf` at `offset`.
#[derive(Debug)]
struct Job {
    file: Arc<File>,
    buf: Source,
    skip: usize,
    n: usize,
    offset: u64,
}

/// A lane's answer: its buffer back, and how far the write got.
#[derive(Debug)]
struct Done {
    buf: Source,
    written: usize,
    err: Option<std::io::Error>,
}

/// One writer thread with its aligned staging buffer.
#[derive(Debug)]
struct Lane {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Done>,
    /// `STAGE + ALIGN` bytes (an aligned `STAGE`-byte window), while the
    /// lane is idle.
    buf: Option<Vec<u8>>,
}

impl Lane {
    fn spawn() -> std::io::Result<Lane> {
        let (jobs, jrx) = mpsc::channel::<Job>();
        let (dtx, done) = mpsc::channel::<Done>();
        std::thread::Builder::new()
            .name("blockd-log-direct".into())
            .spawn(move || {
                // Ends when the writer (the job sender) is dropped.
                while let Ok(j) = jrx.recv() {
                    let mut written = 0;
                    let err = write_direct(
                        &j.file,
                        j.buf.bytes(j.skip, j.skip + j.n),
                        j.offset,
                        &mut written,
                    )
                    .err();
                    if dtx
                        .send(Done {
                            buf: j.buf,
                            written,
                            err,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
            })?;
        Ok(Lane {
            jobs,
            done,
            buf: None,
        })
    }
}

/// The direct-write handle on the segment being written and the writer threads.
#[derive(Debug, Default)]
pub(crate) struct DirectWriter {
    /// `O_DIRECT` handle on that segment, when it could be opened.
    file: Option<Arc<File>>,
    /// Writer threads, started at the first direct write.
    lanes: Vec<Lane>,
    /// Set once `O_DIRECT` was refused: appends stay buffered from then on.
    disabled: bool,
    /// Direct pieces written straight from their record, and copied into a
    /// staging buffer first (tests).
    from_records: u64,
    staged: u64,
}

impl DirectWriter {
    /// A writer that uses `O_DIRECT` when `on` (and the filesystem takes it).
    pub fn new(on: bool) -> DirectWriter {
        DirectWriter {
            disabled: !on,
            ..DirectWriter::default()
        }
    }

    /// Points the writer at the segment `path`; the previous
    /// segment's handle is closed.
    pub fn open(&mut self, path: &Path) {
        self.file = None;
        if self.disabled {
            return;
        }
        match OpenOptions::new()
            .write(true)
            .custom_flags(OFlags::DIRECT.bits() as i32)
            .open(path)
        {
            Ok(f) => self.file = Some(Arc::new(f)),
            Err(e) => {
                tracing::info!(error = %e, "O_DIRECT refused: log appends stay buffered");
                self.disabled = true;
            }
        }
    }

    /// Writes the records `recs` (back to back) at `offset` of the
    /// segment, whose buffered handle is `buffered`. Returns once
    /// every byte is written (not synced).
    pub fn write(
        &mut self,
        buffered: &File,
        recs: &[Arc<RecordBuf>],
        offset: u64,
    ) -> std::io::Result<()> {
        // Every part of every record, and whose part it is.
        let mut parts: Vec<&[u8]> = Vec::with_capacity(recs.len() + 1);
        let mut owners: Vec<(&Arc<RecordBuf>, usize)> = Vec::with_capacity(recs.len() + 1);
        for r in recs {
            for (i, p) in r.parts().enumerate() {
                parts.push(p);
                owners.push((r, i));
            }
        }
        let parts = &parts[..];
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let end = offset + len;
        // Aligned file offsets where a part starts or ends: direct pieces
        // are cut there, so that a part aligned in memory (an aligned
        // write's payloads) is written from where it is.
        let mut cuts = Vec::new();
        let mut at = offset;
        for p in parts {
            for c in [at, at + p.len() as u64] {
                if c.is_multiple_of(ALIGN) && cuts.last() != Some(&c) {
                    cuts.push(c);
                }
            }
            at += p.len() as u64;
        }
        let mut a = offset.next_multiple_of(ALIGN);
        // An aligned write's head (the page or two before its payloads)
        // goes with the buffered head rather than as a piece of its own.
        if let Some(&c) = cuts.iter().find(|&&c| c > a && c <= a + HEAD_SLACK) {
            a = c;
        }
        let b = end / ALIGN * ALIGN;
        let direct = self.file.clone().filter(|_| b > a && b - a >= MIN_DIRECT);
        if direct.is_some() && self.lanes.is_empty() {
            for _ in 0..LANES {
                match Lane::spawn() {
                    Ok(l) => self.lanes.push(l),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot start a log writer thread");
                        break;
                    }
                }
            }
        }
        let Some(direct) = direct.filter(|_| !self.lanes.is_empty()) else {
            return write_all_vectored_at(buffered, parts, offset);
        };
        if a > offset {
            write_all_vectored_at(buffered, &sub(parts, 0, (a - offset) as usize), offset)?;
        }
        let mut refused = false;
        let mut pos = a;
        while pos < b {
            // One batch: up to one piece per lane, written at once. Every
            // job sent is collected before anything returns.
            let left = b - pos;
            let k = (left / MIN_PIECE).clamp(1, self.lanes.len() as u64);
            let piece = left.div_ceil(k).next_multiple_of(ALIGN).min(STAGE as u64);
            let mut sent = Vec::new();
            let mut failed: Option<std::io::Error> = None;
            for (i, lane) in self.lanes.iter_mut().enumerate() {
                if pos >= b {
                    break;
                }
                let cut = cuts.iter().find(|&&c| c > pos).map_or(b, |&c| c.min(b));
                let n = (b - pos).min(piece).min(cut - pos) as usize;
                let (buf, skip) = match in_one(parts, (pos - offset) as usize, n) {
                    // Inside one part, and aligned there: written from it.
                    Some((i, at)) if (parts[i][at..].as_ptr() as u64).is_multiple_of(ALIGN) => {
                        self.from_records += 1;
                        (Source::Record(owners[i].0.clone(), owners[i].1), at)
                    }
                    _ => {
                        let mut buf = lane
                            .buf
                            .take()
                            .unwrap_or_else(|| vec![0u8; STAGE + ALIGN as usize]);
                        let skip = buf.as_ptr().align_offset(ALIGN as usize);
                        copy_range(parts, (pos - offset) as usize, &mut buf[skip..skip + n]);
                        self.staged += 1;
                        (Source::Stage(buf), skip)
                    }
                };
                if refused {
                    if let Err(e) = buffered.write_all_at(buf.bytes(skip, skip + n), pos) {
                        failed.get_or_insert(e);
                    }
                    if let Source::Stage(b) = buf {
                        lane.buf = Some(b);
                    }
                } else {
                    let job = Job {
                        file: direct.clone(),
                        buf,
                        skip,
                        n,
                        offset: pos,
                    };
                    if let Err(mpsc::SendError(job)) = lane.jobs.send(job) {
                        if let Source::Stage(b) = job.buf {
                            lane.buf = Some(b);
                        }
                        failed.get_or_insert(std::io::Error::other("log writer thread gone"));
                        break;
                    }
                    sent.push((i, skip, n, pos));
                }
                pos += n as u64;
            }
            for (i, skip, n, at) in sent {
                let lane = &mut self.lanes[i];
                let Ok(d) = lane.done.recv() else {
                    failed.get_or_insert(std::io::Error::other("log writer thread gone"));
                    continue;
                };
                match d.err {
                    None => {}
                    // Nothing of that write landed past `written` (EINVAL
                    // is checked before any I/O): the rest goes through the
                    // page cache, from now on.
                    Some(e)
                        if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
                    {
                        if !refused {
                            tracing::info!(error = %e, "O_DIRECT write refused: log appends stay buffered");
                        }
                        refused = true;
                        let from = skip + d.written;
                        if let Err(e) = buffered
                            .write_all_at(d.buf.bytes(from, skip + n), at + d.written as u64)
                        {
                            failed.get_or_insert(e);
                        }
                    }
                    Some(e) => {
                        failed.get_or_insert(e);
                    }
                }
                if let Source::Stage(b) = d.buf {
                    lane.buf = Some(b);
                }
            }
            if let Some(e) = failed {
                // The store fail-stops; a lost thread would be restarted.
                self.lanes.clear();
                return Err(e);
            }
        }
        if refused {
            self.disabled = true;
            self.file = None;
        }
        if end > b {
            write_all_vectored_at(
                buffered,
                &sub(parts, (b - offset) as usize, len as usize),
                b,
            )?;
        }
        Ok(())
    }
}

/// One direct `pwrite` of aligned `buf` at aligned `offset`, short writes
/// continued (a short direct write ends on a logical block boundary, so the
/// rest stays aligned); `written` tells how far it got.
fn write_direct(file: &File, buf: &[u8], offset: u64, written: &mut usize) -> std::io::Result<()> {
    while *written < buf.len() {
        match rustix::io::pwrite(file, &buf[*written..], offset + *written as u64) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(e) if e == rustix::io::Errno::INTR => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The part holding all of bytes `[from, from + n)` of the concatenation
/// of `parts`, and where they start in it; `None` when they span two.
fn in_one(parts: &[&[u8]], from: usize, n: usize) -> Option<(usize, usize)> {
    let mut pos = 0;
    for (i, p) in parts.iter().enumerate() {
        let end = pos + p.len();
        if from < end {
            return (from + n <= end).then_some((i, from - pos));
        }
        pos = end;
    }
    None
}

/// The slices of `parts` covering bytes `[from, to)` of their concatenation.
fn sub<'a>(parts: &[&'a [u8]], from: usize, to: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    for p in parts {
        let (s, e) = (pos, pos + p.len());
        pos = e;
        if e <= from || s >= to {
            continue;
        }
        out.push(&p[from.max(s) - s..to.min(e) - s]);
    }
    out
}

/// Copies `out.len()` bytes of the concatenation of `parts`, from `from`.
fn copy_range(parts: &[&[u8]], from: usize, out: &mut [u8]) {
    let mut filled = 0;
    for p in sub(parts, from, from + out.len()) {
        out[filled..filled + p.len()].copy_from_slice(p);
        filled += p.len();
    }
    debug_assert_eq!(filled, out.len());
}

/// Writes `parts` back to back at `offset`: one `pwrite` for a single
/// slice, else `pwritev` (at most `IOV_MAX` slices per call, short writes
/// continued).
pub(crate) fn write_all_vectored_at(
    file: &File,
    parts: &[&[u8]],
    offset: u64,
) -> std::io::Result<()> {
    let parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if let [one] = parts[..] {
        return file.write_all_at(one, offset);
    }
    const IOV_MAX: usize = 1024;
    let mut pos = offset;
    let mut i = 0;
    let mut skip = 0usize;
    while i < parts.len() {
        let iov: Vec<std::io::IoSlice<'_>> = parts[i..parts.len().min(i + IOV_MAX)]
            .iter()
            .enumerate()
            .map(|(k, p)| std::io::IoSlice::new(if k == 0 { &p[skip..] } else { p }))
            .collect();
        let mut n = match rustix::io::pwritev(file, &iov, pos) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e == rustix::io::Errno::INTR => continue,
            Err(e) => return Err(e.into()),
        };
        pos += n as u64;
        while n > 0 {
            let left = parts[i].len() - skip;
            if n >= left {
                n -= left;
                i += 1;
                skip = 0;
            } else {
                skip += n;
                n = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment file opened plainly (the reference of buffered appends)
    /// and a direct writer on the same file, in a fresh directory.
    fn segment_pair() -> (tempfile::TempDir, std::fs::File, DirectWriter) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let buffered = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let mut w = DirectWriter::new(true);
        w.open(&path);
        (dir, buffered, w)
    }

    fn record(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    /// Records of every size class land byte for byte where buffered
    /// appends would put them, direct or not, at aligned and unaligned
    /// offsets, split over several slices.
    #[test]
    fn direct_and_buffered_appends_write_the_same_bytes() {
        let (_dir, buffered, mut w) = segment_pair();
        let mut expect = Vec::new();
        let mut off = 0u64;
        let sizes = [100, 1 << 20, 37, 3 << 20, 4096, 200_000, 65_536 + 8192, 5];
        // Alone, and in batches of two and three back-to-back records
        // (pieces spanning two records are staged), each record placed for
        // its offset (as the log frames them) or not (staged).
        for (k, batch) in [1usize, 2, 3, 1, 2].into_iter().enumerate() {
            for (i, chunk) in sizes.chunks(batch).enumerate() {
                let mut recs = Vec::new();
                let mut at = off;
                for (j, len) in chunk.iter().enumerate() {
                    let bytes = record(len + i + j + k);
                    let r = if (i + j + k) % 3 == 2 {
                        RecordBuf::from(bytes.clone())
                    } else {
                        let mut r = RecordBuf::placed(at, bytes.len());
                        r.extend_from_slice(&bytes);
                        r
                    };
                    at += bytes.len() as u64;
                    expect.extend_from_slice(&bytes);
                    recs.push(Arc::new(r));
                }
                w.write(&buffered, &recs, off).unwrap();
                off = at;
            }
        }
        // Read back through the buffered handle, as readers do.
        let mut got = vec![0u8; expect.len()];
        buffered.read_exact_at(&mut got, 0).unwrap();
        assert!(got == expect, "segment bytes differ from the records");
        // /tmp on ext4 or xfs takes O_DIRECT: the direct path did run.
        if w.file.is_none() {
            eprintln!("O_DIRECT not available here: only the buffered path ran");
        } else {
            assert!(w.from_records > 0, "no piece was written from its record");
            assert!(w.staged > 0, "no piece was staged");
        }
        assert_eq!(buffered.metadata().unwrap().len(), expect.len() as u64);
    }

    /// Records of two parts (a head, then payloads in an owned aligned
    /// buffer that start at an aligned file offset, as the log queues an
    /// aligned extent Write) land byte for byte, alone and batched with
    /// others, and their payloads are written from the owned buffer, never
    /// staged.
    #[test]
    fn payload_parts_are_written_from_their_buffer() {
        let (_dir, buffered, mut w) = segment_pair();
        let mut expect = Vec::new();
        let mut off = 0u64;
        for (i, (head, blocks)) in [(100, 256), (3000, 16), (40, 64), (5000, 300)]
            .into_iter()
            .enumerate()
        {
            // A head ending at an aligned offset, like a padded one.
            let head_len = (off + head as u64).next_multiple_of(ALIGN) - off;
            let mut h = RecordBuf::placed(off, head_len as usize);
            let hb = record(head_len as usize + i);
            h.extend_from_slice(&hb[..head_len as usize]);
            let mut p = AlignedBuf::new(blocks * 4096 + 8192);
            for (k, b) in p.iter_mut().enumerate() {
                *b = (k * 13 + i) as u8;
            }
            let p = Arc::new(p);
            let r = RecordBuf::with_payload(
                h,
                Payload {
                    buf: p.clone(),
                    from: 4096,
                    to: 4096 + blocks * 4096,
                },
            );
            let small = RecordBuf::from(record(77 + i));
            expect.extend_from_slice(&hb[..head_len as usize]);
            expect.extend_from_slice(&p[4096..4096 + blocks * 4096]);
            expect.extend_from_slice(&small.to_vec());
            let recs = [Arc::new(r), Arc::new(small)];
            let len: u64 = recs.iter().map(|r| r.len() as u64).sum();
            let staged = w.staged;
            w.write(&buffered, &recs, off).unwrap();
            if w.file.is_some() {
                assert_eq!(w.staged, staged, "a payload piece was staged");
            }
            off += len;
        }
        let mut got = vec![0u8; expect.len()];
        buffered.read_exact_at(&mut got, 0).unwrap();
        assert!(got == expect, "segment bytes differ from the records");
        if w.file.is_some() {
            assert!(w.from_records >= 4, "{}", w.from_records);
        }
    }

    #[test]
    fn sub_and_copy_range_cover_slice_boundaries() {
        let a = [1u8, 2, 3];
        let b = [4u8, 5];
        let c = [6u8, 7, 8, 9];
        let parts: [&[u8]; 3] = [&a, &b, &c];
        assert_eq!(sub(&parts, 2, 7), vec![&[3u8][..], &[4, 5], &[6, 7]]);
        let mut out = [0u8; 4];
        copy_range(&parts, 4, &mut out);
        assert_eq!(out, [5, 6, 7, 8]);
    }
}
