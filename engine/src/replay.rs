//! Recovery: replays the log from the superblock's replay point, applying
//! each record in order. The first record that is missing, torn or out of
//! sequence is the end of the log, unless a later record claims it had been
//! synced (`salvage.rs`): then it is corruption, and the open fails naming
//! it rather than discarding what follows. A salvaging replay (`blockd
//! check --repair`, or `check`'s survey) instead skips damaged records,
//! resumes at the next one, applies what applies cleanly and lists what
//! was lost.

use crate::catalog::CatalogOp;
use crate::error::{Error, Result};
use crate::format::{
    decode_extent_record, decode_extent_reloc, decode_write_salvage, extent_gap, RecordKind,
    RelocHead, WriteHead, ZeroBody, CT_FLAG_COMPRESSED, EXTENT_RELOC_FIXED, HEADER_LEN,
    RELOC_FIXED,
};
use crate::io::ExtentAt;
use crate::log::ReadRecord;
use crate::salvage::{damage_reason, fmt_ranges, lost_object, ranges, LostRecord};
use crate::state::State;
use crate::types::{ChunkId, LogAddr, ObjectId};

/// The outcome of a replay.
pub(crate) struct Replayed {
    /// The end of the log.
    pub tail: LogAddr,
    /// The next sequence number.
    pub next_seq: u64,
    /// Records applied.
    pub applied: u64,
    /// What a salvaging replay skipped (always empty otherwise).
    pub lost: Vec<LostRecord>,
}

/// Where replay goes after a damaged record.
enum After {
    /// A torn tail: the log ends here.
    End,
    /// Salvaging: go on at this record.
    Resume(LogAddr, u64),
}

impl State {
    /// Replays from `start` (sequence `seq`). With `salvage`, damaged
    /// records that are not a torn tail are skipped and listed instead of
    /// failing the replay.
    pub(crate) fn replay(&mut self, start: LogAddr, seq: u64, salvage: bool) -> Result<Replayed> {
        let mut addr = start;
        let mut seq = seq;
        let mut out = Replayed {
            tail: start,
            next_seq: seq,
            applied: 0,
            lost: Vec::new(),
        };
        loop {
            let Some(rec) = self.log.read_record(addr, Some(seq))? else {
                let (why, skip_to) = match self.log.segment(addr.segment()) {
                    Some(s) => damage_reason(&s, addr.offset(), seq, self.log.seg_size),
                    None => (format!("segment {} is missing", addr.segment().0), 0),
                };
                match self.after_damage(addr, seq, skip_to, &why, salvage, None, &mut out)? {
                    After::End => break,
                    After::Resume(a, s) => {
                        (addr, seq) = (a, s);
                        continue;
                    }
                }
            };
            if let Some(bad) = write_damage(&rec) {
                // A Write whose payload fails its crc is torn or damaged.
                if !bad.is_empty() {
                    let why = "a data payload fails its checksum";
                    match self.after_damage(
                        addr,
                        seq,
                        rec.next.offset(),
                        why,
                        salvage,
                        Some(&rec),
                        &mut out,
                    )? {
                        After::End => break,
                        After::Resume(a, s) => {
                            (addr, seq) = (a, s);
                            continue;
                        }
                    }
                }
            }
            match self.apply_record(addr, seq, &rec, &[]) {
                Ok(()) => out.applied += 1,
                Err(e) if salvage => out.lost.push(self.inapplicable(addr, seq, &rec, e)),
                Err(e) => return Err(e),
            }
            addr = rec.next;
            seq += 1;
        }
        out.tail = addr;
        out.next_seq = seq;
        Ok(out)
    }

    /// The record `seq` at `addr` is damaged (`why`); `skip_to` is where
    /// the next record would start in its segment, when known. Decides
    /// between a torn tail and corruption: corruption fails the replay, or,
    /// salvaging, is listed and skipped (a Write whose header and entries
    /// are sound, `write`, keeps its undamaged blocks).
    #[allow(clippy::too_many_arguments)]
    fn after_damage(
        &mut self,
        addr: LogAddr,
        seq: u64,
        skip_to: u64,
        why: &str,
        salvage: bool,
        write: Option<&ReadRecord>,
        out: &mut Replayed,
    ) -> Result<After> {
        let beyond = self.examine_damage(addr, seq, skip_to)?;
        let Some(ev) = beyond.evidence else {
            return Ok(After::End);
        };
        let here = format!(
            "log record {seq} at segment {} offset {} is damaged ({why})",
            addr.segment().0,
            addr.offset()
        );
        if !salvage {
            return Err(Error::corrupt(format!(
                "{here}, but record {} at segment {} offset {} was written after records up \
                 to {} had been synced, so this is not a torn write; nothing was discarded. \
                 `blockd check` lists what the damage affects, `blockd check --repair` \
                 salvages the rest of the log",
                ev.header.seq,
                ev.addr.segment().0,
                ev.addr.offset(),
                ev.header.synced_through().unwrap_or(0)
            )));
        }
        tracing::warn!("{here}: salvaging the records after it");
        match write {
            Some(rec) => {
                let lost = self.apply_partial_write(addr, seq, rec)?;
                out.lost.push(lost);
            }
            None => out.lost.push(self.describe_damaged(addr, seq)),
        }
        let resume = beyond.resume.expect("the evidence is a later record");
        if resume.header.seq > seq + 1 {
            out.lost.push(LostRecord::at(
                addr,
                seq + 1,
                format!(
                    "records {} to {} (before segment {} offset {}) are unreadable: \
                     {} records of unknown content are lost",
                    seq + 1,
                    resume.header.seq - 1,
                    resume.addr.segment().0,
                    resume.addr.offset(),
                    resume.header.seq - seq - 1
                ),
            ));
        }
        Ok(After::Resume(resume.addr, resume.header.seq))
    }

