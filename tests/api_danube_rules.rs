//! Black-box tests of the Danube Cloud dialect's rules and errors against
//! a real `blockd serve`: VM snapshots (disk_id, 412, 406, quotas) and
//! their visibility in OpenStack and back; image access (public, private,
//! deleted), ownership and tenant isolation across dialects; field
//! validation (400 FAILURE naming the field); auth (401), unknown paths
//! (404), methods (405), malformed and oversized bodies (400, 413, 415),
//! and names that try to be paths.

mod api_common;
mod danube_common;

use api_common::{Api, DEMO, OTHER, SMALL};
use danube_common::*;
use serde_json::json;

#[test]
fn vm_snapshots_and_openstack_visibility() {
    let api = Api::start();
    // Disk order is by device name, not by attach order.
    let second = attached_volume(&api, "demo", DEMO, "web01", "/dev/vdc");
    let first = attached_volume(&api, "demo", DEMO, "web01", "/dev/vdb");
    let s = ok(&dn(&api, "POST", "/api/vm/web01/snapshot/a/", DEMO, None));
    assert_eq!(s["disk_id"], 1);
    let s2 = ok(&dn(
        &api,
        "POST",
        "/api/vm/web01/snapshot/b/",
        DEMO,
        Some(json!({"disk_id": 2})),
    ));
    assert_eq!(s2["disk_id"], 2);
    // In OpenStack: engine snapshots of the right volumes, named.
    let r = api.get(
        &format!("/v1.1/demo/os-snapshots/{}", s["id"].as_str().unwrap()),
        DEMO,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["snapshot"]["volumeId"], first.as_str());
    assert_eq!(r.json["snapshot"]["displayName"], "a");
    assert_eq!(r.json["snapshot"]["status"], "available");
    let r = api.get(
        &format!("/v1.1/demo/os-snapshots/{}", s2["id"].as_str().unwrap()),
        DEMO,
    );
    assert_eq!(r.json["snapshot"]["volumeId"], second.as_str());
    // disk_id rules: 412 for no such disk, 400 FAILURE for a non-integer.
    for bad in [json!(3), json!(0), json!(-1)] {
        detail(
            &dn(
                &api,
                "POST",
                "/api/vm/web01/snapshot/c/",
                DEMO,
                Some(json!({"disk_id": bad})),
            ),
            412,
        );
    }
    failure(
        &dn(
            &api,
            "POST",
            "/api/vm/web01/snapshot/c/",
            DEMO,
            Some(json!({"disk_id": "x"})),
        ),
        "disk_id",
    );
    failure(
        &dn(
            &api,
            "POST",
            "/api/vm/web01/snapshot/c/",
            DEMO,
            Some(json!({"disk_id": [1]})),
        ),
        "disk_id",
    );
    // Unique per VM (406), whatever the disk.
    detail(
        &dn(
            &api,
            "POST",
            "/api/vm/web01/snapshot/a/",
            DEMO,
            Some(json!({"disk_id": 2})),
        ),
        406,
    );
    // Names are validated.
    for bad in [
        "-x",
        ".x",
        "a%20b",
        "%2E%2E%2Fetc",
        "a%2Fb",
        "x123456789012345678901234567890123",
    ] {
        failure(
            &dn(
                &api,
                "POST",
                &format!("/api/vm/web01/snapshot/{bad}/"),
                DEMO,
                None,
            ),
            "name",
        );
    }
    // A VM with no disks is unknown; so is another tenant's VM.
    detail(
        &dn(&api, "POST", "/api/vm/nobody/snapshot/a/", DEMO, None),
        404,
    );
    detail(
        &dn(&api, "GET", "/api/vm/web01/snapshot/", OTHER, None),
        404,
    );
    // A snapshot taken through OpenStack of a VM disk shows here too.
    let r = api.post(
        "/v1.1/demo/os-snapshots",
        DEMO,
        &json!({"snapshot": {"volume_id": first, "force": true, "display_name": "os-snap"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let names = ok(&dn(
        &api,
        "GET",
        "/api/vm/web01/snapshot/?order_by=name",
        DEMO,
        None,
    ));
    assert_eq!(names, json!(["a", "b", "os-snap"]));
    let d2 = ok(&dn(
        &api,
        "GET",
        "/api/vm/web01/snapshot/?disk_id=2&full=true",
        DEMO,
        None,
    ));
    assert_eq!(d2.as_array().map(Vec::len), Some(1));
    assert_shape(
        &d2[0],
        &fixture("vm_snapshot.json")["result"],
        "snapshot list item",
    );
    assert_eq!(d2[0]["name"], "b");
    // Show, PUT note, delete (and it leaves OpenStack too).
    let shown = ok(&dn(
        &api,
        "GET",
        "/api/vm/web01/snapshot/os-snap/",
        DEMO,
        None,
    ));
    assert_eq!(shown["disk_id"], 1);
    let upd = ok(&dn(
        &api,
        "PUT",
        "/api/vm/web01/snapshot/a/",
        DEMO,
        Some(json!({"note": "kept"})),
    ));
    assert_eq!(upd["note"], "kept");
    ok(&dn(&api, "DELETE", "/api/vm/web01/snapshot/a/", DEMO, None));
    detail(
        &dn(&api, "GET", "/api/vm/web01/snapshot/a/", DEMO, None),
        404,
    );
    let r = api.get(
        &format!("/v1.1/demo/os-snapshots/{}", s["id"].as_str().unwrap()),
        DEMO,
    );
    assert_eq!(r.status, 404);
    detail(
        &dn(&api, "DELETE", "/api/vm/web01/snapshot/a/", DEMO, None),
        404,
    );
    // Image from an unknown snapshot or VM: 404; an existing name: 406.
    detail(
        &dn(
            &api,
            "POST",
            "/api/vm/web01/snapshot/zz/image/img/",
            DEMO,
            None,
        ),
        404,
    );
    ok(&dn(
        &api,
        "POST",
        "/api/vm/web01/snapshot/b/image/img/",
        DEMO,
        None,
    ));
    detail(
        &dn(
            &api,
            "POST",
            "/api/vm/web01/snapshot/b/image/img/",
            DEMO,
            None,
        ),
        406,
    );
    // The wrong disk for that snapshot: 404; no such disk: 412.
    detail(
        &dn(
            &api,
            "POST",
            "/api/vm/web01/snapshot/b/image/img2/",
            DEMO,
            Some(json!({"disk_id": 1})),
        ),
        404,
    );
    detail(
        &dn(
            &api,
            "POST",
            "/api/vm/web01/snapshot/b/image/img2/",
            DEMO,
            Some(json!({"disk_id": 7})),
        ),
        412,
    );
    // Same alias and version as another image: 400 FAILURE.
    failure(
        &dn(
            &api,
            "POST",
            "/api/vm/web01/snapshot/b/image/img3/",
            DEMO,
            Some(json!({"alias": "img"})),
        ),
        "alias",
    );
}

#[test]
fn snapshot_quota_applies() {
    let api = Api::start();
    attached_volume(&api, "small", SMALL, "s1", "/dev/vdb");
    ok(&dn(&api, "POST", "/api/vm/s1/snapshot/one/", SMALL, None));
    // The tenant's quota allows one snapshot, whatever the dialect.
    detail(
        &dn(&api, "POST", "/api/vm/s1/snapshot/two/", SMALL, None),
        413,
    );
    let snaps = api.get("/v1.1/small/os-snapshots", SMALL);
    assert_eq!(snaps.json["snapshots"].as_array().map(Vec::len), Some(1));
}

#[test]
fn image_access_ownership_and_isolation() {
    let api = Api::start();
    attached_volume(&api, "demo", DEMO, "vm1", "/dev/vdb");
    ok(&dn(&api, "POST", "/api/vm/vm1/snapshot/s/", DEMO, None));
    ok(&dn(
        &api,
        "POST",
        "/api/vm/vm1/snapshot/s/image/priv/",
        DEMO,
        None,
    ));
    ok(&dn(
        &api,
        "POST",
        "/api/vm/vm1/snapshot/s/image/pub/",
        DEMO,
        Some(json!({"access": 1})),
    ));
    // The other tenant sees the public one only, and may clone it (by
    // name, through OpenStack), not the private one.
    assert_eq!(
        ok(&dn(&api, "GET", "/api/image/", OTHER, None)),
        json!(["pub"])
    );
    detail(&dn(&api, "GET", "/api/image/priv/", OTHER, None), 404);
    detail(&dn(&api, "GET", "/api/image/priv/vm/", OTHER, None), 404);
    let r = api.post(
        "/v1.1/other/os-volumes",
        OTHER,
        &json!({"volume": {"imageRef": "pub"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api.post(
        "/v1.1/other/os-volumes",
        OTHER,
        &json!({"volume": {"imageRef": "priv"}}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    // Only the owner changes or deletes: 403.
    detail(
        &dn(
            &api,
            "PUT",
            "/api/image/pub/",
            OTHER,
            Some(json!({"desc": "mine"})),
        ),
        403,
    );
    detail(&dn(&api, "DELETE", "/api/image/pub/", OTHER, None), 403);
    detail(
        &dn(
            &api,
            "PUT",
            "/api/image/priv/",
            OTHER,
            Some(json!({"desc": "mine"})),
        ),
        404,
    );
    // Deleted (4): others lose it, the owner still sees it.
    ok(&dn(
        &api,
        "PUT",
        "/api/image/pub/",
        DEMO,
        Some(json!({"access": 4})),
    ));
    assert_eq!(ok(&dn(&api, "GET", "/api/image/", OTHER, None)), json!([]));
    assert_eq!(
        ok(&dn(&api, "GET", "/api/image/", DEMO, None)),
        json!(["priv", "pub"])
    );
    let r = api.post(
        "/v1.1/demo/os-volumes",
        DEMO,
        &json!({"volume": {"imageRef": "pub"}}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    // Handing an image to another tenant is an operator's action (see
    // api_isolation.rs): a tenant gets 403 and keeps it.
    detail(
        &dn(
            &api,
            "PUT",
            "/api/image/priv/",
            DEMO,
            Some(json!({"owner": "other"})),
        ),
        403,
    );
    detail(&dn(&api, "GET", "/api/image/priv/", OTHER, None), 404);
    ok(&dn(&api, "DELETE", "/api/image/priv/", DEMO, None));
}

#[test]
fn field_validation() {
    let api = Api::start();
    attached_volume(&api, "demo", DEMO, "vm1", "/dev/vdb");
    ok(&dn(&api, "POST", "/api/vm/vm1/snapshot/s/", DEMO, None));
    ok(&dn(
        &api,
        "POST",
        "/api/vm/vm1/snapshot/s/image/img/",
        DEMO,
        None,
    ));
    let long = "x".repeat(129);
    for (field, bad) in [
        ("access", json!(2)),
        ("access", json!("public")),
        ("access", json!(1.5)),
        ("resize", json!("maybe")),
        ("deploy", json!([true])),
        ("tags", json!("a,b")),
        ("tags", json!([1])),
        ("tags", json!([""])),
        ("desc", json!(long)),
        ("desc", json!(5)),
        ("alias", json!("x".repeat(33))),
        ("alias", json!("")),
        ("version", json!("x".repeat(17))),
        ("dc_bound", json!("sometimes")),
    ] {
        let r = dn(
            &api,
            "PUT",
            "/api/image/img/",
            DEMO,
            Some(json!({ field: bad })),
        );
        failure(&r, field);
    }
    // Another owner, existing or not: 403 for a tenant (an operator's
    // action; a tenant learns nothing about which tenants exist).
    detail(
        &dn(
            &api,
            "PUT",
            "/api/image/img/",
            DEMO,
            Some(json!({"owner": "nobody"})),
        ),
        403,
    );
    // Nothing changed.
    let img = ok(&dn(&api, "GET", "/api/image/img/", DEMO, None));
    assert_eq!(img["access"], 3);
    assert_eq!(img["desc"], "");
    // Image names: the pattern, 32 characters, no UUIDs, no paths.
    for bad in [
        "-a",
        "_a",
        "a%20b",
        "%2E%2E%2Fetc",
        "..%2F..%2Fetc",
        "x123456789012345678901234567890123",
        "0123456789abcdef0123456789abcdef",
    ] {
        let r = dn(
            &api,
            "POST",
            &format!("/api/image/{bad}/"),
            DEMO,
            Some(json!({"manifest_url": "http://127.0.0.1:1/m"})),
        );
        failure(&r, "name");
        let r = dn(
            &api,
            "POST",
            &format!("/api/vm/vm1/snapshot/s/image/{bad}/"),
            DEMO,
            None,
        );
        failure(&r, "name");
    }
    // Import parameters.
    failure(
        &dn(&api, "POST", "/api/image/new/", DEMO, None),
        "manifest_url",
    );
    failure(
        &dn(
            &api,
            "POST",
            "/api/image/new/",
            DEMO,
            Some(json!({"manifest_url": 5})),
        ),
        "manifest_url",
    );
    for bad in [
        "ftp://h/m",
        "https://",
        "http://",
        "h/m",
        "http://h/a b",
        "gopher://x",
    ] {
        failure(
            &dn(
                &api,
                "POST",
                "/api/image/new/",
                DEMO,
                Some(json!({"manifest_url": bad})),
            ),
            "manifest_url",
        );
    }
    failure(
        &dn(
            &api,
            "POST",
            "/api/image/new/",
            DEMO,
            Some(json!({"manifest_url": "http://h/m", "access": 9})),
        ),
        "access",
    );
    // An existing name: 406 before anything is fetched.
    detail(
        &dn(
            &api,
            "POST",
            "/api/image/img/",
            DEMO,
            Some(json!({"manifest_url": "http://h/m"})),
        ),
        406,
    );
    // List parameters.
    failure(
        &dn(&api, "GET", "/api/image/?order_by=size", DEMO, None),
        "order_by",
    );
    failure(
        &dn(&api, "GET", "/api/image/?full=perhaps", DEMO, None),
        "full",
    );
    failure(
        &dn(&api, "GET", "/api/vm/vm1/snapshot/?order_by=x", DEMO, None),
        "order_by",
    );
    assert_eq!(
        ok(&dn(&api, "GET", "/api/image/", DEMO, None)),
        json!(["img"])
    );
}

#[test]
fn auth_paths_methods_and_bad_bodies() {
    let api = Api::start();
    // Auth: none, wrong, the OpenStack header alone: 401 with a detail.
    for key in [
        Key::None,
        Key::Es("wrong"),
        Key::Token("wrong"),
        Key::Es(""),
    ] {
        let r = call(&api, "GET", "/api/image/", key, None, None);
        detail(&r, 401);
        assert_eq!(r.header("www-authenticate"), Some("Token"));
    }
    let r = api.get("/api/image/", DEMO);
    detail(&r, 401);
    let r = call(&api, "GET", "/api/task/", Key::Token(OTHER), None, None);
    assert_eq!(ok(&r), json!([]));
    // Unknown paths and ids: 404 detail.
    for p in [
        "/api/image/none/",
        "/api/image/x/y/",
        "/api/vm/",
        "/api/vm/v/",
        "/api/task/x/",
        "/api/image/none/vm/",
    ] {
        detail(&dn(&api, "GET", p, DEMO, None), 404);
    }
    // Methods: 405 with Allow.
    let r = dn(&api, "POST", "/api/image/", DEMO, Some(json!({})));
    detail(&r, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    let r = dn(&api, "PATCH", "/api/image/x/", DEMO, Some(json!({})));
    detail(&r, 405);
    detail(&dn(&api, "DELETE", "/api/task/", DEMO, None), 405);
    detail(
        &dn(&api, "GET", "/api/vm/v/snapshot/s/image/i/", DEMO, None),
        405,
    );
    // Malformed JSON, a non-object, a wrong media type: 400, 400, 415.
    let post = |body: &[u8], ct: Option<&str>| {
        call(&api, "PUT", "/api/image/x/", Key::Es(DEMO), Some(body), ct)
    };
    for body in [&b"{"[..], b"{\"a\":}", b"\xff\xfe", b"nul"] {
        detail(&post(body, Some("application/json")), 400);
    }
    for body in [&b"[1]"[..], b"\"s\"", b"3"] {
        detail(&post(body, Some("application/json")), 400);
    }
    detail(&post(b"<a/>", Some("application/xml")), 415);
    // Oversized bodies: 413 in the dialect's format.
    let big = vec![b' '; (1 << 20) + 1];
    let r = call(
        &api,
        "POST",
        "/api/image/x/",
        Key::Es(DEMO),
        Some(&big),
        Some("application/json"),
    );
    detail(&r, 413);
}

#[test]
fn cross_dialect_states() {
    let api = Api::start();
    // An OpenStack volume attached to a server is that VM's disk 1; a
    // detached one is nobody's.
    let vol = attached_volume(&api, "demo", DEMO, "srv", "/dev/vdb");
    let snap = ok(&dn(&api, "POST", "/api/vm/srv/snapshot/x/", DEMO, None));
    assert_eq!(snap["status"], 1);
    let r = api.get("/v1.1/demo/os-snapshots/detail", DEMO);
    let list = r.json["snapshots"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["volumeId"], vol.as_str());
    assert_eq!(list[0]["size"], 1);
    // OpenStack deletes the Danube snapshot; Danube no longer has it.
    assert_eq!(
        api.delete(
            &format!("/v1.1/demo/os-snapshots/{}", snap["id"].as_str().unwrap()),
            DEMO
        )
        .status,
        202
    );
    assert_eq!(
        ok(&dn(&api, "GET", "/api/vm/srv/snapshot/", DEMO, None)),
        json!([])
    );
    assert_eq!(
        api.delete(
            &format!("/v1.1/demo/servers/srv/os-volume_attachments/{vol}"),
            DEMO
        )
        .status,
        202
    );
    detail(&dn(&api, "GET", "/api/vm/srv/snapshot/", DEMO, None), 404);
    // A volume cloned in OpenStack from a Danube image records the image.
    attached_volume(&api, "demo", DEMO, "srv2", "/dev/vdb");
    ok(&dn(&api, "POST", "/api/vm/srv2/snapshot/x/", DEMO, None));
    let img = ok(&dn(
        &api,
        "POST",
        "/api/vm/srv2/snapshot/x/image/gold/",
        DEMO,
        None,
    ));
    let r = api.post(
        "/v1.1/demo/os-volumes",
        DEMO,
        &json!({"volume": {"imageRef": img["uuid"], "size": 2}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["volume"]["size"], 2);
    assert_eq!(r.json["volume"]["status"], "available");
    assert_eq!(
        ok(&dn(&api, "GET", "/api/image/gold/vm/", DEMO, None)),
        json!([])
    );
}
