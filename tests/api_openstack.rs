//! Black-box tests of the REST API's HP / OpenStack os-volumes v1.1 dialect
//! against a real `blockd serve`: every example request of the HP seed (as
//! JSON and as the seed's curl commands), the create-attach-write-snapshot-
//! clone-read flow through NBD (qemu-io), persistence across restarts, the
//! default auth file and the OpenAPI document. Business rules, faults and
//! isolation are in `api_openstack_rules.rs`. Responses are checked against
//! JSON schemas as strict as OpenStack Tempest's (`api_common/schema.rs`).

mod api_common;

use api_common::schema::*;
use api_common::{blockd, qemu_io, qemu_io_ro, run, Api, DEMO};
use serde_json::{json, Value};

const V: &str = "/v1.1/demo";

// ---- the seed's examples ----

#[test]
fn seed_versions() {
    let api = Api::start();
    // GET / (no token needed).
    let r = api.raw("GET", "/", None, None);
    expect(&r, 200, &many("versions", version_schema(false)));
    let v = &r.json["versions"];
    assert_eq!(v[0]["id"], "v1.1");
    assert_eq!(v[0]["status"], "CURRENT");
    assert_eq!(v[1]["id"], "v1.0");
    assert_eq!(v[1]["status"], "DEPRECATED");
    assert_eq!(v[0]["links"][0]["href"], format!("{}/v1.1/", api.base));
    // GET /v1.1/ as in the seed's curl example (with a token, which is not needed).
    for token in [Some(DEMO), None] {
        let r = api.raw("GET", "/v1.1/", token, None);
        expect(&r, 200, &one("version", version_schema(true)));
        assert_eq!(r.json["version"]["id"], "v1.1");
        let types: Vec<&str> = r.json["version"]["media-types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["type"].as_str().unwrap())
            .collect();
        assert!(types.contains(&"application/vnd.openstack.compute-v1.1+json"));
    }
    fault(&api.raw("POST", "/", None, Some((None, b""))), 405);
    fault(&api.raw("GET", "/v2/", None, None), 404);
}

#[test]
fn seed_volumes() {
    let api = Api::start();
    // List, empty.
    let r = api.get(&format!("{V}/os-volumes"), DEMO);
    expect(&r, 200, &vol_list());
    assert_eq!(r.json["volumes"], json!([]));

    // Create (4.4.2.2).
    let r = api.post(
        &format!("{V}/os-volumes"),
        DEMO,
        &json!({"volume": {"size": 1, "display_name": "Test Volume", "display_description": "Test Volume desc"}}),
    );
    expect(&r, 200, &vol_one());
    let v = &r.json["volume"];
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["status"], "available");
    assert_eq!(v["size"], 1);
    assert_eq!(v["displayName"], "Test Volume");
    assert_eq!(v["displayDescription"], "Test Volume desc");
    assert_eq!(v["availabilityZone"], "nova");
    assert_eq!(v["attachments"], json!([{}]));
    assert_eq!(v["volumeType"], Value::Null);
    assert_eq!(v["snapshotId"], "");
    assert_eq!(v["metadata"], json!({}));
    assert_eq!(
        r.header("location"),
        Some(format!("{}{V}/os-volumes/{id}", api.base).as_str())
    );

    // Create with metadata, size as a string (the seed's third example).
    let r = api.post(
        &format!("{V}/os-volumes"),
        DEMO,
        &json!({"volume": {"size": "1", "display_name": "Test Volume", "display_description": "Test Volume desc",
            "metadata": {"VolMeta": "VolMetaValue"}}}),
    );
    expect(&r, 200, &vol_one());
    assert_eq!(
        r.json["volume"]["metadata"],
        json!({"VolMeta": "VolMetaValue"})
    );
    assert_eq!(r.json["volume"]["size"], 1);
    let id2 = r.json["volume"]["id"].as_str().unwrap().to_string();
    assert_ne!(id, id2, "display names are not unique keys");

    // Create from a snapshot (the seed's second example).
    let r = api.post(
        &format!("{V}/os-snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": id}}),
    );
    expect(&r, 200, &snap_one());
    let snap = r.json["snapshot"]["id"].as_str().unwrap().to_string();
    let r = api.post(
        &format!("{V}/os-volumes"),
        DEMO,
        &json!({"volume": {"size": 1, "snapshot_id": snap, "display_name": "Test Volume from snapshot 31",
            "display_description": "Test Volume desc"}}),
    );
    expect(&r, 200, &vol_one());
    assert_eq!(r.json["volume"]["snapshotId"], snap.as_str());
    assert_eq!(
        r.json["volume"]["displayName"],
        "Test Volume from snapshot 31"
    );

    // Show (4.4.2.3), list and detail.
    let r = api.get(&format!("{V}/os-volumes/{id}"), DEMO);
    expect(&r, 200, &vol_one());
    assert_eq!(r.json["volume"]["id"], id.as_str());
    for path in [
        "os-volumes",
        "os-volumes/detail",
        "os-volumes.json",
        "os-volumes/detail.json",
    ] {
        let r = api.get(&format!("{V}/{path}"), DEMO);
        expect(&r, 200, &vol_list());
        assert_eq!(ids(&r, "volumes").len(), 3, "{path}");
    }

    // Delete (4.4.2.4): DELETE, 202, then 404.
    accepted(&api.delete(&format!("{V}/os-volumes/{id}"), DEMO));
    fault(&api.get(&format!("{V}/os-volumes/{id}"), DEMO), 404);
    fault(&api.delete(&format!("{V}/os-volumes/{id}"), DEMO), 404);
    // The seed's table says GET for delete: GET shows, it deletes nothing.
    fault(&api.get(&format!("{V}/os-volumes/{id}"), DEMO), 404);
    expect(
        &api.get(&format!("{V}/os-volumes/{id2}"), DEMO),
        200,
        &vol_one(),
    );
}

