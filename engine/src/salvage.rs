//! Damaged log records during replay: telling a torn tail from corruption,
//! describing what a damaged record held, and finding where the log goes on
//! after it.
//!
//! A record that fails its checks is a torn tail only if nothing written
//! after it says it had been synced: every record's header claims up to
//! which sequence number the log was durable when it was appended (see
//! `RecordHeader::set_claim`). [`State::examine_damage`] scans the rest of
//! the segment (byte by byte, for the record magic) and every later
//! segment file for a valid record with a higher sequence number whose
//! claim covers the damaged one: that is evidence of corruption, which
//! replay refuses (or, salvaging, skips). docs/design.md "Failures" argues
//! why this never mistakes a torn tail for corruption. [`Store::survey_log`]
//! (`blockd check`) and [`Store::open_salvaging`] (`check --repair`) replay
//! past such damage and list what it cost.

use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    has_record_magic, RawHeader, RecordHeader, RecordKind, WriteHead, ZeroBody, HEADER_LEN,
};
use crate::init::lock_dir;
use crate::log::Log;
use crate::log::Segment;
use crate::state::State;
use crate::store::{read_superblock, Store, StoreOptions};
use crate::types::{ChunkId, LogAddr, ObjectId, SegmentNo};
use std::fmt;
use std::fs::File;
use std::path::Path;

/// A log record that replay could not apply because it is damaged (or
/// because an earlier damaged record made it inapplicable): what a
/// salvaging recovery loses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostRecord {
    /// The segment holding the record.
    pub segment: SegmentNo,
    /// Its byte offset in the segment.
    pub offset: u64,
    /// Its sequence number.
    pub seq: u64,
    /// The object it changed, when the record is readable enough to say.
    pub object: Option<ObjectId>,
    /// That object's name, if it has one.
    pub name: Option<String>,
    /// The affected blocks of `object`, as half-open ranges `[start, end)`.
    pub blocks: Vec<(u64, u64)>,
    /// What was lost, in words.
    pub what: String,
}

impl LostRecord {
    /// A loss at record `seq` at `addr`, of no known object yet.
    pub(crate) fn at(addr: LogAddr, seq: u64, what: impl Into<String>) -> LostRecord {
        LostRecord {
            segment: addr.segment(),
            offset: addr.offset(),
            seq,
            object: None,
            name: None,
            blocks: Vec::new(),
            what: what.into(),
        }
    }
}

impl fmt::Display for LostRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {} at segment {} offset {}: {}",
            self.seq, self.segment.0, self.offset, self.what
        )
    }
}

