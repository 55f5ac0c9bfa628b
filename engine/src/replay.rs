//! Recovery: replays the log from the superblock's replay point, applying
//! each record in order, until the first record that is missing, torn or out
//! of sequence. That point is the end of the log; what lies beyond it was
//! never covered by a completed fsync and is discarded.

use crate::catalog::CatalogOp;
use crate::error::{Error, Result};
use crate::format::{decode_write, get_u32, get_u64, RecordKind, CT_FLAG_COMPRESSED, HEADER_LEN};
use crate::state::State;
use crate::types::{ChunkId, LogAddr, ObjectId};

impl State {
    /// Replays from `start` (sequence `seq`); returns the end of the log,
    /// the next sequence number and how many records were applied.
    pub(crate) fn replay(&mut self, start: LogAddr, seq: u64) -> Result<(LogAddr, u64, u64)> {
        let mut addr = start;
        let mut seq = seq;
        let mut n = 0u64;
        while let Some(rec) = self.log.read_record(addr, Some(seq))? {
            let ctx = |e: Error| {
                e.with_context(format!(
                    "replaying record {seq} at segment {} offset {}",
                    addr.segment().0,
                    addr.offset()
                ))
            };
            match rec.header.kind {
                RecordKind::Write => {
                    let w = match decode_write(&rec.body) {
                        Ok(w) => w,
                        // A payload that fails its checksum is a torn write: the log ends here.
                        Err(_) => break,
                    };
                    let locs: Vec<LogAddr> = w
                        .payload_offsets
                        .iter()
                        .map(|&o| LogAddr(addr.0 + (HEADER_LEN + o) as u64))
                        .collect();
                    self.apply_write(
                        ObjectId::from_bytes(w.object),
                        w.first_block,
                        &w.entries,
                        &locs,
                    )
                    .map_err(ctx)?;
                }
                RecordKind::Zero => {
                    let b = &rec.body;
                    if b.len() != 40 {
                        return Err(ctx(Error::corrupt("zero record has a bad length")));
                    }
                    let id = ObjectId::from_bytes(b[..16].try_into().expect("16 bytes"));
                    let value = ChunkId(u64::from(get_u32(b, 32)));
                    if value != ChunkId::HOLE && value != ChunkId::ZERO {
                        return Err(ctx(Error::corrupt("zero record has a bad value")));
                    }
                    self.apply_zero(id, get_u64(b, 16), get_u64(b, 24), value)
                        .map_err(ctx)?;
                }
                RecordKind::Catalog => {
                    let op: CatalogOp = serde_json::from_slice(&rec.body)
                        .map_err(|e| ctx(Error::corrupt(format!("catalog record: {e}"))))?;
                    self.apply_catalog(&op).map_err(ctx)?;
                }
                RecordKind::Reloc => {
                    let b = &rec.body;
                    if b.len() < 24 {
                        return Err(ctx(Error::corrupt("reloc record too short")));
                    }
                    let id = ChunkId(get_u64(b, 0));
                    let loc = LogAddr(addr.0 + (HEADER_LEN + 24) as u64);
                    self.apply_reloc(
                        id,
                        loc,
                        get_u32(b, 8),
                        get_u32(b, 12),
                        get_u32(b, 16) & CT_FLAG_COMPRESSED,
                    )
                    .map_err(ctx)?;
                }
                // Pages and blobs after the replay point belong to a
                // checkpoint that never committed: ignore them.
                RecordKind::Node
                | RecordKind::CtPage
                | RecordKind::Checkpoint
                | RecordKind::Seal => {}
            }
            addr = rec.next;
            seq += 1;
            n += 1;
        }
        Ok((addr, seq, n))
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
