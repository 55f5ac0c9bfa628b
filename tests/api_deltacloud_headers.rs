//! Black-box tests of the Deltacloud dialect's response headers and
//! statuses against a real `blockd serve`, endpoint family by family
//! (entry point, collections, one object, create, actions, delete,
//! errors in XML and JSON, 406, HEAD, OPTIONS), as the Apache Deltacloud
//! server answered: `Server: Apache-Deltacloud/VERSION`,
//! `X-Deltacloud-Driver` on every reply, content types without charset,
//! `ETag` and `Cache-Control` on 200 and 201 only, `Location` on 201,
//! empty 204 and 406, `Allow` on 405 and OPTIONS, and the Basic challenge
//! on 401.

mod api_common;
mod deltacloud_common;

use api_common::{headers, Api, Resp};
use deltacloud_common::*;

/// The headers every Deltacloud reply carries.
fn identified(r: &Resp) {
    let server = r.header("server").unwrap_or("");
    assert!(
        server.starts_with("Apache-Deltacloud/1.1.0 (blockd "),
        "server: {server}"
    );
    assert_eq!(r.header("x-deltacloud-driver"), Some("blockd"));
    assert_eq!(r.header("x-deltacloud-provider"), None);
    assert!(r.header("date").is_some(), "no Date");
}

/// A 200 or 201 with a body of `ct`: identified, typed, tagged.
#[track_caller]
fn document(r: &Resp, status: u16, ct: &str) {
    headers::document(r, status, ct, identified);
}

/// A reply without a body (204, 406, OPTIONS): no type, no tag.
#[track_caller]
fn bodiless(r: &Resp, status: u16) {
    headers::bodiless(r, status, identified);
}

const XML: &str = "application/xml";
const JSON: &str = "application/json";

#[test]
fn entry_point_and_collections() {
    let api = Api::start();
    // The entry point needs no credentials.
    document(&call(&api, "GET", "/api", None, &[], None), 200, XML);
    document(
        &call(&api, "GET", "/api?format=json", None, &[], None),
        200,
        JSON,
    );
    document(
        &call(&api, "GET", "/api", None, &[("Accept", JSON)], None),
        200,
        JSON,
    );
    for c in ["storage_volumes", "storage_snapshots"] {
        let path = format!("/api/{c}");
        document(&get(&api, &path, DEMO), 200, XML);
        document(&get(&api, &format!("{path}?format=json"), DEMO), 200, JSON);
        document(
            &call(
                &api,
                "GET",
                &path,
                Some(DEMO),
                &[("Accept", "text/xml")],
                None,
            ),
            200,
            XML,
        );
    }
}

#[test]
fn objects_create_actions_delete() {
    let api = Api::start();
    // Create: 201, Location naming the new object's href, tagged.
    let r = post_form(&api, "/api/storage_volumes", DEMO, "capacity=1");
    document(&r, 201, XML);
    let vol = xml(&r.text).attr("id").to_string();
    let href = xml(&r.text).attr("href").to_string();
    assert_eq!(r.header("location"), Some(href.as_str()));
    assert!(href.ends_with(&format!("/api/storage_volumes/{vol}")));
    let r = post_form(&api, "/api/storage_volumes?format=json", DEMO, "");
    document(&r, 201, JSON);
    assert!(r.header("location").is_some());

    // One object.
    let path = format!("/api/storage_volumes/{vol}");
    document(&get(&api, &path, DEMO), 200, XML);
    document(&get(&api, &format!("{path}?format=json"), DEMO), 200, JSON);

    // Snapshot create: 201 with Location; show.
    let r = post_form(
        &api,
        "/api/storage_snapshots",
        DEMO,
        &format!("volume_id={vol}"),
    );
    document(&r, 201, XML);
    let snap = xml(&r.text).attr("id").to_string();
    assert_eq!(r.header("location"), Some(xml(&r.text).attr("href")));
    let spath = format!("/api/storage_snapshots/{snap}");
    document(&get(&api, &spath, DEMO), 200, XML);

    // Attach and detach: 202 with the volume, typed, no ETag (Rack::ETag
    // tagged 200 and 201 only), no Location.
    for (action, form) in [("attach", "instance_id=i-1"), ("detach", "")] {
        let r = post_form(&api, &format!("{path}/{action}"), DEMO, form);
        assert_eq!(r.status, 202, "{}", r.text);
        identified(&r);
        assert_eq!(r.header("content-type"), Some(XML));
        assert_eq!(r.header("etag"), None);
        assert_eq!(r.header("location"), None);
    }

    // Delete: 204, nothing else.
    bodiless(&delete(&api, &spath, DEMO), 204);
    bodiless(&delete(&api, &path, DEMO), 204);
    let r = call(
        &api,
        "DELETE",
        &format!("{path}?format=json"),
        Some(DEMO),
        &[],
        None,
    );
    assert_eq!(r.status, 404);
    identified(&r);
}

