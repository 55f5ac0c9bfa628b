//! Black-box tests of the Cinder v3 attachments API (3.27+) and backups
//! against a real `blockd serve` over HTTP: attachments reserved, made
//! with a connector, completed and deleted, the same attachment the
//! os-volumes v1.1 dialect sees, its export reached with qemu-io; backups
//! created (full, incremental, of an in-use volume with `force`), listed,
//! restored to a new volume, over an existing one and as a new volume at
//! 3.47, contents checked over NBD with qemu-io, counted in the quota
//! sets, deleted; backup records exported and imported (admins). The rest
//! of Cinder is in `api_cinder.rs`; the real
//! `openstack` CLI runs in `openstack_cli.rs`.

mod api_common;
mod cinder_common;

use api_common::{Api, DEMO, OTHER};
use cinder_common::{cinder_fault, create, get_v, send_v, token, C};
use serde_json::{json, Value};

#[test]
fn cinder_attachments_api_is_the_shared_attachment() {
    let api = Api::start();
    let t = token(&api, "demo", "demo-password");
    let v = create(&api, &t, json!({"size": 1}));
    let id = v["id"].as_str().unwrap().to_string();
    let vol = || api.get(&format!("{C}/volumes/{id}"), &t).json["volume"].clone();
    let at = format!("{C}/attachments");
    let v27 = "volume 3.27";
    // Below 3.27 there is no attachments API.
    cinder_fault(&api.get(&at, &t), 404, "itemNotFound");
    cinder_fault(&get_v(&api, &at, &t, "volume 3.26"), 404, "itemNotFound");
    // Reserve: no connector.
    let body = json!({"attachment": {"volume_uuid": id, "instance_uuid": "vm-1"}});
    let r = send_v(&api, "POST", &at, &t, v27, &body);
    assert_eq!(r.status, 200, "{}", r.text);
    let a = &r.json["attachment"];
    assert_eq!(a["id"], id.as_str());
    assert_eq!(a["status"], "reserved");
    assert_eq!(a["instance"], "vm-1");
    assert_eq!(vol()["status"], "reserved");
    // A reserved volume cannot be reserved again, nor deleted.
    cinder_fault(
        &send_v(&api, "POST", &at, &t, v27, &body),
        400,
        "badRequest",
    );
    cinder_fault(
        &api.delete(&format!("{C}/volumes/{id}"), &t),
        400,
        "badRequest",
    );
    let r = get_v(&api, &at, &t, v27);
    assert_eq!(
        r.json["attachments"][0]["volume_id"],
        id.as_str(),
        "{}",
        r.text
    );
    assert!(r.json["attachments"][0].get("connection_info").is_none());
    // Update with a connector: attached, with the connection info.
    let r = send_v(
        &api,
        "PUT",
        &format!("{at}/{id}"),
        &t,
        v27,
        &json!({"attachment": {"connector": {"host": "h1", "mountpoint": "/dev/vdc"}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let a = &r.json["attachment"];
    assert_eq!(a["status"], "attached");
    assert_eq!(a["connection_info"]["driver_volume_type"], "nbd");
    // The export is the attachment's secret, not the guessable volume id.
    let export = a["connection_info"]["data"]["export_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(export.starts_with("att-"), "{export}");
    let uri = a["connection_info"]["data"]["uris"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(uri, api.nbd_uri(&export));
    let r = send_v(
        &api,
        "POST",
        &format!("{at}/{id}/action"),
        &t,
        v27,
        &json!({"os-complete": null}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let v = vol();
    assert_eq!(v["status"], "in-use");
    assert_eq!(v["attachments"][0]["server_id"], "vm-1");
    assert_eq!(v["attachments"][0]["device"], "/dev/vdc");
    assert_eq!(v["attachments"][0]["attachment_id"], id.as_str());
    // The v1.1 dialect sees the same attachment; the export is reachable.
    let r = api.get("/v1.1/demo/servers/vm-1/os-volume_attachments", DEMO);
    assert_eq!(r.json["volumeAttachments"][0]["volumeId"], id.as_str());
    api_common::qemu_io(&uri, &["write -P 0x6b 0 64k"]);
    api_common::qemu_io_ro(&uri, &["read -P 0x6b 0 64k"]);
    let r = get_v(&api, &format!("{at}/detail?instance_id=vm-1"), &t, v27);
    assert_eq!(r.json["attachments"][0]["attach_mode"], "rw", "{}", r.text);
    let r = get_v(&api, &format!("{at}?instance_id=vm-2"), &t, v27);
    assert_eq!(r.json["attachments"], json!([]));
    let r = get_v(&api, &format!("{at}/{id}"), &t, v27);
    assert_eq!(r.json["attachment"]["instance"], "vm-1", "{}", r.text);
    // Another tenant sees none of it.
    cinder_fault(
        &get_v(
            &api,
            &format!("/volume/v3/other/attachments/{id}"),
            OTHER,
            v27,
        ),
        404,
        "itemNotFound",
    );
    // Delete: detached, everywhere.
    let r = send_v(&api, "DELETE", &format!("{at}/{id}"), &t, v27, &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let v = vol();
    assert_eq!(v["status"], "available");
    assert_eq!(v["attachments"], json!([]));
    let r = api.get("/v1.1/demo/servers/vm-1/os-volume_attachments", DEMO);
    assert_eq!(r.json["volumeAttachments"], json!([]));
    cinder_fault(
        &get_v(&api, &format!("{at}/{id}"), &t, v27),
        404,
        "itemNotFound",
    );
    // Create with a connector attaches at once; an attachment made in
    // v1.1 shows here and is deleted here.
    let body = json!({"attachment": {"volume_uuid": id, "instance_uuid": "vm-3",
        "connector": {"host": "h1"}}});
    let r = send_v(&api, "POST", &at, &t, v27, &body);
    assert_eq!(r.json["attachment"]["status"], "attached", "{}", r.text);
    assert_eq!(vol()["attachments"][0]["device"], "/dev/vdb");
    let r = send_v(&api, "DELETE", &format!("{at}/{id}"), &t, v27, &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    // Reserve then unreserve by delete.
    let body = json!({"attachment": {"volume_uuid": id}});
    let r = send_v(&api, "POST", &at, &t, v27, &body);
    assert_eq!(r.json["attachment"]["instance"], Value::Null, "{}", r.text);
    let r = send_v(&api, "DELETE", &format!("{at}/{id}"), &t, v27, &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(vol()["status"], "available");
}

#[test]
fn cinder_backups_create_list_restore_delete() {
    let api = Api::start();
    let t = token(&api, "demo", "demo-password");
    let v = create(&api, &t, json!({"size": 1, "name": "src"}));
    let id = v["id"].as_str().unwrap().to_string();
    let uri = api.nbd_uri(&id);
    api_common::qemu_io(&uri, &["write -P 0x11 0 64k"]);
    let b = format!("{C}/backups");
    let r = api.post(
        &b,
        &t,
        &json!({"backup": {"volume_id": id, "name": "full", "description": "d"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["backup"]["name"], "full");
    let full = r.json["backup"]["id"].as_str().unwrap().to_string();
    let r = api.get(&format!("{b}/{full}"), &t);
    let bk = &r.json["backup"];
    assert_eq!(bk["status"], "available", "{}", r.text);
    assert_eq!(bk["size"], 1);
    assert_eq!(bk["volume_id"], id.as_str());
    assert_eq!(bk["description"], "d");
    assert_eq!(bk["is_incremental"], false);
    // The volume changes; an incremental backup follows the full one.
    api_common::qemu_io(&uri, &["write -P 0x22 0 64k"]);
    let inc = json!({"backup": {"volume_id": id, "name": "inc", "incremental": true}});
    let r = api.post(&b, &t, &inc);
    assert_eq!(r.status, 202, "{}", r.text);
    let incr = r.json["backup"]["id"].as_str().unwrap().to_string();
    let r = api.get(&format!("{b}/detail"), &t);
    let list = r.json["backups"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{}", r.text);
    let by_id = |want: &str| list.iter().find(|b| b["id"] == want).unwrap().clone();
    assert_eq!(by_id(&full)["has_dependent_backups"], true);
    assert_eq!(by_id(&full)["is_incremental"], false);
    assert_eq!(by_id(&incr)["is_incremental"], true);
    assert_eq!(by_id(&incr)["has_dependent_backups"], false);
    let r = api.get(&format!("{b}?name=inc"), &t);
    assert_eq!(
        r.json["backups"],
        json!([{"id": incr, "name": "inc",
        "links": r.json["backups"][0]["links"]}])
    );
    // Backups count under the one quota rule (as images) and are reported.
    let r = api.get(&format!("{C}/limits"), &t);
    assert_eq!(r.json["limits"]["absolute"]["totalBackupsUsed"], 2);
    assert_eq!(r.json["limits"]["absolute"]["totalSnapshotsUsed"], 2);
    let r = api.get(&format!("{C}/os-quota-sets/demo?usage=true"), &t);
    assert_eq!(r.json["quota_set"]["backups"]["in_use"], 2, "{}", r.text);
    // A volume from a backup (3.47+).
    let vb = json!({"volume": {"backup_id": incr}});
    cinder_fault(
        &api.post(&format!("{C}/volumes"), &t, &vb),
        400,
        "badRequest",
    );
    let r = send_v(
        &api,
        "POST",
        &format!("{C}/volumes"),
        &t,
        "volume 3.47",
        &vb,
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let from_b = r.json["volume"]["id"].as_str().unwrap().to_string();
    api_common::qemu_io_ro(&api.nbd_uri(&from_b), &["read -P 0x22 0 64k"]);
    // The full backup has a dependent: not deleted.
    cinder_fault(&api.delete(&format!("{b}/{full}"), &t), 400, "badRequest");
    // Restore to a new volume: the full backup's data.
    let r = api.post(
        &format!("{b}/{full}/restore"),
        &t,
        &json!({"restore": {"name": "restored"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["restore"]["backup_id"], full.as_str());
    assert_eq!(r.json["restore"]["volume_name"], "restored");
    let new = r.json["restore"]["volume_id"].as_str().unwrap().to_string();
    let nv = api.get(&format!("{C}/volumes/{new}"), &t).json["volume"].clone();
    assert_eq!(nv["status"], "available");
    assert_eq!(nv["size"], 1);
    api_common::qemu_io_ro(&api.nbd_uri(&new), &["read -P 0x11 0 64k"]);
    // Restore over the source volume: back to 0x11.
    let r = api.post(
        &format!("{b}/{full}/restore"),
        &t,
        &json!({"restore": {"volume_id": id}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["restore"]["volume_id"], id.as_str());
    api_common::qemu_io_ro(&uri, &["read -P 0x11 0 64k"]);
    // Over a larger volume: its size stays, the rest reads as zeroes.
    let big = create(&api, &t, json!({"size": 2}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    api_common::qemu_io(&api.nbd_uri(&big), &["write -P 0x33 1G 64k"]);
    let r = api.post(
        &format!("{b}/{incr}/restore"),
        &t,
        &json!({"restore": {"volume_id": big}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let bv = api.get(&format!("{C}/volumes/{big}"), &t).json["volume"].clone();
    assert_eq!(bv["size"], 2);
    api_common::qemu_io_ro(
        &api.nbd_uri(&big),
        &["read -P 0x22 0 64k", "read -P 0 1G 64k"],
    );
    // A backup of the 2G volume does not fit the 1G one.
    let r = api.post(&b, &t, &json!({"backup": {"volume_id": big}}));
    let big_b = r.json["backup"]["id"].as_str().unwrap().to_string();
    cinder_fault(
        &api.post(
            &format!("{b}/{big_b}/restore"),
            &t,
            &json!({"restore": {"volume_id": id}}),
        ),
        400,
        "badRequest",
    );
    // An in-use volume needs force.
    let act = json!({"os-attach": {"instance_uuid": "vm-1", "mountpoint": "/dev/vdb"}});
    assert_eq!(
        api.post(&format!("{C}/volumes/{id}/action"), &t, &act)
            .status,
        202
    );
    cinder_fault(
        &api.post(&b, &t, &json!({"backup": {"volume_id": id}})),
        400,
        "badRequest",
    );
    let r = api.post(&b, &t, &json!({"backup": {"volume_id": id, "force": true}}));
    assert_eq!(r.status, 202, "{}", r.text);
    // Restoring over an attached volume is refused.
    cinder_fault(
        &api.post(
            &format!("{b}/{full}/restore"),
            &t,
            &json!({"restore": {"volume_id": id}}),
        ),
        400,
        "badRequest",
    );
    // An incremental backup of a volume without backups is refused.
    cinder_fault(
        &api.post(
            &b,
            &t,
            &json!({"backup": {"volume_id": new, "incremental": true}}),
        ),
        400,
        "badRequest",
    );
    // Another tenant sees none of them.
    cinder_fault(
        &api.get(&format!("/volume/v3/other/backups/{full}"), OTHER),
        404,
        "itemNotFound",
    );
    // Delete: the incremental, then the full one.
    assert_eq!(api.delete(&format!("{b}/{incr}"), &t).status, 202);
    assert_eq!(api.delete(&format!("{b}/{full}"), &t).status, 202);
    cinder_fault(&api.get(&format!("{b}/{full}"), &t), 404, "itemNotFound");
    // The restored volume keeps its data.
    api_common::qemu_io_ro(&api.nbd_uri(&new), &["read -P 0x11 0 64k"]);
}

/// `demo`, and `ops`, an admin.
const ADMIN_AUTH: &str = r#"
[[tenants]]
id = "demo"
token = "demo-token-0123456789abcdef"
user = "demo"
password = "demo-password"

[[tenants]]
id = "ops"
token = "ops-token-0123456789abcdef"
user = "ops-user"
password = "ops-password"
admin = true
"#;
const OPS: &str = "ops-token-0123456789abcdef";
const O: &str = "/volume/v3/ops";

/// The JSON record inside a `backup_url`.
fn record(url: &str) -> Value {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD
        .decode(url)
        .expect("base64");
    serde_json::from_slice(&b).expect("a JSON record")
}

/// `record` as a `backup_url` again.
fn url_of(record: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(record.to_string())
}

fn import(api: &Api, service: &str, url: &str) -> api_common::Resp {
    api.post(
        &format!("{O}/backups/import_record"),
        OPS,
        &json!({"backup-record": {"backup_service": service, "backup_url": url}}),
    )
}

#[test]
fn cinder_backup_records_export_import() {
    let mut api = Api::start_with(Some(ADMIN_AUTH), |_| {});
    let v = create(&api, DEMO, json!({"size": 1, "name": "src"}));
    let vid = v["id"].as_str().unwrap().to_string();
    let r = api.post(
        &format!("{C}/backups"),
        DEMO,
        &json!({"backup": {"volume_id": vid, "name": "bk", "description": "d"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let bid = r.json["backup"]["id"].as_str().unwrap().to_string();

    // Export: admins only, any project's backup.
    cinder_fault(
        &api.get(&format!("{C}/backups/{bid}/export_record"), DEMO),
        403,
        "forbidden",
    );
    cinder_fault(
        &api.get(&format!("{O}/backups/nope/export_record"), OPS),
        404,
        "itemNotFound",
    );
    let r = api.get(&format!("{O}/backups/{bid}/export_record"), OPS);
    assert_eq!(r.status, 200, "{}", r.text);
    let service = r.json["backup-record"]["backup_service"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(service.starts_with("cinder.backup.drivers."), "{service}");
    let url = r.json["backup-record"]["backup_url"]
        .as_str()
        .unwrap()
        .to_string();
    let rec = record(&url);
    assert_eq!(rec["id"], bid.as_str());
    assert_eq!(rec["name"], "bk");
    assert_eq!(rec["volume_id"], vid.as_str());

    // Import: as exported, the id exists; a changed id makes a copy.
    cinder_fault(&import(&api, &service, &url), 400, "badRequest");
    let r = api.post(
        &format!("{C}/backups/import_record"),
        DEMO,
        &json!({"backup-record": {"backup_service": service, "backup_url": url}}),
    );
    cinder_fault(&r, 403, "forbidden");
    let new_id = "0b7d4b7e-5f25-4c3e-9d55-2a7f0c0e6a11";
    let mut copy = rec.clone();
    copy["id"] = json!(new_id);
    cinder_fault(
        &import(&api, "cinder.backup.drivers.swift", &url_of(&copy)),
        400,
        "badRequest",
    );
    cinder_fault(&import(&api, &service, "%%%"), 400, "badRequest");
    for (member, value) in [
        ("image_id", json!(vid)),
        ("name", json!("other")),
        ("mac", json!("00")),
    ] {
        let mut forged = copy.clone();
        forged[member] = value;
        cinder_fault(&import(&api, &service, &url_of(&forged)), 400, "badRequest");
    }
    let mut bad_id = copy.clone();
    bad_id["id"] = json!("not-a-uuid");
    cinder_fault(&import(&api, &service, &url_of(&bad_id)), 400, "badRequest");
    let r = import(&api, &service, &url_of(&copy));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["backup"]["id"], new_id);
    assert_eq!(r.json["backup"]["name"], "bk");
    // The copy is the importer's, under its id, with the record's fields.
    let r = api.get(&format!("{O}/backups/{new_id}"), OPS);
    assert_eq!(r.status, 200, "{}", r.text);
    let b = &r.json["backup"];
    assert_eq!(b["status"], "available");
    assert_eq!(b["description"], "d");
    assert_eq!(b["volume_id"], vid.as_str());
    assert_eq!(
        b["links"][0]["href"],
        format!("{}{O}/backups/{new_id}", api.base)
    );
    let r = api.get(&format!("{O}/backups/detail"), OPS);
    let ids: Vec<&str> = r.json["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(ids, vec![new_id], "{}", r.text);
    cinder_fault(
        &api.get(&format!("{C}/backups/{new_id}"), DEMO),
        404,
        "itemNotFound",
    );
    cinder_fault(&import(&api, &service, &url_of(&copy)), 400, "badRequest");

    // The two share data but not fate: the original goes, the copy
    // restores; its own export names its id.
    let r = api.delete(&format!("{C}/backups/{bid}"), DEMO);
    assert_eq!(r.status, 202, "{}", r.text);
    let r = api.post(
        &format!("{O}/backups/{new_id}/restore"),
        OPS,
        &json!({"restore": {"name": "back"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["restore"]["backup_id"], new_id);
    let restored = r.json["restore"]["volume_id"].as_str().unwrap().to_string();
    let r = api.get(&format!("{O}/volumes/{restored}"), OPS);
    assert_eq!(r.json["volume"]["status"], "available", "{}", r.text);
    let r = api.get(&format!("{O}/backups/{new_id}/export_record"), OPS);
    assert_eq!(r.status, 200, "{}", r.text);
    let url2 = r.json["backup-record"]["backup_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(record(&url2)["id"], new_id);

    // The key outlives a restart: the record still imports.
    api.restart();
    let mut again = record(&url2);
    let id2 = "5d0c2b1a-8e9f-4a3b-b6c7-d8e9f0a1b2c3";
    again["id"] = json!(id2);
    let r = import(&api, &service, &url_of(&again));
    assert_eq!(r.status, 201, "{}", r.text);
    // Once its image is gone, a record imports no more.
    for id in [new_id, id2] {
        let r = api.delete(&format!("{O}/backups/{id}"), OPS);
        assert_eq!(r.status, 202, "{}", r.text);
    }
    again["id"] = json!("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
    cinder_fault(
        &import(&api, &service, &url_of(&again)),
        404,
        "itemNotFound",
    );
}
