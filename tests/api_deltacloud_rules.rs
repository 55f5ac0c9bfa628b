//! Black-box tests of the Deltacloud dialect's rules and errors against a
//! real `blockd serve`: volume create validation and defaults, clones from
//! snapshots (bytes checked through NBD), attach/detach/delete rules,
//! snapshot rules, quotas (also under concurrent requests), tenant
//! isolation, and bad input (malformed bodies, wrong types, unknown ids,
//! oversized bodies, path traversal): every error in Deltacloud's XML or
//! JSON error format, nothing half-created, and the server still up.

mod api_common;
mod deltacloud_common;

use api_common::{qemu_io, qemu_io_ro, Api};
use deltacloud_common::*;

fn count(api: &Api, collection: &str, creds: (&str, &str)) -> usize {
    let r = get(api, &format!("/api/{collection}"), creds);
    assert_eq!(r.status, 200, "{}", r.text);
    let item = collection.trim_end_matches('s');
    xml(&r.text).all(item).len()
}

#[test]
fn volume_create_rules() {
    let api = Api::start();
    // Defaults: 1 GB, AVAILABLE, the default realm, no name.
    let r = post_form(&api, "/api/storage_volumes", DEMO, "");
    assert_eq!(r.status, 201, "{}", r.text);
    let v = xml(&r.text);
    assert_eq!(v.text_of("capacity"), "1");
    assert_eq!(v.text_of("state"), "AVAILABLE");
    assert_eq!(v.child("realm").attr("id"), "nova");
    assert_eq!(v.text_of("name"), "");
    let id = v.attr("id").to_string();
    assert_eq!(
        r.header("location"),
        Some(format!("{}/api/storage_volumes/{id}", api.base).as_str())
    );
    assert!(v.attr("href").ends_with(&id));
    // An empty capacity is the default.
    let v = xml(&post_form(&api, "/api/storage_volumes", DEMO, "capacity=").text);
    assert_eq!(v.text_of("capacity"), "1");

    // Invalid capacities: 400 in either format, nothing created.
    for bad in [
        "0",
        "-1",
        "1.5",
        "abc",
        "1e3",
        "%20",
        "99999999999999999999",
        "262145",
    ] {
        let r = post_form(
            &api,
            "/api/storage_volumes",
            DEMO,
            &format!("capacity={bad}"),
        );
        let e = xml_error(&r, 400);
        assert!(e.text_of("message").contains("capacity"), "{}", r.text);
        let r = post_form(
            &api,
            "/api/storage_volumes?format=json",
            DEMO,
            &format!("capacity={bad}"),
        );
        json_error(&r, 400);
    }
    // Invalid names, descriptions and realms.
    let long = "n".repeat(256);
    for form in [
        format!("name={long}"),
        "name=a%01b".to_string(),
        "realm_id=a%2Fb".to_string(),
        "realm_id=zone%20a".to_string(),
        format!("description={}", "d".repeat(65_536)),
        "description=a%00b".to_string(),
    ] {
        xml_error(&post_form(&api, "/api/storage_volumes", DEMO, &form), 400);
    }
    assert_eq!(count(&api, "storage_volumes", DEMO), 2);

    // Names with markup are escaped in XML and JSON, and kept verbatim.
    let name = "<b>&\"'</b> ../../etc/passwd";
    let form = format!(
        "name={}&capacity=2",
        name.replace('&', "%26")
            .replace('<', "%3C")
            .replace('"', "%22")
    );
    let r = post_form(&api, "/api/storage_volumes", DEMO, &form);
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(!r.text.contains("<b>"), "{}", r.text);
    let v = xml(&r.text);
    assert_eq!(v.text_of("name"), name);
    let r = get(
        &api,
        &format!("/api/storage_volumes/{}?format=json", v.attr("id")),
        DEMO,
    );
    assert_eq!(r.json["storage_volume"]["name"], name);
    // No name became a path.
    assert!(!api.dir.join("etc").exists() && !api.tmp.path().join("etc").exists());
}