#[test]
fn seed_attachments() {
    let api = Api::start();
    let vol = api.volume("demo", DEMO, 1);
    let base = format!("{V}/servers/258315/os-volume_attachments");
    let r = api.get(&base, DEMO);
    expect(&r, 200, &att_list());
    assert_eq!(r.json["volumeAttachments"], json!([]));

    // Attach (4.4.3.2): the volume id goes in the body.
    let r = api.post(
        &base,
        DEMO,
        &json!({"volumeAttachment": {"volumeId": vol, "device": "/dev/sdf"}}),
    );
    expect(&r, 200, &att_one());
    let a = &r.json["volumeAttachment"];
    assert_eq!(a["id"], vol.as_str());
    assert_eq!(a["volumeId"], vol.as_str());
    assert_eq!(a["serverId"], "258315");
    assert_eq!(a["device"], "/dev/sdf");

    // List (4.4.3.1), show one, and the volume's view.
    let r = api.get(&base, DEMO);
    expect(&r, 200, &att_list());
    assert_eq!(r.json["volumeAttachments"][0], *a);
    let r = api.get(&format!("{base}/{vol}"), DEMO);
    expect(&r, 200, &att_one());
    let r = api.get(&format!("{V}/os-volumes/{vol}"), DEMO);
    expect(&r, 200, &vol_one());
    assert_eq!(r.json["volume"]["status"], "in-use");
    // The volume's view shows the attachment without its NBD connection.
    let mut plain = a.clone();
    assert!(plain["connection_info"]["data"]["export_name"].is_string());
    plain.as_object_mut().unwrap().remove("connection_info");
    assert_eq!(r.json["volume"]["attachments"], json!([plain]));

    // Detach (4.4.3.3): 202.
    accepted(&api.delete(&format!("{base}/{vol}"), DEMO));
    let r = api.get(&format!("{V}/os-volumes/{vol}"), DEMO);
    assert_eq!(r.json["volume"]["status"], "available");
    assert_eq!(r.json["volume"]["attachments"], json!([{}]));
    assert_eq!(api.get(&base, DEMO).json["volumeAttachments"], json!([]));
}

