//! The generic volume group part of the Cinder v3 check in `api_openapi`:
//! on the admin server, group types with their specs, groups (with a
//! member volume), group snapshots and groups made from them or from a
//! source group, through every documented group operation, each answer
//! validated against the document. It reaches every status the group
//! operations declare beyond the common faults the sweeps in `cinder.rs`
//! cover: the successes, 404 for unknown ids and below each path's first
//! microversion, 409 for a group type name taken, 413 with the `groups`
//! and `snapshots` quotas at zero.

use super::cinder::{id, Cinder};
use serde_json::{json, Value};

/// `ops` (an admin) on its own project.
const OPS: Option<(&str, &str)> = Some(("ops", "ops-token-0123456789abcdef"));

/// Every group operation, as the admin `ops`.
pub(super) fn groups(c: &Cinder) {
    let a = |m: &str, p: &str, ids: &[(&str, &str)], body: Option<Value>, status: u16| {
        c.call(m, p, ids, "", OPS, "3.62", body, status)
    };
    // Below each path's first microversion, the collections are unknown.
    for (m, p, mv, body) in [
        ("get", "/group_types", "3.10", None),
        (
            "post",
            "/group_types",
            "3.10",
            Some(json!({"group_type": {"name": "x"}})),
        ),
        ("get", "/groups", "3.12", None),
        ("get", "/groups/detail", "3.12", None),
        ("post", "/groups", "3.12", Some(json!({"group": {}}))),
        (
            "post",
            "/groups/action",
            "3.12",
            Some(json!({"create-from-src": {}})),
        ),
        ("get", "/group_snapshots", "3.13", None),
        ("get", "/group_snapshots/detail", "3.13", None),
        (
            "post",
            "/group_snapshots",
            "3.13",
            Some(json!({"group_snapshot": {}})),
        ),
    ] {
        c.call(m, p, &[], "", OPS, mv, body, 404);
    }

    // Group types and their specs.
    let body = json!({"group_type": {"name": "gt", "group_specs": {"k": "v"}}});
    let r = a("post", "/group_types", &[], Some(body.clone()), 202);
    assert_eq!(r.json["group_type"]["group_specs"], json!({"k": "v"}));
    let gt = id(&r, "group_type");
    a("post", "/group_types", &[], Some(body), 409);
    let body = json!({"group_type": {"name": "gt2", "is_public": false}});
    let r = a("post", "/group_types", &[], Some(body), 202);
    let gt2 = id(&r, "group_type");
    let t = [("group_type_id", gt.as_str()), ("key", "a")];
    let t2 = [("group_type_id", gt2.as_str())];
    let no = [("group_type_id", "nope"), ("key", "a")];
    let r = c.call(
        "get",
        "/group_types",
        &[],
        "?is_public=none",
        OPS,
        "3.62",
        None,
        200,
    );
    assert_eq!(r.json["group_types"].as_array().map(Vec::len), Some(2));
    let one = "/group_types/{group_type_id}";
    a("get", one, &t, None, 200);
    a("get", one, &no, None, 404);
    let desc = json!({"group_type": {"description": "x"}});
    let r = a("put", one, &t, Some(desc.clone()), 200);
    assert_eq!(r.json["group_type"]["description"], "x");
    a("put", one, &no, Some(desc), 404);
    a(
        "put",
        one,
        &t2,
        Some(json!({"group_type": {"name": "gt"}})),
        409,
    );
    let specs = "/group_types/{group_type_id}/group_specs";
    let add = json!({"group_specs": {"a": "b"}});
    let r = a("post", specs, &t, Some(add.clone()), 202);
    assert_eq!(r.json["group_specs"], json!({"a": "b"}));
    a("post", specs, &no, Some(add), 404);
    let r = a("get", specs, &t, None, 200);
    assert_eq!(r.json["group_specs"], json!({"a": "b", "k": "v"}));
    a("get", specs, &no, None, 404);
    let spec = "/group_types/{group_type_id}/group_specs/{key}";
    let r = a("get", spec, &t, None, 200);
    assert_eq!(r.json, json!({"a": "b"}));
    let r = a("put", spec, &t, Some(json!({"a": "c"})), 200);
    assert_eq!(r.json, json!({"a": "c"}));
    a("put", spec, &no, Some(json!({"a": "c"})), 404);
    a("delete", spec, &t, None, 202);
    a("delete", spec, &t, None, 404);
    a("get", spec, &t, None, 404);
    a("delete", one, &t2, None, 202);
    a("delete", one, &t2, None, 404);

    // A group with a member volume.
    let body = json!({"group": {"name": "g", "group_type": gt, "volume_types": ["__DEFAULT__"]}});
    let r = a("post", "/groups", &[], Some(body), 202);
    let gid = id(&r, "group");
    let g = [("group_id", gid.as_str())];
    let gone = [("group_id", "nope")];
    let vol = json!({"volume": {"size": 1, "group_id": gid}});
    a("post", "/volumes", &[], Some(vol), 202);
    let r = a("get", "/groups", &[], None, 200);
    assert_eq!(r.json["groups"], json!([{"id": gid, "name": "g"}]));
    let r = a("get", "/groups/detail", &[], None, 200);
    assert_eq!(r.json["groups"][0]["project_id"], "ops");
    let show = "/groups/{group_id}";
    let r = c.call("get", show, &g, "?list_volume=true", OPS, "3.62", None, 200);
    assert_eq!(r.json["group"]["volumes"].as_array().map(Vec::len), Some(1));
    // Below 3.14 the members a later microversion adds are left out.
    let r = c.call("get", show, &g, "", OPS, "3.13", None, 200);
    assert!(r.json["group"].get("source_group_id").is_none());
    a("get", show, &gone, None, 404);
    let rename = json!({"group": {"name": "g1"}});
    a("put", show, &g, Some(rename.clone()), 202);
    a("put", show, &gone, Some(rename), 404);

    // A group snapshot, and groups made from it and from the group.
    let body = json!({"group_snapshot": {"group_id": gid, "name": "gs"}});
    let r = a("post", "/group_snapshots", &[], Some(body), 202);
    assert_eq!(r.json["group_snapshot"]["group_type_id"], gt.as_str());
    let gsid = id(&r, "group_snapshot");
    let s = [("group_snapshot_id", gsid.as_str())];
    let unknown = [("group_snapshot_id", "nope")];
    let none = json!({"group_snapshot": {"group_id": "nope"}});
    a("post", "/group_snapshots", &[], Some(none), 404);
    let r = a("get", "/group_snapshots", &[], None, 200);
    assert_eq!(
        r.json["group_snapshots"],
        json!([{"id": gsid, "name": "gs"}])
    );
    let q = format!("?group_id={gid}");
    let r = c.call(
        "get",
        "/group_snapshots/detail",
        &[],
        &q,
        OPS,
        "3.62",
        None,
        200,
    );
    assert_eq!(r.json["group_snapshots"][0]["group_id"], gid.as_str());
    let gs = "/group_snapshots/{group_snapshot_id}";
    let r = a("get", gs, &s, None, 200);
    assert_eq!(r.json["group_snapshot"]["status"], "available");
    a("get", gs, &unknown, None, 404);
    let act = "/group_snapshots/{group_snapshot_id}/action";
    let reset = json!({"reset_status": {"status": "available"}});
    a("post", act, &s, Some(reset.clone()), 202);
    a("post", act, &unknown, Some(reset.clone()), 404);
    let src = "/groups/action";
    let from = json!({"create-from-src": {"group_snapshot_id": gsid, "name": "c1"}});
    let r = a("post", src, &[], Some(from), 202);
    let c1 = id(&r, "group");
    let from = json!({"create-from-src": {"source_group_id": gid, "name": "c2"}});
    let r = a("post", src, &[], Some(from), 202);
    let c2 = id(&r, "group");
    let from = json!({"create-from-src": {"group_snapshot_id": "nope"}});
    a("post", src, &[], Some(from), 404);

    // Quotas reached: no more groups, nor snapshots of the member.
    let quota = "/os-quota-sets/{quota_project_id}";
    let me = [("quota_project_id", "ops")];
    let full = json!({"quota_set": {"groups": 0, "snapshots": 0}});
    a("put", quota, &me, Some(full), 200);
    let body = json!({"group": {"group_type": gt, "volume_types": ["__DEFAULT__"]}});
    a("post", "/groups", &[], Some(body), 413);
    let from = json!({"create-from-src": {"source_group_id": gid}});
    a("post", src, &[], Some(from), 413);
    let body = json!({"group_snapshot": {"group_id": gid}});
    a("post", "/group_snapshots", &[], Some(body), 413);
    a("delete", quota, &me, None, 200);

    // Group actions, deletes.
    let gact = "/groups/{group_id}/action";
    let reset = json!({"reset_status": {"status": "available"}});
    a("post", gact, &g, Some(reset.clone()), 202);
    a("post", gact, &gone, Some(reset), 404);
    a("delete", gs, &s, None, 202);
    a("delete", gs, &s, None, 404);
    let delete = json!({"delete": {"delete-volumes": true}});
    for group in [&c1, &c2, &gid] {
        let ids = [("group_id", group.as_str())];
        a("post", gact, &ids, Some(delete.clone()), 202);
    }
    a("post", gact, &g, Some(delete), 404);
    a("delete", one, &t, None, 202);
    a("delete", one, &t, None, 404);
}
