//! Black-box tests of the REST API's HP / OpenStack os-volumes v1.1 dialect:
//! every business rule of the seed and of Nova (volume create, images,
//! update, delete, attach, snapshot, extend, revert), quotas, pagination,
//! tenant isolation and auth, and every HTTP fault (404, 405, 413, 415,
//! 400 for malformed JSON of every kind), against a real `blockd serve`.

mod api_common;

use api_common::schema::*;
use api_common::{blockd, qemu_io, Api, AUTH, DEMO, OTHER, SMALL};
use serde_json::{json, Value};

const V: &str = "/v1.1/demo";

// ---- business rules ----

#[test]
fn volume_create_rules() {
    let api = Api::start();
    let p = format!("{V}/os-volumes");
    for bad in [
        json!(0),
        json!("0"),
        json!(""),
        json!("abc"),
        json!(-1),
        json!(1.5),
        json!(true),
        json!([1]),
        json!("1G"),
    ] {
        let r = api.post(&p, DEMO, &json!({"volume": {"size": bad}}));
        fault(&r, 400);
    }
    // Size required unless from a snapshot or image.
    fault(
        &api.post(&p, DEMO, &json!({"volume": {"display_name": "x"}})),
        400,
    );
    // Missing or invalid body: 422.
    for body in [
        json!({}),
        json!({"volumes": {"size": 1}}),
        json!({"volume": 1}),
        json!([1]),
        json!(null),
    ] {
        fault(&api.post(&p, DEMO, &body), 422);
    }
    fault(
        &api.raw(
            "POST",
            &p,
            Some(DEMO),
            Some((Some("application/json"), b"")),
        ),
        422,
    );
    fault(&api.raw("POST", &p, Some(DEMO), None), 422);
    // Field types and lengths.
    for vol in [
        json!({"size": 1, "display_name": 5}),
        json!({"size": 1, "display_name": "x".repeat(256)}),
        json!({"size": 1, "metadata": {"k": 1}}),
        json!({"size": 1, "metadata": ["k"]}),
        json!({"size": 1, "metadata": {"": "v"}}),
        json!({"size": 1, "metadata": {"k": "v".repeat(256)}}),
        json!({"size": 1, "availability_zone": 3}),
        json!({"size": 1, "snapshot_id": {"id": 1}}),
        json!({"size": 1_000_000_000}),
    ] {
        fault(&api.post(&p, DEMO, &json!({ "volume": vol })), 400);
    }
    // Zone and type are recorded; unknown keys are ignored.
    let r = api.post(
        &p,
        DEMO,
        &json!({"volume": {"size": 2, "availability_zone": "az-2", "volume_type": "fast", "x": 1,
            "display_name": null, "snapshot_id": "", "imageRef": null}}),
    );
    expect(&r, 200, &vol_one());
    assert_eq!(r.json["volume"]["availabilityZone"], "az-2");
    assert_eq!(r.json["volume"]["volumeType"], "fast");
    assert_eq!(r.json["volume"]["size"], 2);
    let vol = r.json["volume"]["id"].as_str().unwrap().to_string();
    // snapshot_id and imageRef are exclusive.
    let snap = api.post(
        &format!("{V}/os-snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": vol}}),
    );
    let snap = snap.json["snapshot"]["id"].as_str().unwrap().to_string();
    let r = api.post(
        &p,
        DEMO,
        &json!({"volume": {"size": 1, "snapshot_id": snap, "imageRef": "img"}}),
    );
    fault(&r, 400);
    // An unknown snapshot is 404, an unknown image 400.
    let r = api.post(&p, DEMO, &json!({"volume": {"size": 1, "snapshot_id": 31}}));
    fault(&r, 404);
    assert_eq!(
        r.json["itemNotFound"]["message"],
        "Snapshot 31 could not be found."
    );
    fault(
        &api.post(
            &p,
            DEMO,
            &json!({"volume": {"size": 1, "imageRef": "nope"}}),
        ),
        400,
    );
    // From a snapshot: the snapshot's size wins, size may be left out.
    for size in [json!(5), json!(1), Value::Null] {
        let r = api.post(
            &p,
            DEMO,
            &json!({"volume": {"size": size, "snapshot_id": snap}}),
        );
        expect(&r, 200, &vol_one());
        assert_eq!(r.json["volume"]["size"], 2, "size {size}");
        assert_eq!(r.json["volume"]["snapshotId"], snap.as_str());
    }
    // A bad size is still refused with a snapshot.
    fault(
        &api.post(
            &p,
            DEMO,
            &json!({"volume": {"size": "0", "snapshot_id": snap}}),
        ),
        400,
    );
}