#[test]
fn seed_snapshots() {
    let api = Api::start();
    let vol = api.volume("demo", DEMO, 7);
    // Create (4.4.4.2) with the seed's Content-Type.
    let body = json!({"snapshot": {"force": false, "display_name": "TestSnapshotName",
        "display_description": "Test snapshot description", "volume_id": vol}})
    .to_string();
    let r = api.raw(
        "POST",
        &format!("{V}/os-snapshots"),
        Some(DEMO),
        Some((Some("application/json; charset=UTF-8"), body.as_bytes())),
    );
    expect(&r, 200, &snap_one());
    let s = &r.json["snapshot"];
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["status"], "available");
    assert_eq!(s["displayName"], "TestSnapshotName");
    assert_eq!(s["displayDescription"], "Test snapshot description");
    assert_eq!(s["volumeId"], vol.as_str());
    assert_eq!(s["size"], 7);
    // The seed's 404 example: a volume that does not exist.
    let missing = "00000000-0000-4000-8000-000000018819";
    let r = api.post(
        &format!("{V}/os-snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": missing}}),
    );
    fault(&r, 404);
    assert_eq!(
        r.json["itemNotFound"]["message"],
        format!("Volume {missing} could not be found.")
    );
    // An unnamed snapshot shows null names.
    let r = api.post(
        &format!("{V}/os-snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": vol}}),
    );
    expect(&r, 200, &snap_one());
    assert_eq!(r.json["snapshot"]["displayName"], Value::Null);
    // List (4.4.4.1), detail, show (4.4.4.3: wrapped in "snapshot").
    for path in ["os-snapshots", "os-snapshots/detail"] {
        let r = api.get(&format!("{V}/{path}"), DEMO);
        expect(&r, 200, &snap_list());
        assert_eq!(ids(&r, "snapshots").len(), 2);
    }
    let r = api.get(&format!("{V}/os-snapshots/{id}"), DEMO);
    expect(&r, 200, &snap_one());
    assert_eq!(r.json["snapshot"]["id"], id.as_str());
    // Delete (4.4.4.4): 202.
    accepted(&api.delete(&format!("{V}/os-snapshots/{id}"), DEMO));
    fault(&api.get(&format!("{V}/os-snapshots/{id}"), DEMO), 404);
    fault(&api.delete(&format!("{V}/os-snapshots/{id}"), DEMO), 404);
}

