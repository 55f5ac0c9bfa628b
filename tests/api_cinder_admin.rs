//! Black-box tests of Cinder's operator side against a real `blockd serve`:
//! an admin tenant reads and acts on another project's volumes, snapshots
//! and backups (show, `?all_tenants=1&project_id=` lists, `os-reset_status`,
//! snapshot `os-force_delete`), the owner's `os-update_snapshot_status`,
//! and the read-only operator views (`os-services`, `os-hosts`, pools,
//! capabilities, quota classes); a member gets none of it. Also volume
//! transfers between projects (the key, the quota, who sees what). Tempest covers
//! the same through `tests/tempest.rs`; this pins the refusals.

mod api_common;
mod cinder_common;

use api_common::{Api, Resp};
use cinder_common::{cinder_fault as fault, three_tenants, DEMO, OPS, OTHER};
use serde_json::{json, Value};

/// The three tenants of `cinder_common`.
fn auth() -> String {
    three_tenants("")
}

fn created(r: Resp, key: &str) -> String {
    assert_eq!(r.status, 202, "{}", r.text);
    r.json[key]["id"].as_str().expect("id").to_string()
}

fn ids(r: &Resp, key: &str) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text);
    r.json[key]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn admin_reads_and_resets_other_projects_objects() {
    let api = Api::start_with(Some(&auth()), |_| {});
    let d = "/volume/v3/demo";
    let o = "/volume/v3/other";
    let a = "/volume/v3/ops";
    let vol = created(
        api.post(
            &format!("{d}/volumes"),
            DEMO,
            &json!({"volume": {"size": 1}}),
        ),
        "volume",
    );
    let snap = created(
        api.post(
            &format!("{d}/snapshots"),
            DEMO,
            &json!({"snapshot": {"volume_id": vol}}),
        ),
        "snapshot",
    );
    let backup = created(
        api.post(
            &format!("{d}/backups"),
            DEMO,
            &json!({"backup": {"volume_id": vol}}),
        ),
        "backup",
    );

    // A member sees none of it, with or without all_tenants.
    fault(
        &api.get(&format!("{o}/volumes/{vol}"), OTHER),
        404,
        "itemNotFound",
    );
    assert!(ids(
        &api.get(&format!("{o}/volumes?all_tenants=1"), OTHER),
        "volumes"
    )
    .is_empty());
    let reset = json!({"os-reset_status": {"status": "error"}});
    fault(
        &api.post(&format!("{o}/snapshots/{snap}/action"), OTHER, &reset),
        403,
        "forbidden",
    );
    fault(
        &api.post(&format!("{o}/backups/{backup}/action"), OTHER, &reset),
        403,
        "forbidden",
    );
    fault(
        &api.get(&format!("{o}/os-services"), OTHER),
        403,
        "forbidden",
    );
    fault(
        &api.get(&format!("{o}/scheduler-stats/get_pools"), OTHER),
        403,
        "forbidden",
    );

    // The admin: show names the owner; lists span projects only on request.
    let r = api.get(&format!("{a}/volumes/{vol}"), OPS);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["volume"]["os-vol-tenant-attr:tenant_id"], "demo");
    assert_eq!(r.json["volume"]["user_id"], "demo");
    assert_eq!(
        r.json["volume"]["os-vol-host-attr:host"],
        "blockd@engine#default"
    );
    assert!(ids(&api.get(&format!("{a}/volumes"), OPS), "volumes").is_empty());
    assert_eq!(
        ids(
            &api.get(
                &format!("{a}/volumes/detail?all_tenants=1&project_id=demo"),
                OPS
            ),
            "volumes"
        ),
        vec![vol.clone()]
    );
    assert!(ids(
        &api.get(&format!("{a}/volumes?all_tenants=1&project_id=other"), OPS),
        "volumes"
    )
    .is_empty());
    let r = api.get(&format!("{a}/snapshots/{snap}"), OPS);
    assert_eq!(
        r.json["snapshot"]["os-extended-snapshot-attributes:project_id"], "demo",
        "{}",
        r.text
    );
    // ...but cannot edit them as its own.
    let r = api.put(
        &format!("{a}/volumes/{vol}"),
        OPS,
        &json!({"volume": {"name": "mine"}}),
    );
    fault(&r, 404, "itemNotFound");

    // Snapshot status: the admin resets, the owner reports progress along
    // the transitions Cinder allows.
    let act = |tenant: &str, token: &str, body: Value| {
        api.post(
            &format!("/volume/v3/{tenant}/snapshots/{snap}/action"),
            token,
            &body,
        )
    };
    assert_eq!(act("ops", OPS, reset.clone()).status, 202);
    let show =
        |token: &str| api.get(&format!("{d}/snapshots/{snap}"), token).json["snapshot"].clone();
    assert_eq!(show(DEMO)["status"], "error");
    let update = json!({"os-update_snapshot_status": {"status": "available", "progress": "80%"}});
    fault(&act("demo", DEMO, update.clone()), 400, "badRequest");
    fault(
        &act("ops", OPS, json!({"os-reset_status": {"status": "bogus"}})),
        400,
        "badRequest",
    );
    assert_eq!(
        act(
            "ops",
            OPS,
            json!({"os-reset_status": {"status": "creating"}})
        )
        .status,
        202
    );
    assert_eq!(act("demo", DEMO, update).status, 202);
    let s = show(DEMO);
    assert_eq!(s["status"], "available");
    assert_eq!(s["os-extended-snapshot-attributes:progress"], "80%");
    assert_eq!(s["metadata"], json!({}), "progress is not user metadata");
    // Force delete: the member may not, the admin may.
    fault(
        &act("demo", DEMO, json!({"os-force_delete": {}})),
        403,
        "forbidden",
    );
    assert_eq!(act("ops", OPS, json!({"os-force_delete": {}})).status, 202);
    fault(
        &api.get(&format!("{d}/snapshots/{snap}"), DEMO),
        404,
        "itemNotFound",
    );

    // Backup status.
    let r = api.post(&format!("{a}/backups/{backup}/action"), OPS, &reset);
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(
        api.get(&format!("{d}/backups/{backup}"), DEMO).json["backup"]["status"],
        "error"
    );
}

