//! The option-haggling half of the NBD wire format, pure: the greeting,
//! client option headers and payloads (parsed into [`ClientOption`]), and
//! the encoders of option replies and INFO items. No I/O happens here.
//! Re-exported by [`crate::codec`], which holds the transmission half.

use crate::codec::{be16, be32, be64, BASE_ALLOCATION, MAX_PAYLOAD};

/// `NBDMAGIC`, first word of the server's greeting.
pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`, second word of the greeting and magic of every client option.
pub const IHAVEOPT: u64 = 0x4948_4156_454F_5054;
/// Magic of option replies.
pub const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;

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
    /// TLS upgrade.
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
    /// Extended (32-byte, 64-bit length) request and reply headers.
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
    /// Refused until the client upgrades to TLS.
    pub const ERR_TLS_REQD: u32 = ERR + 5;
    /// No such export.
    pub const ERR_UNKNOWN: u32 = ERR + 6;
    /// Server shutting down.
    pub const ERR_SHUTDOWN: u32 = ERR + 7;
    /// Request too big.
    pub const ERR_TOO_BIG: u32 = ERR + 9;
    /// Needs extended headers; also refuses STRUCTURED_REPLY once extended
    /// headers are negotiated (no downgrade).
    pub const ERR_EXT_HEADER_REQD: u32 = ERR + 10;
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

/// Longest option payload read; longer ones are refused and the client
/// disconnected (draining gigabytes is not worth it).
pub const MAX_OPTION_LEN: u32 = 64 * 1024;
/// Longest export name or metadata query, as the spec allows.
pub const MAX_STRING: usize = 4096;
/// Minimum block size advertised: any byte alignment works.
pub const MIN_BLOCK: u32 = 1;
/// Preferred block size.
pub const PREF_BLOCK: u32 = 4096;
/// Most metadata queries accepted in one option.
pub const MAX_QUERIES: u32 = 128;
/// Length of a client option header.
pub const OPTION_HEADER_LEN: usize = 16;

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
    /// OPT_EXTENDED_HEADERS.
    ExtendedHeaders,
    /// OPT_STARTTLS.
    StartTls,
    /// Anything else: ERR_UNSUP.
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
        opt::EXTENDED_HEADERS => empty(ClientOption::ExtendedHeaders),
        opt::STARTTLS => empty(ClientOption::StartTls),
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // EXTENDED_HEADERS takes no data.
        assert_eq!(
            parse_option(opt::EXTENDED_HEADERS, b""),
            Ok(ClientOption::ExtendedHeaders)
        );
        assert_eq!(
            parse_option(opt::EXTENDED_HEADERS, b"\0")
                .unwrap_err()
                .reply,
            rep::ERR_INVALID
        );
        assert_eq!(parse_option(opt::STARTTLS, b""), Ok(ClientOption::StartTls));
        // STARTTLS takes no data either.
        assert_eq!(
            parse_option(opt::STARTTLS, b"x").unwrap_err().reply,
            rep::ERR_INVALID
        );
    }
}
