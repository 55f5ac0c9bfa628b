//! The codec driven by a whole client byte stream, the way a session
//! decodes it: client flags, option haggling until GO or EXPORT_NAME
//! (EXTENDED_HEADERS switching to 32-byte requests, as the server ACKs it),
//! then request headers (and payloads) validated against the export and
//! their replies encoded. Used by the cargo-fuzz target `nbd_stream` and by
//! the test that replays the fuzz seeds and regressions. Must never panic,
//! whatever the bytes.

use crate::codec::{
    parse_header, parse_option, parse_option_header, query_matches_base_allocation, request_len,
    validate, ClientOption, Command, ExportParams, ReplyTo, Verdict, MAX_OPTION_LEN,
    OPTION_HEADER_LEN,
};

fn take<'a>(p: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if p.len() < n {
        return None;
    }
    let (a, b) = p.split_at(n);
    *p = b;
    Some(a)
}

/// Decodes `data` as a client's stream; returns how many requests were
/// decoded (for tests: a recorded session decodes all of its requests).
pub fn client_stream(data: &[u8]) -> usize {
    client_stream_mode(data).0
}

/// Like [`client_stream`], also telling whether the stream negotiated
/// extended headers.
pub fn client_stream_mode(data: &[u8]) -> (usize, bool) {
    let mut n = 0;
    let mut extended = false;
    let _ = run(data, &mut n, &mut extended);
    (n, extended)
}

fn run(mut p: &[u8], n: &mut usize, extended: &mut bool) -> Option<()> {
    take(&mut p, 4)?; // client flags
    let mut params = ExportParams {
        size: 1 << 30,
        read_only: false,
        structured: false,
        extended: false,
        base_allocation: false,
    };
    loop {
        let h = take(&mut p, OPTION_HEADER_LEN)?;
        let h = parse_option_header(h.try_into().ok()?)?;
        if h.length > MAX_OPTION_LEN {
            return None;
        }
        let data = take(&mut p, h.length as usize)?;
        match parse_option(h.option, data) {
            // The server closes on EXPORT_NAME after extended headers.
            Ok(ClientOption::ExportName(_)) if params.extended => return None,
            Ok(ClientOption::Go(_)) | Ok(ClientOption::ExportName(_)) => break,
            Ok(ClientOption::Abort) => return None,
            // Refused (ERR_EXT_HEADER_REQD) once extended.
            Ok(ClientOption::StructuredReply) => params.structured = true,
            Ok(ClientOption::ExtendedHeaders) => {
                params.extended = true;
                params.structured = true;
            }
            Ok(ClientOption::SetMetaContext(m)) => {
                params.base_allocation = m.queries.iter().any(|q| query_matches_base_allocation(q));
            }
            Ok(ClientOption::Info(i)) => params.read_only = i.items.len() % 2 == 1,
            _ => {}
        }
    }
    *extended = params.extended;
    let len = request_len(params.extended);
    let mode = params.reply_mode();
    loop {
        let r = parse_header(take(&mut p, len)?, params.extended)?;
        *n += 1;
        let to = ReplyTo::new(mode, r.cookie, r.offset);
        match validate(&r, &params) {
            Verdict::Run(Command::Write { len, .. }) => {
                take(&mut p, len as usize)?;
                let _ = to.ok();
            }
            Verdict::Run(Command::Disconnect) | Verdict::Disconnect(_) => return None,
            Verdict::Reject {
                drain,
                errno,
                reason,
            } => {
                take(&mut p, drain as usize)?;
                let _ = to.error(r.command == 0, errno, reason);
            }
            Verdict::Run(Command::BlockStatus { len, .. }) => {
                // The reply shape for the whole range, as one extent.
                let mut b = Vec::new();
                to.block_status(&mut b, &[(len, 0)]);
            }
            Verdict::Run(_) => {
                let _ = to.ok();
            }
        }
    }
}
