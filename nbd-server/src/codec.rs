//! The NBD wire format, pure: constants, request header parsing (compact
//! 28-byte and extended 32-byte headers) and validation. No I/O happens
//! here: bytes in, values or encoded frames out, so every function can be
//! unit-tested and fuzzed in isolation. Option haggling lives in
//! `options.rs` and reply encoding in `reply.rs`; both are re-exported
//! here, so `codec::` names the whole wire format.
//!
//! Layouts follow the NBD protocol specification (`doc/proto.md`, and the
//! `extension-ext-header` branch for extended headers): fixed newstyle
//! negotiation; simple, structured, or (after `NBD_OPT_EXTENDED_HEADERS`)
//! extended replies.

pub use crate::options::*;
pub use crate::reply::*;

/// Magic of a (compact) request.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// Magic of an extended request (after `NBD_OPT_EXTENDED_HEADERS`).
pub const EXTENDED_REQUEST_MAGIC: u32 = 0x21e4_1c71;

/// Transmission flags.
pub mod tflag {
    /// Always set.
    pub const HAS_FLAGS: u16 = 1;
    /// Writes are refused.
    pub const READ_ONLY: u16 = 1 << 1;
    /// FLUSH supported.
    pub const SEND_FLUSH: u16 = 1 << 2;
    /// FUA supported.
    pub const SEND_FUA: u16 = 1 << 3;
    /// TRIM supported.
    pub const SEND_TRIM: u16 = 1 << 5;
    /// WRITE_ZEROES supported.
    pub const SEND_WRITE_ZEROES: u16 = 1 << 6;
    /// DF supported.
    pub const SEND_DF: u16 = 1 << 7;
    /// Several connections see one consistent export.
    pub const CAN_MULTI_CONN: u16 = 1 << 8;
    /// CACHE supported.
    pub const SEND_CACHE: u16 = 1 << 10;
    /// FAST_ZERO supported.
    pub const SEND_FAST_ZERO: u16 = 1 << 11;
}

/// Commands.
pub mod cmd {
    /// Read.
    pub const READ: u16 = 0;
    /// Write.
    pub const WRITE: u16 = 1;
    /// Disconnect.
    pub const DISC: u16 = 2;
    /// Flush.
    pub const FLUSH: u16 = 3;
    /// Trim (discard).
    pub const TRIM: u16 = 4;
    /// Prefetch.
    pub const CACHE: u16 = 5;
    /// Write zeroes.
    pub const WRITE_ZEROES: u16 = 6;
    /// Block status.
    pub const BLOCK_STATUS: u16 = 7;
}

/// Command flags.
pub mod cflag {
    /// Force unit access.
    pub const FUA: u16 = 1;
    /// WRITE_ZEROES: do not punch holes.
    pub const NO_HOLE: u16 = 1 << 1;
    /// READ: do not fragment the reply.
    pub const DF: u16 = 1 << 2;
    /// BLOCK_STATUS: one extent only.
    pub const REQ_ONE: u16 = 1 << 3;
    /// WRITE_ZEROES: fail fast when zeroing would be slow.
    pub const FAST_ZERO: u16 = 1 << 4;
    /// Extended headers only: *length* is a payload that follows the
    /// header (required on WRITE).
    pub const PAYLOAD_LEN: u16 = 1 << 5;
}

/// NBD error numbers (the protocol's, not the host's).
pub mod errno {
    /// Operation not permitted (read-only export).
    pub const EPERM: u32 = 1;
    /// I/O error.
    pub const EIO: u32 = 5;
    /// Out of memory.
    pub const ENOMEM: u32 = 12;
    /// Invalid argument.
    pub const EINVAL: u32 = 22;
    /// No space (write past the end, or store full).
    pub const ENOSPC: u32 = 28;
    /// Value too large.
    pub const EOVERFLOW: u32 = 75;
    /// Not supported (FAST_ZERO that would be slow).
    pub const ENOTSUP: u32 = 95;
    /// Server shutting down.
    pub const ESHUTDOWN: u32 = 108;
}

/// base:allocation flags.
pub mod alloc {
    /// Unallocated.
    pub const HOLE: u32 = 1;
    /// Reads as zero.
    pub const ZERO: u32 = 2;
}

