//! The codec driven by a whole client byte stream, the way a session
//! decodes it: client flags, option haggling until GO or EXPORT_NAME, then
//! request headers (and write payloads) validated against the export. Used
//! by the cargo-fuzz target `nbd_stream` and by the test that replays the
//! fuzz seeds and regressions. Must never panic, whatever the bytes.

use crate::codec::{
    parse_option, parse_option_header, parse_request, query_matches_base_allocation, validate,
    ClientOption, Command, ExportParams, Verdict, MAX_OPTION_LEN, OPTION_HEADER_LEN, REQUEST_LEN,
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
    let mut n = 0;
    let _ = run(data, &mut n);
    n
}

fn run(mut p: &[u8], n: &mut usize) -> Option<()> {
    take(&mut p, 4)?; // client flags
    let mut params = ExportParams {
        size: 1 << 30,
        read_only: false,
        structured: false,
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
            Ok(ClientOption::Go(_)) | Ok(ClientOption::ExportName(_)) => break,
            Ok(ClientOption::Abort) => return None,
            Ok(ClientOption::StructuredReply) => params.structured = true,
            Ok(ClientOption::SetMetaContext(m)) => {
                params.base_allocation = m.queries.iter().any(|q| query_matches_base_allocation(q));
            }
            Ok(ClientOption::Info(i)) => params.read_only = i.items.len() % 2 == 1,
            _ => {}
        }
    }
    loop {
        let h = take(&mut p, REQUEST_LEN)?;
        let r = parse_request(h.try_into().ok()?)?;
        *n += 1;
        match validate(&r, &params) {
            Verdict::Run(Command::Write { len, .. }) => {
                take(&mut p, len as usize)?;
            }
            Verdict::Run(Command::Disconnect) | Verdict::Disconnect(_) => return None,
            Verdict::Reject { drain, .. } => {
                take(&mut p, drain as usize)?;
            }
            Verdict::Run(_) => {}
        }
    }
}
