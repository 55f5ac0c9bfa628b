//! The reply half of the NBD transmission wire format, pure: simple
//! replies, structured reply chunks (20-byte header) and extended reply
//! chunks (32-byte header, once `NBD_OPT_EXTENDED_HEADERS` is negotiated),
//! framed by a [`ReplyTo`] that knows the connection's [`ReplyMode`] and
//! the request's cookie and offset. No I/O happens here. Re-exported by
//! [`crate::codec`].

use crate::codec::BASE_ALLOCATION_ID;

/// Magic of a simple reply.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// Magic of a structured reply chunk.
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;
/// Magic of an extended reply chunk.
pub const EXTENDED_REPLY_MAGIC: u32 = 0x6e8a_278c;

/// Structured (and extended) reply chunk types and flags.
pub mod chunk {
    /// Last chunk of a reply.
    pub const FLAG_DONE: u16 = 1;
    /// No payload.
    pub const NONE: u16 = 0;
    /// Data at an offset.
    pub const OFFSET_DATA: u16 = 1;
    /// A hole at an offset.
    pub const OFFSET_HOLE: u16 = 2;
    /// Block status descriptors, 32-bit (structured replies only).
    pub const BLOCK_STATUS: u16 = 5;
    /// Block status descriptors, 64-bit (extended headers only).
    pub const BLOCK_STATUS_EXT: u16 = 6;
    /// An error for the whole request.
    pub const ERROR: u16 = (1 << 15) + 1;
    /// An error at an offset.
    pub const ERROR_OFFSET: u16 = (1 << 15) + 2;
}

/// Length of a simple reply header.
pub const SIMPLE_REPLY_LEN: usize = 16;
/// Length of a structured chunk header.
pub const CHUNK_HEADER_LEN: usize = 20;
/// Length of an extended chunk header.
pub const EXT_CHUNK_HEADER_LEN: usize = 32;
/// Longest error message sent in an error chunk.
pub const MAX_ERROR_MESSAGE: usize = 512;

/// A simple reply header.
pub fn simple_reply(cookie: u64, error: u32) -> [u8; SIMPLE_REPLY_LEN] {
    let mut b = [0u8; SIMPLE_REPLY_LEN];
    b[..4].copy_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
    b[4..8].copy_from_slice(&error.to_be_bytes());
    b[8..].copy_from_slice(&cookie.to_be_bytes());
    b
}

/// How a connection frames its replies, fixed at negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Simple replies only.
    Simple,
    /// Structured replies: chunks for READ and BLOCK_STATUS (and their
    /// errors), simple replies for the rest.
    Structured,
    /// Extended headers: every reply is a 32-byte-header chunk.
    Extended,
}

/// The reply to one request: mode, cookie, and the request's offset (which
/// an extended header echoes in every chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    /// Framing.
    pub mode: ReplyMode,
    /// The request's cookie.
    pub cookie: u64,
    /// The request's offset.
    pub offset: u64,
}

impl ReplyTo {
    /// The reply to the request `cookie` at `offset`.
    pub fn new(mode: ReplyMode, cookie: u64, offset: u64) -> Self {
        ReplyTo {
            mode,
            cookie,
            offset,
        }
    }

    fn extended(&self) -> bool {
        self.mode == ReplyMode::Extended
    }

    /// Length of a chunk header.
    pub fn header_len(&self) -> usize {
        if self.extended() {
            EXT_CHUNK_HEADER_LEN
        } else {
            CHUNK_HEADER_LEN
        }
    }

    /// Writes a chunk header of payload length `len` into
    /// `out[..header_len()]`.
    pub fn chunk_header_into(&self, out: &mut [u8], flags: u16, ty: u16, len: u32) {
        let magic = if self.extended() {
            EXTENDED_REPLY_MAGIC
        } else {
            STRUCTURED_REPLY_MAGIC
        };
        out[..4].copy_from_slice(&magic.to_be_bytes());
        out[4..6].copy_from_slice(&flags.to_be_bytes());
        out[6..8].copy_from_slice(&ty.to_be_bytes());
        out[8..16].copy_from_slice(&self.cookie.to_be_bytes());
        if self.extended() {
            out[16..24].copy_from_slice(&self.offset.to_be_bytes());
            out[24..32].copy_from_slice(&u64::from(len).to_be_bytes());
        } else {
            out[16..20].copy_from_slice(&len.to_be_bytes());
        }
    }

    /// Appends a chunk header.
    pub fn chunk_header(&self, out: &mut Vec<u8>, flags: u16, ty: u16, len: u32) {
        let at = out.len();
        out.resize(at + self.header_len(), 0);
        self.chunk_header_into(&mut out[at..], flags, ty, len);
    }