/// The one metadata context offered.
pub const BASE_ALLOCATION: &str = "base:allocation";
/// Id of `base:allocation` in BLOCK_STATUS replies.
pub const BASE_ALLOCATION_ID: u32 = 1;

/// Largest READ/WRITE payload.
pub const MAX_PAYLOAD: u32 = 32 << 20;
/// WRITE payloads up to this size are drained when refused; larger ones
/// disconnect the client.
pub const MAX_DRAIN: u32 = 64 << 20;
/// Length of a (compact) request header.
pub const REQUEST_LEN: usize = 28;
/// Length of an extended request header.
pub const EXT_REQUEST_LEN: usize = 32;

pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
pub(crate) fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
}

/// A request header, compact or extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// Command flags.
    pub flags: u16,
    /// Command.
    pub command: u16,
    /// Opaque cookie echoed in replies.
    pub cookie: u64,
    /// Byte offset.
    pub offset: u64,
    /// Length: payload length for a compact WRITE or an extended request
    /// with `PAYLOAD_LEN`, else the effect length. At most `u32::MAX` in a
    /// compact header.
    pub length: u64,
}

/// Length of a request header in the given mode.
pub fn request_len(extended: bool) -> usize {
    if extended {
        EXT_REQUEST_LEN
    } else {
        REQUEST_LEN
    }
}

/// Parses the first [`request_len`] bytes of `b` as a request header of
/// the given mode (compact or extended); `None` for a bad magic (a compact
/// request after extended headers were negotiated included: disconnect) or
/// too few bytes.
pub fn parse_header(b: &[u8], extended: bool) -> Option<RequestHeader> {
    let magic = if extended {
        EXTENDED_REQUEST_MAGIC
    } else {
        REQUEST_MAGIC
    };
    let b = b.get(..request_len(extended))?;
    if be32(b) != magic {
        return None;
    }
    Some(RequestHeader {
        flags: be16(&b[4..]),
        command: be16(&b[6..]),
        cookie: be64(&b[8..]),
        offset: be64(&b[16..]),
        length: if extended {
            be64(&b[24..])
        } else {
            u64::from(be32(&b[24..]))
        },
    })
}

/// Encodes a compact request header (for clients and tests); the length is
/// truncated to 32 bits.
pub fn encode_request(r: &RequestHeader) -> [u8; REQUEST_LEN] {
    let mut b = [0u8; REQUEST_LEN];
    b[..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
    b[4..6].copy_from_slice(&r.flags.to_be_bytes());
    b[6..8].copy_from_slice(&r.command.to_be_bytes());
    b[8..16].copy_from_slice(&r.cookie.to_be_bytes());
    b[16..24].copy_from_slice(&r.offset.to_be_bytes());
    b[24..28].copy_from_slice(&(r.length as u32).to_be_bytes());
    b
}

/// Encodes an extended request header (for clients and tests).
pub fn encode_ext_request(r: &RequestHeader) -> [u8; EXT_REQUEST_LEN] {
    let mut b = [0u8; EXT_REQUEST_LEN];
    b[..4].copy_from_slice(&EXTENDED_REQUEST_MAGIC.to_be_bytes());
    b[4..6].copy_from_slice(&r.flags.to_be_bytes());
    b[6..8].copy_from_slice(&r.command.to_be_bytes());
    b[8..16].copy_from_slice(&r.cookie.to_be_bytes());
    b[16..24].copy_from_slice(&r.offset.to_be_bytes());
    b[24..32].copy_from_slice(&r.length.to_be_bytes());
    b
}

/// What the session knows about the export when validating requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportParams {
    /// Size in bytes.
    pub size: u64,
    /// Writes refused.
    pub read_only: bool,
    /// Structured replies negotiated (also true with extended headers).
    pub structured: bool,
    /// Extended headers negotiated: 32-byte requests and replies.
    pub extended: bool,
    /// base:allocation selected.
    pub base_allocation: bool,
}

impl ExportParams {
    /// Transmission flags advertised for this export. The same with
    /// extended headers: the BLOCK_STATUS payload form is not offered.
    pub fn transmission_flags(&self) -> u16 {
        let mut f = tflag::HAS_FLAGS
            | tflag::SEND_FLUSH
            | tflag::SEND_FUA
            | tflag::CAN_MULTI_CONN
            | tflag::SEND_CACHE;
        if self.read_only {
            f |= tflag::READ_ONLY;
        } else {
            f |= tflag::SEND_TRIM | tflag::SEND_WRITE_ZEROES | tflag::SEND_FAST_ZERO;
        }
        if self.structured {
            f |= tflag::SEND_DF;
        }
        f
    }

