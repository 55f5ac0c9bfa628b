//! Black-box tests of the minimal Keystone v3 and the Cinder block storage
//! v3 API against a real `blockd serve` over HTTP: discovery, password and
//! token logins, token validation, the service catalogue, microversions,
//! volumes (create from nothing, a snapshot, a volume; list, detail,
//! filters, sort, paging, summary, update, metadata, actions, delete),
//! snapshots, the volume type, zones, limits, quota sets, faults, and that
//! a Cinder volume is the same object in the os-volumes v1.1 dialect. The
//! attachments API and backups are in `api_cinder_backups.rs`.
//! The real `openstack` CLI runs in `openstack_cli.rs`.

mod api_common;
mod cinder_common;

use api_common::{Api, Resp, DEMO, OTHER, SMALL};
use cinder_common::{cinder_fault, create, get_v, login, login_body, token, C};
use serde_json::{json, Value};

#[test]
fn keystone_discovery_login_and_validation() {
    let mut api = Api::start();
    let b = &api.base;
    let r = api.raw("GET", "/v3", None, None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["version"]["status"], "stable");
    assert_eq!(r.json["version"]["links"][0]["href"], format!("{b}/v3/"));
    let r = api.raw("GET", "/identity/v3/", None, None);
    assert_eq!(
        r.json["version"]["links"][0]["href"],
        format!("{b}/identity/v3/")
    );
    let r = api.raw("GET", "/identity", None, None);
    assert_eq!(r.status, 300);
    assert_eq!(r.json["versions"]["values"][0]["id"], "v3.14");

    // Password login, project by name.
    let r = login(&api, "demo", "demo-password");
    assert_eq!(r.status, 201, "{}", r.text);
    let t = r.header("x-subject-token").unwrap().to_string();
    assert!(t.starts_with("bdt1."));
    let tok = &r.json["token"];
    assert_eq!(tok["project"]["id"], "demo");
    assert_eq!(tok["project"]["domain"]["name"], "Default");
    assert_eq!(tok["user"]["name"], "demo");
    assert_eq!(tok["methods"], json!(["password"]));
    let roles: Vec<&str> = tok["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"member") && !roles.contains(&"admin"),
        "{roles:?}"
    );
    assert!(tok["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(tok["expires_at"].as_str().unwrap() > tok["issued_at"].as_str().unwrap());
    let catalog = tok["catalog"].as_array().unwrap();
    for ty in ["volumev3", "block-storage"] {
        let svc = catalog
            .iter()
            .find(|s| s["type"] == ty)
            .unwrap_or_else(|| panic!("{ty}"));
        let urls: Vec<&str> = svc["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["url"].as_str().unwrap())
            .collect();
        assert_eq!(urls.len(), 3);
        assert!(
            urls.iter().all(|u| *u == format!("{b}/volume/v3/demo")),
            "{urls:?}"
        );
    }

    // Project by id, user by id; no scope.
    for body in [
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "demo", "password": "demo-password"}}}, "scope": {"project": {"id": "demo"}}}}),
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "demo", "password": "demo-password"}}}}}),
    ] {
        let r = api.post("/v3/auth/tokens", "", &body);
        assert_eq!(r.status, 201, "{}", r.text);
    }

    // Wrong password, another tenant's project, another domain: 401.
    let bad = [
        login_body(
            "demo",
            "nope",
            json!({"name": "demo", "domain": {"name": "Default"}}),
        ),
        login_body(
            "demo",
            "demo-password",
            json!({"name": "other", "domain": {"name": "Default"}}),
        ),
        login_body(
            "demo",
            "demo-password",
            json!({"name": "demo", "domain": {"name": "Elsewhere"}}),
        ),
    ];
    for body in bad {
        let r = api.post("/v3/auth/tokens", "", &body);
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.json["error"]["code"], 401);
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .starts_with("Keystone"));
    }
    let r = api.post("/v3/auth/tokens", "", &json!({"nope": 1}));
    assert_eq!(r.status, 400, "{}", r.text);

    // Token method: rescoped token, same expiry.
    let r = api.post(
        "/v3/auth/tokens",
        "",
        &json!({"auth": {"identity": {"methods": ["token"], "token": {"id": t}}, "scope": {"project": {"id": "demo"}}}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["token"]["expires_at"], tok["expires_at"]);
    assert_eq!(r.json["token"]["audit_ids"], tok["audit_ids"]);

    // Validation.
    let v = |auth: &str, subject: &str| {
        api.send(
            "GET",
            "/v3/auth/tokens",
            &[("X-Auth-Token", auth), ("X-Subject-Token", subject)],
            None,
        )
    };
    let r = v(&t, &t);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-subject-token"), Some(t.as_str()));
    assert_eq!(r.json["token"]["project"]["id"], "demo");
    assert_eq!(v(DEMO, &t).status, 200);
    // One character of the signature changed (not its last, whose spare
    // low bits a decoder may ignore, and never to itself).
    let i = t.len() - 10;
    let c = if &t[i..=i] == "A" { "B" } else { "A" };
    let tampered = format!("{}{c}{}", &t[..i], &t[i + 1..]);
    assert_eq!(v(&t, &tampered).status, 404);
    assert_eq!(v(&t, "garbage").status, 404);
    assert_eq!(v("garbage", &t).status, 401);
    assert_eq!(v(OTHER, &t).status, 403);
    let r = api.send("GET", "/v3/auth/tokens", &[("X-Subject-Token", &t)], None);
    assert_eq!(r.status, 401);
    // Own project and user.
    assert_eq!(
        api.get("/v3/auth/projects", &t).json["projects"][0]["id"],
        "demo"
    );
    assert_eq!(
        api.get("/v3/projects/demo", &t).json["project"]["name"],
        "demo"
    );
    assert_eq!(api.get("/v3/projects/other", &t).status, 403);
    assert_eq!(
        api.get("/v3/users/demo", &t).json["user"]["default_project_id"],
        "demo"
    );

    // Secrets never reach the log.
    let log = api.log().join("\n");
    assert!(!log.contains("demo-password") && !log.contains(&t), "{log}");
    assert!(log.contains("keystone: token issued"));

    // Tokens die with the server that signed them; static tokens stay.
    api.restart();
    cinder_fault(&api.get(&format!("{C}/volumes"), &t), 401, "unauthorized");
    assert_eq!(api.get(&format!("{C}/volumes"), DEMO).status, 200);
}

#[test]
fn cinder_discovery_microversions_and_auth() {
    let api = Api::start();
    let r = api.raw("GET", "/volume/", None, None);
    assert_eq!(r.status, 300, "{}", r.text);
    let v = &r.json["versions"][0];
    assert_eq!(v["id"], "v3.0");
    assert_eq!(v["min_version"], "3.0");
    assert_eq!(v["version"], "3.62");
    assert_eq!(r.header("openstack-api-version"), Some("volume 3.0"));
    assert_eq!(api.raw("GET", "/volume/v3/", None, None).status, 200);

    let t = token(&api, "demo", "demo-password");
    let r = get_v(&api, &format!("{C}/volumes"), &t, "volume 3.44");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("openstack-api-version"), Some("volume 3.44"));
    assert!(r.header("vary").unwrap().contains("OpenStack-API-Version"));
    let r = get_v(&api, &format!("{C}/volumes"), &t, "volume latest");
    assert_eq!(r.header("openstack-api-version"), Some("volume 3.62"));
    cinder_fault(
        &get_v(&api, &format!("{C}/volumes"), &t, "volume 3.63"),
        406,
        "notAcceptable",
    );
    cinder_fault(
        &get_v(&api, &format!("{C}/volumes"), &t, "volume 4.0"),
        406,
        "notAcceptable",
    );
    cinder_fault(
        &get_v(&api, &format!("{C}/volumes"), &t, "volume 3.x"),
        400,
        "badRequest",
    );
    // summary needs 3.12.
    cinder_fault(
        &get_v(&api, &format!("{C}/volumes/summary"), &t, "volume 3.11"),
        404,
        "itemNotFound",
    );

    // Auth: signed and static tokens; other tenants' are 403; bad ones 401.
    assert_eq!(api.get(&format!("{C}/volumes"), DEMO).status, 200);
    cinder_fault(&api.get(&format!("{C}/volumes"), OTHER), 403, "forbidden");
    cinder_fault(
        &api.get(&format!("{C}/volumes"), "bdt1.x.y"),
        401,
        "unauthorized",
    );
    cinder_fault(
        &api.raw("GET", &format!("{C}/volumes"), None, None),
        401,
        "unauthorized",
    );
    let other = token(&api, "other", "other-password");
    cinder_fault(&api.get(&format!("{C}/volumes"), &other), 403, "forbidden");
    cinder_fault(&api.get(&format!("{C}/nothing"), &t), 404, "itemNotFound");
    let r = api.raw("PATCH", &format!("{C}/volumes"), Some(&t), None);
    cinder_fault(&r, 405, "badMethod");
}