#[test]
fn errors_in_each_format() {
    let api = Api::start();
    let vol = volume(&api, DEMO, "");
    for (query, ct) in [("", XML), ("?format=json", JSON)] {
        // 401: the Basic challenge in Deltacloud's realm form.
        let r = call(
            &api,
            "GET",
            &format!("/api/storage_volumes{query}"),
            None,
            &[],
            None,
        );
        assert_eq!(r.status, 401);
        identified(&r);
        assert_eq!(r.header("content-type"), Some(ct));
        let challenge = r.header("www-authenticate").expect("challenge");
        assert!(
            challenge.starts_with("Basic realm=\"blockd-deltacloud@"),
            "{challenge}"
        );
        assert_eq!(r.header("etag"), None);
        // 404.
        let r = get(&api, &format!("/api/storage_volumes/nope{query}"), DEMO);
        assert_eq!(r.status, 404);
        identified(&r);
        assert_eq!(r.header("content-type"), Some(ct));
        assert_eq!(r.header("etag"), None);
        // 400.
        let r = post_form(
            &api,
            &format!("/api/storage_volumes{query}"),
            DEMO,
            "capacity=0",
        );
        assert_eq!(r.status, 400);
        identified(&r);
        assert_eq!(r.header("content-type"), Some(ct));
        // 409: delete of an attached volume.
        let a = volume(&api, DEMO, "");
        let r = post_form(
            &api,
            &format!("/api/storage_volumes/{a}/attach"),
            DEMO,
            "instance_id=i-9",
        );
        assert_eq!(r.status, 202);
        let r = delete(&api, &format!("/api/storage_volumes/{a}{query}"), DEMO);
        assert_eq!(r.status, 409);
        identified(&r);
        assert_eq!(r.header("content-type"), Some(ct));
        // 405: Allow lists what the path answers, HEAD and OPTIONS included.
        let r = call(
            &api,
            "PUT",
            &format!("/api/storage_volumes/{vol}{query}"),
            Some(DEMO),
            &[],
            None,
        );
        assert_eq!(r.status, 405);
        identified(&r);
        assert_eq!(r.header("content-type"), Some(ct));
        assert_eq!(r.header("allow"), Some("GET, HEAD, DELETE, OPTIONS"));
    }
    // 406: nothing acceptable, an empty body, still identified.
    bodiless(
        &call(&api, "GET", "/api", None, &[("Accept", "text/html")], None),
        406,
    );
    bodiless(&get(&api, "/api/storage_volumes?format=html", DEMO), 406);
}