#[test]
fn admin_operator_views() {
    let api = Api::start_with(Some(&auth()), |_| {});
    let a = "/volume/v3/ops";
    let r = api.get(&format!("{a}/os-services"), OPS);
    assert_eq!(r.status, 200, "{}", r.text);
    let binaries: Vec<&str> = r.json["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["binary"].as_str().unwrap())
        .collect();
    assert_eq!(
        binaries,
        ["cinder-scheduler", "cinder-volume", "cinder-backup"]
    );
    let r = api.get(
        &format!("{a}/os-services?host=blockd&binary=cinder-volume"),
        OPS,
    );
    assert_eq!(r.json["services"][0]["host"], "blockd@engine", "{}", r.text);
    let r = api.get(&format!("{a}/os-services?binary=nope"), OPS);
    assert_eq!(r.json["services"], json!([]));
    // Enabling confirms; disabling is refused; unknown services are 404.
    let body = json!({"host": "blockd@engine", "binary": "cinder-volume"});
    let r = api.put(&format!("{a}/os-services/enable"), OPS, &body);
    assert_eq!(r.json["status"], "enabled", "{}", r.text);
    fault(
        &api.put(&format!("{a}/os-services/disable"), OPS, &body),
        400,
        "badRequest",
    );
    fault(
        &api.put(
            &format!("{a}/os-services/enable"),
            OPS,
            &json!({"host": "elsewhere", "binary": "cinder-volume"}),
        ),
        404,
        "itemNotFound",
    );
    let r = api.get(&format!("{a}/os-hosts/blockd@engine"), OPS);
    assert_eq!(
        r.json["host"][0]["resource"]["project"], "(total)",
        "{}",
        r.text
    );
    fault(
        &api.get(&format!("{a}/os-hosts/nope"), OPS),
        404,
        "itemNotFound",
    );
    let r = api.get(&format!("{a}/scheduler-stats/get_pools?detail=true"), OPS);
    assert_eq!(
        r.json["pools"][0]["name"], "blockd@engine#default",
        "{}",
        r.text
    );
    assert_eq!(r.json["pools"][0]["capabilities"]["vendor_name"], "blockd");
    let r = api.get(&format!("{a}/capabilities/blockd@engine"), OPS);
    assert_eq!(r.json["storage_protocol"], "nbd", "{}", r.text);
    let r = api.get(&format!("{a}/os-quota-class-sets/default"), OPS);
    assert_eq!(r.json["quota_class_set"]["volumes"], -1, "{}", r.text);
}

#[test]
fn volume_transfer_between_projects() {
    let api = Api::start_with(Some(&auth()), |_| {});
    let d = "/volume/v3/demo";
    let o = "/volume/v3/other";
    let vol = created(
        api.post(
            &format!("{d}/volumes"),
            DEMO,
            &json!({"volume": {"size": 2}}),
        ),
        "volume",
    );
    let r = api.post(
        &format!("{d}/os-volume-transfer"),
        DEMO,
        &json!({"transfer": {"volume_id": vol, "name": "gift"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let t = r.json["transfer"].clone();
    let tid = t["id"].as_str().unwrap().to_string();
    let key = t["auth_key"].as_str().unwrap().to_string();
    assert_eq!(t["volume_id"], vol.as_str());
    assert_eq!(t["name"], "gift");
    let status = |path: &str, token: &str| api.get(path, token).json["volume"]["status"].clone();
    assert_eq!(
        status(&format!("{d}/volumes/{vol}"), DEMO),
        "awaiting-transfer"
    );
    // Offered volumes cannot be offered again or deleted.
    fault(
        &api.post(
            &format!("{d}/os-volume-transfer"),
            DEMO,
            &json!({"transfer": {"volume_id": vol}}),
        ),
        400,
        "badRequest",
    );
    fault(
        &api.delete(&format!("{d}/volumes/{vol}"), DEMO),
        400,
        "badRequest",
    );
    // Only the owner lists and shows it; the key is shown once.
    let r = api.get(&format!("{d}/os-volume-transfer/{tid}"), DEMO);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["transfer"].get("auth_key").is_none(), "{}", r.text);
    assert_eq!(
        ids(
            &api.get(&format!("{d}/os-volume-transfer/detail"), DEMO),
            "transfers"
        ),
        vec![tid.clone()]
    );
    assert!(ids(
        &api.get(&format!("{o}/os-volume-transfer"), OTHER),
        "transfers"
    )
    .is_empty());
    fault(
        &api.get(&format!("{o}/os-volume-transfer/{tid}"), OTHER),
        404,
        "itemNotFound",
    );
    // A wrong key is refused; the right one moves the volume.
    let accept = |key: &str| {
        api.post(
            &format!("{o}/os-volume-transfer/{tid}/accept"),
            OTHER,
            &json!({"accept": {"auth_key": key}}),
        )
    };
    fault(&accept("0000000000000000"), 400, "badRequest");
    let r = accept(&key);
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["transfer"]["volume_id"], vol.as_str());
    fault(
        &api.get(&format!("{d}/volumes/{vol}"), DEMO),
        404,
        "itemNotFound",
    );
    let r = api.get(&format!("{o}/volumes/{vol}"), OTHER);
    assert_eq!(r.json["volume"]["status"], "available", "{}", r.text);
    assert_eq!(r.json["volume"]["os-vol-tenant-attr:tenant_id"], "other");
    assert_eq!(r.json["volume"]["user_id"], "other");
    // The transfer is gone: accepting again is 404.
    fault(&accept(&key), 404, "itemNotFound");
    // `volume-transfers` exists from 3.55 (3.57 adds the project fields);
    // withdrawing an offer makes the volume available again.
    let r = api.post(
        &format!("{o}/volume-transfers"),
        OTHER,
        &json!({"transfer": {"volume_id": vol}}),
    );
    fault(&r, 404, "itemNotFound");
    let r = api.send(
        "POST",
        &format!("{o}/volume-transfers"),
        &[
            ("X-Auth-Token", OTHER),
            ("OpenStack-API-Version", "volume 3.57"),
            ("Content-Type", "application/json"),
        ],
        Some(
            json!({"transfer": {"volume_id": vol}})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(
        r.json["transfer"]["source_project_id"], "other",
        "{}",
        r.text
    );
    assert_eq!(r.json["transfer"]["accepted"], false);
    let tid2 = r.json["transfer"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.delete(&format!("{o}/os-volume-transfer/{tid2}"), OTHER)
            .status,
        202
    );
    assert_eq!(status(&format!("{o}/volumes/{vol}"), OTHER), "available");
}
