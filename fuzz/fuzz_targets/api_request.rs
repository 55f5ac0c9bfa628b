//! Fuzzes the REST API's request handling, every dialect: an input is an
//! HTTP request as text (`METHOD PATH?QUERY`, header lines, a blank line,
//! the body), dispatched to a real store on a temporary directory with one
//! tenant. JSON, XML, form and multipart bodies, paths, queries and headers
//! all come from the fuzzer; the handler must answer, never panic.
#![no_main]

use api::{ApiState, Auth};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const AUTH: &str = r#"
[[tenants]]
id = "demo"
token = "demo-token-0123456789abcdef"
user = "demo"
password = "demo-password"
[tenants.quota]
gigabytes = 64
volumes = 16
snapshots = 16
"#;

fn state() -> &'static ApiState {
    static STATE: OnceLock<(tempfile::TempDir, ApiState)> = OnceLock::new();
    let (_, s) = STATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = engine::Store::open(dir.path().join("data"), engine::StoreOptions::default())
            .expect("store");
        let auth = Auth::parse(AUTH).expect("auth");
        let state = ApiState::new(store, auth);
        (dir, state)
    });
    s
}

fuzz_target!(|data: &[u8]| {
    if let Some(req) = api::fuzzing::request(data) {
        let _ = api::dispatch(state(), &req);
    }
});