    /// How replies are framed on this connection.
    pub fn reply_mode(&self) -> ReplyMode {
        if self.extended {
            ReplyMode::Extended
        } else if self.structured {
            ReplyMode::Structured
        } else {
            ReplyMode::Simple
        }
    }
}

/// A validated command. READ and WRITE lengths are bounded by
/// [`MAX_PAYLOAD`]; the others may exceed 32 bits with extended headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Read `len` bytes; `df`: reply in one chunk.
    Read {
        /// Offset.
        offset: u64,
        /// Length.
        len: u32,
        /// Don't fragment.
        df: bool,
    },
    /// Write `len` bytes of payload.
    Write {
        /// Offset.
        offset: u64,
        /// Payload length.
        len: u32,
        /// Force unit access.
        fua: bool,
    },
    /// Disconnect after in-flight requests.
    Disconnect,
    /// Flush.
    Flush,
    /// Trim.
    Trim {
        /// Offset.
        offset: u64,
        /// Length.
        len: u64,
        /// Force unit access.
        fua: bool,
    },
    /// Prefetch.
    Cache {
        /// Offset.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Write zeroes.
    WriteZeroes {
        /// Offset.
        offset: u64,
        /// Length.
        len: u64,
        /// Force unit access.
        fua: bool,
        /// Keep allocation (NO_HOLE).
        no_hole: bool,
        /// Fail with ENOTSUP if slow.
        fast: bool,
    },
    /// Block status.
    BlockStatus {
        /// Offset.
        offset: u64,
        /// Length.
        len: u64,
        /// One extent only.
        req_one: bool,
    },
}

/// The outcome of validating a request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Run it.
    Run(Command),
    /// Refuse it with `errno` after draining `drain` payload bytes.
    Reject {
        /// NBD errno.
        errno: u32,
        /// Payload bytes to read and discard.
        drain: u32,
        /// Short reason (logs, error chunks).
        reason: &'static str,
    },
    /// Protocol violation beyond repair: drop the connection.
    Disconnect(&'static str),
}

/// Payload bytes following a request header: a WRITE's length, or the
/// length of an extended request flagged `PAYLOAD_LEN` (whatever its
/// command: the payload must be consumed to stay in sync).
///
/// With extended headers the spec says a WRITE MUST carry `PAYLOAD_LEN`,
/// but qemu (10.0) sends extended WRITEs without it, payload included; so
/// a WRITE's length is its payload either way, as in compact mode.
pub fn payload_len(r: &RequestHeader, p: &ExportParams) -> u64 {
    let flagged = p.extended && r.flags & cflag::PAYLOAD_LEN != 0;
    if r.command == cmd::WRITE || flagged {
        r.length
    } else {
        0
    }
}

