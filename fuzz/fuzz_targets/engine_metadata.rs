//! Fuzzes the engine's metadata decoders (`engine::fuzzing::metadata`):
//! superblock slots, map-node pages and chunk-table pages. Seeds are cut
//! from a real store by the `seeds` binary.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    engine::fuzzing::metadata(data);
});
