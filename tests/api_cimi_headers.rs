//! Black-box tests of the CIMI dialect's response headers and statuses
//! against a real `blockd serve`, endpoint family by family (entry point,
//! collections, one resource, create, update, delete, machine volumes,
//! errors in JSON and XML, HEAD, OPTIONS): `CIMI-Specification-Version`
//! on every reply, `application/json` or `application/xml`, 201 with
//! `Location` on creates, 200 with no body on deletes, `ETag` and
//! `Cache-Control` on 200 and 201 documents (as the Deltacloud CIMI
//! server sent them), `Allow` on 405 and OPTIONS, and the Basic challenge
//! on 401.

mod api_common;
mod cimi_common;

use api_common::{headers, Resp};
use cimi_common::*;
use serde_json::json;

const JSON: &str = "application/json";
const XML: &str = "application/xml";
const GIB_KIB: u64 = 1 << 20;

/// The version header every reply carries.
fn versioned(r: &Resp) {
    assert_eq!(r.header("cimi-specification-version"), Some("1.0.1"));
    assert!(r.header("date").is_some(), "no Date");
}

/// A 200 or 201 document of `ct`: versioned, typed, tagged.
#[track_caller]
fn document(r: &Resp, status: u16, ct: &str) {
    headers::document(r, status, ct, versioned);
}

/// A reply without a body: no type, no tag.
#[track_caller]
fn bodiless(r: &Resp, status: u16) {
    headers::bodiless(r, status, versioned);
}