#[test]
fn cinder_volume_lifecycle_is_shared_with_v1_1() {
    let api = Api::start();
    let t = token(&api, "demo", "demo-password");
    let v = create(
        &api,
        &t,
        json!({"size": 1, "name": "db", "description": "data", "metadata": {"tier": "gold"}}),
    );
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["status"], "available");
    assert_eq!(v["size"], 1);
    assert_eq!(v["volume_type"], "__DEFAULT__");
    assert_eq!(v["availability_zone"], "nova");
    assert_eq!(v["bootable"], "false");
    assert_eq!(v["attachments"], json!([]));
    // The project is in show and the detailed list, not the create answer.
    assert!(v.get("os-vol-tenant-attr:tenant_id").is_none(), "{v}");
    assert_eq!(v["metadata"], json!({"tier": "gold"}));
    assert!(v["links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with(&format!("{C}/volumes/{id}")));

    // The same object through the v1.1 dialect, and back.
    let r = api.get(&format!("/v1.1/demo/os-volumes/{id}"), DEMO);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["volume"]["displayName"], "db");
    assert_eq!(r.json["volume"]["metadata"], json!({"tier": "gold"}));
    let old = api.volume("demo", DEMO, 2);
    let r = api.get(&format!("{C}/volumes/{old}"), &t);
    assert_eq!(r.json["volume"]["size"], 2);
    // Other tenants see neither.
    let ot = token(&api, "other", "other-password");
    cinder_fault(
        &api.get(&format!("/volume/v3/other/volumes/{id}"), &ot),
        404,
        "itemNotFound",
    );

    // List (brief), detail, show.
    let r = api.get(&format!("{C}/volumes"), &t);
    assert_eq!(r.json["volumes"].as_array().unwrap().len(), 2);
    assert_eq!(
        r.json["volumes"][0].as_object().unwrap().len(),
        3,
        "{}",
        r.text
    );
    let r = api.get(&format!("{C}/volumes/detail?sort=size:desc"), &t);
    assert_eq!(r.json["volumes"][0]["size"], 2, "{}", r.text);
    assert_eq!(r.json["volumes"][1]["name"], "db", "{}", r.text);

    // Update, metadata.
    let r = api.put(
        &format!("{C}/volumes/{id}"),
        &t,
        &json!({"volume": {"name": "db2", "description": null}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["volume"]["name"], "db2");
    assert_eq!(r.json["volume"]["description"], Value::Null);
    let r = api.post(
        &format!("{C}/volumes/{id}/metadata"),
        &t,
        &json!({"metadata": {"a": "1"}}),
    );
    assert_eq!(r.json["metadata"], json!({"tier": "gold", "a": "1"}));
    let r = api.delete(&format!("{C}/volumes/{id}/metadata/tier"), &t);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        api.get(&format!("{C}/volumes/{id}/metadata"), &t).json["metadata"],
        json!({"a": "1"})
    );
    cinder_fault(
        &api.get(&format!("{C}/volumes/{id}/metadata/tier"), &t),
        404,
        "itemNotFound",
    );

    // Extend; shrink is 400.
    let ext = |n: u64| {
        api.post(
            &format!("{C}/volumes/{id}/action"),
            &t,
            &json!({"os-extend": {"new_size": n}}),
        )
    };
    assert_eq!(ext(3).status, 202);
    assert_eq!(
        api.get(&format!("{C}/volumes/{id}"), &t).json["volume"]["size"],
        3
    );
    cinder_fault(&ext(2), 400, "badRequest");
    // Image metadata.
    let r = api.post(
        &format!("{C}/volumes/{id}/action"),
        &t,
        &json!({"os-set_image_metadata": {"metadata": {"os_type": "linux"}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        api.get(&format!("{C}/volumes/{id}"), &t).json["volume"]["volume_image_metadata"],
        json!({"os_type": "linux"})
    );
    // Admin actions are 403 for a member.
    let r = api.post(
        &format!("{C}/volumes/{id}/action"),
        &t,
        &json!({"os-reset_status": {"status": "error"}}),
    );
    cinder_fault(&r, 403, "forbidden");
    let r = api.post(
        &format!("{C}/volumes/{id}/action"),
        &t,
        &json!({"os-force_delete": {}}),
    );
    cinder_fault(&r, 403, "forbidden");
    cinder_fault(
        &api.post(
            &format!("{C}/volumes/{id}/action"),
            &t,
            &json!({"os-nope": {}}),
        ),
        400,
        "badRequest",
    );

    // Create faults.
    for bad in [
        json!({}),
        json!({"size": 0}),
        json!({"size": "x"}),
        json!({"size": 1, "availability_zone": "mars"}),
        json!({"size": 1, "multiattach": true}),
        json!({"size": 1, "backup_id": "b"}),
        json!({"snapshot_id": "a", "source_volid": "b"}),
        json!({"size": 1, "imageRef": "no-such-image"}),
    ] {
        let r = api.post(&format!("{C}/volumes"), &t, &json!({ "volume": bad }));
        cinder_fault(&r, 400, "badRequest");
    }
    let r = api.post(
        &format!("{C}/volumes"),
        &t,
        &json!({"volume": {"size": 1, "volume_type": "gold"}}),
    );
    cinder_fault(&r, 404, "itemNotFound");
    cinder_fault(
        &api.post(&format!("{C}/volumes"), &t, &json!({"x": 1})),
        400,
        "badRequest",
    );

    // Delete: 202, then 404; v1.1 agrees.
    assert_eq!(api.delete(&format!("{C}/volumes/{id}"), &t).status, 202);
    cinder_fault(
        &api.get(&format!("{C}/volumes/{id}"), &t),
        404,
        "itemNotFound",
    );
    assert_eq!(
        api.get(&format!("/v1.1/demo/os-volumes/{id}"), DEMO).status,
        404
    );
}

#[test]
fn cinder_snapshots_and_clones() {
    let api = Api::start();
    let t = token(&api, "demo", "demo-password");
    let v = create(&api, &t, json!({"size": 2, "name": "src"}));
    let vid = v["id"].as_str().unwrap();
    let r = api.post(
        &format!("{C}/snapshots"),
        &t,
        &json!({"snapshot": {"volume_id": vid, "name": "s1", "metadata": {"k": "v"}}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let s = &r.json["snapshot"];
    let sid = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["volume_id"], vid);
    assert_eq!(s["size"], 2);
    assert_eq!(s["status"], "available");
    assert_eq!(s["metadata"], json!({"k": "v"}));
    let r = api.get(&format!("{C}/snapshots/detail"), &t);
    assert_eq!(
        r.json["snapshots"][0]["os-extended-snapshot-attributes:progress"],
        "100%"
    );
    assert_eq!(
        api.get(&format!("{C}/snapshots?volume_id={vid}"), &t).json["snapshots"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = api.put(
        &format!("{C}/snapshots/{sid}"),
        &t,
        &json!({"snapshot": {"name": "s2"}}),
    );
    assert_eq!(r.json["snapshot"]["name"], "s2");
    // The v1.1 dialect sees it.
    assert_eq!(
        api.get(&format!("/v1.1/demo/os-snapshots/{sid}"), DEMO)
            .json["snapshot"]["displayName"],
        "s2"
    );

    // From the snapshot (bigger), from the volume.
    let c = create(&api, &t, json!({"snapshot_id": sid, "size": 3}));
    assert_eq!(c["snapshot_id"], sid.as_str());
    assert_eq!(c["size"], 3);
    let d = create(&api, &t, json!({"source_volid": vid}));
    assert_eq!(d["source_volid"], vid);
    assert_eq!(d["size"], 2);
    let r = api.post(
        &format!("{C}/volumes"),
        &t,
        &json!({"volume": {"source_volid": vid, "size": 1}}),
    );
    cinder_fault(&r, 400, "badRequest");

    // Revert (3.40).
    let body = json!({"revert": {"snapshot_id": sid}});
    cinder_fault(
        &api.post(&format!("{C}/volumes/{vid}/action"), &t, &body),
        400,
        "badRequest",
    );
    let r = api.send(
        "POST",
        &format!("{C}/volumes/{vid}/action"),
        &[
            ("X-Auth-Token", &t),
            ("Content-Type", "application/json"),
            ("OpenStack-API-Version", "volume 3.40"),
        ],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 202, "{}", r.text);

    // A volume with snapshots needs cascade.
    cinder_fault(
        &api.delete(&format!("{C}/volumes/{vid}"), &t),
        400,
        "badRequest",
    );
    assert_eq!(
        api.delete(&format!("{C}/volumes/{vid}?cascade=true"), &t)
            .status,
        202
    );
    cinder_fault(
        &api.get(&format!("{C}/snapshots/{sid}"), &t),
        404,
        "itemNotFound",
    );
    // The clones keep their data and sources' ids.
    assert_eq!(
        api.get(&format!("{C}/volumes/{}", c["id"].as_str().unwrap()), &t)
            .status,
        200
    );
    cinder_fault(
        &api.delete(&format!("{C}/snapshots/{sid}"), &t),
        404,
        "itemNotFound",
    );
}

#[test]
fn cinder_filters_sort_paging_summary() {
    let api = Api::start();
    let t = token(&api, "demo", "demo-password");
    let mut ids = Vec::new();
    for i in 0..5u64 {
        let v = create(&api, &t, json!({"size": 5 - i, "name": format!("v{i}")}));
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let names = |r: &Resp| -> Vec<String> {
        r.json["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&api.get(&format!("{C}/volumes?name=v2"), &t)), ["v2"]);
    assert_eq!(
        names(&api.get(&format!("{C}/volumes/detail?status=available&size=1"), &t)),
        ["v4"]
    );
    assert!(names(&api.get(&format!("{C}/volumes?status=error"), &t)).is_empty());
    let r = api.get(&format!("{C}/volumes/detail?sort=size:asc&limit=2"), &t);
    assert_eq!(names(&r), ["v4", "v3"]);
    let next = r.json["volumes_links"][0]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(next.contains(&format!("marker={}", ids[3])), "{next}");
    let path = next.strip_prefix(&api.base).unwrap();
    let r = api.get(path, &t);
    assert_eq!(names(&r), ["v2", "v1"]);
    let r = api.get(
        &format!("{C}/volumes?sort_key=name&sort_dir=asc&marker={}", ids[3]),
        &t,
    );
    assert_eq!(names(&r), ["v4"]);
    assert!(r.json.get("volumes_links").is_none());
    cinder_fault(
        &api.get(&format!("{C}/volumes?sort=color"), &t),
        400,
        "badRequest",
    );
    cinder_fault(
        &api.get(&format!("{C}/volumes?sort=size:sideways"), &t),
        400,
        "badRequest",
    );
    // `volumes/` is the item with an empty id, as in Cinder.
    cinder_fault(&api.get(&format!("{C}/volumes/"), &t), 404, "itemNotFound");
    cinder_fault(
        &api.delete(&format!("{C}/volumes/"), &t),
        404,
        "itemNotFound",
    );
    cinder_fault(
        &api.get(&format!("{C}/volumes?marker=nope"), &t),
        404,
        "itemNotFound",
    );
    cinder_fault(
        &api.get(&format!("{C}/volumes?limit=-1"), &t),
        400,
        "badRequest",
    );
    let r = get_v(
        &api,
        &format!("{C}/volumes?with_count=true&limit=1"),
        &t,
        "volume 3.45",
    );
    assert_eq!(r.json["count"], 5);
    let r = get_v(&api, &format!("{C}/volumes/summary"), &t, "volume 3.12");
    assert_eq!(
        r.json["volume-summary"],
        json!({"total_count": 5, "total_size": 15})
    );
}

#[test]
fn cinder_types_zones_limits_quotas() {
    let api = Api::start();
    let t = token(&api, "small", "small-password");
    let c = "/volume/v3/small";
    let r = api.get(&format!("{c}/types"), &t);
    assert_eq!(r.json["volume_types"][0]["name"], "__DEFAULT__");
    let id = r.json["volume_types"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.get(&format!("{c}/types/{id}"), &t).json["volume_type"]["name"],
        "__DEFAULT__"
    );
    cinder_fault(
        &api.get(&format!("{c}/types/gold"), &t),
        404,
        "itemNotFound",
    );
    let r = api.get(&format!("{c}/os-availability-zone"), &t);
    assert_eq!(r.json["availabilityZoneInfo"][0]["zoneName"], "nova");

    let r = api.post(&format!("{c}/volumes"), &t, &json!({"volume": {"size": 2}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let r = api.get(&format!("{c}/limits"), SMALL);
    let a = &r.json["limits"]["absolute"];
    assert_eq!(a["maxTotalVolumes"], 2);
    assert_eq!(a["maxTotalSnapshots"], 1);
    assert_eq!(a["maxTotalVolumeGigabytes"], 3);
    assert_eq!(a["totalVolumesUsed"], 1);
    assert_eq!(a["totalGigabytesUsed"], 2);
    let r = api.get(&format!("{c}/os-quota-sets/small?usage=true"), &t);
    assert_eq!(
        r.json["quota_set"]["gigabytes"],
        json!({"limit": 3, "in_use": 2, "reserved": 0, "allocated": 0})
    );
    let r = api.get(&format!("{c}/os-quota-sets/small"), &t);
    assert_eq!(r.json["quota_set"]["volumes"], 2);
    assert_eq!(r.json["quota_set"]["id"], "small");
    cinder_fault(
        &api.get(&format!("{c}/os-quota-sets/demo"), &t),
        403,
        "forbidden",
    );
    cinder_fault(
        &api.put(
            &format!("{c}/os-quota-sets/small"),
            &t,
            &json!({"quota_set": {"volumes": 9}}),
        ),
        403,
        "forbidden",
    );
    // Unlimited is -1.
    let r = api.get(&format!("{C}/limits"), DEMO);
    assert_eq!(r.json["limits"]["absolute"]["maxTotalVolumes"], -1);

    // Over quota: 413 overLimit.
    let r = api.post(&format!("{c}/volumes"), &t, &json!({"volume": {"size": 2}}));
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.json["overLimit"]["message"]
        .as_str()
        .unwrap()
        .contains("quota exceeded"));
}

#[test]
fn cinder_admin_actions() {
    let api = Api::start_with(Some(api_common::DEMO_AND_ADMIN_AUTH), |_| {});
    let t = token(&api, "ops", "ops-password");
    let r = api.post(
        "/v3/auth/tokens",
        "",
        &login_body("ops", "ops-password", json!({"id": "ops"})),
    );
    let roles = r.json["token"]["roles"].to_string();
    assert!(roles.contains("admin"), "{roles}");
    let c = "/volume/v3/ops";
    let r = api.post(&format!("{c}/volumes"), &t, &json!({"volume": {"size": 1}}));
    let id = r.json["volume"]["id"].as_str().unwrap().to_string();
    let act = |b: Value| api.post(&format!("{c}/volumes/{id}/action"), &t, &b);
    assert_eq!(
        act(json!({"os-reset_status": {"status": "error"}})).status,
        202
    );
    assert_eq!(
        api.get(&format!("{c}/volumes/{id}"), &t).json["volume"]["status"],
        "error"
    );
    cinder_fault(
        &act(json!({"os-reset_status": {"status": "bogus"}})),
        400,
        "badRequest",
    );
    assert_eq!(
        act(json!({"os-reset_status": {"status": "in-use"}})).status,
        202
    );
    cinder_fault(
        &api.delete(&format!("{c}/volumes/{id}"), &t),
        400,
        "badRequest",
    );
    assert_eq!(act(json!({"os-force_delete": {}})).status, 202);
    cinder_fault(
        &api.get(&format!("{c}/volumes/{id}"), &t),
        404,
        "itemNotFound",
    );
    // An admin reads other projects' quotas.
    assert_eq!(
        api.get(&format!("{c}/os-quota-sets/demo"), &t).json["quota_set"]["id"],
        "demo"
    );
}

#[test]
fn cinder_attach_sequence_is_the_shared_attachment() {
    let api = Api::start();
    let t = token(&api, "demo", "demo-password");
    let v = create(&api, &t, json!({"size": 1}));
    let id = v["id"].as_str().unwrap().to_string();
    let act = |b: Value| api.post(&format!("{C}/volumes/{id}/action"), &t, &b);
    let status = || api.get(&format!("{C}/volumes/{id}"), &t).json["volume"].clone();
    assert_eq!(act(json!({"os-reserve": {}})).status, 202);
    assert_eq!(status()["status"], "attaching");
    assert_eq!(act(json!({"os-unreserve": {}})).status, 202);
    assert_eq!(status()["status"], "available");
    cinder_fault(&act(json!({"os-unreserve": {}})), 400, "badRequest");
    cinder_fault(&act(json!({"os-detach": {}})), 400, "badRequest");
    let bad = json!({"os-attach": {"instance_uuid": "vm-1", "mountpoint": "vdb"}});
    cinder_fault(&act(bad), 400, "badRequest");
    assert_eq!(act(json!({"os-reserve": {}})).status, 202);
    let r = act(
        json!({"os-attach": {"instance_uuid": "vm-1", "mountpoint": "/dev/vdb", "mode": "rw"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let v = status();
    assert_eq!(v["status"], "in-use");
    assert_eq!(v["attachments"][0]["server_id"], "vm-1");
    assert_eq!(v["attachments"][0]["device"], "/dev/vdb");
    // The v1.1 dialect sees the same attachment.
    let r = api.get("/v1.1/demo/servers/vm-1/os-volume_attachments", DEMO);
    assert_eq!(
        r.json["volumeAttachments"][0]["volumeId"],
        id.as_str(),
        "{}",
        r.text
    );
    // Attached: delete and snapshot without force are 400.
    cinder_fault(
        &api.delete(&format!("{C}/volumes/{id}"), &t),
        400,
        "badRequest",
    );
    let snap = json!({"snapshot": {"volume_id": id}});
    cinder_fault(
        &api.post(&format!("{C}/snapshots"), &t, &snap),
        400,
        "badRequest",
    );
    let snap = json!({"snapshot": {"volume_id": id, "force": true}});
    assert_eq!(api.post(&format!("{C}/snapshots"), &t, &snap).status, 202);
    // The connection info names the NBD export; a client reaches it.
    cinder_fault(
        &act(json!({"os-initialize_connection": {}})),
        400,
        "badRequest",
    );
    let r = act(json!({"os-initialize_connection": {"connector": {"host": "vm-1"}}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let info = &r.json["connection_info"];
    assert_eq!(info["driver_volume_type"], "nbd");
    // The export is the attachment's secret, not the volume id.
    let export = info["data"]["export_name"].as_str().unwrap().to_string();
    assert!(export.starts_with("att-"), "{export}");
    assert_eq!(info["data"]["socket"], api.socket.display().to_string());
    let uri = info["data"]["uris"][0].as_str().unwrap().to_string();
    assert_eq!(uri, api.nbd_uri(&export));
    api_common::qemu_io(&uri, &["write -P 0x5a 0 64k"]);
    api_common::qemu_io_ro(&uri, &["read -P 0x5a 0 64k"]);
    assert_eq!(
        act(json!({"os-terminate_connection": {"connector": {}}})).status,
        202
    );
    // Terminated: the secret no longer names the volume.
    let gone = api_common::run("nbdinfo", &[&uri]);
    assert!(
        !gone.status.success(),
        "a terminated connection's export opened"
    );
    assert_eq!(act(json!({"os-begin_detaching": {}})).status, 202);
    assert_eq!(status()["status"], "detaching");
    assert_eq!(act(json!({"os-roll_detaching": {}})).status, 202);
    assert_eq!(status()["status"], "in-use");
    assert_eq!(act(json!({"os-begin_detaching": {}})).status, 202);
    assert_eq!(act(json!({"os-detach": {"attachment_id": id}})).status, 202);
    let v = status();
    assert_eq!(v["status"], "available");
    assert_eq!(v["attachments"], json!([]));
    let r = api.get("/v1.1/demo/servers/vm-1/os-volume_attachments", DEMO);
    assert_eq!(r.json["volumeAttachments"], json!([]), "{}", r.text);
}

#[test]
fn glance_lists_the_engine_images() {
    let api = Api::start_with(Some(api_common::AUTH), |dir| {
        api_common::blockd(dir, &["volume", "create", "base", "--size", "1M"]);
        api_common::blockd(dir, &["image", "create", "base", "golden"]);
    });
    let r = api.raw("GET", "/image", None, None);
    assert_eq!(r.status, 300, "{}", r.text);
    assert!(r.json["versions"][0]["links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with("/image/v2/"));
    assert_eq!(api.raw("GET", "/image/v2/images", None, None).status, 401);
    let t = token(&api, "demo", "demo-password");
    let r = api.get("/image/v2/images?name=golden", &t);
    assert_eq!(r.status, 200, "{}", r.text);
    let img = &r.json["images"][0];
    assert_eq!(img["name"], "golden");
    assert_eq!(img["visibility"], "public");
    let iid = img["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.get(&format!("/image/v2/images/{iid}"), &t).json["id"],
        iid.as_str()
    );
    assert_eq!(api.get("/image/v2/images/nope", &t).status, 404);
    // A volume from it through Cinder (by id or name) is bootable.
    let v = create(&api, &t, json!({"imageRef": iid}));
    assert_eq!(v["bootable"], "true");
    assert_eq!(v["size"], 1);
    let shown = &api
        .get(&format!("{C}/volumes/{}", v["id"].as_str().unwrap()), &t)
        .json["volume"];
    assert_eq!(shown["volume_image_metadata"]["image_id"], iid.as_str());
    let v = create(&api, &t, json!({"imageRef": "golden", "size": 2}));
    assert_eq!(v["size"], 2);
}