/// Formats block ranges as `a-b, c` (inclusive, as people count).
pub(crate) fn fmt_ranges(r: &[(u64, u64)]) -> String {
    r.iter()
        .map(|&(a, b)| {
            if b == a + 1 {
                format!("{a}")
            } else {
                format!("{a}-{}", b - 1)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Merges sorted block numbers into half-open ranges.
pub(crate) fn ranges(blocks: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for b in blocks {
        match out.last_mut() {
            Some(l) if l.1 == b => l.1 += 1,
            _ => out.push((b, b + 1)),
        }
    }
    out
}

/// A valid record found past damage.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found {
    pub addr: LogAddr,
    pub header: RecordHeader,
}

/// What lies past a damaged record.
#[derive(Debug, Default)]
pub(crate) struct Beyond {
    /// A later record claiming the damaged one had been synced: the damage
    /// is corruption, not a torn tail.
    pub evidence: Option<Found>,
    /// Where the log goes on: the valid record with the lowest sequence
    /// number above the damaged one (first in log order among equals).
    pub resume: Option<Found>,
}

/// Bytes read at a time when scanning a segment for records.
const SCAN_CHUNK: usize = 1 << 20;

/// Calls `f` for each valid record (header and body crc) starting at or
/// after `from` in `seg`, in file order. Candidates are found by the record
/// magic, byte by byte; a valid record's body is skipped (it is not
/// records).
/// The first intact record after the damaged one at `addr` in `seg`,
/// with a sequence number of at least `min_seq` (stale records of a reused
/// file have lower ones; the segment's own records come first in the
/// file): where the cleaner goes on. It reads a sealed segment outside the
/// state lock.
pub(crate) fn next_intact_in(
    seg: &Segment,
    seg_size: u64,
    addr: LogAddr,
    min_seq: Option<u64>,
) -> Result<Option<(LogAddr, u64)>> {
    let mut first = None;
    scan_segment(seg, addr.offset() + 1, seg_size, &mut |f| {
        if first.is_none() && min_seq.is_none_or(|m| f.header.seq >= m) {
            first = Some((f.addr, f.header.seq));
        }
    })?;
    Ok(first)
}

fn scan_segment(seg: &Segment, from: u64, seg_size: u64, f: &mut dyn FnMut(Found)) -> Result<()> {
    let len = seg
        .file
        .metadata()
        .map_err(|e| crate::error::Error::io(format!("reading segment {}", seg.no.0), e))?
        .len()
        .min(seg_size);
    let mut pos = from;
    let mut buf = vec![0u8; SCAN_CHUNK + HEADER_LEN];
    while pos + HEADER_LEN as u64 <= len {
        let n = ((len - pos) as usize).min(buf.len());
        seg.read_exact_at(&mut buf[..n], pos)?;
        let mut i = 0usize;
        let mut next = None;
        while i + HEADER_LEN <= n {
            if !has_record_magic(&buf[i..i + 4]) {
                i += 1;
                continue;
            }
            let at = pos + i as u64;
            match seg.read_record(at, None, seg_size)? {
                Some(rec) => {
                    f(Found {
                        addr: LogAddr::new(seg.no, at),
                        header: rec.header,
                    });
                    let end = at + (HEADER_LEN as u64) + u64::from(rec.header.body_len);
                    next = Some(end);
                    break;
                }
                None => i += 1,
            }
        }
        pos = match next {
            Some(end) => end,
            // The last HEADER_LEN - 1 bytes are looked at again with the
            // next chunk (a header may straddle the two).
            None if n == buf.len() => pos + (n - HEADER_LEN + 1) as u64,
            None => break,
        };
    }
    Ok(())
}

/// Why the record at a replay position is not a valid next record, and
/// where its successor would start when its header is sound (else the
/// next byte: where to look on).
pub(crate) fn damage_reason(seg: &Segment, offset: u64, seq: u64, seg_size: u64) -> (String, u64) {
    let next_byte = offset + 1;
    let mut h = [0u8; HEADER_LEN];
    if seg.read_exact_at(&mut h, offset).is_err() {
        return ("the segment ends there".into(), next_byte);
    }
    if !has_record_magic(&h) {
        return ("no record header".into(), next_byte);
    }
    let Some(hd) = RecordHeader::decode(&h) else {
        return ("its header fails its checksum".into(), next_byte);
    };
    if hd.seq != seq {
        return (
            format!("it holds sequence number {}, expected {seq}", hd.seq),
            next_byte,
        );
    }
    if u64::from(hd.body_len) > seg_size {
        return ("its body length is impossible".into(), next_byte);
    }
    let end = offset + HEADER_LEN as u64 + u64::from(hd.body_len);
    ("its body fails its checksum".into(), end)
}

impl State {
    /// Looks past the damaged record `seq` at `bad` for evidence that it
    /// had been synced, and for where the log resumes. `skip_to` is where
    /// to start looking in its segment: past the record when its extent is
    /// known, else the next byte.
    pub(crate) fn examine_damage(&self, bad: LogAddr, seq: u64, skip_to: u64) -> Result<Beyond> {
        let mut out = Beyond::default();
        let seg_size = self.log.seg_size;
        let mut look = |f: Found| {
            let h = f.header;
            if h.seq <= seq {
                return; // stale: an older generation of a reused file
            }
            if out.evidence.is_none() && h.synced_through().is_some_and(|s| s >= seq) {
                out.evidence = Some(f);
            }
            if out.resume.is_none_or(|r| h.seq < r.header.seq) {
                out.resume = Some(f);
            }
        };
        let segs: Vec<_> = self
            .log
            .segments()
            .range(bad.segment()..)
            .map(|(_, s)| s.clone())
            .collect();
        for s in segs {
            let from = if s.no == bad.segment() { skip_to } else { 0 };
            scan_segment(&s, from, seg_size, &mut look)?;
        }
        Ok(out)
    }

    /// Describes the damaged record `seq` at `addr` for the report of a
    /// salvaging replay: the object and blocks it wrote when enough of it
    /// is readable, else that a record of unknown content is lost.
    pub(crate) fn describe_damaged(&self, addr: LogAddr, seq: u64) -> LostRecord {
        let mut lost = LostRecord::at(addr, seq, "a record of unknown content is lost");
        let Some(seg) = self.log.segment(addr.segment()) else {
            return lost;
        };
        let mut h = [0u8; HEADER_LEN];
        if seg.read_exact_at(&mut h, addr.offset()).is_err() {
            return lost;
        }
        let Some(raw) = RawHeader::peek(&h) else {
            return lost;
        };
        // The header's own crc may fail (the damage is in it); the body's
        // crc, if it still matches, vouches for the body all the same.
        let verified_header = RecordHeader::decode(&h).is_some_and(|d| d.seq == seq);
        let (body_len, body_crc, crc_len) = (raw.body_len, raw.body_crc, raw.crc_len);
        if u64::from(body_len) > self.log.seg_size || crc_len > body_len {
            return lost;
        }
        let mut body = vec![0u8; body_len as usize];
        if seg
            .read_exact_at(&mut body, addr.offset() + HEADER_LEN as u64)
            .is_err()
        {
            return lost;
        }
        let verified_body = crc32fast::hash(&body[..crc_len as usize]) == body_crc;
        let note = match (verified_header, verified_body) {
            (_, true) => "",
            (true, false) => " (as its damaged body reads)",
            (false, false) => return lost,
        };
        let kind = raw.kind;
        let is_write = raw.is(RecordKind::Write)
            || raw.is(RecordKind::WriteExtents)
            || raw.is(RecordKind::WriteAligned);
        if let Some(w) = WriteHead::peek(&body).filter(|_| is_write) {
            let fits = if raw.is(RecordKind::Write) {
                w.entries_fit(u64::from(body_len))
            } else if raw.is(RecordKind::WriteAligned) {
                crate::format::aligned_write_covered(&body).is_some_and(|c| c <= body.len())
            } else {
                crate::format::extent_write_covered(&body).is_some_and(|c| c <= body.len())
            };
            if fits {
                let (first, n) = (w.first_block, w.count);
                let id = ObjectId::from_bytes(w.object);
                self.name_blocks(&mut lost, id, vec![(first, first + n)]);
                lost.what = format!(
                    "a write to {} blocks {} is lost{note}",
                    lost_object(&lost),
                    fmt_ranges(&lost.blocks)
                );
            }
        } else if let Some(z) = ZeroBody::peek(&body).filter(|_| raw.is(RecordKind::Zero)) {
            let (first, n) = (z.first_block, z.blocks);
            self.name_blocks(
                &mut lost,
                ObjectId::from_bytes(z.object),
                vec![(first, first + n)],
            );
            let what = if z.value == ChunkId::HOLE {
                "a trim"
            } else {
                "a zeroing"
            };
            lost.what = format!(
                "{what} of {} blocks {} is lost (they keep their earlier content){note}",
                lost_object(&lost),
                fmt_ranges(&lost.blocks)
            );
        } else if kind == RecordKind::Free as u8 {
            lost.what = "a step of the pending-free queue is lost (it is redone)".into();
        } else if kind == RecordKind::Catalog as u8 {
            lost.what = format!("a catalogue operation is lost{note}");
        } else if kind == RecordKind::Reloc as u8 || kind == RecordKind::RelocExtent as u8 {
            lost.what =
                "a relocation by the cleaner is lost (the chunk keeps its older copy)".into();
        } else if [
            RecordKind::Node,
            RecordKind::CtPage,
            RecordKind::Checkpoint,
            RecordKind::Seal,
        ]
        .iter()
        .any(|k| *k as u8 == kind)
        {
            lost.what = "a record holding no client data (checkpoint page or seal)".into();
        }
        lost
    }

    /// Fills in the object, its name and the block ranges of a loss.
    pub(crate) fn name_blocks(&self, lost: &mut LostRecord, id: ObjectId, blocks: Vec<(u64, u64)>) {
        lost.object = Some(id);
        lost.name = self.catalog.get(id).ok().and_then(|e| e.info.name.clone());
        lost.blocks = blocks;
    }
}

impl Store {
    /// Opens an existing store whose log holds damaged records that are
    /// not a torn tail (which [`Store::open`] refuses): replay skips them,
    /// resumes at the next intact record and applies what applies cleanly;
    /// a checkpoint then commits the result, so that the store opens
    /// normally again. Returns what was lost (`blockd check --repair`).
    pub fn open_salvaging(
        dir: impl AsRef<Path>,
        opts: StoreOptions,
    ) -> Result<(Store, Vec<LostRecord>)> {
        let opts = StoreOptions {
            create: false,
            ..opts
        };
        Self::open_with(dir.as_ref(), opts, true, std::sync::Arc::default())
    }

    /// What [`Store::open_salvaging`] would lose, found without changing
    /// anything on disk (`blockd check` on a store that refuses to open).
    pub fn survey_log(dir: impl AsRef<Path>) -> Result<Vec<LostRecord>> {
        let dir = dir.as_ref();
        let sb_path = dir.join("superblock");
        if !sb_path.exists() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no store in {}", dir.display()),
            ));
        }
        let _lock = lock_dir(dir)?;
        let sb_file = File::open(&sb_path)
            .map_err(|e| Error::io(format!("opening {}", sb_path.display()), e))?;
        let sb = read_superblock(&sb_file, &sb_path)?;
        let log = Log::open(
            &dir.join("segments"),
            u64::from(sb.segment_size),
            std::sync::Arc::default(),
        )?;
        let mut state = State::from_superblock(log, &sb, 1024)?;
        if sb.version == crate::format::MIGRATED_FORMAT_VERSION {
            state.v3_require_clean(sb.replay_start, sb.replay_seq)?;
        }
        Ok(state.replay(sb.replay_start, sb.replay_seq, true)?.lost)
    }
}

/// "object <id> (<name>)" for a loss's description.
pub(crate) fn lost_object(l: &LostRecord) -> String {
    match (&l.object, &l.name) {
        (Some(id), Some(n)) => format!("object {id} ({n})"),
        (Some(id), None) => format!("object {id}"),
        _ => "an unknown object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ranges() {
        assert_eq!(ranges([1, 2, 3, 7, 9, 10]), vec![(1, 4), (7, 8), (9, 11)]);
        assert_eq!(fmt_ranges(&ranges([1, 2, 3, 7])), "1-3, 7");
    }
}
