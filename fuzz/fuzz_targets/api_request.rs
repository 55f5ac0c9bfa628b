//! Fuzzes the REST API's request handling, every dialect: an input is an
//! HTTP request as text (`METHOD PATH?QUERY`, header lines, a blank line,
//! the body), dispatched to a real store on a temporary directory with one
//! tenant (`api::fuzzing::state`, as the seed-replay test does). JSON, XML,
//! form and multipart bodies, paths, queries and headers all come from the
//! fuzzer; the handler must answer, never panic.
#![no_main]

use api::ApiState;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn state() -> &'static ApiState {
    static STATE: OnceLock<(tempfile::TempDir, ApiState)> = OnceLock::new();
    let (_, s) = STATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = api::fuzzing::state(&dir.path().join("data")).expect("api state");
        (dir, state)
    });
    s
}

fuzz_target!(|data: &[u8]| {
    if let Some(req) = api::fuzzing::request(data) {
        let _ = api::dispatch(state(), &req);
    }
});