#[test]
fn volume_from_image() {
    // An image made offline (public: no tenant): 1 MiB of 0xab.
    let mut image_id = String::new();
    let api = Api::start_with(Some(AUTH), |dir| {
        let f = dir.parent().unwrap().join("img.raw");
        std::fs::write(&f, vec![0xab; 1 << 20]).unwrap();
        blockd(dir, &["import", f.to_str().unwrap(), "base"]);
        image_id = blockd(dir, &["image", "create", "base", "golden"])
            .trim()
            .to_string();
    });
    let p = format!("{V}/os-volumes");
    // By name, no size: the image's size rounded up to 1 GB.
    let r = api.post(&p, DEMO, &json!({"volume": {"imageRef": "golden"}}));
    expect(&r, 200, &vol_one());
    assert_eq!(r.json["volume"]["size"], 1);
    let v1 = r.json["volume"]["id"].as_str().unwrap().to_string();
    // By id, larger, for another tenant (public image).
    let r = api.post(
        "/v1.1/other/os-volumes",
        OTHER,
        &json!({"volume": {"imageRef": image_id, "size": 3}}),
    );
    expect(&r, 200, &vol_one());
    assert_eq!(r.json["volume"]["size"], 3);
    let v3 = r.json["volume"]["id"].as_str().unwrap().to_string();
    // The data came along; the rest reads as zeroes.
    for v in [&v1, &v3] {
        qemu_io(
            &api.nbd_uri(v),
            &["read -P 0xab 0 1M", "read -P 0 1M 1M", "read -P 0 1023M 1M"],
        );
    }
    qemu_io(&api.nbd_uri(&v3), &["read -P 0 3071M 1M"]);
    // The offline volume and image are not volumes of any tenant.
    assert_eq!(
        api.get(&p, DEMO).json["volumes"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn volume_update_and_delete_rules() {
    let api = Api::start();
    let vol = api.volume("demo", DEMO, 1);
    let p = format!("{V}/os-volumes/{vol}");
    let r = api.put(
        &p,
        DEMO,
        &json!({"volume": {"display_name": "renamed", "display_description": "d", "metadata": {"a": "1"}}}),
    );
    expect(&r, 200, &vol_one());
    assert_eq!(r.json["volume"]["displayName"], "renamed");
    assert_eq!(r.json["volume"]["metadata"], json!({"a": "1"}));
    // Metadata is replaced; absent fields stay; null clears.
    let r = api.put(&p, DEMO, &json!({"volume": {"metadata": {"b": "2"}}}));
    assert_eq!(r.json["volume"]["metadata"], json!({"b": "2"}));
    assert_eq!(r.json["volume"]["displayName"], "renamed");
    let r = api.put(&p, DEMO, &json!({"volume": {"display_name": null}}));
    assert_eq!(r.json["volume"]["displayName"], Value::Null);
    assert_eq!(r.json["volume"]["displayDescription"], "d");
    fault(&api.put(&p, DEMO, &json!({"display_name": "x"})), 422);
    fault(
        &api.put(&p, DEMO, &json!({"volume": {"metadata": {"k": false}}})),
        400,
    );
    fault(
        &api.put(
            &format!("{V}/os-volumes/not-a-uuid"),
            DEMO,
            &json!({"volume": {}}),
        ),
        404,
    );

    // An in-use volume cannot be deleted (400), an available one can.
    let att = format!("{V}/servers/srv/os-volume_attachments");
    expect(
        &api.post(&att, DEMO, &json!({"volumeAttachment": {"volumeId": vol}})),
        200,
        &att_one(),
    );
    let r = api.delete(&p, DEMO);
    fault(&r, 400);
    assert!(r.json["badRequest"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid volume"));
    accepted(&api.delete(&format!("{att}/{vol}"), DEMO));
    accepted(&api.delete(&p, DEMO));
}

#[test]
fn attach_rules() {
    let api = Api::start();
    let (a, b, c) = (
        api.volume("demo", DEMO, 1),
        api.volume("demo", DEMO, 1),
        api.volume("demo", DEMO, 1),
    );
    let s1 = format!("{V}/servers/s1/os-volume_attachments");
    let s2 = format!("{V}/servers/s2/os-volume_attachments");
    let attach = |base: &str, vol: &str, dev: Option<&str>| {
        let mut body = json!({"volumeAttachment": {"volumeId": vol}});
        if let Some(d) = dev {
            body["volumeAttachment"]["device"] = json!(d);
        }
        api.post(base, DEMO, &body)
    };
    // Invalid device names.
    for dev in [
        "vdb",
        "/dev/",
        "/dev/VDB",
        "/dev/vd b",
        "/dev/../x",
        "/dev/1",
    ] {
        fault(&attach(&s1, &a, Some(dev)), 400);
    }
    fault(
        &api.post(
            &s1,
            DEMO,
            &json!({"volumeAttachment": {"volumeId": a, "device": 5}}),
        ),
        400,
    );
    // Missing volumeId: 400; missing wrapper: 422; unknown volume: 404.
    fault(
        &api.post(
            &s1,
            DEMO,
            &json!({"volumeAttachment": {"device": "/dev/vdb"}}),
        ),
        400,
    );
    fault(&api.post(&s1, DEMO, &json!({"volumeId": a})), 422);
    fault(
        &attach(&s1, "00000000-0000-4000-8000-000000000000", None),
        404,
    );
    // A server may have many volumes; device names are unique per server.
    expect(&attach(&s1, &a, Some("/dev/vdb")), 200, &att_one());
    let r = attach(&s1, &b, Some("/dev/vdb"));
    fault(&r, 409);
    expect(&attach(&s1, &b, None), 200, &att_one());
    // The automatic name skips taken ones.
    let r = api.get(&format!("{s1}/{b}"), DEMO);
    assert_eq!(r.json["volumeAttachment"]["device"], "/dev/vdc");
    // Another server may reuse a device name.
    expect(&attach(&s2, &c, Some("/dev/vdb")), 200, &att_one());
    // One server per volume: an in-use volume does not attach again.
    let r = attach(&s2, &a, Some("/dev/vdd"));
    fault(&r, 400);
    fault(&attach(&s1, &a, Some("/dev/vdd")), 400);
    let r = api.get(&s1, DEMO);
    expect(&r, 200, &att_list());
    let mut got = ids(&r, "volumeAttachments");
    got.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(got, want);
    // Show on the wrong server, detach from the wrong server: 404.
    fault(&api.get(&format!("{s2}/{a}"), DEMO), 404);
    fault(&api.delete(&format!("{s2}/{a}"), DEMO), 404);
    // Detach only when in-use.
    accepted(&api.delete(&format!("{s1}/{a}"), DEMO));
    let r = api.delete(&format!("{s1}/{a}"), DEMO);
    fault(&r, 400);
    fault(
        &api.delete(&format!("{s1}/00000000-0000-4000-8000-000000000000"), DEMO),
        404,
    );
    // Detached, the device name is free again.
    expect(
        &attach(&s1, &c, Some("/dev/vdb")),
        400,
        &fault_schema("badRequest", 400),
    );
    expect(&attach(&s1, &a, Some("/dev/vdb")), 200, &att_one());
    // Pagination applies to attachments too.
    let r = api.get(&format!("{s1}?limit=1"), DEMO);
    assert_eq!(ids(&r, "volumeAttachments").len(), 1);
}

#[test]
fn snapshot_rules() {
    let api = Api::start();
    let vol = api.volume("demo", DEMO, 2);
    let p = format!("{V}/os-snapshots");
    // volume_id required; force must parse as a boolean.
    fault(
        &api.post(&p, DEMO, &json!({"snapshot": {"force": true}})),
        400,
    );
    fault(&api.post(&p, DEMO, &json!({"volume_id": vol})), 422);
    for bad in [json!("maybe"), json!(2), json!([]), json!({})] {
        fault(
            &api.post(
                &p,
                DEMO,
                &json!({"snapshot": {"volume_id": vol, "force": bad}}),
            ),
            400,
        );
    }
    for ok in [
        json!("false"),
        json!("0"),
        json!("no"),
        json!(false),
        json!(null),
    ] {
        expect(
            &api.post(
                &p,
                DEMO,
                &json!({"snapshot": {"volume_id": vol, "force": ok}}),
            ),
            200,
            &snap_one(),
        );
    }
    // An in-use volume needs force.
    let att = format!("{V}/servers/srv/os-volume_attachments");
    expect(
        &api.post(&att, DEMO, &json!({"volumeAttachment": {"volumeId": vol}})),
        200,
        &att_one(),
    );
    for no in [json!(false), json!("false"), Value::Null] {
        let r = api.post(
            &p,
            DEMO,
            &json!({"snapshot": {"volume_id": vol, "force": no}}),
        );
        fault(&r, 400);
    }
    for yes in [json!(true), json!("True"), json!("yes"), json!(1)] {
        let r = api.post(
            &p,
            DEMO,
            &json!({"snapshot": {"volume_id": vol, "force": yes}}),
        );
        expect(&r, 200, &snap_one());
        assert_eq!(r.json["snapshot"]["size"], 2);
    }
    // Snapshot and volume deletable in either order.
    accepted(&api.delete(&format!("{att}/{vol}"), DEMO));
    let snaps = ids(&api.get(&p, DEMO), "snapshots");
    assert_eq!(snaps.len(), 9);
    accepted(&api.delete(&format!("{V}/os-volumes/{vol}"), DEMO));
    let r = api.get(&format!("{p}/{}", snaps[0]), DEMO);
    expect(&r, 200, &snap_one());
    assert_eq!(r.json["snapshot"]["volumeId"], vol.as_str());
    let r = api.post(
        &format!("{V}/os-volumes"),
        DEMO,
        &json!({"volume": {"snapshot_id": snaps[0]}}),
    );
    expect(&r, 200, &vol_one());
    let clone = r.json["volume"]["id"].as_str().unwrap().to_string();
    for s in &snaps {
        accepted(&api.delete(&format!("{p}/{s}"), DEMO));
    }
    expect(
        &api.get(&format!("{V}/os-volumes/{clone}"), DEMO),
        200,
        &vol_one(),
    );
}

#[test]
fn extend_and_revert_actions() {
    let api = Api::start();
    let vol = api.volume("demo", DEMO, 1);
    let act = format!("{V}/os-volumes/{vol}/action");
    accepted(&api.post(&act, DEMO, &json!({"os-extend": {"new_size": 3}})));
    assert_eq!(
        api.get(&format!("{V}/os-volumes/{vol}"), DEMO).json["volume"]["size"],
        3
    );
    for bad in [
        json!({"os-extend": {"new_size": 3}}),
        json!({"os-extend": {"new_size": 2}}),
        json!({"os-extend": {"new_size": "x"}}),
        json!({"os-extend": {}}),
        json!({"os-extend": 4}),
    ] {
        fault(&api.post(&act, DEMO, &bad), 400);
    }
    // Unknown or malformed actions.
    let r = api.post(&act, DEMO, &json!({"os-frobnicate": {}}));
    fault(&r, 400);
    assert_eq!(
        r.json["badRequest"]["message"],
        "There is no such action: os-frobnicate"
    );
    fault(&api.post(&act, DEMO, &json!({})), 400);
    fault(
        &api.post(
            &act,
            DEMO,
            &json!({"os-extend": {"new_size": 5}, "revert": {}}),
        ),
        400,
    );
    fault(
        &api.post(
            &format!("{V}/os-volumes/00000000-0000-4000-8000-000000000000/action"),
            DEMO,
            &json!({"os-extend": {"new_size": 5}}),
        ),
        404,
    );
    fault(&api.get(&act, DEMO), 405);

    // Revert: data written after the snapshot goes away, size comes back.
    let uri = api.nbd_uri(&vol);
    qemu_io(&uri, &["write -P 0x11 0 64k"]);
    let r = api.post(
        &format!("{V}/os-snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": vol}}),
    );
    let snap = r.json["snapshot"]["id"].as_str().unwrap().to_string();
    qemu_io(&uri, &["write -P 0x22 0 64k"]);
    accepted(&api.post(&act, DEMO, &json!({"os-extend": {"new_size": 4}})));
    accepted(&api.post(&act, DEMO, &json!({"revert": {"snapshot_id": snap}})));
    qemu_io(&uri, &["read -P 0x11 0 64k"]);
    assert_eq!(
        api.get(&format!("{V}/os-volumes/{vol}"), DEMO).json["volume"]["size"],
        3
    );
    // Revert needs a snapshot of this volume, an available volume.
    let other = api.volume("demo", DEMO, 1);
    let r = api.post(
        &format!("{V}/os-snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": other}}),
    );
    let other_snap = r.json["snapshot"]["id"].as_str().unwrap().to_string();
    fault(
        &api.post(&act, DEMO, &json!({"revert": {"snapshot_id": other_snap}})),
        400,
    );
    fault(&api.post(&act, DEMO, &json!({"revert": {}})), 400);
    fault(
        &api.post(
            &act,
            DEMO,
            &json!({"revert": {"snapshot_id": "00000000-0000-4000-8000-000000000000"}}),
        ),
        404,
    );
    let att = format!("{V}/servers/srv/os-volume_attachments");
    expect(
        &api.post(&att, DEMO, &json!({"volumeAttachment": {"volumeId": vol}})),
        200,
        &att_one(),
    );
    fault(
        &api.post(&act, DEMO, &json!({"revert": {"snapshot_id": snap}})),
        400,
    );
    // Extend works while in use.
    accepted(&api.post(&act, DEMO, &json!({"os-extend": {"new_size": 5}})));
}

#[test]
fn quotas() {
    let api = Api::start();
    let t = "/v1.1/small";
    let p = format!("{t}/os-volumes");
    // gigabytes = 3: a 4 GB volume is refused with the seed's fault shape.
    let r = api.post(&p, SMALL, &json!({"volume": {"size": 4}}));
    fault(&r, 413);
    let msg = r.json["overLimit"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Volume quota exceeded. You cannot create a volume of size 4G"),
        "{msg}"
    );
    assert_eq!(r.json["overLimit"]["retryAfter"], 0);
    let v1 = api.volume("small", SMALL, 1);
    // A snapshot counts against gigabytes and snapshots.
    let sp = format!("{t}/os-snapshots");
    expect(
        &api.post(&sp, SMALL, &json!({"snapshot": {"volume_id": v1}})),
        200,
        &snap_one(),
    );
    fault(
        &api.post(&sp, SMALL, &json!({"snapshot": {"volume_id": v1}})),
        413,
    );
    // 2 GB used: 1 more fits, 2 do not.
    fault(&api.post(&p, SMALL, &json!({"volume": {"size": 2}})), 413);
    let v2 = api.volume("small", SMALL, 1);
    // volumes = 2.
    fault(&api.post(&p, SMALL, &json!({"volume": {"size": 1}})), 413);
    // Extending is counted too.
    let r = api.post(
        &format!("{p}/{v2}/action"),
        SMALL,
        &json!({"os-extend": {"new_size": 2}}),
    );
    fault(&r, 413);
    // Freed space is usable again.
    accepted(&api.delete(&format!("{p}/{v2}"), SMALL));
    accepted(&api.post(
        &format!("{p}/{v1}/action"),
        SMALL,
        &json!({"os-extend": {"new_size": 2}}),
    ));
    // Other tenants are not limited by small's quota.
    api.volume("demo", DEMO, 100);
}

#[test]
fn pagination() {
    let api = Api::start();
    let vols: Vec<String> = (0..5).map(|_| api.volume("demo", DEMO, 1)).collect();
    let list = |q: &str| api.get(&format!("{V}/os-volumes{q}"), DEMO);
    let all = ids(&list(""), "volumes");
    assert_eq!(all.len(), 5);
    let mut sorted = all.clone();
    sorted.sort();
    let mut want = vols.clone();
    want.sort();
    assert_eq!(sorted, want);
    assert_eq!(ids(&list("?limit=2"), "volumes"), all[..2]);
    assert_eq!(ids(&list("?limit=2&offset=2"), "volumes"), all[2..4]);
    assert_eq!(ids(&list("/detail?offset=4"), "volumes"), all[4..]);
    assert_eq!(ids(&list("?offset=9"), "volumes").len(), 0);
    assert_eq!(ids(&list("?limit=0"), "volumes").len(), 5);
    assert_eq!(ids(&list("?limit=100000"), "volumes").len(), 5);
    for bad in ["?limit=-1", "?offset=-1", "?limit=abc", "?offset=1.5"] {
        fault(&list(bad), 400);
    }
    let r = api.get(&format!("{V}/os-snapshots?limit=-3"), DEMO);
    fault(&r, 400);
}

#[test]
fn tenant_isolation() {
    let api = Api::start();
    let vol = api.volume("demo", DEMO, 1);
    let snap = api.post(
        &format!("{V}/os-snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": vol}}),
    );
    let snap = snap.json["snapshot"]["id"].as_str().unwrap().to_string();
    let o = "/v1.1/other";
    // Other tenants see nothing and touch nothing: 404.
    assert_eq!(
        api.get(&format!("{o}/os-volumes"), OTHER).json["volumes"],
        json!([])
    );
    assert_eq!(
        api.get(&format!("{o}/os-snapshots/detail"), OTHER).json["snapshots"],
        json!([])
    );
    fault(&api.get(&format!("{o}/os-volumes/{vol}"), OTHER), 404);
    fault(
        &api.put(
            &format!("{o}/os-volumes/{vol}"),
            OTHER,
            &json!({"volume": {"display_name": "x"}}),
        ),
        404,
    );
    fault(&api.delete(&format!("{o}/os-volumes/{vol}"), OTHER), 404);
    fault(
        &api.post(
            &format!("{o}/os-volumes/{vol}/action"),
            OTHER,
            &json!({"os-extend": {"new_size": 2}}),
        ),
        404,
    );
    fault(&api.get(&format!("{o}/os-snapshots/{snap}"), OTHER), 404);
    fault(&api.delete(&format!("{o}/os-snapshots/{snap}"), OTHER), 404);
    fault(
        &api.post(
            &format!("{o}/os-snapshots"),
            OTHER,
            &json!({"snapshot": {"volume_id": vol}}),
        ),
        404,
    );
    fault(
        &api.post(
            &format!("{o}/os-volumes"),
            OTHER,
            &json!({"volume": {"snapshot_id": snap}}),
        ),
        404,
    );
    let att = format!("{o}/servers/srv/os-volume_attachments");
    fault(
        &api.post(&att, OTHER, &json!({"volumeAttachment": {"volumeId": vol}})),
        404,
    );
    // A revert to another tenant's snapshot.
    let mine = api.volume("other", OTHER, 1);
    fault(
        &api.post(
            &format!("{o}/os-volumes/{mine}/action"),
            OTHER,
            &json!({"revert": {"snapshot_id": snap}}),
        ),
        404,
    );
    // Attachments of the same server id are per tenant.
    let demo_att = format!("{V}/servers/srv/os-volume_attachments");
    expect(
        &api.post(
            &demo_att,
            DEMO,
            &json!({"volumeAttachment": {"volumeId": vol, "device": "/dev/vdb"}}),
        ),
        200,
        &att_one(),
    );
    assert_eq!(api.get(&att, OTHER).json["volumeAttachments"], json!([]));
    fault(&api.get(&format!("{att}/{vol}"), OTHER), 404);
    fault(&api.delete(&format!("{att}/{vol}"), OTHER), 404);
    expect(
        &api.post(
            &att,
            OTHER,
            &json!({"volumeAttachment": {"volumeId": mine, "device": "/dev/vdb"}}),
        ),
        200,
        &att_one(),
    );
    // Nothing changed for demo.
    let r = api.get(&format!("{V}/os-volumes/{vol}"), DEMO);
    assert_eq!(r.json["volume"]["status"], "in-use");
    expect(
        &api.get(&format!("{V}/os-snapshots/{snap}"), DEMO),
        200,
        &snap_one(),
    );

    // Auth: no token or a bad one is 401; another tenant's token is 403.
    for path in [
        "/os-volumes",
        "/os-snapshots",
        "/servers/x/os-volume_attachments",
        "/nothing",
    ] {
        fault(&api.raw("GET", &format!("{V}{path}"), None, None), 401);
        fault(
            &api.raw("GET", &format!("{V}{path}"), Some("wrong"), None),
            401,
        );
        fault(&api.raw("GET", &format!("{V}{path}"), Some(""), None), 401);
        fault(&api.get(&format!("{V}{path}"), OTHER), 403);
    }
    fault(&api.get("/v1.1/nosuchtenant/os-volumes", DEMO), 403);
    fault(
        &api.raw("GET", "/v1.1/nosuchtenant/os-volumes", Some("x"), None),
        401,
    );
    fault(
        &api.raw(
            "DELETE",
            &format!("{V}/os-volumes/{vol}"),
            Some(OTHER),
            None,
        ),
        403,
    );
    let long = "x".repeat(10_000);
    fault(
        &api.raw("GET", &format!("{V}/os-volumes"), Some(&long), None),
        401,
    );
}

