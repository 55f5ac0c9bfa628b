//! Black-box tests of Cinder's generic volume groups, group types and
//! group snapshots against a real `blockd serve`: an admin makes a group
//! type (with specs), a member makes a group and volumes in it, writes
//! data into two members through NBD, takes a group snapshot (one engine
//! snapshot per member), changes the volumes, and makes groups from the
//! group snapshot and from the source group, reading back through NBD what
//! each must hold. Refusals: 403 for members on admin-only calls, 400 for
//! bad bodies, for deleting a group with volumes without
//! `delete-volumes`, and for transferring or retyping a member, 404 for
//! unknown ids and below the microversions. The
//! records survive a restart.

mod api_common;
mod cinder_common;

use api_common::{qemu_io, qemu_io_ro, Api, Resp};
use cinder_common::{cinder_fault as fault, send_v, three_tenants, DEMO, OPS, OTHER};
use serde_json::{json, Value};

/// The three tenants of `cinder_common`.
fn auth() -> String {
    three_tenants("")
}

const D: &str = "/volume/v3/demo";
const O: &str = "/volume/v3/other";
const A: &str = "/volume/v3/ops";
const MV: &str = "volume 3.20";

fn call(api: &Api, method: &str, path: &str, token: &str, body: Value) -> Resp {
    send_v(api, method, path, token, MV, &body)
}

fn get(api: &Api, path: &str, token: &str) -> Resp {
    cinder_common::get_v(api, path, token, MV)
}

