//! Fuzzes the engine's log-record decoders: the record header, and every
//! body decoder (write, catalogue, checkpoint blob) fed directly, since a
//! fuzzer rarely forges a header checksum. Seeds are records cut from a
//! real store by the `seeds` binary.
#![no_main]

use engine::decode::{
    catalog_record, checkpoint_blob, decode_write, RecordHeader, RecordKind, HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(h) = RecordHeader::decode(data) {
        let body = &data[HEADER_LEN.min(data.len())..];
        if h.body_ok(body) {
            let _ = match h.kind {
                RecordKind::Write => decode_write(body).map(drop),
                RecordKind::Catalog => catalog_record(body),
                RecordKind::Checkpoint => checkpoint_blob(body),
                _ => Ok(()),
            };
        }
    }
    let _ = decode_write(data);
    let _ = catalog_record(data);
    let _ = checkpoint_blob(data);
});