#[test]
fn clone_from_snapshot() {
    let api = Api::start();
    let vol = volume(&api, DEMO, "capacity=2");
    // Write through NBD, snapshot, overwrite.
    qemu_io(
        &api.nbd_uri(&vol),
        &["write -P 0xab 0 64k", "write -P 0x11 1G 4k"],
    );
    let snap = snapshot(&api, DEMO, &vol);
    qemu_io(&api.nbd_uri(&vol), &["write -P 0xcd 0 64k"]);

    // The clone has the snapshot's capacity and bytes.
    let r = post_form(
        &api,
        "/api/storage_volumes",
        DEMO,
        &format!("snapshot_id={snap}&name=clone"),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let c = xml(&r.text);
    assert_eq!(c.text_of("capacity"), "2");
    let clone = c.attr("id").to_string();
    qemu_io_ro(
        &api.nbd_uri(&clone),
        &["read -P 0xab 0 64k", "read -P 0x11 1G 4k"],
    );
    qemu_io_ro(&api.nbd_uri(&vol), &["read -P 0xcd 0 64k"]);
    // Its OpenStack view names the snapshot.
    let r = api.get(&format!("/v1.1/demo/os-volumes/{clone}"), api_common::DEMO);
    assert_eq!(r.json["volume"]["snapshotId"], snap.as_str());

    // Bigger on request (the snapshot's bytes first, zeros after).
    let r = post_form(
        &api,
        "/api/storage_volumes",
        DEMO,
        &format!("snapshot_id={snap}&capacity=5"),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let big = xml(&r.text);
    assert_eq!(big.text_of("capacity"), "5");
    qemu_io_ro(
        &api.nbd_uri(big.attr("id")),
        &["read -P 0xab 0 64k", "read -P 0 4G 64k"],
    );
    // Smaller is refused; the same size is fine.
    let r = post_form(
        &api,
        "/api/storage_volumes",
        DEMO,
        &format!("snapshot_id={snap}&capacity=1"),
    );
    xml_error(&r, 400);
    let r = post_form(
        &api,
        "/api/storage_volumes",
        DEMO,
        &format!("snapshot_id={snap}&capacity=2"),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    // Unknown, malformed or foreign snapshots: 404; a volume id is not a snapshot.
    for s in [
        "00000000-0000-0000-0000-000000000000".to_string(),
        "snap-45b8d024".to_string(),
        vol.clone(),
    ] {
        let r = post_form(
            &api,
            "/api/storage_volumes",
            DEMO,
            &format!("snapshot_id={s}"),
        );
        xml_error(&r, 404);
    }
    let r = post_form(
        &api,
        "/api/storage_volumes",
        OTHER,
        &format!("snapshot_id={snap}"),
    );
    xml_error(&r, 404);
    assert_eq!(count(&api, "storage_volumes", DEMO), 4);
    assert_eq!(count(&api, "storage_volumes", OTHER), 0);

    // The snapshot can go first; the clone keeps its data.
    assert_eq!(
        delete(&api, &format!("/api/storage_snapshots/{snap}"), DEMO).status,
        204
    );
    qemu_io_ro(&api.nbd_uri(&clone), &["read -P 0xab 0 64k"]);
}

#[test]
fn attach_detach_delete_rules() {
    let api = Api::start();
    let a = volume(&api, DEMO, "");
    let b = volume(&api, DEMO, "");
    let c = volume(&api, DEMO, "");
    let attach = |id: &str, form: &str| {
        post_form(
            &api,
            &format!("/api/storage_volumes/{id}/attach"),
            DEMO,
            form,
        )
    };
    let detach = |id: &str| post_form(&api, &format!("/api/storage_volumes/{id}/detach"), DEMO, "");

    // Validation.
    xml_error(&attach(&a, ""), 400);
    xml_error(&attach(&a, "device=/dev/sdh"), 400);
    xml_error(&attach(&a, "instance_id=%20%20"), 400);
    for bad in [
        "sdh",
        "/dev/",
        "/dev/SDH",
        "/dev/../etc/passwd",
        "/dev/sd%20h",
    ] {
        xml_error(&attach(&a, &format!("instance_id=i-1&device={bad}")), 400);
    }
    xml_error(&attach("nope", "instance_id=i-1&device=/dev/sdh"), 404);

    // Attach: 202 with the volume, IN-USE, mounted.
    let r = attach(&a, "instance_id=i-1&device=/dev/sdh");
    assert_eq!(r.status, 202, "{}", r.text);
    let v = xml(&r.text);
    assert_eq!(v.text_of("state"), "IN-USE");
    assert_eq!(v.child("mount").child("instance").attr("id"), "i-1");
    assert_eq!(v.child("mount").child("device").attr("name"), "/dev/sdh");
    same_structure("storage_volume_show.xml", &v);
    // Attached volumes cannot be attached again, nor deleted (409, both formats).
    xml_error(&attach(&a, "instance_id=i-2&device=/dev/sdh"), 409);
    let e = xml_error(
        &delete(&api, &format!("/api/storage_volumes/{a}"), DEMO),
        409,
    );
    assert!(e.text_of("message").contains("attached"), "{e:?}");
    json_error(
        &delete(&api, &format!("/api/storage_volumes/{a}?format=json"), DEMO),
        409,
    );
    // A device is unique per instance, not across instances.
    xml_error(&attach(&b, "instance_id=i-1&device=/dev/sdh"), 409);
    assert_eq!(attach(&b, "instance_id=i-2&device=/dev/sdh").status, 202);
    // No device: the first free one.
    let r = attach(&c, "instance_id=i-1");
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(
        xml(&r.text).child("mount").child("device").attr("name"),
        "/dev/vdb"
    );
    // Snapshots of attached volumes are allowed.
    snapshot(&api, DEMO, &a);

    // Detach: 202, AVAILABLE, no mount; twice is 409.
    let r = detach(&a);
    assert_eq!(r.status, 202, "{}", r.text);
    let v = xml(&r.text);
    assert_eq!(v.text_of("state"), "AVAILABLE");
    assert!(v.find("mount").is_none());
    xml_error(&detach(&a), 409);
    json_error(
        &post_form(
            &api,
            &format!("/api/storage_volumes/{a}/detach?format=json"),
            DEMO,
            "",
        ),
        409,
    );
    // The freed device can be reused.
    assert_eq!(attach(&a, "instance_id=i-1&device=/dev/sdh").status, 202);
    assert_eq!(detach(&a).status, 202);
    // Other tenants cannot touch it.
    xml_error(
        &post_form(&api, &format!("/api/storage_volumes/{b}/detach"), OTHER, ""),
        404,
    );
    xml_error(
        &delete(&api, &format!("/api/storage_volumes/{a}"), OTHER),
        404,
    );

    // Delete: 204, then 404; its snapshot stays.
    let r = delete(&api, &format!("/api/storage_volumes/{a}"), DEMO);
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    xml_error(&get(&api, &format!("/api/storage_volumes/{a}"), DEMO), 404);
    xml_error(
        &delete(&api, &format!("/api/storage_volumes/{a}"), DEMO),
        404,
    );
    assert_eq!(count(&api, "storage_snapshots", DEMO), 1);
    // Methods.
    let r = call(
        &api,
        "PUT",
        &format!("/api/storage_volumes/{b}"),
        Some(DEMO),
        &[],
        None,
    );
    xml_error(&r, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, DELETE, OPTIONS"));
    let r = call(
        &api,
        "GET",
        &format!("/api/storage_volumes/{b}/attach"),
        Some(DEMO),
        &[],
        None,
    );
    xml_error(&r, 405);
    let r = call(
        &api,
        "DELETE",
        "/api/storage_snapshots",
        Some(DEMO),
        &[],
        None,
    );
    xml_error(&r, 405);
}

#[test]
fn snapshot_rules() {
    let api = Api::start();
    let vol = volume(&api, DEMO, "capacity=2");
    let snap = |form: &str| post_form(&api, "/api/storage_snapshots", DEMO, form);
    let e = xml_error(&snap(""), 400);
    assert!(e.text_of("message").contains("volume_id"), "{e:?}");
    json_error(
        &post_form(&api, "/api/storage_snapshots?format=json", DEMO, "name=x"),
        400,
    );
    xml_error(&snap("volume_id=vol-99fbe5f2"), 404);
    xml_error(&snap("volume_id=00000000-0000-0000-0000-000000000000"), 404);
    xml_error(
        &post_form(
            &api,
            "/api/storage_snapshots",
            OTHER,
            &format!("volume_id={vol}"),
        ),
        404,
    );
    // A snapshot id is not a volume.
    let s = snapshot(&api, DEMO, &vol);
    xml_error(&snap(&format!("volume_id={s}")), 404);
    // Name and description.
    let r = snap(&format!(
        "volume_id={vol}&name=nightly&description=before%20upgrade"
    ));
    assert_eq!(r.status, 201, "{}", r.text);
    let x = xml(&r.text);
    assert_eq!(x.text_of("name"), "nightly");
    assert_eq!(x.text_of("description"), "before upgrade");
    let r = api.get(
        &format!("/v1.1/demo/os-snapshots/{}", x.attr("id")),
        api_common::DEMO,
    );
    assert_eq!(r.json["snapshot"]["displayName"], "nightly");
    assert_eq!(r.json["snapshot"]["size"], 2);
    // Show and delete of unknown or foreign ones: 404.
    xml_error(
        &get(&api, "/api/storage_snapshots/snap-45b8d024", DEMO),
        404,
    );
    xml_error(
        &get(&api, &format!("/api/storage_snapshots/{vol}"), DEMO),
        404,
    );
    xml_error(&get(&api, &format!("/api/storage_volumes/{s}"), DEMO), 404);
    xml_error(
        &delete(&api, &format!("/api/storage_snapshots/{s}"), OTHER),
        404,
    );
    json_error(
        &get(
            &api,
            &format!("/api/storage_snapshots/{s}?format=json"),
            OTHER,
        ),
        404,
    );
    assert_eq!(count(&api, "storage_snapshots", DEMO), 2);
    assert_eq!(count(&api, "storage_snapshots", OTHER), 0);
    // The volume can go first; the snapshot stays with its volume reference.
    assert_eq!(
        delete(&api, &format!("/api/storage_volumes/{vol}"), DEMO).status,
        204
    );
    let x = xml(&get(&api, &format!("/api/storage_snapshots/{s}"), DEMO).text);
    assert_eq!(x.child("storage_volume").attr("id"), vol);
}

#[test]
fn quotas() {
    // small: 3 GB, 2 volumes, 1 snapshot.
    let api = Api::start();
    let over = |r: &api_common::Resp| {
        let e = xml_error(r, 413);
        assert!(e.text_of("message").contains("quota"), "{}", r.text);
    };
    over(&post_form(
        &api,
        "/api/storage_volumes",
        SMALL,
        "capacity=4",
    ));
    let a = volume(&api, SMALL, "capacity=1");
    over(&post_form(
        &api,
        "/api/storage_volumes",
        SMALL,
        "capacity=3",
    ));
    let s = snapshot(&api, SMALL, &a);
    // Snapshot count (1).
    over(&post_form(
        &api,
        "/api/storage_snapshots",
        SMALL,
        &format!("volume_id={a}"),
    ));
    assert_eq!(
        delete(&api, &format!("/api/storage_snapshots/{s}"), SMALL).status,
        204
    );
    let _b = volume(&api, SMALL, "capacity=2");
    // Volume count (2).
    over(&post_form(
        &api,
        "/api/storage_volumes",
        SMALL,
        "capacity=1",
    ));
    // Gigabytes for a snapshot: 3 used, 1 more asked.
    over(&post_form(
        &api,
        "/api/storage_snapshots",
        SMALL,
        &format!("volume_id={a}"),
    ));
    // JSON too; and nothing was left behind.
    json_error(
        &post_form(
            &api,
            "/api/storage_volumes?format=json",
            SMALL,
            "capacity=1",
        ),
        413,
    );
    assert_eq!(count(&api, "storage_volumes", SMALL), 2);
    assert_eq!(count(&api, "storage_snapshots", SMALL), 0);
    // Volumes made through OpenStack count here too.
    let api2 = Api::start();
    api2.volume("small", api_common::SMALL, 3);
    over(&post_form(&api2, "/api/storage_volumes", SMALL, ""));
}

#[test]
fn bad_input() {
    let mut api = Api::start();
    let post = |ct: &str, body: &[u8]| {
        call(
            &api,
            "POST",
            "/api/storage_volumes",
            Some(DEMO),
            &[],
            Some((ct, body)),
        )
    };
    // Malformed bodies: 400.
    for (ct, body) in [
        ("application/json", &b"{\"capacity\": "[..]),
        ("application/json", b"[1, 2]"),
        ("application/json", b"{\"capacity\": [1]}"),
        ("application/json", b"{\"name\": {\"a\": 1}}"),
        ("application/json", b"{\"capacity\": null}"),
        (
            "application/xml",
            b"<storage_volume><capacity>1</storage_volume>",
        ),
        ("application/xml", b"<a><b><c>1</c></b></a>"),
        ("application/xml", b"not xml"),
        (
            "text/xml",
            b"<!DOCTYPE x [<!ENTITY a \"aaaa\">]><x><name>&a;</name></x>",
        ),
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=zz", b"--zz\r\nno headers"),
        ("application/x-www-form-urlencoded", b"name=\xff\xfe"),
    ] {
        let r = post(ct, body);
        xml_error(&r, 400);
    }
    // JSON errors when asked.
    let r = call(
        &api,
        "POST",
        "/api/storage_volumes?format=json",
        Some(DEMO),
        &[],
        Some(("application/json", b"{")),
    );
    json_error(&r, 400);
    // Unsupported body types: 415.
    xml_error(&post("text/plain", b"capacity=1"), 415);
    xml_error(&post("image/png", b"\x89PNG"), 415);
    // Oversized bodies: 413 in this dialect's format.
    let big = vec![b'a'; (1 << 20) + 10];
    let r = post("application/x-www-form-urlencoded", &big);
    xml_error(&r, 413);
    let r = call(
        &api,
        "POST",
        "/api/storage_snapshots?format=json",
        Some(DEMO),
        &[],
        Some(("application/x-www-form-urlencoded", &big)),
    );
    json_error(&r, 413);
    // Too many parameters.
    let many: Vec<String> = (0..100).map(|i| format!("p{i}=1")).collect();
    xml_error(
        &post(
            "application/x-www-form-urlencoded",
            many.join("&").as_bytes(),
        ),
        400,
    );
    assert_eq!(count(&api, "storage_volumes", DEMO), 0);

    // Unknown ids and path traversal: 404, never a file.
    for path in [
        "/api/storage_volumes/..%2F..%2Fetc%2Fpasswd",
        "/api/storage_volumes/..%5C..%5Cetc",
        "/api/storage_snapshots/..%2Fauth.toml",
        "/api/storage_volumes/x/y/z",
        "/api/storage_volumes/%00",
        "/api/instances",
        "/api/storage_volume",
        "/api/realms",
    ] {
        let r = get(&api, path, DEMO);
        let e = xml_error(&r, 404);
        assert!(!e.text_of("message").contains("root:"), "{}", r.text);
    }
    let long = format!("/api/storage_volumes/{}", "x".repeat(5000));
    let r = get(&api, &long, DEMO);
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(
        r.text.len() < 2000,
        "error echoes the whole id: {}",
        r.text.len()
    );

    // Still serving, and still restartable.
    assert!(api.alive());
    api.restart();
    assert_eq!(count(&api, "storage_volumes", DEMO), 0);
}

#[test]
fn concurrent_check_then_act() {
    let api = Api::start();
    // Eight attaches of one volume at once: exactly one wins.
    let vol = volume(&api, DEMO, "");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let (api, vol) = (&api, &vol);
                s.spawn(move || {
                    post_form(
                        api,
                        &format!("/api/storage_volumes/{vol}/attach"),
                        DEMO,
                        &format!("instance_id=i-{i}&device=/dev/sdf"),
                    )
                    .status
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&s| s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        7,
        "{statuses:?}"
    );
    // Eight creates against a quota of two volumes: exactly two are made.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let api = &api;
                s.spawn(move || post_form(api, "/api/storage_volumes", SMALL, "capacity=1").status)
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 413).count(),
        6,
        "{statuses:?}"
    );
    assert_eq!(count(&api, "storage_volumes", SMALL), 2);
}
