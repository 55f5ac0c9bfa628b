//! Fuzzes the NBD codec with a whole client byte stream, decoded the way a
//! session does: client flags, option haggling until GO or EXPORT_NAME,
//! then request headers (and write payloads) validated against the export.
//! Seeds are recorded from real clients (qemu-io, nbdinfo, nbdcopy, nbdsh)
//! by `scripts/fuzz.sh`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nbd_server::codec::{
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

fn run(mut p: &[u8]) -> Option<()> {
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
                params.base_allocation =
                    m.queries.iter().any(|q| query_matches_base_allocation(q));
            }
            Ok(ClientOption::Info(i)) => params.read_only = i.items.len() % 2 == 1,
            _ => {}
        }
    }
    loop {
        let h = take(&mut p, REQUEST_LEN)?;
        let r = parse_request(h.try_into().ok()?)?;
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

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