/// Validates a request header against the export.
pub fn validate(r: &RequestHeader, p: &ExportParams) -> Verdict {
    let payload = payload_len(r, p);
    if payload > u64::from(MAX_DRAIN) {
        return Verdict::Disconnect("write payload too large to drain");
    }
    let reject = |errno, reason| Verdict::Reject {
        errno,
        drain: payload as u32,
        reason,
    };
    let allowed: u16 = match r.command {
        cmd::READ => {
            if p.structured {
                cflag::DF
            } else {
                0
            }
        }
        // With extended headers a WRITE should carry PAYLOAD_LEN; no other
        // command has a payload form here (BLOCK_STATUS's is not offered).
        cmd::WRITE if p.extended => cflag::FUA | cflag::PAYLOAD_LEN,
        cmd::WRITE | cmd::TRIM => cflag::FUA,
        cmd::WRITE_ZEROES => cflag::FUA | cflag::NO_HOLE | cflag::FAST_ZERO,
        cmd::BLOCK_STATUS => cflag::REQ_ONE,
        cmd::DISC | cmd::FLUSH | cmd::CACHE => 0,
        _ => return reject(errno::EINVAL, "unknown command"),
    };
    if r.flags & !allowed != 0 {
        return reject(errno::EINVAL, "flag not valid for this command");
    }
    let fua = r.flags & cflag::FUA != 0;
    match r.command {
        cmd::DISC => return Verdict::Run(Command::Disconnect),
        cmd::FLUSH => {
            if r.offset != 0 || r.length != 0 {
                return reject(errno::EINVAL, "flush with offset or length");
            }
            return Verdict::Run(Command::Flush);
        }
        _ => {}
    }
    let writes = matches!(r.command, cmd::WRITE | cmd::TRIM | cmd::WRITE_ZEROES);
    if writes && p.read_only {
        return reject(errno::EPERM, "export is read-only");
    }
    if r.length == 0 {
        return reject(errno::EINVAL, "zero-length request");
    }
    if matches!(r.command, cmd::READ | cmd::WRITE) && r.length > u64::from(MAX_PAYLOAD) {
        return reject(errno::EINVAL, "request exceeds maximum block size");
    }
    let end = r.offset.checked_add(r.length);
    if end.is_none_or(|e| e > p.size) {
        let e = if matches!(r.command, cmd::WRITE | cmd::WRITE_ZEROES) {
            errno::ENOSPC
        } else {
            errno::EINVAL
        };
        return reject(e, "request beyond the end of the export");
    }
    let (offset, len) = (r.offset, r.length);
    Verdict::Run(match r.command {
        cmd::READ => Command::Read {
            offset,
            len: len as u32,
            df: r.flags & cflag::DF != 0,
        },
        cmd::WRITE => Command::Write {
            offset,
            len: len as u32,
            fua,
        },
        cmd::TRIM => Command::Trim { offset, len, fua },
        cmd::CACHE => Command::Cache { offset, len },
        cmd::WRITE_ZEROES => Command::WriteZeroes {
            offset,
            len,
            fua,
            no_hole: r.flags & cflag::NO_HOLE != 0,
            fast: r.flags & cflag::FAST_ZERO != 0,
        },
        cmd::BLOCK_STATUS => {
            if !p.structured || !p.base_allocation {
                return reject(errno::EINVAL, "no metadata context negotiated");
            }
            Command::BlockStatus {
                offset,
                len,
                req_one: r.flags & cflag::REQ_ONE != 0,
            }
        }
        _ => unreachable!("commands matched above"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ExportParams {
        ExportParams {
            size: 1 << 20,
            read_only: false,
            structured: true,
            extended: false,
            base_allocation: true,
        }
    }

    fn ext_params() -> ExportParams {
        ExportParams {
            size: 16 << 30,
            extended: true,
            ..params()
        }
    }

    fn req(command: u16, flags: u16, offset: u64, length: u64) -> RequestHeader {
        RequestHeader {
            flags,
            command,
            cookie: 7,
            offset,
            length,
        }
    }

    #[test]
    fn request_round_trip() {
        let r = req(cmd::WRITE, cflag::FUA, 4096, 512);
        assert_eq!(parse_header(&encode_request(&r), false), Some(r));
        let mut b = encode_request(&r);
        b[0] ^= 1;
        assert_eq!(parse_header(&b, false), None);
    }

    #[test]
    fn validation() {
        let p = params();
        assert!(matches!(
            validate(&req(cmd::READ, 0, 0, 4096), &p),
            Verdict::Run(Command::Read { .. })
        ));
        let rej = |r| match validate(&r, &p) {
            Verdict::Reject { errno, drain, .. } => (errno, drain),
            v => panic!("{v:?}"),
        };
        assert_eq!(rej(req(99, 0, 0, 1)), (errno::EINVAL, 0));
        assert_eq!(rej(req(cmd::READ, cflag::FUA, 0, 1)), (errno::EINVAL, 0));
        assert_eq!(rej(req(cmd::WRITE, 0x8000, 0, 9)), (errno::EINVAL, 9));
        assert_eq!(
            rej(req(cmd::WRITE, 0, (1 << 20) - 1, 2)),
            (errno::ENOSPC, 2)
        );
        assert_eq!(rej(req(cmd::READ, 0, 1 << 20, 1)), (errno::EINVAL, 0));
        assert_eq!(rej(req(cmd::READ, 0, u64::MAX, 2)), (errno::EINVAL, 0));
        assert_eq!(rej(req(cmd::TRIM, 0, 0, 0)), (errno::EINVAL, 0));
        assert_eq!(rej(req(cmd::FLUSH, 0, 1, 0)), (errno::EINVAL, 0));
        assert_eq!(
            rej(req(cmd::WRITE, 0, 0, u64::from(MAX_PAYLOAD) + 1)),
            (errno::EINVAL, MAX_PAYLOAD + 1)
        );
        assert!(matches!(
            validate(&req(cmd::WRITE, 0, 0, u64::from(u32::MAX)), &p),
            Verdict::Disconnect(_)
        ));
        let ro = ExportParams {
            read_only: true,
            ..p
        };
        assert!(matches!(
            validate(&req(cmd::WRITE, 0, 0, 5), &ro),
            Verdict::Reject {
                errno: errno::EPERM,
                drain: 5,
                ..
            }
        ));
        let simple = ExportParams {
            structured: false,
            base_allocation: false,
            ..p
        };
        assert!(matches!(
            validate(&req(cmd::BLOCK_STATUS, 0, 0, 5), &simple),
            Verdict::Reject { .. }
        ));
        assert!(matches!(
            validate(&req(cmd::READ, cflag::DF, 0, 5), &simple),
            Verdict::Reject { .. }
        ));
        assert!(matches!(
            validate(
                &req(cmd::WRITE_ZEROES, cflag::FAST_ZERO | cflag::NO_HOLE, 0, 5),
                &p
            ),
            Verdict::Run(Command::WriteZeroes {
                no_hole: true,
                fast: true,
                ..
            })
        ));
    }

    #[test]
    fn ext_request_round_trip() {
        let r = req(cmd::TRIM, cflag::FUA, 1 << 40, 5 << 32);
        let b = encode_ext_request(&r);
        assert_eq!(b.len(), EXT_REQUEST_LEN);
        assert_eq!(&b[..4], &[0x21, 0xe4, 0x1c, 0x71]);
        assert_eq!(parse_header(&b, true), Some(r));
        // 64-bit length survives; compact parsing of the same bytes fails
        // on the magic.
        assert_eq!(parse_header(&b, false), None);
        // A compact header where an extended one is due: bad magic.
        let mut c = [0u8; EXT_REQUEST_LEN];
        c[..REQUEST_LEN].copy_from_slice(&encode_request(&r));
        assert_eq!(parse_header(&c, true), None);
        let mut bad = b;
        bad[3] ^= 0x80;
        assert_eq!(parse_header(&bad, true), None);
        // Too short.
        assert_eq!(parse_header(&b[..31], true), None);
        assert_eq!(parse_header(&b[..27], false), None);
        assert_eq!(request_len(true), 32);
        assert_eq!(request_len(false), 28);
    }

    #[test]
    fn ext_validation() {
        let p = ext_params();
        let pl = cflag::PAYLOAD_LEN;
        let rej = |r: RequestHeader| match validate(&r, &p) {
            Verdict::Reject { errno, drain, .. } => (errno, drain),
            v => panic!("{v:?}"),
        };
        // WRITE carries PAYLOAD_LEN.
        assert!(matches!(
            validate(&req(cmd::WRITE, pl | cflag::FUA, 0, 512), &p),
            Verdict::Run(Command::Write {
                len: 512,
                fua: true,
                ..
            })
        ));
        // qemu omits it: the payload follows all the same.
        assert!(matches!(
            validate(&req(cmd::WRITE, 0, 0, 512), &p),
            Verdict::Run(Command::Write { len: 512, .. })
        ));
        assert_eq!(payload_len(&req(cmd::WRITE, 0, 0, 512), &p), 512);
        assert_eq!(payload_len(&req(cmd::TRIM, 0, 0, 512), &p), 0);
        assert_eq!(payload_len(&req(cmd::TRIM, pl, 0, 512), &p), 512);
        // PAYLOAD_LEN on commands without a payload form: drained, EINVAL.
        assert_eq!(rej(req(cmd::READ, pl, 0, 100)), (errno::EINVAL, 100));
        assert_eq!(rej(req(cmd::BLOCK_STATUS, pl, 0, 12)), (errno::EINVAL, 12));
        assert_eq!(rej(req(cmd::FLUSH, pl, 0, 8)), (errno::EINVAL, 8));
        assert_eq!(rej(req(99, pl, 0, 8)), (errno::EINVAL, 8));
        // Too large to drain: disconnect.
        assert!(matches!(
            validate(&req(cmd::BLOCK_STATUS, pl, 0, u64::from(MAX_DRAIN) + 1), &p),
            Verdict::Disconnect(_)
        ));
        assert!(matches!(
            validate(&req(cmd::WRITE, pl, 0, 1 << 40), &p),
            Verdict::Disconnect(_)
        ));
        // Oversize WRITE payload that can be drained; oversize READ.
        let big = u64::from(MAX_PAYLOAD) + 1;
        assert_eq!(
            rej(req(cmd::WRITE, pl, 0, big)),
            (errno::EINVAL, big as u32)
        );
        assert_eq!(rej(req(cmd::READ, 0, 0, big)), (errno::EINVAL, 0));
        assert_eq!(rej(req(cmd::READ, 0, 0, 1 << 33)), (errno::EINVAL, 0));
        // Effect lengths over 4 GiB for commands without payload.
        let five = 5u64 << 30;
        assert_eq!(
            validate(&req(cmd::TRIM, 0, 4096, five), &p),
            Verdict::Run(Command::Trim {
                offset: 4096,
                len: five,
                fua: false
            })
        );
        assert!(matches!(
            validate(&req(cmd::WRITE_ZEROES, cflag::NO_HOLE, 0, five), &p),
            Verdict::Run(Command::WriteZeroes { len, no_hole: true, .. }) if len == five
        ));
        assert!(matches!(
            validate(&req(cmd::BLOCK_STATUS, cflag::REQ_ONE, 0, 16 << 30), &p),
            Verdict::Run(Command::BlockStatus { len, req_one: true, .. }) if len == 16 << 30
        ));
        assert!(matches!(
            validate(&req(cmd::CACHE, 0, 0, five), &p),
            Verdict::Run(Command::Cache { len, .. }) if len == five
        ));
        // Beyond the end, and offset + length overflowing.
        assert_eq!(rej(req(cmd::TRIM, 0, 1, 16 << 30)), (errno::EINVAL, 0));
        assert_eq!(
            rej(req(cmd::WRITE_ZEROES, 0, 1, 16 << 30)),
            (errno::ENOSPC, 0)
        );
        assert_eq!(
            rej(req(cmd::BLOCK_STATUS, 0, 1, u64::MAX)),
            (errno::EINVAL, 0)
        );
        assert_eq!(rej(req(cmd::TRIM, 0, 0, 0)), (errno::EINVAL, 0));
        // Flush with a length; DF stays valid; unknown flag.
        assert_eq!(rej(req(cmd::FLUSH, 0, 0, 1)), (errno::EINVAL, 0));
        assert!(matches!(
            validate(&req(cmd::READ, cflag::DF, 0, 4096), &p),
            Verdict::Run(Command::Read { df: true, .. })
        ));
        assert_eq!(rej(req(cmd::TRIM, 0x4000, 0, 4096)), (errno::EINVAL, 0));
        // PAYLOAD_LEN is a bad flag in compact mode (and WRITE's length is
        // its payload there, whatever the flags).
        let c = params();
        assert!(matches!(
            validate(&req(cmd::WRITE, pl, 0, 9), &c),
            Verdict::Reject {
                errno: errno::EINVAL,
                drain: 9,
                ..
            }
        ));
        assert!(matches!(
            validate(&req(cmd::TRIM, pl, 0, 9), &c),
            Verdict::Reject { drain: 0, .. }
        ));
        assert_eq!(p.reply_mode(), ReplyMode::Extended);
        assert_eq!(c.reply_mode(), ReplyMode::Structured);
        assert_eq!(p.transmission_flags(), c.transmission_flags());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(option in 0u32..16, data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                        hdr in proptest::collection::vec(proptest::prelude::any::<u8>(), 32)) {
            let _ = parse_option(option, &data);
            for extended in [false, true] {
                let mut h2 = hdr.clone();
                let magic = if extended { EXTENDED_REQUEST_MAGIC } else { REQUEST_MAGIC };
                h2[..4].copy_from_slice(&magic.to_be_bytes());
                for b in [&hdr, &h2] {
                    if let Some(r) = parse_header(b, extended) {
                        for p in [params(), ext_params()] {
                            let _ = validate(&r, &ExportParams { extended, ..p });
                        }
                    }
                }
            }
        }
    }
}