#[test]
fn http_errors_and_malformed_input() {
    let api = Api::start();
    let vol = api.volume("demo", DEMO, 1);
    let p = format!("{V}/os-volumes");
    // 404 for unknown paths and ids; 405 with Allow for wrong methods.
    fault(&api.get(&format!("{V}/nothing"), DEMO), 404);
    fault(&api.get(V, DEMO), 404);
    fault(&api.raw("GET", "/nothing", None, None), 404);
    fault(&api.get(&format!("{p}/not-a-uuid"), DEMO), 404);
    fault(&api.get(&format!("{V}/os-snapshots/{vol}"), DEMO), 404);
    for (m, path, allow) in [
        ("PATCH", p.clone(), "GET, POST"),
        ("DELETE", p.clone(), "GET, POST"),
        ("POST", format!("{p}/{vol}"), "GET, PUT, DELETE"),
        ("PUT", format!("{V}/os-snapshots"), "GET, POST"),
        ("POST", format!("{p}/detail"), "GET"),
        (
            "PUT",
            format!("{V}/servers/s/os-volume_attachments/{vol}"),
            "GET, DELETE",
        ),
    ] {
        let r = api.raw(
            m,
            &path,
            Some(DEMO),
            Some((Some("application/json"), b"{}")),
        );
        fault(&r, 405);
        assert_eq!(r.header("allow"), Some(allow), "{m} {path}");
    }
    // 415: a body that is not JSON by its Content-Type.
    let body = br#"{"volume": {"size": 1}}"#;
    for ct in [
        "application/xml",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        fault(
            &api.raw("POST", &p, Some(DEMO), Some((Some(ct), body))),
            415,
        );
    }
    // No Content-Type: taken as JSON; +json types and parameters are fine.
    expect(
        &api.raw("POST", &p, Some(DEMO), Some((None, body))),
        200,
        &vol_one(),
    );
    let ct = "application/vnd.openstack.compute+json; charset=utf-8";
    expect(
        &api.raw("POST", &p, Some(DEMO), Some((Some(ct), body))),
        200,
        &vol_one(),
    );
    // 400: malformed JSON of every kind.
    let deep = "[".repeat(100_000);
    for bad in [
        &b"{"[..],
        b"{\"volume\": }",
        b"nul",
        b"\xff\xfe{}",
        b"{\"volume\": {\"size\": 1}} x",
        deep.as_bytes(),
    ] {
        fault(
            &api.raw(
                "POST",
                &p,
                Some(DEMO),
                Some((Some("application/json"), bad)),
            ),
            400,
        );
    }
    // 413: over 1 MiB, with a Content-Length or streamed.
    let big = vec![b' '; (1 << 20) + 1];
    fault(
        &api.raw(
            "POST",
            &p,
            Some(DEMO),
            Some((Some("application/json"), &big)),
        ),
        413,
    );
    fault(&api.post_chunked(&p, DEMO, 3 << 20), 413);
    // Exactly 1 MiB of valid JSON is read (and is a 422: no volume object).
    let mut ok = b"{\"x\": \"".to_vec();
    ok.resize((1 << 20) - 2, b'a');
    ok.extend_from_slice(b"\"}");
    fault(
        &api.raw(
            "POST",
            &p,
            Some(DEMO),
            Some((Some("application/json"), &ok)),
        ),
        422,
    );
    // Odd paths and queries.
    fault(&api.get(&format!("{V}/os-volumes/%00"), DEMO), 404);
    fault(
        &api.get(&format!("{V}/servers/%0a/os-volume_attachments"), DEMO),
        400,
    );
    expect(
        &api.get(&format!("{p}?limit=1&&=&x=%zz"), DEMO),
        200,
        &vol_list(),
    );
    expect(&api.get(&format!("{p}/"), DEMO), 200, &vol_list());
    // Every response carries a request id.
    assert!(api
        .get(&p, DEMO)
        .header("x-compute-request-id")
        .unwrap()
        .starts_with("req-"));
}