    /// Bytes in front of OFFSET_DATA payload: chunk header and offset.
    pub fn data_prefix(&self) -> usize {
        self.header_len() + 8
    }

    /// Fills the [`data_prefix`](Self::data_prefix) bytes in front of
    /// `data_len` bytes of OFFSET_DATA at `offset`.
    pub fn offset_data_prefix(&self, out: &mut [u8], done: bool, offset: u64, data_len: u32) {
        let flags = if done { chunk::FLAG_DONE } else { 0 };
        let h = self.header_len();
        self.chunk_header_into(out, flags, chunk::OFFSET_DATA, 8 + data_len);
        out[h..h + 8].copy_from_slice(&offset.to_be_bytes());
    }

    /// Appends an OFFSET_HOLE chunk.
    pub fn offset_hole(&self, out: &mut Vec<u8>, done: bool, offset: u64, len: u32) {
        let flags = if done { chunk::FLAG_DONE } else { 0 };
        self.chunk_header(out, flags, chunk::OFFSET_HOLE, 12);
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
    }

    /// Appends a final ERROR chunk (message cut to [`MAX_ERROR_MESSAGE`]).
    pub fn error_chunk(&self, out: &mut Vec<u8>, error: u32, message: &str) {
        let msg = &message.as_bytes()[..message.len().min(MAX_ERROR_MESSAGE)];
        let len = 6 + msg.len() as u32;
        self.chunk_header(out, chunk::FLAG_DONE, chunk::ERROR, len);
        out.extend_from_slice(&error.to_be_bytes());
        out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        out.extend_from_slice(msg);
    }

    /// Appends a final NONE chunk (a chunked reply with no payload).
    pub fn none_chunk(&self, out: &mut Vec<u8>) {
        self.chunk_header(out, chunk::FLAG_DONE, chunk::NONE, 0);
    }