/// The seed's curl examples, run with curl as written (base URI and token
/// filled in).
#[test]
fn seed_curl_examples() {
    let api = Api::start();
    let b = format!("{}{V}", api.base);
    let tok = format!("X-Auth-Token: {DEMO}");
    let curl = |args: &[&str]| -> (u16, Value) {
        let mut a = vec!["-s", "-o", "-", "-w", "\n%{http_code}"];
        a.extend_from_slice(args);
        let o = run("curl", &a);
        assert!(o.status.success(), "curl {args:?}");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = out.rsplit_once('\n').unwrap();
        (
            code.trim().parse().unwrap(),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    };
    let (c, v) = curl(&["-H", &tok, &format!("{}/v1.1/", api.base)]);
    assert_eq!((c, &v["version"]["id"]), (200, &json!("v1.1")));
    let (c, v) = curl(&["-H", &tok, &format!("{}/", api.base)]);
    assert_eq!((c, v["versions"].as_array().unwrap().len()), (200, 2));
    let (c, v) = curl(&[
        "-H",
        &tok,
        "-H",
        "Content-Type: application/json",
        &format!("{b}/os-volumes"),
        "-X",
        "POST",
        "-d",
        r#"{"volume": {"size": 1, "display_name": "Test Volume","display_description": "Test Volume desc"}}"#,
    ]);
    assert_eq!(c, 200, "{v}");
    let vol = v["volume"]["id"].as_str().unwrap().to_string();
    let (c, v) = curl(&[
        "-H",
        &tok,
        "-H",
        "Content-Type: application/json",
        &format!("{b}/os-volumes"),
        "-X",
        "POST",
        "-d",
        r#"{"volume": {"size": "1", "display_name": "Test Volume","display_description": "Test Volume desc", "metadata":{"VolMeta" : "VolMetaValue"}}}"#,
    ]);
    assert_eq!(
        (c, &v["volume"]["metadata"]["VolMeta"]),
        (200, &json!("VolMetaValue"))
    );
    let (c, v) = curl(&["-H", &tok, &format!("{b}/os-volumes")]);
    assert_eq!((c, v["volumes"].as_array().unwrap().len()), (200, 2));
    let (c, _) = curl(&["-H", &tok, &format!("{b}/os-volumes/{vol}")]);
    assert_eq!(c, 200);
    let snap_body = format!(
        r#"{{"snapshot": {{"force": false, "display_name": "TestSnapshot2", "display_description": "Test description", "volume_id": "{vol}"}}}}"#
    );
    let (c, v) = curl(&[
        "-H",
        &tok,
        &format!("{b}/os-snapshots"),
        "-X",
        "POST",
        "-d",
        &snap_body,
        "-H",
        "Content-Type: application/json; charset=UTF-8",
    ]);
    assert_eq!(c, 200, "{v}");
    let snap = v["snapshot"]["id"].as_str().unwrap().to_string();
    let (c, v) = curl(&[
        "-H",
        &tok,
        "-H",
        "Content-Type: application/json",
        &format!("{b}/os-volumes"),
        "-X",
        "POST",
        "-d",
        &format!(
            r#"{{"volume": {{"size": 1, "snapshot_id": "{snap}", "display_name": "Test Volume from snapshot 31","display_description": "Test Volume desc"}}}}"#
        ),
    ]);
    assert_eq!((c, &v["volume"]["snapshotId"]), (200, &json!(snap)));
    let (c, _) = curl(&["-H", &tok, &format!("{b}/os-snapshots")]);
    assert_eq!(c, 200);
    let (c, _) = curl(&["-H", &tok, &format!("{b}/os-snapshots/{snap}")]);
    assert_eq!(c, 200);
    // The seed's attach example sends no Content-Type header, so curl says
    // application/x-www-form-urlencoded: Nova refused that (415), so do we.
    let att = format!(r#"{{"volumeAttachment": {{"volumeId": "{vol}","device": "/dev/sdf"}}}}"#);
    let srv = format!("{b}/servers/258315/os-volume_attachments");
    let (c, v) = curl(&["-H", &tok, &srv, "-X", "POST", "-d", &att]);
    assert_eq!((c, &v["badMediaType"]["code"]), (415, &json!(415)));
    let (c, v) = curl(&[
        "-H",
        &tok,
        "-H",
        "Content-Type: application/json",
        &srv,
        "-X",
        "POST",
        "-d",
        &att,
    ]);
    assert_eq!(
        (c, &v["volumeAttachment"]["device"]),
        (200, &json!("/dev/sdf"))
    );
    let (c, _) = curl(&["-H", &tok, &srv]);
    assert_eq!(c, 200);
    let (c, _) = curl(&["-H", &tok, &format!("{srv}/{vol}"), "-X", "DELETE"]);
    assert_eq!(c, 202);
    let (c, _) = curl(&[
        "-H",
        &tok,
        "-X",
        "DELETE",
        &format!("{b}/os-snapshots/{snap}"),
    ]);
    assert_eq!(c, 202);
    let (c, _) = curl(&["-H", &tok, &format!("{b}/os-volumes/{vol}"), "-X", "DELETE"]);
    assert_eq!(c, 202);
}

/// The create-attach-write-snapshot-clone-read flow, through NBD.
#[test]
fn flow_through_nbd() {
    let mut api = Api::start();
    let r = api.post(
        &format!("{V}/os-volumes"),
        DEMO,
        &json!({"volume": {"size": 1, "display_name": "data"}}),
    );
    expect(&r, 200, &vol_one());
    let vol = r.json["volume"]["id"].as_str().unwrap().to_string();
    let att = format!("{V}/servers/vm-1/os-volume_attachments");
    expect(
        &api.post(
            &att,
            DEMO,
            &json!({"volumeAttachment": {"volumeId": vol, "device": "/dev/vdb"}}),
        ),
        200,
        &att_one(),
    );
    // The export of a volume is its id.
    qemu_io(
        &api.nbd_uri(&vol),
        &["write -P 0x5a 0 1M", "write -P 0xc3 1020M 4M"],
    );
    let r = api.post(
        &format!("{V}/os-snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": vol}}),
    );
    fault(&r, 400);
    let r = api.post(
        &format!("{V}/os-snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": vol, "force": true}}),
    );
    expect(&r, 200, &snap_one());
    let snap = r.json["snapshot"]["id"].as_str().unwrap().to_string();
    // Later writes do not reach the snapshot.
    qemu_io(&api.nbd_uri(&vol), &["write -P 0x01 0 1M"]);
    let r = api.post(
        &format!("{V}/os-volumes"),
        DEMO,
        &json!({"volume": {"snapshot_id": snap, "size": 1}}),
    );
    expect(&r, 200, &vol_one());
    let copy = r.json["volume"]["id"].as_str().unwrap().to_string();
    qemu_io(
        &api.nbd_uri(&copy),
        &[
            "read -P 0x5a 0 1M",
            "read -P 0 1M 1M",
            "read -P 0xc3 1020M 4M",
        ],
    );
    // The snapshot itself is a read-only export.
    qemu_io_ro(&api.nbd_uri(&snap), &["read -P 0x5a 0 1M"]);
    assert!(!run(
        "qemu-io",
        &["-f", "raw", "-c", "write 0 4k", &api.nbd_uri(&snap)]
    )
    .status
    .success());
    // Everything survives a restart: state lives in the engine.
    api.restart();
    let r = api.get(&format!("{V}/os-volumes/{vol}"), DEMO);
    expect(&r, 200, &vol_one());
    assert_eq!(r.json["volume"]["status"], "in-use");
    assert_eq!(r.json["volume"]["attachments"][0]["device"], "/dev/vdb");
    qemu_io(&api.nbd_uri(&copy), &["read -P 0x5a 0 1M"]);
    qemu_io(&api.nbd_uri(&vol), &["read -P 0x01 0 1M"]);
    accepted(&api.delete(&format!("{V}/os-snapshots/{snap}"), DEMO));
    qemu_io(&api.nbd_uri(&copy), &["read -P 0xc3 1020M 4M"]);
    // Offline, the engine shows the API's status and owner.
    api.stop();
    let list: Value =
        serde_json::from_str(&blockd(&api.dir, &["volume", "list", "--json"])).unwrap();
    let v = list
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == vol.as_str())
        .unwrap();
    assert_eq!(v["status"], "in-use");
    assert_eq!(v["metadata"]["api.tenant"], "demo");
    assert_eq!(v["metadata"]["api.attached_server"], "vm-1");
    assert_eq!(v["name"], Value::Null);
}

