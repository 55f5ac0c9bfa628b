//! Black-box tests of remote image imports' safety (Danube Cloud's
//! `POST /api/image/<name>/` against a real `blockd serve`): hosts outside
//! `--image-import-allow` are refused, so are loopback and link-local
//! addresses of allow-listed names, and redirects to either; a refused
//! source's answer never reaches the tenant (open and closed ports fail
//! alike); credentials and queries in import URLs stay out of the log.
//!
//! Allowed fetches need a server, and the only one here is on loopback:
//! those tests set the debug-build-only `BLOCKD_TEST_IMPORT_LOOPBACK`,
//! which lets loopback (and nothing else) through.

mod api_common;
mod danube_common;

use api_common::{Api, DEMO};
use danube_common::*;
use serde_json::{json, Value};
use std::net::TcpListener;

/// Imports `url` as `name`; the finished task's answer.
fn try_import(api: &Api, name: &str, url: &str) -> api_common::Resp {
    let task = import(api, DEMO, name, json!({ "manifest_url": url }));
    wait_task(api, DEMO, &task)
}

/// Asserts a FAILURE whose result is exactly `{"detail": text}`.
fn failed_with(r: &api_common::Resp, text: &str) {
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json["status"], "FAILURE", "{}", r.text);
    assert_eq!(r.json["result"], json!({ "detail": text }), "{}", r.text);
}

/// A file server holding a valid image at `/m` (and `/m/file`).
fn serving_an_image() -> FileServer {
    let fs = FileServer::start();
    let data = image_bytes();
    fs.put("/m", manifest(&data, "none", None));
    fs.put("/m/file", data);
    fs
}

/// A port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn loopback_refused_even_when_allow_listed() {
    let fs = serving_an_image();
    let port = fs.authority().rsplit(':').next().unwrap().to_string();
    let api = Api::start_args(
        &[
            "--image-import-allow",
            &format!("localhost:{port}"),
            "--image-import-allow",
            fs.authority(),
            "--image-import-allow",
            &format!("[::1]:{port}"),
        ],
        &[],
    );
    for (name, url) in [
        ("by-name", format!("http://localhost:{port}/m")),
        ("by-address", fs.url("/m")),
        ("by-v6", format!("http://[::1]:{port}/m")),
    ] {
        failed_with(&try_import(&api, name, &url), "import source refused");
    }
    assert!(
        fs.hits().is_empty(),
        "the server was reached: {:?}",
        fs.hits()
    );
}

#[test]
fn metadata_and_private_addresses_refused_even_with_the_test_escape() {
    let api = Api::start_args(
        &[
            "--image-import-allow",
            "169.254.169.254",
            "--image-import-allow",
            "10.1.2.3:8080",
        ],
        &[(TEST_LOOPBACK, "1")],
    );
    failed_with(
        &try_import(&api, "meta", "http://169.254.169.254/latest/meta-data/"),
        "import source refused",
    );
    failed_with(
        &try_import(&api, "priv", "http://10.1.2.3:8080/m"),
        "import source refused",
    );
}

#[test]
fn hosts_outside_the_allow_list_refused() {
    let fs = serving_an_image();
    // No allow-list at all: no remote import, not even from loopback with
    // the test escape on.
    let api = Api::start_args(&[], &[(TEST_LOOPBACK, "1")]);
    failed_with(
        &try_import(&api, "a", &fs.url("/m")),
        "import source refused",
    );
    failed_with(
        &try_import(&api, "b", "http://images.example.com/m"),
        "import source refused",
    );
    // Another host, or another port of a listed host.
    let api = Api::start_args(
        &["--image-import-allow", "images.example.com"],
        &[(TEST_LOOPBACK, "1")],
    );
    failed_with(
        &try_import(&api, "c", &fs.url("/m")),
        "import source refused",
    );
    failed_with(
        &try_import(&api, "d", "http://images.example.com:8080/m"),
        "import source refused",
    );
    assert!(fs.hits().is_empty(), "{:?}", fs.hits());
}

