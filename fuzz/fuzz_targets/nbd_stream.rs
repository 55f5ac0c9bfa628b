//! Fuzzes the NBD codec with a whole client byte stream, decoded the way a
//! session does (`nbd_server::fuzzing::client_stream`). Seeds are recorded
//! from real clients (qemu-io, nbdinfo, nbdcopy, nbdsh) by `scripts/fuzz.sh`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nbd_server::fuzzing::client_stream(data);
});