#[track_caller]
fn ok(r: &Resp, code: u16) -> Value {
    assert_eq!(r.status, code, "{}", r.text);
    r.json.clone()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// A group type made by the admin.
fn group_type(api: &Api, name: &str) -> String {
    let r = call(
        api,
        "POST",
        &format!("{A}/group_types"),
        OPS,
        json!({"group_type": {"name": name, "group_specs": {"consistent_group_snapshot_enabled": "<is> True"}}}),
    );
    id(&ok(&r, 202)["group_type"])
}

fn volume_in(api: &Api, group: &str, name: &str) -> String {
    let r = call(
        api,
        "POST",
        &format!("{D}/volumes"),
        DEMO,
        json!({"volume": {"size": 1, "name": name, "group_id": group}}),
    );
    let v = ok(&r, 202)["volume"].clone();
    assert_eq!(v["group_id"], group, "{v}");
    id(&v)
}

fn members(api: &Api, group: &str) -> Vec<Value> {
    let r = get(api, &format!("{D}/volumes/detail"), DEMO);
    ok(&r, 200)["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["group_id"] == group)
        .cloned()
        .collect()
}

fn from_src(api: &Api, key: &str, src: &str, name: &str) -> String {
    let r = call(
        api,
        "POST",
        &format!("{D}/groups/action"),
        DEMO,
        json!({"create-from-src": {key: src, "name": name}}),
    );
    let g = ok(&r, 202)["group"].clone();
    assert_eq!(g["name"], name);
    id(&g)
}

#[test]
fn cinder_group_snapshots_hold_the_members_data_at_one_point() {
    let api = Api::start_with(Some(&auth()), |_| {});
    let gt = group_type(&api, "gt-data");
    let r = call(
        &api,
        "POST",
        &format!("{D}/groups"),
        DEMO,
        json!({"group": {"name": "g1", "description": "d", "group_type": gt, "volume_types": ["__DEFAULT__"]}}),
    );
    let g = ok(&r, 202)["group"].clone();
    assert_eq!(g["name"], "g1");
    let g = id(&g);
    let a = volume_in(&api, &g, "a");
    let b = volume_in(&api, &g, "b");
    qemu_io(&api.nbd_uri(&a), &["write -P 0x41 0 64k"]);
    qemu_io(&api.nbd_uri(&b), &["write -P 0x42 64k 64k"]);

    // Show and detail.
    let r = get(&api, &format!("{D}/groups/{g}"), DEMO);
    let shown = ok(&r, 200)["group"].clone();
    assert_eq!(shown["status"], "available");
    assert_eq!(shown["group_type"], gt.as_str());
    assert_eq!(shown["description"], "d");
    assert_eq!(shown["volume_types"].as_array().unwrap().len(), 1);
    assert!(shown["group_snapshot_id"].is_null() && shown["source_group_id"].is_null());
    let r = send_v(
        &api,
        "GET",
        &format!("{D}/groups/{g}?list_volume=true"),
        DEMO,
        "volume 3.25",
        &Value::Null,
    );
    let vols = ok(&r, 200)["group"]["volumes"].clone();
    assert_eq!(vols.as_array().map(Vec::len), Some(2), "{vols}");
    let r = get(&api, &format!("{D}/groups"), DEMO);
    assert_eq!(ok(&r, 200)["groups"], json!([{"id": g, "name": "g1"}]));

    // The group snapshot: one engine snapshot per member.
    let r = call(
        &api,
        "POST",
        &format!("{D}/group_snapshots"),
        DEMO,
        json!({"group_snapshot": {"group_id": g, "name": "gs1"}}),
    );
    let gs = ok(&r, 202)["group_snapshot"].clone();
    assert_eq!(gs["group_type_id"], gt.as_str());
    let gs = id(&gs);
    let r = get(&api, &format!("{D}/snapshots/detail"), DEMO);
    let snaps: Vec<Value> = ok(&r, 200)["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["group_snapshot_id"] == gs.as_str())
        .cloned()
        .collect();
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    let mut parents: Vec<&str> = snaps
        .iter()
        .map(|s| s["volume_id"].as_str().unwrap())
        .collect();
    parents.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(parents, want);
    // Members go only with their group (snapshot), in every dialect.
    let r = api.delete(&format!("/v1.1/demo/os-volumes/{a}"), DEMO);
    assert_eq!(r.status, 409, "{}", r.text);
    let r = api.delete(&format!("/v1.1/demo/os-snapshots/{}", id(&snaps[0])), DEMO);
    assert_eq!(r.status, 409, "{}", r.text);
    let r = call(
        &api,
        "DELETE",
        &format!("{D}/snapshots/{}", id(&snaps[0])),
        DEMO,
        Value::Null,
    );
    fault(&r, 400, "badRequest");
    let r = get(&api, &format!("{D}/group_snapshots/detail"), DEMO);
    let list = ok(&r, 200)["group_snapshots"].clone();
    assert_eq!(list[0]["id"], gs.as_str());
    assert_eq!(list[0]["group_id"], g.as_str());
    assert_eq!(list[0]["status"], "available");
    assert_eq!(list[0]["name"], "gs1");

    // The volumes change after the group snapshot.
    qemu_io(&api.nbd_uri(&a), &["write -P 0x51 0 64k"]);
    qemu_io(&api.nbd_uri(&b), &["write -P 0x52 64k 64k"]);

    // A group from the group snapshot has the data as it was.
    let g2 = from_src(&api, "group_snapshot_id", &gs, "from-snap");
    let r = get(&api, &format!("{D}/groups/{g2}"), DEMO);
    let shown = ok(&r, 200)["group"].clone();
    assert_eq!(shown["group_snapshot_id"], gs.as_str());
    assert_eq!(shown["status"], "available");
    let new = members(&api, &g2);
    assert_eq!(new.len(), 2, "{new:?}");
    for v in &new {
        assert_eq!(v["status"], "available");
        let uri = api.nbd_uri(&id(v));
        match v["name"].as_str() {
            Some("a") => qemu_io_ro(&uri, &["read -P 0x41 0 64k"]),
            Some("b") => qemu_io_ro(&uri, &["read -P 0x42 64k 64k"]),
            other => panic!("unexpected member {other:?}"),
        };
    }
    // A group from the source group has the data as it is now.
    let g3 = from_src(&api, "source_group_id", &g, "from-group");
    let new = members(&api, &g3);
    assert_eq!(new.len(), 2, "{new:?}");
    for v in &new {
        let uri = api.nbd_uri(&id(v));
        match v["name"].as_str() {
            Some("a") => qemu_io_ro(&uri, &["read -P 0x51 0 64k"]),
            Some("b") => qemu_io_ro(&uri, &["read -P 0x52 64k 64k"]),
            other => panic!("unexpected member {other:?}"),
        };
        assert!(v["source_volid"] == a.as_str() || v["source_volid"] == b.as_str());
    }
    // No scratch snapshot is left behind: only the two members.
    let r = get(&api, &format!("{D}/snapshots"), DEMO);
    assert_eq!(ok(&r, 200)["snapshots"].as_array().unwrap().len(), 2);

    // The group with group snapshots is not deleted; the group snapshot
    // goes with its members, then the group with its volumes.
    let del = |group: &str, with: bool| {
        call(
            &api,
            "POST",
            &format!("{D}/groups/{group}/action"),
            DEMO,
            json!({"delete": {"delete-volumes": with}}),
        )
    };
    fault(&del(&g, true), 400, "badRequest");
    let r = call(
        &api,
        "DELETE",
        &format!("{D}/group_snapshots/{gs}"),
        DEMO,
        Value::Null,
    );
    ok(&r, 202);
    let r = get(&api, &format!("{D}/snapshots"), DEMO);
    assert_eq!(ok(&r, 200)["snapshots"], json!([]));
    fault(
        &get(&api, &format!("{D}/group_snapshots/{gs}"), DEMO),
        404,
        "itemNotFound",
    );
    for group in [&g, &g2, &g3] {
        ok(&del(group, true), 202);
    }
    let r = get(&api, &format!("{D}/volumes"), DEMO);
    assert_eq!(ok(&r, 200)["volumes"], json!([]));
    let r = get(&api, &format!("{D}/groups"), DEMO);
    assert_eq!(ok(&r, 200)["groups"], json!([]));
    // The group type is free again.
    let r = call(
        &api,
        "DELETE",
        &format!("{A}/group_types/{gt}"),
        OPS,
        Value::Null,
    );
    ok(&r, 202);
}

#[test]
fn cinder_group_refusals_updates_and_restart() {
    let mut api = Api::start_with(Some(&auth()), |_| {});
    // Group types: admin only, validated, 404 for unknown ids.
    let body = json!({"group_type": {"name": "gt"}});
    fault(
        &call(
            &api,
            "POST",
            &format!("{D}/group_types"),
            DEMO,
            body.clone(),
        ),
        403,
        "forbidden",
    );
    fault(
        &call(
            &api,
            "POST",
            &format!("{A}/group_types"),
            OPS,
            json!({"group_type": {}}),
        ),
        400,
        "badRequest",
    );
    fault(
        &call(
            &api,
            "POST",
            &format!("{A}/group_types"),
            OPS,
            json!({"group_type": {"name": "x", "group_specs": {"k": 1}}}),
        ),
        400,
        "badRequest",
    );
    let gt = group_type(&api, "gt");
    fault(
        &call(&api, "POST", &format!("{A}/group_types"), OPS, body),
        409,
        "conflictingRequest",
    );
    let private = call(
        &api,
        "POST",
        &format!("{A}/group_types"),
        OPS,
        json!({"group_type": {"name": "hidden", "is_public": false}}),
    );
    let private = id(&ok(&private, 202)["group_type"]);
    fault(
        &get(&api, &format!("{D}/group_types/{private}"), DEMO),
        404,
        "itemNotFound",
    );
    fault(
        &get(&api, &format!("{D}/group_types/nope"), DEMO),
        404,
        "itemNotFound",
    );
    fault(
        &get(&api, &format!("{D}/group_types/default"), DEMO),
        404,
        "itemNotFound",
    );
    let r = get(&api, &format!("{D}/group_types"), DEMO);
    let names: Vec<Value> = ok(&r, 200)["group_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("gt")]);
    let r = get(
        &api,
        &format!("{A}/group_types?is_public=none&sort=name:asc"),
        OPS,
    );
    let names: Vec<Value> = ok(&r, 200)["group_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("gt"), json!("hidden")]);
    // Group specs.
    let specs = format!("{A}/group_types/{gt}/group_specs");
    let r = call(
        &api,
        "POST",
        &specs,
        OPS,
        json!({"group_specs": {"k1": "v1"}}),
    );
    assert_eq!(ok(&r, 202)["group_specs"], json!({"k1": "v1"}));
    let r = call(
        &api,
        "PUT",
        &format!("{specs}/k1"),
        OPS,
        json!({"k1": "v2"}),
    );
    assert_eq!(ok(&r, 200), json!({"k1": "v2"}));
    fault(
        &call(&api, "PUT", &format!("{specs}/k1"), OPS, json!({"k9": "v"})),
        400,
        "badRequest",
    );
    fault(
        &call(
            &api,
            "PUT",
            &format!("{D}/group_types/{gt}/group_specs/k1"),
            DEMO,
            json!({"k1": "v"}),
        ),
        403,
        "forbidden",
    );
    let r = get(&api, &specs, OPS);
    assert_eq!(
        ok(&r, 200)["group_specs"],
        json!({"consistent_group_snapshot_enabled": "<is> True", "k1": "v2"})
    );
    ok(
        &call(&api, "DELETE", &format!("{specs}/k1"), OPS, Value::Null),
        202,
    );
    fault(&get(&api, &format!("{specs}/k1"), OPS), 404, "itemNotFound");
    let r = call(
        &api,
        "PUT",
        &format!("{A}/group_types/{gt}"),
        OPS,
        json!({"group_type": {"description": "about"}}),
    );
    assert_eq!(ok(&r, 200)["group_type"]["description"], "about");

    // Groups: below 3.13 there are none; bad bodies, unknown types.
    let r = send_v(
        &api,
        "GET",
        &format!("{D}/groups"),
        DEMO,
        "volume 3.12",
        &Value::Null,
    );
    fault(&r, 404, "itemNotFound");
    let groups = format!("{D}/groups");
    fault(
        &call(
            &api,
            "POST",
            &groups,
            DEMO,
            json!({"group": {"volume_types": ["__DEFAULT__"]}}),
        ),
        400,
        "badRequest",
    );
    fault(
        &call(
            &api,
            "POST",
            &groups,
            DEMO,
            json!({"group": {"group_type": gt}}),
        ),
        400,
        "badRequest",
    );
    fault(
        &call(
            &api,
            "POST",
            &groups,
            DEMO,
            json!({"group": {"group_type": "nope", "volume_types": ["__DEFAULT__"]}}),
        ),
        404,
        "itemNotFound",
    );
    fault(
        &call(
            &api,
            "POST",
            &groups,
            DEMO,
            json!({"group": {"group_type": gt, "volume_types": ["nope"]}}),
        ),
        404,
        "itemNotFound",
    );
    fault(
        &call(&api, "POST", &groups, DEMO, json!([])),
        400,
        "badRequest",
    );
    let r = call(
        &api,
        "POST",
        &groups,
        DEMO,
        json!({"group": {"name": "g", "group_type": gt, "volume_types": ["__DEFAULT__"]}}),
    );
    let g = id(&ok(&r, 202)["group"]);
    let v1 = volume_in(&api, &g, "v1");
    // A loose volume, then added; another project's group is not found.
    let r = call(
        &api,
        "POST",
        &format!("{D}/volumes"),
        DEMO,
        json!({"volume": {"size": 1, "name": "v2"}}),
    );
    let v2 = id(&ok(&r, 202)["volume"]);
    fault(
        &get(&api, &format!("{O}/groups/{g}"), OTHER),
        404,
        "itemNotFound",
    );
    fault(
        &call(
            &api,
            "POST",
            &format!("{O}/volumes"),
            OTHER,
            json!({"volume": {"size": 1, "group_id": g}}),
        ),
        404,
        "itemNotFound",
    );
    let upd = |body: Value| {
        call(
            &api,
            "PUT",
            &format!("{groups}/{g}"),
            DEMO,
            json!({ "group": body }),
        )
    };
    fault(&upd(json!({})), 400, "badRequest");
    fault(&upd(json!({"remove_volumes": v2})), 400, "badRequest");
    fault(&upd(json!({"add_volumes": v1})), 400, "badRequest");
    fault(&upd(json!({"add_volumes": "nope"})), 400, "badRequest");
    ok(&upd(json!({"add_volumes": v2, "name": "renamed"})), 202);
    assert_eq!(members(&api, &g).len(), 2);
    ok(&upd(json!({"remove_volumes": format!("{v1}, {v2}")})), 202);
    assert_eq!(members(&api, &g).len(), 0);
    ok(&upd(json!({"add_volumes": format!("{v1},{v2}")})), 202);
    // A member is not deleted on its own.
    fault(
        &call(
            &api,
            "DELETE",
            &format!("{D}/volumes/{v1}"),
            DEMO,
            Value::Null,
        ),
        400,
        "badRequest",
    );
    // Nor transferred, nor retyped (Cinder's 400s); out of the group it is.
    let transfer = json!({"transfer": {"volume_id": v1}});
    let r = call(
        &api,
        "POST",
        &format!("{D}/os-volume-transfer"),
        DEMO,
        transfer.clone(),
    );
    fault(&r, 400, "badRequest");
    assert!(r.text.contains("part of a group"), "{}", r.text);
    let retype = json!({"os-retype": {"new_type": "__DEFAULT__"}});
    let vact = format!("{D}/volumes/{v1}/action");
    let r = call(&api, "POST", &vact, DEMO, retype.clone());
    fault(&r, 400, "badRequest");
    assert!(r.text.contains("part of a group"), "{}", r.text);
    ok(&upd(json!({"remove_volumes": v1})), 202);
    ok(&call(&api, "POST", &vact, DEMO, retype), 202);
    let r = call(
        &api,
        "POST",
        &format!("{D}/os-volume-transfer"),
        DEMO,
        transfer,
    );
    let t = id(&ok(&r, 202)["transfer"]);
    let r = call(
        &api,
        "DELETE",
        &format!("{D}/os-volume-transfer/{t}"),
        DEMO,
        Value::Null,
    );
    ok(&r, 202);
    ok(&upd(json!({"add_volumes": v1})), 202);
    // reset_status: admin only, 3.20+, known statuses.
    let act = format!("{groups}/{g}/action");
    let reset = json!({"reset_status": {"status": "error"}});
    fault(
        &call(&api, "POST", &act, DEMO, reset.clone()),
        403,
        "forbidden",
    );
    let admin_act = format!("{A}/groups/{g}/action");
    let r = send_v(&api, "POST", &admin_act, OPS, "volume 3.19", &reset);
    fault(&r, 400, "badRequest");
    fault(
        &call(
            &api,
            "POST",
            &admin_act,
            OPS,
            json!({"reset_status": {"status": "bogus"}}),
        ),
        400,
        "badRequest",
    );
    ok(&call(&api, "POST", &admin_act, OPS, reset), 202);
    assert_eq!(
        ok(&get(&api, &format!("{groups}/{g}"), DEMO), 200)["group"]["status"],
        "error"
    );
    // A group in error takes no group snapshot.
    let gsnap = json!({"group_snapshot": {"group_id": g}});
    fault(
        &call(
            &api,
            "POST",
            &format!("{D}/group_snapshots"),
            DEMO,
            gsnap.clone(),
        ),
        400,
        "badRequest",
    );
    ok(
        &call(
            &api,
            "POST",
            &admin_act,
            OPS,
            json!({"reset_status": {"status": "available"}}),
        ),
        202,
    );
    let r = call(&api, "POST", &format!("{D}/group_snapshots"), DEMO, gsnap);
    let gs = id(&ok(&r, 202)["group_snapshot"]);
    fault(
        &call(
            &api,
            "POST",
            &format!("{D}/group_snapshots"),
            DEMO,
            json!({"group_snapshot": {}}),
        ),
        400,
        "badRequest",
    );
    fault(
        &call(
            &api,
            "POST",
            &format!("{D}/group_snapshots"),
            DEMO,
            json!({"group_snapshot": {"group_id": "nope"}}),
        ),
        404,
        "itemNotFound",
    );
    fault(
        &get(&api, &format!("{D}/group_snapshots/nope"), DEMO),
        404,
        "itemNotFound",
    );
    let gs_act = format!("{D}/group_snapshots/{gs}/action");
    fault(
        &call(
            &api,
            "POST",
            &gs_act,
            DEMO,
            json!({"reset_status": {"status": "error"}}),
        ),
        403,
        "forbidden",
    );
    ok(
        &call(
            &api,
            "POST",
            &format!("{A}/group_snapshots/{gs}/action"),
            OPS,
            json!({"reset_status": {"status": "error"}}),
        ),
        202,
    );
    // create-from-src: exactly one source.
    fault(
        &call(
            &api,
            "POST",
            &format!("{groups}/action"),
            DEMO,
            json!({"create-from-src": {"name": "x"}}),
        ),
        400,
        "badRequest",
    );
    fault(
        &call(
            &api,
            "POST",
            &format!("{groups}/action"),
            DEMO,
            json!({"create-from-src": {"group_snapshot_id": gs, "source_group_id": g}}),
        ),
        400,
        "badRequest",
    );
    // The groups quota counts and limits.
    let r = get(&api, &format!("{A}/os-quota-sets/demo?usage=true"), OPS);
    assert_eq!(ok(&r, 200)["quota_set"]["groups"]["in_use"], 1);
    let r = call(
        &api,
        "PUT",
        &format!("{A}/os-quota-sets/demo"),
        OPS,
        json!({"quota_set": {"groups": 1}}),
    );
    ok(&r, 200);
    fault(
        &call(
            &api,
            "POST",
            &groups,
            DEMO,
            json!({"group": {"group_type": gt, "volume_types": ["__DEFAULT__"]}}),
        ),
        413,
        "overLimit",
    );
    // A group with volumes needs delete-volumes.
    fault(
        &call(
            &api,
            "POST",
            &act,
            DEMO,
            json!({"delete": {"delete-volumes": false}}),
        ),
        400,
        "badRequest",
    );
    // The group type is in use, and so is a volume type a group allows.
    let r = call(
        &api,
        "POST",
        &format!("{A}/types"),
        OPS,
        json!({"volume_type": {"name": "vt"}}),
    );
    let vt = id(&ok(&r, 200)["volume_type"]);
    let r = call(
        &api,
        "POST",
        &format!("{A}/groups"),
        OPS,
        json!({"group": {"group_type": gt, "volume_types": [vt]}}),
    );
    let ops_group = id(&ok(&r, 202)["group"]);
    fault(
        &call(&api, "DELETE", &format!("{A}/types/{vt}"), OPS, Value::Null),
        400,
        "badRequest",
    );
    ok(
        &call(
            &api,
            "POST",
            &format!("{A}/groups/{ops_group}/action"),
            OPS,
            json!({"delete": {}}),
        ),
        202,
    );
    ok(
        &call(&api, "DELETE", &format!("{A}/types/{vt}"), OPS, Value::Null),
        202,
    );
    fault(
        &call(
            &api,
            "DELETE",
            &format!("{A}/group_types/{gt}"),
            OPS,
            Value::Null,
        ),
        400,
        "badRequest",
    );

    // Everything survives a restart.
    api.restart();
    let shown = ok(&get(&api, &format!("{groups}/{g}"), DEMO), 200)["group"].clone();
    assert_eq!(shown["name"], "renamed");
    assert_eq!(shown["group_type"], gt.as_str());
    assert_eq!(members(&api, &g).len(), 2);
    let gsv =
        ok(&get(&api, &format!("{D}/group_snapshots/{gs}"), DEMO), 200)["group_snapshot"].clone();
    assert_eq!(gsv["status"], "error");
    assert_eq!(gsv["group_id"], g.as_str());
    let t = ok(&get(&api, &format!("{A}/group_types/{gt}"), OPS), 200)["group_type"].clone();
    assert_eq!(t["description"], "about");
    assert_eq!(
        t["group_specs"],
        json!({"consistent_group_snapshot_enabled": "<is> True"})
    );
    // An errored group snapshot may be deleted; then the group, volumes too.
    ok(
        &call(
            &api,
            "DELETE",
            &format!("{D}/group_snapshots/{gs}"),
            DEMO,
            Value::Null,
        ),
        202,
    );
    ok(
        &call(
            &api,
            "POST",
            &act,
            DEMO,
            json!({"delete": {"delete-volumes": true}}),
        ),
        202,
    );
    assert_eq!(
        ok(&get(&api, &format!("{D}/volumes"), DEMO), 200)["volumes"],
        json!([])
    );
    fault(
        &get(&api, &format!("{groups}/{g}"), DEMO),
        404,
        "itemNotFound",
    );
}
