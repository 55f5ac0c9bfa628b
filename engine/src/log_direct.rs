//! How a log record's bytes reach its segment file. Small records take one
//! buffered `pwrite`/`pwritev`. A large record (a 1 MiB client write) has
//! the 4 KiB-aligned middle of its byte range written through a second,
//! `O_DIRECT` handle on the active segment, staged through an aligned
//! buffer; its unaligned head and tail still go through the page cache.
//!
//! Why: on a flush, `fdatasync` of a segment whose megabytes sit dirty in
//! the page cache waits for kernel writeback, several times slower than the
//! disk takes direct writes (see BENCHMARKS.md, "Sequential writes against
//! the disk"). Direct writes leave only a device cache flush to the sync.
//!
//! Why the split: a 4 KiB block of the file is only ever written one way in
//! a segment's life. Direct writes never rewrite a block that buffered
//! writes may hold dirty (the block holding the previous record's end, or
//! the next record's start), so the page cache and the disk cannot
//! disagree; the kernel drops cached pages of a directly written range, so
//! buffered reads afterwards see the new bytes. Nothing is written past the
//! record's end, so the on-disk layout is exactly that of buffered appends.
//! Durability is unchanged: a record counts as durable only after the
//! segment's `fdatasync`, which also flushes the device cache the direct
//! writes went to. Where `O_DIRECT` is refused (open or first write fails
//! with `EINVAL`, as on some filesystems), every append stays buffered.

use rustix::fs::OFlags;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Alignment of direct writes (offset, length and memory): 4 KiB, a
/// multiple of every common logical block size.
const ALIGN: u64 = 4096;
/// A record goes direct only when its aligned middle is at least this big:
/// below it the page cache is cheaper than the extra syscalls.
const MIN_DIRECT: u64 = 64 << 10;
/// Bytes staged (copied into the aligned buffer) per direct write.
const STAGE: usize = 2 << 20;

/// The direct-write handle on the active segment and its staging buffer.
#[derive(Debug, Default)]
pub(crate) struct DirectWriter {
    /// `O_DIRECT` handle on the active segment, when it could be opened.
    file: Option<File>,
    /// `STAGE + ALIGN` bytes once used: an aligned `STAGE`-byte window.
    stage: Vec<u8>,
    /// Set once `O_DIRECT` was refused: appends stay buffered from then on.
    disabled: bool,
}

impl DirectWriter {
    /// A writer that uses `O_DIRECT` when `on` (and the filesystem takes it).
    pub fn new(on: bool) -> DirectWriter {
        DirectWriter {
            disabled: !on,
            ..DirectWriter::default()
        }
    }

    /// Points the writer at the (new) active segment `path`; the previous
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
            Ok(f) => self.file = Some(f),
            Err(e) => {
                tracing::info!(error = %e, "O_DIRECT refused: log appends stay buffered");
                self.disabled = true;
            }
        }
    }

    /// Writes the record made of `parts` (back to back) at `offset` of the
    /// active segment, whose buffered handle is `buffered`.
    pub fn write(&mut self, buffered: &File, parts: &[&[u8]], offset: u64) -> std::io::Result<()> {
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let end = offset + len;
        let a = offset.next_multiple_of(ALIGN);
        let b = end / ALIGN * ALIGN;
        let Some(direct) = self.file.as_ref().filter(|_| b > a && b - a >= MIN_DIRECT) else {
            return write_all_vectored_at(buffered, parts, offset);
        };
        if a > offset {
            write_all_vectored_at(buffered, &sub(parts, 0, (a - offset) as usize), offset)?;
        }
        if self.stage.is_empty() {
            self.stage = vec![0u8; STAGE + ALIGN as usize];
        }
        let skip = self.stage.as_ptr().align_offset(ALIGN as usize);
        let mut refused = false;
        let mut pos = a;
        while pos < b {
            let n = (b - pos).min(STAGE as u64) as usize;
            let buf = &mut self.stage[skip..skip + n];
            copy_range(parts, (pos - offset) as usize, buf);
            let done = if refused {
                0
            } else {
                match write_direct(direct, buf, pos) {
                    Ok(()) => n,
                    // Nothing of that write landed (EINVAL is checked
                    // before any I/O): the rest goes through the page cache.
                    Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                        tracing::info!(error = %e, "O_DIRECT write refused: log appends stay buffered");
                        refused = true;
                        0
                    }
                    Err(e) => return Err(e),
                }
            };
            if done < n {
                buffered.write_all_at(&buf[done..], pos + done as u64)?;
            }
            pos += n as u64;
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
/// rest stays aligned).
fn write_direct(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pwrite(file, &buf[done..], offset + done as u64) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e == rustix::io::Errno::INTR => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
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

    fn record(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    /// Records of every size class land byte for byte where buffered
    /// appends would put them, direct or not, at aligned and unaligned
    /// offsets, split over several slices.
    #[test]
    fn direct_and_buffered_appends_write_the_same_bytes() {
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
        let mut expect = Vec::new();
        let mut off = 0u64;
        for (i, len) in [100, 1 << 20, 37, 3 << 20, 4096, 200_000, 65_536 + 8192, 5]
            .into_iter()
            .enumerate()
        {
            let rec = record(len + i);
            // Split into uneven slices, as a header and payloads are.
            let cut1 = rec.len() / 3;
            let cut2 = rec.len() / 2;
            let parts = [&rec[..cut1], &rec[cut1..cut2], &rec[cut2..]];
            w.write(&buffered, &parts, off).unwrap();
            expect.extend_from_slice(&rec);
            off += rec.len() as u64;
        }
        // Read back through the buffered handle, as readers do.
        let mut got = vec![0u8; expect.len()];
        buffered.read_exact_at(&mut got, 0).unwrap();
        assert!(got == expect, "segment bytes differ from the records");
        // /tmp on ext4 or xfs takes O_DIRECT: the direct path did run.
        if w.file.is_none() {
            eprintln!("O_DIRECT not available here: only the buffered path ran");
        }
        assert_eq!(buffered.metadata().unwrap().len(), expect.len() as u64);
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