    /// Appends a final block status chunk for `base:allocation` of
    /// `(length, flags)` descriptors: BLOCK_STATUS (32-bit lengths, which
    /// the caller keeps under 2^32) or, with extended headers,
    /// BLOCK_STATUS_EXT (count, then 64-bit lengths and statuses).
    pub fn block_status(&self, out: &mut Vec<u8>, extents: &[(u64, u32)]) {
        let n = extents.len() as u32;
        if self.extended() {
            self.chunk_header(out, chunk::FLAG_DONE, chunk::BLOCK_STATUS_EXT, 8 + 16 * n);
            out.extend_from_slice(&BASE_ALLOCATION_ID.to_be_bytes());
            out.extend_from_slice(&n.to_be_bytes());
            for (len, flags) in extents {
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&u64::from(*flags).to_be_bytes());
            }
        } else {
            self.chunk_header(out, chunk::FLAG_DONE, chunk::BLOCK_STATUS, 4 + 8 * n);
            out.extend_from_slice(&BASE_ALLOCATION_ID.to_be_bytes());
            for (len, flags) in extents {
                let len = u32::try_from(*len).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&flags.to_be_bytes());
            }
        }
    }

    /// The whole reply of a request that succeeded without payload: a
    /// simple reply, or a NONE chunk with extended headers (which forbid
    /// simple replies).
    pub fn ok(&self) -> Vec<u8> {
        if self.extended() {
            let mut b = Vec::with_capacity(EXT_CHUNK_HEADER_LEN);
            self.none_chunk(&mut b);
            b
        } else {
            simple_reply(self.cookie, 0).to_vec()
        }
    }

    /// The whole reply of a failed request: an ERROR chunk with extended
    /// headers, or with structured replies when `chunked` (READ and
    /// BLOCK_STATUS, whose structured errors must be chunks); a simple
    /// reply otherwise.
    pub fn error(&self, chunked: bool, errno: u32, message: &str) -> Vec<u8> {
        let chunk = match self.mode {
            ReplyMode::Extended => true,
            ReplyMode::Structured => chunked,
            ReplyMode::Simple => false,
        };
        if chunk {
            let mut b = Vec::with_capacity(self.header_len() + 6 + message.len());
            self.error_chunk(&mut b, errno, message);
            b
        } else {
            simple_reply(self.cookie, errno).to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{alloc, be16, be32, be64};

    const S: ReplyMode = ReplyMode::Structured;
    const E: ReplyMode = ReplyMode::Extended;

    #[test]
    fn structured_encoders() {
        let r = ReplyTo::new(S, 9, 4096);
        let mut b = Vec::new();
        r.offset_hole(&mut b, true, 4096, 512);
        assert_eq!(b.len(), 32);
        assert_eq!(be32(&b), STRUCTURED_REPLY_MAGIC);
        assert_eq!(be16(&b[4..]), chunk::FLAG_DONE);
        assert_eq!(be16(&b[6..]), chunk::OFFSET_HOLE);
        assert_eq!(be64(&b[8..]), 9);
        assert_eq!(be32(&b[16..]), 12);
        let mut b = Vec::new();
        ReplyTo::new(S, 1, 0).block_status(&mut b, &[(4096, alloc::HOLE | alloc::ZERO)]);
        assert_eq!(b.len(), 20 + 12);
        assert_eq!(be16(&b[6..]), chunk::BLOCK_STATUS);
        assert_eq!(be32(&b[16..]), 12);
        assert_eq!(&b[20..], &[0, 0, 0, 1, 0, 0, 16, 0, 0, 0, 0, 3]);
        // Success and errors of non-read commands stay simple replies.
        assert_eq!(r.ok(), simple_reply(9, 0).to_vec());
        assert_eq!(r.error(false, 22, "x"), simple_reply(9, 22).to_vec());
        assert_eq!(
            ReplyTo::new(ReplyMode::Simple, 9, 0)
                .error(true, 5, "x")
                .len(),
            16
        );
        let e = r.error(true, 5, "bad");
        assert_eq!(
            (e.len(), be16(&e[6..]), be32(&e[20..])),
            (29, chunk::ERROR, 5)
        );
    }

    #[test]
    fn extended_encoders() {
        let r = ReplyTo::new(E, 0x0102_0304_0506_0708, 1 << 40);
        // NONE chunk for a success without payload: never a simple reply.
        let b = r.ok();
        assert_eq!(b.len(), EXT_CHUNK_HEADER_LEN);
        assert_eq!(be32(&b), EXTENDED_REPLY_MAGIC);
        assert_eq!(be16(&b[4..]), chunk::FLAG_DONE);
        assert_eq!(be16(&b[6..]), chunk::NONE);
        assert_eq!(be64(&b[8..]), 0x0102_0304_0506_0708);
        assert_eq!(be64(&b[16..]), 1 << 40, "offset echoes the request");
        assert_eq!(be64(&b[24..]), 0);
        // Errors are chunks whatever the command.
        let e = r.error(false, 22, "nope");
        assert_eq!(e.len(), 32 + 6 + 4);
        assert_eq!(be16(&e[6..]), chunk::ERROR);
        assert_eq!(be64(&e[24..]), 10);
        assert_eq!((be32(&e[32..]), be16(&e[36..])), (22, 4));
        assert_eq!(&e[38..], b"nope");
        // Long messages are cut.
        let long = "m".repeat(4000);
        assert_eq!(r.error(true, 5, &long).len(), 32 + 6 + MAX_ERROR_MESSAGE);
        // OFFSET_DATA: header offset is the request's, payload offset the
        // data's.
        let mut d = vec![0u8; r.data_prefix() + 3];
        assert_eq!(r.data_prefix(), 40);
        r.offset_data_prefix(&mut d, false, (1 << 40) + 512, 3);
        assert_eq!(be16(&d[4..]), 0);
        assert_eq!(be16(&d[6..]), chunk::OFFSET_DATA);
        assert_eq!(be64(&d[16..]), 1 << 40);
        assert_eq!(be64(&d[24..]), 11);
        assert_eq!(be64(&d[32..]), (1 << 40) + 512);
        let mut h = Vec::new();
        r.offset_hole(&mut h, true, 1 << 40, 4096);
        assert_eq!(h.len(), 32 + 12);
        assert_eq!(
            (be64(&h[24..]), be64(&h[32..]), be32(&h[40..])),
            (12, 1 << 40, 4096)
        );
    }

    #[test]
    fn block_status_ext() {
        let r = ReplyTo::new(E, 3, 0);
        let mut b = Vec::new();
        let big = 5u64 << 32;
        r.block_status(&mut b, &[(4096, 0), (big, alloc::HOLE | alloc::ZERO)]);
        assert_eq!(b.len(), 32 + 8 + 2 * 16);
        assert_eq!(be16(&b[6..]), chunk::BLOCK_STATUS_EXT);
        assert_eq!(be64(&b[24..]), 8 + 32);
        assert_eq!((be32(&b[32..]), be32(&b[36..])), (BASE_ALLOCATION_ID, 2));
        assert_eq!((be64(&b[40..]), be64(&b[48..])), (4096, 0));
        assert_eq!((be64(&b[56..]), be64(&b[64..])), (big, 3));
    }
}
