//! Large client writes from an owned, 4 KiB-aligned buffer
//! ([`Store::write_owned`]): the buffer the NBD server read the payload
//! into becomes the payloads of aligned extent Write records (kind 12,
//! docs/design.md "Aligned extent writes"), queued as it is and written
//! `O_DIRECT` from it. Only the record's head (fixed part, kinds,
//! descriptors, block crcs, padding) is framed under the store lock, so a
//! megabyte written costs no copy under the lock and none in the writer.
//!
//! Writes the layout does not fit (unaligned offset or length, under
//! [`ALIGNED_WRITE_MIN`], compressed volumes, a record's worth holding an
//! all-zero block) take the ordinary path ([`Store::write`]'s pieces).

use super::Store;
use crate::aligned::AlignedBuf;
use crate::error::Result;
use crate::fetch::Fetched;
use crate::format::{
    block_crc_of, encode_aligned_write_head, extent_gap, plan_extents, ExtentIn,
    ALIGNED_WRITE_FIXED, ALIGNED_WRITE_MIN, BLOCK_DATA, HEADER_LEN,
};
use crate::io::{prepare, ExtentAt};
use crate::log_direct::Payload;
use crate::types::{ChunkId, LogAddr, ObjectId, BLOCK_SIZE};
use std::sync::Arc;

impl Store {
    /// A buffer of `len` bytes at a 4 KiB-aligned address, for
    /// [`Store::write_owned`], from this store's pool (it goes back there
    /// when the engine is done with it). Its contents are unspecified.
    pub fn aligned_buf(&self, len: usize) -> AlignedBuf {
        self.inner.aligned.take(len)
    }

    /// Writes `buf` at `offset` of a volume, as [`Store::write`] does,
    /// taking the buffer: a large aligned write is queued from it without
    /// a copy and written `O_DIRECT` from it.
    pub fn write_owned(&self, id: ObjectId, offset: u64, buf: AlignedBuf, fua: bool) -> Result<()> {
        let buf = Arc::new(buf);
        self.with_room(|| self.write_owned_once(id, offset, &buf, fua))
    }

    fn write_owned_once(
        &self,
        id: ObjectId,
        offset: u64,
        buf: &Arc<AlignedBuf>,
        fua: bool,
    ) -> Result<()> {
        let data: &[u8] = buf;
        let bs = BLOCK_SIZE;
        let whole = offset.is_multiple_of(bs) && (data.len() as u64).is_multiple_of(bs);
        self.write_pieces(id, offset, data.len(), fua, |pos, r, compress| {
            if !(whole
                && !compress
                && r.len() as u64 >= ALIGNED_WRITE_MIN
                && self.write_piece_owned(id, pos, buf, r.start, r.end)?)
            {
                self.write_piece(id, pos, &data[r], compress)?;
            }
            Ok(())
        })
    }

    /// Writes bytes `[from, to)` of `buf` (whole blocks) at `offset` as
    /// one aligned extent Write record. False, having done nothing, when
    /// one of its blocks is all zero (those are stored as no data, which
    /// the record's back-to-back payloads cannot leave out).
    fn write_piece_owned(
        &self,
        id: ObjectId,
        offset: u64,
        buf: &Arc<AlignedBuf>,
        from: usize,
        to: usize,
    ) -> Result<bool> {
        let bs = BLOCK_SIZE as usize;
        let data = &buf[from..to];
        let n = data.len() / bs;
        let first = offset / BLOCK_SIZE;
        // Each block's plain crc32, outside the lock.
        let mut crcs = Vec::with_capacity(n);
        for blk in data.chunks(bs) {
            let p = prepare(blk, false);
            if p.zero {
                return Ok(false);
            }
            crcs.push(p.crc);
        }
        self.wait_queue_room()?;
        let mut fetched = Fetched::for_apply();
        let (mut st, ()) = self.lock_resolved(&mut fetched, |st| {
            self.check_live()?;
            st.check_io(id, offset, data.len() as u64, true)?;
            st.prefetch_update(id, first, n as u64, None, n as u64)
        })?;
        let kinds = vec![BLOCK_DATA; n];
        let plan = plan_extents(&kinds);
        st.admit(plan.len() as u64, true)?;
        let mut extents = Vec::with_capacity(plan.len());
        let mut crc_bytes = Vec::with_capacity(4 * n);
        for &(at, count) in &plan {
            let x = ChunkId::data(st.next_data);
            st.next_data += 1;
            let r = at as usize..at as usize + usize::from(count);
            for (k, &c) in crcs[r.clone()].iter().enumerate() {
                crc_bytes.extend_from_slice(&block_crc_of(x, k as u8, c).to_le_bytes());
            }
            extents.push(ExtentIn {
                id: x,
                first: at,
                payloads: r.map(|i| &data[i * bs..(i + 1) * bs]).collect(),
            });
        }
        let mut head = Vec::with_capacity(
            HEADER_LEN + ALIGNED_WRITE_FIXED + n + 16 * extents.len() + 4 * n + 4096,
        );
        head.resize(HEADER_LEN, 0);
        encode_aligned_write_head(
            &mut head,
            id.to_bytes(),
            first,
            &kinds,
            &extents,
            &crc_bytes,
        );
        let crcs_at = (head.len() - crc_bytes.len()) as u64;
        let payload = Payload {
            buf: buf.clone(),
            from,
            to,
        };
        let (addr, payloads_at) = st
            .append_aligned(head, payload)
            .map_err(|e| self.fail_append(e))?;
        let base = addr.0 + HEADER_LEN as u64;
        let mut done = 0u64;
        let mut placed = Vec::with_capacity(extents.len());
        for x in &extents {
            let count = x.payloads.len() as u8;
            let loc = LogAddr(addr.0 + crcs_at + 4 * done);
            let at = LogAddr(base + payloads_at as u64 + BLOCK_SIZE * done);
            let gap = extent_gap(loc, count, at).map_err(|e| self.fail(e))?;
            placed.push(ExtentAt {
                id: x.id,
                first: x.first,
                count,
                loc,
                gap,
            });
            done += u64::from(count);
        }
        st.apply_extent_write(id, first, &kinds, &placed, &[])
            .map_err(|e| self.fail(e))?;
        Ok(true)
    }
}