/// Check-then-act sequences hold under concurrent requests: one attach
/// wins, a device name goes to one volume, quotas are never exceeded.
#[test]
fn concurrent_requests_keep_the_rules() {
    let api = Api::start();
    let vol = api.volume("demo", DEMO, 1);
    let statuses = |f: &(dyn Fn(usize) -> u16 + Sync)| -> Vec<u16> {
        let mut v: Vec<u16> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8).map(|i| s.spawn(move || f(i))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        v.sort();
        v
    };
    // The same volume to eight servers.
    let got = statuses(&|i| {
        let body = json!({"volumeAttachment": {"volumeId": vol}});
        api.post(
            &format!("{V}/servers/s{i}/os-volume_attachments"),
            DEMO,
            &body,
        )
        .status
    });
    assert_eq!(got, [200, 400, 400, 400, 400, 400, 400, 400]);
    // Eight volumes to one device name.
    let vols: Vec<String> = (0..8).map(|_| api.volume("demo", DEMO, 1)).collect();
    let got = statuses(&|i| {
        let body = json!({"volumeAttachment": {"volumeId": vols[i], "device": "/dev/vdq"}});
        api.post(
            &format!("{V}/servers/one/os-volume_attachments"),
            DEMO,
            &body,
        )
        .status
    });
    assert_eq!(got, [200, 409, 409, 409, 409, 409, 409, 409]);
    // Eight creates against a quota of two volumes.
    let got = statuses(&|_| {
        api.post(
            "/v1.1/small/os-volumes",
            SMALL,
            &json!({"volume": {"size": 1}}),
        )
        .status
    });
    assert_eq!(got, [200, 200, 413, 413, 413, 413, 413, 413]);
    let r = api.get("/v1.1/small/os-volumes", SMALL);
    assert_eq!(r.json["volumes"].as_array().unwrap().len(), 2);
}

