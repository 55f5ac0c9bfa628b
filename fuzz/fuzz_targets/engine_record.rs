//! Fuzzes the engine's log-record decoders (`engine::fuzzing::record`):
//! the header, and every body decoder (write, catalogue, checkpoint blob).
//! Seeds are records cut from a real store by the `seeds` binary.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    engine::fuzzing::record(data);
});