    /// Salvaging a Write record whose header and entries are sound but
    /// some payloads fail their crc: applies the blocks that are intact and
    /// reports exactly the others.
    fn apply_partial_write(
        &mut self,
        addr: LogAddr,
        seq: u64,
        rec: &ReadRecord,
    ) -> Result<LostRecord> {
        let mut lost = self.describe_damaged(addr, seq);
        let (Some(bad), Some((object, first_block, count))) = (write_damage(rec), write_span(rec))
        else {
            return Ok(lost);
        };
        if bad.contains(&usize::MAX) {
            return Ok(lost);
        }
        let id = ObjectId::from_bytes(object);
        let blocks = ranges(bad.iter().map(|&i| first_block + i as u64));
        self.name_blocks(&mut lost, id, blocks);
        match self.apply_record(addr, seq, rec, &bad) {
            Ok(()) => {
                lost.what = format!(
                    "{} blocks {}: the data written there fails its checksum and is lost \
                     (they keep their earlier content); the record's other {} blocks were kept",
                    lost_object(&lost),
                    fmt_ranges(&lost.blocks),
                    count as usize - bad.len()
                );
            }
            Err(e) => {
                lost.blocks = vec![(first_block, first_block + count)];
                lost.what = format!(
                    "a write to {} blocks {} is lost: payloads fail their checksum and the \
                     rest cannot be applied ({e})",
                    lost_object(&lost),
                    fmt_ranges(&lost.blocks)
                );
            }
        }
        Ok(lost)
    }

    /// A sound record that a salvaging replay cannot apply (an earlier
    /// damaged record created the object it names, say).
    fn inapplicable(&self, addr: LogAddr, seq: u64, rec: &ReadRecord, e: Error) -> LostRecord {
        let mut lost = LostRecord::at(addr, seq, String::new());
        let b = &rec.body;
        let span = match rec.header.kind {
            RecordKind::Write | RecordKind::WriteExtents | RecordKind::WriteAligned => {
                write_span(rec)
            }
            RecordKind::Zero => ZeroBody::peek(b).map(|z| (z.object, z.first_block, z.blocks)),
            _ => None,
        };
        if let Some((object, first, n)) = span {
            let id = ObjectId::from_bytes(object);
            self.name_blocks(&mut lost, id, vec![(first, first + n)]);
            lost.what = format!(
                "a {:?} of {} blocks {} cannot be applied after the damage ({e})",
                rec.header.kind,
                lost_object(&lost),
                fmt_ranges(&lost.blocks)
            );
        } else {
            lost.what = format!(
                "a {:?} record cannot be applied after the damage ({e})",
                rec.header.kind
            );
        }
        lost
    }