#[test]
fn head_and_options() {
    let api = Api::start();
    let vol = volume(&api, DEMO, "");
    let snap = snapshot(&api, DEMO, &vol);
    // HEAD: the GET's status and headers, no body.
    for path in [
        "/api".to_string(),
        "/api?format=json".to_string(),
        "/api/storage_volumes".to_string(),
        format!("/api/storage_volumes/{vol}"),
        "/api/storage_snapshots".to_string(),
        format!("/api/storage_snapshots/{snap}?format=json"),
    ] {
        let g = get(&api, &path, DEMO);
        let h = call(&api, "HEAD", &path, Some(DEMO), &[], None);
        headers::head_like_get(&h, &g, &path, identified);
    }
    // HEAD of what is not there, or without credentials: the GET's status.
    let h = call(
        &api,
        "HEAD",
        "/api/storage_volumes/nope",
        Some(DEMO),
        &[],
        None,
    );
    assert_eq!(h.status, 404);
    let h = call(&api, "HEAD", "/api/storage_volumes", None, &[], None);
    assert_eq!(h.status, 401);
    assert!(h.header("www-authenticate").is_some());

    // OPTIONS: 200 with Allow, no credentials needed.
    for (path, allow) in [
        ("/api".to_string(), "GET, HEAD, OPTIONS"),
        ("/api/storage_volumes".into(), "GET, HEAD, POST, OPTIONS"),
        (
            format!("/api/storage_volumes/{vol}"),
            "GET, HEAD, DELETE, OPTIONS",
        ),
        (
            format!("/api/storage_volumes/{vol}/attach"),
            "POST, OPTIONS",
        ),
        (
            format!("/api/storage_volumes/{vol}/detach"),
            "POST, OPTIONS",
        ),
        ("/api/storage_snapshots".into(), "GET, HEAD, POST, OPTIONS"),
        (
            format!("/api/storage_snapshots/{snap}"),
            "GET, HEAD, DELETE, OPTIONS",
        ),
    ] {
        let r = call(&api, "OPTIONS", &path, None, &[], None);
        bodiless(&r, 200);
        assert_eq!(r.header("allow"), Some(allow), "{path}");
    }
    let r = call(&api, "OPTIONS", "/api/instances", None, &[], None);
    assert_eq!(r.status, 404);
    identified(&r);
    // The methods OPTIONS names are the ones answered: GET on an action
    // is 405 with the same Allow.
    let r = get(&api, &format!("/api/storage_volumes/{vol}/attach"), DEMO);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST, OPTIONS"));
}

#[test]
fn conditional_get_and_oversized_bodies() {
    let api = Api::start();
    let r = get(&api, "/api/storage_volumes", DEMO);
    let etag = r.header("etag").expect("etag").to_string();
    // 304: the tag, the cache directive, the identity, no body.
    let r = call(
        &api,
        "GET",
        "/api/storage_volumes",
        Some(DEMO),
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!(r.status, 304);
    identified(&r);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(
        r.header("cache-control"),
        Some("max-age=0, private, must-revalidate")
    );
    // A body over the limit fails before the handler: still identified.
    let big = vec![b'a'; 2 << 20];
    let r = call(
        &api,
        "POST",
        "/api/storage_volumes",
        Some(DEMO),
        &[],
        Some(("application/x-www-form-urlencoded", &big)),
    );
    assert_eq!(r.status, 413);
    identified(&r);
    assert_eq!(r.header("content-type"), Some(XML));
}

#[test]
fn no_host_header_is_400() {
    use std::io::{Read, Write};
    let api = Api::start();
    let addr = api.base.trim_start_matches("http://").to_string();
    let ask = |request: &str| {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.write_all(request.as_bytes()).expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    };
    // HTTP/1.0 without Host: 400, identified, the error in XML.
    let out = ask("GET /api HTTP/1.0\r\n\r\n");
    assert!(out.starts_with("HTTP/1.0 400"), "{out}");
    let lower = out.to_ascii_lowercase();
    assert!(
        lower.contains("\r\nx-deltacloud-driver: blockd\r\n"),
        "{out}"
    );
    assert!(
        lower.contains("\r\ncontent-type: application/xml\r\n"),
        "{out}"
    );
    assert!(out.contains("Unable to find HTTP Host header"), "{out}");
    // With a Host it is served.
    let out = ask("GET /api HTTP/1.0\r\nHost: example.org\r\n\r\n");
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    assert!(
        out.contains("http://example.org/api/storage_volumes"),
        "{out}"
    );
}