#[test]
fn default_auth_file_and_openapi() {
    let mut api = Api::start_with(None, |_| {});
    let text = std::fs::read_to_string(&api.auth).unwrap();
    let auth: toml::Value = toml::from_str(&text).unwrap();
    let t = &auth["tenants"][0];
    assert_eq!(t["id"].as_str(), Some("demo"));
    let token = t["token"].as_str().unwrap().to_string();
    let password = t["password"].as_str().unwrap().to_string();
    assert!(token.len() >= 32 && password.len() >= 32 && token != password);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&api.auth).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The path is logged, the secrets never.
    let log = api.log().join("\n");
    assert!(log.contains(api.auth.to_str().unwrap()), "{log}");
    assert!(!log.contains(&token) && !log.contains(&password));
    expect(
        &api.get(&format!("{V}/os-volumes"), &token),
        200,
        &vol_list(),
    );
    // The file is kept across restarts.
    api.restart();
    expect(
        &api.get(&format!("{V}/os-volumes"), &token),
        200,
        &vol_list(),
    );
    // The OpenAPI document.
    let r = api.raw("GET", "/openapi.json", None, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json["openapi"], "3.1.0");
    for path in [
        "/os-volumes",
        "/os-volumes/{volume_id}/action",
        "/os-snapshots/{snapshot_id}",
        "/servers/{server_id}/os-volume_attachments/{volume_id}",
    ] {
        assert!(r.json["paths"][path].is_object(), "{path}");
    }
    // A broken auth file stops the server from starting, with a message.
    let bad = api.tmp.path().join("bad.toml");
    std::fs::write(&bad, "[[tenants]]\nid = 1\n").unwrap();
    let o = run(
        api_common::bin(),
        &[
            "--data-dir",
            api.tmp.path().join("d2").to_str().unwrap(),
            "serve",
            "--nbd-listen",
            "",
            "--api-listen",
            "127.0.0.1:0",
            "--auth-file",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.toml"));
}

/// Every route's real responses, successes and faults, validate against
/// the schemas the served (generated) OpenAPI document declares for them,
/// so the document cannot drift from the handlers.
#[test]
fn openapi_describes_real_responses() {
    let api = Api::start();
    let doc = api.raw("GET", "/openapi.json", None, None).json;
    let vols = "/os-volumes";
    let vol = "/os-volumes/{volume_id}";
    let snaps = "/os-snapshots";
    let snap = "/os-snapshots/{snapshot_id}";
    let atts = "/servers/{server_id}/os-volume_attachments";
    let att = "/servers/{server_id}/os-volume_attachments/{volume_id}";
    let d = |path: &str, method: &str, r: &api_common::Resp| documented(&doc, path, method, r);

    d(vols, "get", &api.get(&format!("{V}/os-volumes"), DEMO));
    let r = api.post(
        &format!("{V}/os-volumes"),
        DEMO,
        &json!({"volume": {"size": "1", "display_name": "a", "metadata": {"k": "v"}}}),
    );
    assert_eq!(r.status, 200);
    d(vols, "post", &r);
    let id = r.json["volume"]["id"].as_str().unwrap().to_string();
    let r = api.post(
        &format!("{V}/os-volumes"),
        DEMO,
        &json!({"volume": {"size": 1}}),
    );
    d(vols, "post", &r);
    let other = r.json["volume"]["id"].as_str().unwrap().to_string();
    d(vol, "get", &api.get(&format!("{V}/os-volumes/{id}"), DEMO));
    d(
        vol,
        "put",
        &api.put(
            &format!("{V}/os-volumes/{id}"),
            DEMO,
            &json!({"volume": {"display_description": "d"}}),
        ),
    );
    d(
        "/os-volumes/detail",
        "get",
        &api.get(&format!("{V}/os-volumes/detail?limit=5"), DEMO),
    );
    let r = api.post(
        &format!("{V}/os-volumes/{id}/action"),
        DEMO,
        &json!({"os-extend": {"new_size": 2}}),
    );
    assert_eq!(r.status, 202);
    d("/os-volumes/{volume_id}/action", "post", &r);

    let r = api.post(
        &format!("{V}/os-snapshots"),
        DEMO,
        &json!({"snapshot": {"volume_id": id}}),
    );
    assert_eq!(r.status, 200);
    d(snaps, "post", &r);
    let sid = r.json["snapshot"]["id"].as_str().unwrap().to_string();
    d(snaps, "get", &api.get(&format!("{V}/os-snapshots"), DEMO));
    d(
        "/os-snapshots/detail",
        "get",
        &api.get(&format!("{V}/os-snapshots/detail"), DEMO),
    );
    d(
        snap,
        "get",
        &api.get(&format!("{V}/os-snapshots/{sid}"), DEMO),
    );

    let server = format!("{V}/servers/vm-1/os-volume_attachments");
    let r = api.post(
        &server,
        DEMO,
        &json!({"volumeAttachment": {"volumeId": id, "device": "/dev/vdb"}}),
    );
    assert_eq!(r.status, 200);
    d(atts, "post", &r);
    d(atts, "get", &api.get(&server, DEMO));
    d(att, "get", &api.get(&format!("{server}/{id}"), DEMO));
    // An attached volume's view, and its list, with the attachment.
    d(vol, "get", &api.get(&format!("{V}/os-volumes/{id}"), DEMO));
    d(vols, "get", &api.get(&format!("{V}/os-volumes"), DEMO));

    // Faults.
    let r = api.post(
        &server,
        DEMO,
        &json!({"volumeAttachment": {"volumeId": other, "device": "/dev/vdb"}}),
    );
    assert_eq!(r.status, 409);
    d(atts, "post", &r);
    let r = api.get(&format!("{V}/os-volumes/nope"), DEMO);
    assert_eq!(r.status, 404);
    d(vol, "get", &r);
    let r = api.raw("GET", &format!("{V}/os-volumes"), None, None);
    assert_eq!(r.status, 401);
    d(vols, "get", &r);
    let r = api.post(
        &format!("{V}/os-volumes"),
        DEMO,
        &json!({"volume": {"size": 0}}),
    );
    assert_eq!(r.status, 400);
    d(vols, "post", &r);
    let r = api.post(&format!("{V}/os-volumes"), DEMO, &json!({}));
    assert_eq!(r.status, 422);
    d(vols, "post", &r);
    let r = api.post(
        "/v1.1/small/os-volumes",
        api_common::SMALL,
        &json!({"volume": {"size": 4}}),
    );
    assert_eq!(r.status, 413, "{}", r.text);
    d(vols, "post", &r);
    let r = api.delete(&format!("{V}/os-volumes/{id}"), DEMO);
    assert_eq!(r.status, 400);
    d(vol, "delete", &r);
    let r = api.get(&format!("{V}/os-volumes?limit=x"), DEMO);
    assert_eq!(r.status, 400);
    d(vols, "get", &r);

    // Empty 202s.
    d(att, "delete", &api.delete(&format!("{server}/{id}"), DEMO));
    d(
        snap,
        "delete",
        &api.delete(&format!("{V}/os-snapshots/{sid}"), DEMO),
    );
    d(
        vol,
        "delete",
        &api.delete(&format!("{V}/os-volumes/{id}"), DEMO),
    );
}