#[test]
fn reads_in_both_formats() {
    let c = Cimi::start();
    let v = c.volume(GIB_KIB);
    let i = c.image(&v, "img");
    for path in [
        "cloudEntryPoint".to_string(),
        "volumes".into(),
        format!("volumes/{v}"),
        "volume_images".into(),
        format!("volume_images/{i}"),
        "volume_configurations".into(),
        "volume_templates".into(),
        "machines".into(),
    ] {
        document(&c.get(&path), 200, JSON);
        document(&c.get_xml(&path), 200, XML);
    }
    // The same document has the same tag; If-None-Match gives 304.
    let r = c.get("volumes");
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(c.get("volumes").header("etag"), Some(etag.as_str()));
    let r = c.req(
        "GET",
        "/cimi/volumes",
        Some(DEMO),
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!(r.status, 304);
    versioned(&r);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(r.text.is_empty());
}

#[test]
fn creates_updates_deletes() {
    let c = Cimi::start();
    // Volume create: 201, Location = the new id, tagged.
    let r = c.post(
        "volumes",
        &json!({"volumeTemplate": {"volumeConfig": {"capacity": GIB_KIB}}}),
    );
    document(&r, 201, JSON);
    let id = r.json["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), Some(id.as_str()));
    let v = last_segment(&id);
    // Image create: 201 with Location.
    let r = c.post(
        "volume_images",
        &json!({"name": "i", "imageLocation": {"href": c.url(&format!("volumes/{v}"))}}),
    );
    document(&r, 201, JSON);
    let iid = r.json["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), Some(iid.as_str()));
    // Update: 200 with the resource.
    let r = c.put(&format!("volumes/{v}"), &json!({"name": "renamed"}));
    document(&r, 200, JSON);
    // Attach: 201 with Location = the MachineVolume.
    let r = c.post(
        "machines/vm-1/volumes",
        &json!({"initialLocation": "/dev/vdc", "volume": {"href": c.url(&format!("volumes/{v}"))}}),
    );
    document(&r, 201, JSON);
    let mv = c.url(&format!("machines/vm-1/volumes/{v}"));
    assert_eq!(r.header("location"), Some(mv.as_str()));
    document(&c.get_xml(&format!("machines/vm-1/volumes/{v}")), 200, XML);
    // Deletes: 200 without a body.
    bodiless(&c.delete(&format!("machines/vm-1/volumes/{v}")), 200);
    bodiless(
        &c.delete(&format!("volume_images/{}", last_segment(&iid))),
        200,
    );
    bodiless(&c.delete(&format!("volumes/{v}")), 200);
}

#[test]
fn errors_in_both_formats() {
    let c = Cimi::start();
    let v = c.volume(GIB_KIB);
    for (accept, ct) in [(JSON, JSON), (XML, XML)] {
        let h = [("Accept", accept)];
        // 401 with the Basic challenge.
        let r = c.req("GET", "/cimi/volumes", None, &h, None);
        assert_eq!(r.status, 401);
        versioned(&r);
        assert_eq!(r.header("content-type"), Some(ct));
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"CIMI\""));
        assert_eq!(r.header("etag"), None);
        // 404.
        let r = c.req("GET", "/cimi/volumes/nope", Some(DEMO), &h, None);
        assert_eq!(r.status, 404);
        versioned(&r);
        assert_eq!(r.header("content-type"), Some(ct));
        assert_eq!(r.header("etag"), None);
        // 405 with Allow (HEAD and OPTIONS included).
        let r = c.req("POST", &format!("/cimi/volumes/{v}"), Some(DEMO), &h, None);
        assert_eq!(r.status, 405);
        versioned(&r);
        assert_eq!(r.header("content-type"), Some(ct));
        assert_eq!(r.header("allow"), Some("GET, HEAD, PUT, DELETE, OPTIONS"));
        // 400: an unsupported specification version.
        let r = c.req(
            "GET",
            "/cimi/volumes",
            Some(DEMO),
            &[("Accept", accept), ("CIMI-Specification-Version", "2.0")],
            None,
        );
        assert_eq!(r.status, 400);
        versioned(&r);
        assert_eq!(r.header("content-type"), Some(ct));
    }
}

#[test]
fn head_and_options() {
    let c = Cimi::start();
    let v = c.volume(GIB_KIB);
    // HEAD: the GET's status and headers, no body.
    for (path, accept) in [
        ("/cimi/cloudEntryPoint".to_string(), JSON),
        ("/cimi/volumes".into(), XML),
        (format!("/cimi/volumes/{v}"), JSON),
        ("/cimi/volume_templates".into(), JSON),
    ] {
        let h = [("Accept", accept)];
        let g = c.req("GET", &path, Some(DEMO), &h, None);
        let r = c.req("HEAD", &path, Some(DEMO), &h, None);
        headers::head_like_get(&r, &g, &path, versioned);
    }
    let r = c.req("HEAD", "/cimi/volumes/nope", Some(DEMO), &[], None);
    assert_eq!(r.status, 404);
    let r = c.req("HEAD", "/cimi/volumes", None, &[], None);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());

    // OPTIONS: 200 with Allow, no credentials needed.
    for (path, allow) in [
        ("/cimi/cloudEntryPoint".to_string(), "GET, HEAD, OPTIONS"),
        ("/cimi/volumes".into(), "GET, HEAD, POST, OPTIONS"),
        (
            format!("/cimi/volumes/{v}"),
            "GET, HEAD, PUT, DELETE, OPTIONS",
        ),
        ("/cimi/volume_images".into(), "GET, HEAD, POST, OPTIONS"),
        ("/cimi/volume_configurations".into(), "GET, HEAD, OPTIONS"),
        ("/cimi/volume_templates/small".into(), "GET, HEAD, OPTIONS"),
        ("/cimi/machines/vm-1".into(), "GET, HEAD, OPTIONS"),
        (
            "/cimi/machines/vm-1/volumes".into(),
            "GET, HEAD, POST, OPTIONS",
        ),
        (
            format!("/cimi/machines/vm-1/volumes/{v}"),
            "GET, HEAD, DELETE, OPTIONS",
        ),
    ] {
        let r = c.req("OPTIONS", &path, None, &[], None);
        bodiless(&r, 200);
        assert_eq!(r.header("allow"), Some(allow), "{path}");
    }
    let r = c.req("OPTIONS", "/cimi/networks", None, &[], None);
    error(&r, 404);
}
