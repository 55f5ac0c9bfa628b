//! The NBD wire format, pure: constants, option parsing, request header
//! parsing and validation, and reply encoders. No I/O happens here: bytes in,
//! values or encoded frames out, so every function can be unit-tested and
//! fuzzed in isolation.
//!
//! Layouts follow the NBD protocol specification (`doc/proto.md`), fixed
//! newstyle negotiation and simple or structured replies (extended headers
//! are not offered).

/// `NBDMAGIC`, first word of the server's greeting.
pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`, second word of the greeting and magic of every client option.
pub const IHAVEOPT: u64 = 0x4948_4156_454F_5054;
/// Magic of option replies.
pub const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// Magic of a (compact) request.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// Magic of a simple reply.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// Magic of a structured reply chunk.
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

/// Handshake flags the server sends.
pub const FLAG_FIXED_NEWSTYLE: u16 = 1;
/// The server may omit the 124 zero bytes after OPT_EXPORT_NAME.
pub const FLAG_NO_ZEROES: u16 = 2;
/// Client flag: fixed newstyle.
pub const C_FIXED_NEWSTYLE: u32 = 1;
/// Client flag: no zeroes.
pub const C_NO_ZEROES: u32 = 2;

/// Option numbers.
pub mod opt {
    /// Select an export, old style (no reply on error: disconnect).
    pub const EXPORT_NAME: u32 = 1;
    /// End negotiation.
    pub const ABORT: u32 = 2;
    /// List exports.
    pub const LIST: u32 = 3;
    /// TLS upgrade (not offered).
    pub const STARTTLS: u32 = 5;
    /// Describe an export.
    pub const INFO: u32 = 6;
    /// Describe and select an export.
    pub const GO: u32 = 7;
    /// Turn on structured replies.
    pub const STRUCTURED_REPLY: u32 = 8;
    /// List metadata contexts.
    pub const LIST_META_CONTEXT: u32 = 9;
    /// Select metadata contexts.
    pub const SET_META_CONTEXT: u32 = 10;
    /// 64-bit headers (not offered).
    pub const EXTENDED_HEADERS: u32 = 11;
}

/// Option reply types.
pub mod rep {
    /// Done.
    pub const ACK: u32 = 1;
    /// One export of a LIST.
    pub const SERVER: u32 = 2;
    /// One info item of INFO/GO.
    pub const INFO: u32 = 3;
    /// One metadata context.
    pub const META_CONTEXT: u32 = 4;
    const ERR: u32 = 1 << 31;
    /// Option not supported.
    pub const ERR_UNSUP: u32 = ERR + 1;
    /// Refused by policy.
    pub const ERR_POLICY: u32 = ERR + 2;
    /// Malformed option.
    pub const ERR_INVALID: u32 = ERR + 3;
    /// No such export.
    pub const ERR_UNKNOWN: u32 = ERR + 6;
    /// Server shutting down.
    pub const ERR_SHUTDOWN: u32 = ERR + 7;
    /// Request too big.
    pub const ERR_TOO_BIG: u32 = ERR + 9;
}

/// INFO item types.
pub mod info {
    /// Size and transmission flags.
    pub const EXPORT: u16 = 0;
    /// Canonical name.
    pub const NAME: u16 = 1;
    /// Human description.
    pub const DESCRIPTION: u16 = 2;
    /// Block size constraints.
    pub const BLOCK_SIZE: u16 = 3;
}

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
}

/// Structured reply chunk types and flags.
pub mod chunk {
    /// Last chunk of a reply.
    pub const FLAG_DONE: u16 = 1;
    /// No payload.
    pub const NONE: u16 = 0;
    /// Data at an offset.
    pub const OFFSET_DATA: u16 = 1;
    /// A hole at an offset.
    pub const OFFSET_HOLE: u16 = 2;
    /// Block status descriptors.
    pub const BLOCK_STATUS: u16 = 5;
    /// An error for the whole request.
    pub const ERROR: u16 = (1 << 15) + 1;
    /// An error at an offset.
    pub const ERROR_OFFSET: u16 = (1 << 15) + 2;
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

/// Longest option payload read; longer ones are refused and the client
/// disconnected (draining gigabytes is not worth it).
pub const MAX_OPTION_LEN: u32 = 64 * 1024;
/// Longest export name or metadata query, as the spec allows.
pub const MAX_STRING: usize = 4096;
/// Minimum block size advertised: any byte alignment works.
pub const MIN_BLOCK: u32 = 1;
/// Preferred block size.
pub const PREF_BLOCK: u32 = 4096;
/// Largest READ/WRITE payload.
pub const MAX_PAYLOAD: u32 = 32 << 20;
/// WRITE payloads up to this size are drained when refused; larger ones
/// disconnect the client.
pub const MAX_DRAIN: u32 = 64 << 20;
/// Most metadata queries accepted in one option.
pub const MAX_QUERIES: u32 = 128;

/// Length of a client option header.
pub const OPTION_HEADER_LEN: usize = 16;
/// Length of a request header.
pub const REQUEST_LEN: usize = 28;
/// Length of a simple reply header.
pub const SIMPLE_REPLY_LEN: usize = 16;
/// Length of a structured chunk header.
pub const CHUNK_HEADER_LEN: usize = 20;

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
}

/// The server's greeting (fixed newstyle, no zeroes).
pub fn greeting() -> [u8; 18] {
    let mut b = [0u8; 18];
    b[..8].copy_from_slice(&NBDMAGIC.to_be_bytes());
    b[8..16].copy_from_slice(&IHAVEOPT.to_be_bytes());
    b[16..].copy_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    b
}

/// A client option header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionHeader {
    /// Option number.
    pub option: u32,
    /// Payload length.
    pub length: u32,
}

/// Parses an option header; `None` for a bad magic (disconnect).
pub fn parse_option_header(b: &[u8; OPTION_HEADER_LEN]) -> Option<OptionHeader> {
    if be64(b) != IHAVEOPT {
        return None;
    }
    Some(OptionHeader {
        option: be32(&b[8..]),
        length: be32(&b[12..]),
    })
}

/// The payload of OPT_INFO / OPT_GO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoRequest {
    /// Export name.
    pub name: String,
    /// Info items asked for.
    pub items: Vec<u16>,
}

/// The payload of OPT_LIST_META_CONTEXT / OPT_SET_META_CONTEXT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRequest {
    /// Export name.
    pub name: String,
    /// Queries.
    pub queries: Vec<String>,
}

/// A parsed client option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOption {
    /// OPT_EXPORT_NAME.
    ExportName(String),
    /// OPT_ABORT.
    Abort,
    /// OPT_LIST.
    List,
    /// OPT_INFO.
    Info(InfoRequest),
    /// OPT_GO.
    Go(InfoRequest),
    /// OPT_STRUCTURED_REPLY.
    StructuredReply,
    /// OPT_LIST_META_CONTEXT.
    ListMetaContext(MetaRequest),
    /// OPT_SET_META_CONTEXT.
    SetMetaContext(MetaRequest),
    /// Anything else (including STARTTLS and EXTENDED_HEADERS): ERR_UNSUP.
    Unsupported(u32),
}

/// Why an option payload was refused: the reply type and a short message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionError {
    /// `rep::ERR_*`.
    pub reply: u32,
    /// Short message for the reply payload.
    pub message: &'static str,
}

fn invalid(message: &'static str) -> OptionError {
    OptionError {
        reply: rep::ERR_INVALID,
        message,
    }
}

fn string(b: &[u8], what: &'static str) -> Result<String, OptionError> {
    if b.len() > MAX_STRING {
        return Err(OptionError {
            reply: rep::ERR_TOO_BIG,
            message: what,
        });
    }
    String::from_utf8(b.to_vec()).map_err(|_| invalid("string is not UTF-8"))
}

/// Reads a u32-length-prefixed string at `*pos`.
fn prefixed(data: &[u8], pos: &mut usize, what: &'static str) -> Result<String, OptionError> {
    if data.len() < *pos + 4 {
        return Err(invalid("option too short"));
    }
    let n = be32(&data[*pos..]) as usize;
    *pos += 4;
    if n > data.len() - *pos {
        return Err(invalid("string overruns the option"));
    }
    let s = string(&data[*pos..*pos + n], what)?;
    *pos += n;
    Ok(s)
}

/// Parses an option's payload (already read whole).
pub fn parse_option(option: u32, data: &[u8]) -> Result<ClientOption, OptionError> {
    let empty = |o: ClientOption| {
        if data.is_empty() {
            Ok(o)
        } else {
            Err(invalid("option takes no data"))
        }
    };
    match option {
        opt::EXPORT_NAME => Ok(ClientOption::ExportName(string(data, "name too long")?)),
        opt::ABORT => Ok(ClientOption::Abort),
        opt::LIST => empty(ClientOption::List),
        opt::STRUCTURED_REPLY => empty(ClientOption::StructuredReply),
        opt::INFO | opt::GO => {
            let mut pos = 0;
            let name = prefixed(data, &mut pos, "name too long")?;
            if data.len() < pos + 2 {
                return Err(invalid("option too short"));
            }
            let n = be16(&data[pos..]) as usize;
            pos += 2;
            if data.len() - pos != 2 * n {
                return Err(invalid("info request count mismatch"));
            }
            let items = data[pos..].chunks(2).map(be16).collect();
            let r = InfoRequest { name, items };
            Ok(if option == opt::GO {
                ClientOption::Go(r)
            } else {
                ClientOption::Info(r)
            })
        }
        opt::LIST_META_CONTEXT | opt::SET_META_CONTEXT => {
            let mut pos = 0;
            let name = prefixed(data, &mut pos, "name too long")?;
            if data.len() < pos + 4 {
                return Err(invalid("option too short"));
            }
            let n = be32(&data[pos..]);
            pos += 4;
            if n > MAX_QUERIES {
                return Err(OptionError {
                    reply: rep::ERR_TOO_BIG,
                    message: "too many queries",
                });
            }
            let mut queries = Vec::with_capacity(n as usize);
            for _ in 0..n {
                queries.push(prefixed(data, &mut pos, "query too long")?);
            }
            if pos != data.len() {
                return Err(invalid("trailing data"));
            }
            let r = MetaRequest { name, queries };
            Ok(if option == opt::SET_META_CONTEXT {
                ClientOption::SetMetaContext(r)
            } else {
                ClientOption::ListMetaContext(r)
            })
        }
        other => Ok(ClientOption::Unsupported(other)),
    }
}

/// Encodes one option reply.
pub fn option_reply(out: &mut Vec<u8>, option: u32, reply: u32, data: &[u8]) {
    out.extend_from_slice(&OPT_REPLY_MAGIC.to_be_bytes());
    out.extend_from_slice(&option.to_be_bytes());
    out.extend_from_slice(&reply.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// Payload of a LIST reply entry.
pub fn server_entry(name: &str, description: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + name.len() + description.len());
    b.extend_from_slice(&(name.len() as u32).to_be_bytes());
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(description.as_bytes());
    b
}

/// Payload of INFO_EXPORT.
pub fn info_export(size: u64, flags: u16) -> Vec<u8> {
    let mut b = Vec::with_capacity(12);
    b.extend_from_slice(&info::EXPORT.to_be_bytes());
    b.extend_from_slice(&size.to_be_bytes());
    b.extend_from_slice(&flags.to_be_bytes());
    b
}

/// Payload of INFO_NAME or INFO_DESCRIPTION.
pub fn info_string(kind: u16, s: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(2 + s.len());
    b.extend_from_slice(&kind.to_be_bytes());
    b.extend_from_slice(s.as_bytes());
    b
}

/// Payload of INFO_BLOCK_SIZE.
pub fn info_block_size() -> Vec<u8> {
    let mut b = Vec::with_capacity(14);
    b.extend_from_slice(&info::BLOCK_SIZE.to_be_bytes());
    b.extend_from_slice(&MIN_BLOCK.to_be_bytes());
    b.extend_from_slice(&PREF_BLOCK.to_be_bytes());
    b.extend_from_slice(&MAX_PAYLOAD.to_be_bytes());
    b
}

/// Payload of a META_CONTEXT reply.
pub fn meta_context(id: u32, name: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + name.len());
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(name.as_bytes());
    b
}

/// Whether a metadata query selects `base:allocation`.
pub fn query_matches_base_allocation(q: &str) -> bool {
    q == BASE_ALLOCATION || q == "base:" || q == "base"
}

/// The reply to OPT_EXPORT_NAME: size and flags (zero padding omitted when
/// the client set NO_ZEROES).
pub fn export_name_reply(size: u64, flags: u16, no_zeroes: bool) -> Vec<u8> {
    let mut b = Vec::with_capacity(134);
    b.extend_from_slice(&size.to_be_bytes());
    b.extend_from_slice(&flags.to_be_bytes());
    if !no_zeroes {
        b.extend_from_slice(&[0u8; 124]);
    }
    b
}

/// A request header.
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
    /// Length (payload length for WRITE).
    pub length: u32,
}

/// Parses a request header; `None` for a bad magic (disconnect).
pub fn parse_request(b: &[u8; REQUEST_LEN]) -> Option<RequestHeader> {
    if be32(b) != REQUEST_MAGIC {
        return None;
    }
    Some(RequestHeader {
        flags: be16(&b[4..]),
        command: be16(&b[6..]),
        cookie: be64(&b[8..]),
        offset: be64(&b[16..]),
        length: be32(&b[24..]),
    })
}

/// Encodes a request header (for clients and tests).
pub fn encode_request(r: &RequestHeader) -> [u8; REQUEST_LEN] {
    let mut b = [0u8; REQUEST_LEN];
    b[..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
    b[4..6].copy_from_slice(&r.flags.to_be_bytes());
    b[6..8].copy_from_slice(&r.command.to_be_bytes());
    b[8..16].copy_from_slice(&r.cookie.to_be_bytes());
    b[16..24].copy_from_slice(&r.offset.to_be_bytes());
    b[24..28].copy_from_slice(&r.length.to_be_bytes());
    b
}

/// What the session knows about the export when validating requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportParams {
    /// Size in bytes.
    pub size: u64,
    /// Writes refused.
    pub read_only: bool,
    /// Structured replies negotiated.
    pub structured: bool,
    /// base:allocation selected.
    pub base_allocation: bool,
}

impl ExportParams {
    /// Transmission flags advertised for this export.
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
}

/// A validated command.
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
        len: u32,
        /// Force unit access.
        fua: bool,
    },
    /// Prefetch.
    Cache {
        /// Offset.
        offset: u64,
        /// Length.
        len: u32,
    },
    /// Write zeroes.
    WriteZeroes {
        /// Offset.
        offset: u64,
        /// Length.
        len: u32,
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
        len: u32,
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

/// Validates a request header against the export.
pub fn validate(r: &RequestHeader, p: &ExportParams) -> Verdict {
    let payload = if r.command == cmd::WRITE { r.length } else { 0 };
    let reject = |errno, reason| Verdict::Reject {
        errno,
        drain: payload,
        reason,
    };
    if payload > MAX_DRAIN {
        return Verdict::Disconnect("write payload too large to drain");
    }
    let allowed: u16 = match r.command {
        cmd::READ => {
            if p.structured {
                cflag::DF
            } else {
                0
            }
        }
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
    if matches!(r.command, cmd::READ | cmd::WRITE) && r.length > MAX_PAYLOAD {
        return reject(errno::EINVAL, "request exceeds maximum block size");
    }
    let end = r.offset.checked_add(u64::from(r.length));
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
            len,
            df: r.flags & cflag::DF != 0,
        },
        cmd::WRITE => Command::Write { offset, len, fua },
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

/// A simple reply header.
pub fn simple_reply(cookie: u64, error: u32) -> [u8; SIMPLE_REPLY_LEN] {
    let mut b = [0u8; SIMPLE_REPLY_LEN];
    b[..4].copy_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
    b[4..8].copy_from_slice(&error.to_be_bytes());
    b[8..].copy_from_slice(&cookie.to_be_bytes());
    b
}

/// Writes a structured chunk header into `out[..20]`.
pub fn chunk_header_into(out: &mut [u8], flags: u16, ty: u16, cookie: u64, len: u32) {
    out[..4].copy_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
    out[4..6].copy_from_slice(&flags.to_be_bytes());
    out[6..8].copy_from_slice(&ty.to_be_bytes());
    out[8..16].copy_from_slice(&cookie.to_be_bytes());
    out[16..20].copy_from_slice(&len.to_be_bytes());
}

/// Appends a structured chunk header.
pub fn chunk_header(out: &mut Vec<u8>, flags: u16, ty: u16, cookie: u64, len: u32) {
    let at = out.len();
    out.resize(at + CHUNK_HEADER_LEN, 0);
    chunk_header_into(&mut out[at..], flags, ty, cookie, len);
}

/// Bytes in front of OFFSET_DATA payload: chunk header and offset.
pub const DATA_PREFIX: usize = CHUNK_HEADER_LEN + 8;

/// Fills the [`DATA_PREFIX`] bytes in front of `data_len` bytes of
/// OFFSET_DATA.
pub fn offset_data_prefix(out: &mut [u8], done: bool, cookie: u64, offset: u64, data_len: u32) {
    let flags = if done { chunk::FLAG_DONE } else { 0 };
    chunk_header_into(out, flags, chunk::OFFSET_DATA, cookie, 8 + data_len);
    out[CHUNK_HEADER_LEN..DATA_PREFIX].copy_from_slice(&offset.to_be_bytes());
}

/// Appends an OFFSET_HOLE chunk.
pub fn offset_hole(out: &mut Vec<u8>, done: bool, cookie: u64, offset: u64, len: u32) {
    let flags = if done { chunk::FLAG_DONE } else { 0 };
    chunk_header(out, flags, chunk::OFFSET_HOLE, cookie, 12);
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
}

/// Appends a final ERROR chunk.
pub fn error_chunk(out: &mut Vec<u8>, cookie: u64, error: u32, message: &str) {
    let msg = &message.as_bytes()[..message.len().min(512)];
    chunk_header(
        out,
        chunk::FLAG_DONE,
        chunk::ERROR,
        cookie,
        6 + msg.len() as u32,
    );
    out.extend_from_slice(&error.to_be_bytes());
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
}

/// Appends a final NONE chunk (a structured reply with no payload).
pub fn none_chunk(out: &mut Vec<u8>, cookie: u64) {
    chunk_header(out, chunk::FLAG_DONE, chunk::NONE, cookie, 0);
}

/// Appends a final BLOCK_STATUS chunk of `(length, flags)` descriptors.
pub fn block_status_chunk(out: &mut Vec<u8>, cookie: u64, extents: &[(u32, u32)]) {
    chunk_header(
        out,
        chunk::FLAG_DONE,
        chunk::BLOCK_STATUS,
        cookie,
        4 + 8 * extents.len() as u32,
    );
    out.extend_from_slice(&BASE_ALLOCATION_ID.to_be_bytes());
    for (len, flags) in extents {
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&flags.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ExportParams {
        ExportParams {
            size: 1 << 20,
            read_only: false,
            structured: true,
            base_allocation: true,
        }
    }

    fn req(command: u16, flags: u16, offset: u64, length: u32) -> RequestHeader {
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
        assert_eq!(parse_request(&encode_request(&r)), Some(r));
        let mut b = encode_request(&r);
        b[0] ^= 1;
        assert_eq!(parse_request(&b), None);
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
            rej(req(cmd::WRITE, 0, 0, MAX_PAYLOAD + 1)),
            (errno::EINVAL, MAX_PAYLOAD + 1)
        );
        assert!(matches!(
            validate(&req(cmd::WRITE, 0, 0, u32::MAX), &p),
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
    fn options_parse() {
        let mut go = Vec::new();
        go.extend_from_slice(&3u32.to_be_bytes());
        go.extend_from_slice(b"vol");
        go.extend_from_slice(&1u16.to_be_bytes());
        go.extend_from_slice(&info::BLOCK_SIZE.to_be_bytes());
        assert_eq!(
            parse_option(opt::GO, &go),
            Ok(ClientOption::Go(InfoRequest {
                name: "vol".into(),
                items: vec![info::BLOCK_SIZE]
            }))
        );
        // Name overrunning the option.
        let mut bad = go.clone();
        bad[3] = 200;
        assert_eq!(
            parse_option(opt::GO, &bad).unwrap_err().reply,
            rep::ERR_INVALID
        );
        assert_eq!(
            parse_option(opt::GO, &go[..go.len() - 1])
                .unwrap_err()
                .reply,
            rep::ERR_INVALID
        );
        assert_eq!(
            parse_option(opt::LIST, b"x").unwrap_err().reply,
            rep::ERR_INVALID
        );
        assert_eq!(parse_option(opt::LIST, b""), Ok(ClientOption::List));
        assert_eq!(
            parse_option(1234, b"abc"),
            Ok(ClientOption::Unsupported(1234))
        );
        let long = vec![b'a'; MAX_STRING + 1];
        assert_eq!(
            parse_option(opt::EXPORT_NAME, &long).unwrap_err().reply,
            rep::ERR_TOO_BIG
        );
        assert!(parse_option(opt::EXPORT_NAME, &long[1..]).is_ok());
        let mut meta = Vec::new();
        meta.extend_from_slice(&0u32.to_be_bytes());
        meta.extend_from_slice(&1u32.to_be_bytes());
        meta.extend_from_slice(&15u32.to_be_bytes());
        meta.extend_from_slice(BASE_ALLOCATION.as_bytes());
        assert_eq!(
            parse_option(opt::SET_META_CONTEXT, &meta),
            Ok(ClientOption::SetMetaContext(MetaRequest {
                name: String::new(),
                queries: vec![BASE_ALLOCATION.into()]
            }))
        );
        meta.push(0);
        assert!(parse_option(opt::SET_META_CONTEXT, &meta).is_err());
    }

    #[test]
    fn encoders() {
        let mut b = Vec::new();
        offset_hole(&mut b, true, 9, 4096, 512);
        assert_eq!(b.len(), 32);
        assert_eq!(be32(&b), STRUCTURED_REPLY_MAGIC);
        assert_eq!(be16(&b[4..]), chunk::FLAG_DONE);
        assert_eq!(be16(&b[6..]), chunk::OFFSET_HOLE);
        assert_eq!(be64(&b[8..]), 9);
        assert_eq!(be32(&b[16..]), 12);
        let mut b = Vec::new();
        block_status_chunk(&mut b, 1, &[(4096, alloc::HOLE | alloc::ZERO)]);
        assert_eq!(b.len(), 20 + 12);
        let g = greeting();
        assert_eq!(be64(&g), NBDMAGIC);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(option in 0u32..16, data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                        hdr in proptest::collection::vec(proptest::prelude::any::<u8>(), 28)) {
            let _ = parse_option(option, &data);
            let h: [u8; 28] = hdr.try_into().unwrap();
            let mut h2 = h;
            h2[..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
            for b in [h, h2] {
                if let Some(r) = parse_request(&b) {
                    let _ = validate(&r, &params());
                }
            }
        }
    }
}