/// Snapshots and clones of a huge volume go through the engine's O(1)
/// paths (no copying: this would not finish otherwise).
#[test]
fn huge_volumes_snapshot_and_clone() {
    let api = Api::start();
    let size = 200 * 1024; // 200 TB
    let vol = api.volume("demo", DEMO, size);
    qemu_io(
        &api.nbd_uri(&vol),
        &["write -P 0x77 0 64k", "write -P 0x78 204799G 64k"],
    );
    let r = api.post(
        &format!("{V}/os-snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": vol}}),
    );
    expect(&r, 200, &snap_one());
    assert_eq!(r.json["snapshot"]["size"], size);
    let snap = r.json["snapshot"]["id"].as_str().unwrap().to_string();
    let r = api.post(
        &format!("{V}/os-volumes"),
        DEMO,
        &json!({"volume": {"snapshot_id": snap}}),
    );
    expect(&r, 200, &vol_one());
    let clone = r.json["volume"]["id"].as_str().unwrap().to_string();
    qemu_io(
        &api.nbd_uri(&clone),
        &[
            "read -P 0x77 0 64k",
            "read -P 0x78 204799G 64k",
            "read -P 0 100T 64k",
        ],
    );
    // The largest volume the engine takes is 256 TiB.
    fault(
        &api.post(
            &format!("{V}/os-volumes"),
            DEMO,
            &json!({"volume": {"size": 262_145}}),
        ),
        400,
    );
    fault(
        &api.post(
            &format!("{V}/os-volumes/{vol}/action"),
            DEMO,
            &json!({"os-extend": {"new_size": 262_145}}),
        ),
        400,
    );
}
