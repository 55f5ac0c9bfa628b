//! Reads of metadata pages and data blocks straight into the caller's
//! buffer (no intermediate copy): one `preadv2` of header and body, with
//! `RWF_NOWAIT` for the reads that must not wait for the device (under the
//! store lock, or a read run on the NBD server's event loop), where "would
//! block" is simply `None` or false and the caller takes the slow way.

use super::Segment;
use crate::error::Result;
use crate::format::{RecordHeader, HEADER_LEN};
use crate::residency::read_error;
use rustix::io::ReadWriteFlags;
use std::io::IoSliceMut;

impl Segment {
    /// Reads the record at `offset` whose body is `body.len()` bytes
    /// straight into `body`, only if all of it is in the page cache: its
    /// header, when one decodes there for a body of that length. The body
    /// is *not* checked against the header's crc: the caller checks it
    /// once against both that and the crc its parent holds. `None` when
    /// the read would block, when the kernel or filesystem does not support
    /// the flag, when the bytes are remote or still queued for writing, or
    /// when no record of that length starts there: the caller then reads it
    /// the slow way ([`Segment::read_page_into`]), outside the lock.
    pub fn read_page_cached_into(&self, offset: u64, body: &mut [u8]) -> Option<RecordHeader> {
        let end = offset + (HEADER_LEN + body.len()) as u64;
        if self.remote_at(offset) || self.gate.pending(self.no, offset, end) {
            return None;
        }
        let mut h = [0u8; HEADER_LEN];
        let want = HEADER_LEN + body.len();
        let mut iov = [IoSliceMut::new(&mut h), IoSliceMut::new(body)];
        let n = rustix::io::preadv2(&self.file, &mut iov, offset, ReadWriteFlags::NOWAIT).ok()?;
        if n != want {
            return None;
        }
        RecordHeader::decode(&h).filter(|hd| hd.body_len as usize == want - HEADER_LEN)
    }

    /// [`Segment::read_page_cached_into`] waiting for the device (and for
    /// the queued records the range covers; remote bytes are fetched):
    /// `Ok(None)` when no record of that length starts at `offset`.
    pub fn read_page_into(&self, offset: u64, body: &mut [u8]) -> Result<Option<RecordHeader>> {
        let end = offset + (HEADER_LEN + body.len()) as u64;
        self.gate.wait_range(self.no, offset, end)?;
        let err = |e| read_error(format!("reading segment {}", self.no.0), e);
        let mut h = [0u8; HEADER_LEN];
        if self.pread(&mut h, offset).map_err(err)? != HEADER_LEN {
            return Ok(None);
        }
        let Some(hd) = RecordHeader::decode(&h).filter(|hd| hd.body_len as usize == body.len())
        else {
            return Ok(None);
        };
        if self.pread(body, offset + HEADER_LEN as u64).map_err(err)? != body.len() {
            return Ok(None);
        }
        Ok(Some(hd))
    }

    /// Fills `buf` from `offset` only if all of it is in the page cache
    /// (`RWF_NOWAIT`, the bytes local and written): false when it would
    /// block or anything else stands in the way (the caller then reads it
    /// with [`Segment::read_exact_at`], where waiting is allowed).
    pub fn read_cached_at(&self, buf: &mut [u8], offset: u64) -> bool {
        let end = offset + buf.len() as u64;
        if self.remote_at(offset) || self.gate.pending(self.no, offset, end) {
            return false;
        }
        self.touch_read();
        let want = buf.len();
        let mut iov = [IoSliceMut::new(buf)];
        rustix::io::preadv2(&self.file, &mut iov, offset, ReadWriteFlags::NOWAIT)
            .is_ok_and(|n| n == want)
    }
}