    /// Applies one sound record, leaving out the Write blocks `skip`.
    fn apply_record(
        &mut self,
        addr: LogAddr,
        seq: u64,
        rec: &ReadRecord,
        skip: &[usize],
    ) -> Result<()> {
        let ctx = |e: Error| {
            e.with_context(format!(
                "replaying record {seq} at segment {} offset {}",
                addr.segment().0,
                addr.offset()
            ))
        };
        match rec.header.kind {
            RecordKind::Write => {
                let (w, _) = decode_write_salvage(&rec.body).map_err(ctx)?;
                let locs: Vec<LogAddr> = w
                    .payload_offsets
                    .iter()
                    .map(|&o| LogAddr(addr.0 + (HEADER_LEN + o) as u64))
                    .collect();
                let id = ObjectId::from_bytes(w.object);
                // Runs of entries not skipped.
                let mut i = 0;
                while i < w.entries.len() {
                    if skip.contains(&i) {
                        i += 1;
                        continue;
                    }
                    let mut j = i;
                    while j < w.entries.len() && !skip.contains(&j) {
                        j += 1;
                    }
                    self.apply_write(id, w.first_block + i as u64, &w.entries[i..j], &locs[i..j])
                        .map_err(ctx)?;
                    i = j;
                }
            }
            RecordKind::WriteExtents | RecordKind::WriteAligned => {
                let (w, _) = decode_extent_record(rec.header.kind, &rec.body).map_err(ctx)?;
                let base = addr.0 + HEADER_LEN as u64;
                let extents = w
                    .extents
                    .iter()
                    .map(|x| {
                        let loc = LogAddr(base + x.crcs_at as u64);
                        let gap = extent_gap(loc, x.count, LogAddr(base + x.payload_at as u64))?;
                        Ok(ExtentAt {
                            id: x.id,
                            first: x.first,
                            count: x.count,
                            loc,
                            gap,
                        })
                    })
                    .collect::<Result<Vec<ExtentAt>>>()
                    .map_err(ctx)?;
                let id = ObjectId::from_bytes(w.object);
                self.apply_extent_write(id, w.first_block, &w.kinds, &extents, skip)
                    .map_err(ctx)?;
            }
            RecordKind::RelocExtent => {
                let (id, n) = decode_extent_reloc(&rec.body).map_err(ctx)?;
                let loc = LogAddr(addr.0 + (HEADER_LEN + EXTENT_RELOC_FIXED) as u64);
                self.apply_extent_reloc(id, n, loc).map_err(ctx)?;
            }
            RecordKind::Zero => {
                let z = ZeroBody::decode(&rec.body).map_err(ctx)?;
                let id = ObjectId::from_bytes(z.object);
                self.apply_zero(id, z.first_block, z.blocks, z.value)
                    .map_err(ctx)?;
            }
            RecordKind::Catalog => {
                let op: CatalogOp = serde_json::from_slice(&rec.body)
                    .map_err(|e| ctx(Error::corrupt(format!("catalog record: {e}"))))?;
                self.apply_catalog(&op).map_err(ctx)?;
            }
            RecordKind::Free => {
                let step = crate::format::FreeStep::decode(&rec.body).map_err(ctx)?;
                self.apply_free(step).map_err(ctx)?;
            }
            RecordKind::Reloc => {
                let r = RelocHead::decode(&rec.body).map_err(ctx)?;
                let loc = LogAddr(addr.0 + (HEADER_LEN + RELOC_FIXED) as u64);
                self.apply_reloc(
                    r.chunk,
                    loc,
                    r.crc,
                    r.stored_len,
                    r.flags & CT_FLAG_COMPRESSED,
                )
                .map_err(ctx)?;
            }
            // Pages and blobs after the replay point belong to a
            // checkpoint that never committed: ignore them.
            RecordKind::Node | RecordKind::CtPage | RecordKind::Checkpoint | RecordKind::Seal => {}
        }
        Ok(())
    }

    /// Points extent `id` (of `n` blocks) at its relocated copy, whose crc
    /// array lies at `loc`.
    pub(crate) fn apply_extent_reloc(&mut self, id: ChunkId, n: u8, loc: LogAddr) -> Result<()> {
        let mut e = self.ct_get(id)?;
        if !e.is_live() || e.nblocks != n {
            return Err(Error::corrupt(format!(
                "relocation of extent {} does not match its entry",
                id.0
            )));
        }
        self.account(e.loc, u64::from(e.stored_len), false);
        e.loc = loc;
        // A moved extent is stored as crcs then payloads (kind 11).
        e.gap = 0;
        self.account(loc, u64::from(e.stored_len), true);
        self.ct_set(id, e)
    }

    /// Points chunk `id` at its relocated copy.
    pub(crate) fn apply_reloc(
        &mut self,
        id: ChunkId,
        loc: LogAddr,
        crc: u32,
        len: u32,
        flags: u32,
    ) -> Result<()> {
        let mut e = self.ct_get(id)?;
        if !e.is_live() || e.crc != crc || e.stored_len != len || e.flags != flags {
            return Err(Error::corrupt(format!(
                "relocation of chunk {} does not match its entry",
                id.0
            )));
        }
        self.account(e.loc, u64::from(len), false);
        e.loc = loc;
        self.account(loc, u64::from(len), true);
        self.ct_set(id, e)
    }
}

/// For a Write or extent Write record, the blocks (indices into the
/// write) whose payload fails its crc, `[usize::MAX]` when the body does
/// not decode; `None` for other records.
fn write_damage(rec: &ReadRecord) -> Option<Vec<usize>> {
    match rec.header.kind {
        RecordKind::Write => Some(match decode_write_salvage(&rec.body) {
            Ok((_, bad)) => bad,
            Err(_) => vec![usize::MAX],
        }),
        RecordKind::WriteExtents | RecordKind::WriteAligned => {
            Some(match decode_extent_record(rec.header.kind, &rec.body) {
                Ok((_, bad)) => bad,
                Err(_) => vec![usize::MAX],
            })
        }
        _ => None,
    }
}

/// The object, first block and block count a Write or extent Write
/// record names, read from its fixed part (the same place in both).
pub(crate) fn write_span(rec: &ReadRecord) -> Option<([u8; 16], u64, u64)> {
    matches!(
        rec.header.kind,
        RecordKind::Write | RecordKind::WriteExtents | RecordKind::WriteAligned
    )
    .then(|| WriteHead::peek(&rec.body).map(|w| (w.object, w.first_block, w.count)))
    .flatten()
}