#[test]
fn redirects_checked_on_every_hop() {
    let fs = serving_an_image();
    let api = Api::start_args(
        &[
            "--image-import-allow",
            fs.authority(),
            "--image-import-allow",
            "10.1.2.3",
            "--image-import-allow",
            "169.254.169.254",
        ],
        &[(TEST_LOOPBACK, "1")],
    );
    let port = fs.authority().rsplit(':').next().unwrap().to_string();
    fs.redirect("/to-meta", "http://169.254.169.254/latest/meta-data/");
    fs.redirect("/to-private", "http://10.1.2.3/m");
    // localhost is not listed by name (127.0.0.1:PORT is).
    fs.redirect("/to-unlisted", &format!("http://localhost:{port}/m"));
    for (name, path) in [
        ("r1", "/to-meta"),
        ("r2", "/to-private"),
        ("r3", "/to-unlisted"),
    ] {
        failed_with(
            &try_import(&api, name, &fs.url(path)),
            "import source refused",
        );
    }
    // A redirect loop ends, generically.
    fs.redirect("/loop", &fs.url("/loop"));
    failed_with(&try_import(&api, "r4", &fs.url("/loop")), "import failed");
    // An allowed redirect (relative, then absolute) is followed (the file
    // URL defaults to the first one's + "/file").
    fs.redirect("/hop1", "/hop2");
    fs.redirect("/hop2", &fs.url("/m"));
    fs.put("/hop1/file", image_bytes());
    let img = ok(&try_import(&api, "redirected", &fs.url("/hop1")));
    assert_eq!(img["name"], "redirected");
    assert_eq!(img["size"], 1, "MB");
}

#[test]
fn answers_of_a_source_never_reach_the_tenant() {
    let fs = serving_an_image();
    fs.put_status("/forbidden", 403, b"secret internal page".to_vec());
    let closed = closed_port();
    let open_port = fs.authority().rsplit(':').next().unwrap().to_string();
    // Refused (loopback, no test escape): an open and a closed port answer
    // the same.
    let api = Api::start_args(
        &[
            "--image-import-allow",
            fs.authority(),
            "--image-import-allow",
            &format!("127.0.0.1:{closed}"),
        ],
        &[],
    );
    let open_r = try_import(&api, "o", &fs.url("/m"));
    let closed_r = try_import(&api, "c", &format!("http://127.0.0.1:{closed}/m"));
    failed_with(&open_r, "import source refused");
    assert_eq!(open_r.json["result"], closed_r.json["result"]);
    assert!(fs.hits().is_empty(), "{:?}", fs.hits());
    // Allowed (test escape): a 404, a 403 with a body and a closed port all
    // say "import failed", nothing more.
    let api = Api::start_args(
        &[
            "--image-import-allow",
            fs.authority(),
            "--image-import-allow",
            &format!("127.0.0.1:{closed}"),
        ],
        &[(TEST_LOOPBACK, "1")],
    );
    let results: Vec<Value> = [
        fs.url("/missing"),
        fs.url("/forbidden"),
        format!("http://127.0.0.1:{closed}/m"),
    ]
    .iter()
    .enumerate()
    .map(|(i, url)| {
        let r = try_import(&api, &format!("f{i}"), url);
        failed_with(&r, "import failed");
        r.json["result"].clone()
    })
    .collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
    assert_ne!(open_port, closed.to_string());
}

#[test]
fn credentials_and_queries_stay_out_of_the_log() {
    let fs = serving_an_image();
    let api = api_importing_from(&fs);
    let with_secrets = |path: &str| {
        fs.url(path)
            .replacen("http://", "http://importer:Pa55wordXYZ@", 1)
            + "?token=T0kenQRS"
    };
    // One that works (the file URL is given: the default one would carry
    // the query), one that fails, one refused.
    let task = import(
        &api,
        DEMO,
        "creds",
        json!({"manifest_url": with_secrets("/m"), "file_url": with_secrets("/m/file")}),
    );
    ok(&wait_task(&api, DEMO, &task));
    failed_with(
        &try_import(&api, "creds-404", &with_secrets("/nothing")),
        "import failed",
    );
    failed_with(
        &try_import(
            &api,
            "creds-refused",
            "http://u:Pa55wordXYZ@169.254.169.254/?token=T0kenQRS",
        ),
        "import source refused",
    );
    let log = api.log();
    assert!(
        log.iter()
            .any(|l| l.contains("image import started") && l.contains(&fs.url("/m"))),
        "the source is logged, redacted: {log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("import source failed")),
        "{log:#?}"
    );
    for secret in ["Pa55wordXYZ", "T0kenQRS", "importer"] {
        assert!(
            !log.iter().any(|l| l.contains(secret)),
            "{secret} logged: {log:#?}"
        );
    }
}
