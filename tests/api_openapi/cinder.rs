//! The Cinder v3 part of `api_openapi`: the document at
//! `/volume/v3/openapi.json` (linked from version discovery) describes
//! every route. A create/list/show/update/delete cycle of every resource,
//! the faults, a sweep of every documented path and method, and (on a
//! second server with an admin tenant) the admin operations get answers
//! that validate against the documented schemas, until every status every
//! operation declares has been seen for real.

use super::{all_covered, concrete, documented, schema_errors, sweep};
use crate::api_common::{Api, Resp, DEMO, OTHER, SMALL};
use serde_json::{json, Value};

/// The project prefix of the documented paths.
const P: &str = "/v3/{project_id}";

/// A client of one document.
pub(super) struct Cinder<'a> {
    api: &'a Api,
    doc: Value,
}

impl Cinder<'_> {
    /// `method` on the documented `path` (under the project unless it
    /// starts with `!`) with `ids` for its parameters, as `token` (the
    /// project is the token's tenant) at microversion `mv`; the answer
    /// must have `status` and be documented.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub(super) fn call(
        &self,
        method: &str,
        path: &str,
        ids: &[(&str, &str)],
        query: &str,
        token: Option<(&str, &str)>,
        mv: &str,
        body: Option<Value>,
        status: u16,
    ) -> Resp {
        let template = match path.strip_prefix('!') {
            Some(p) => p.to_string(),
            None => format!("{P}{path}"),
        };
        let mut params = vec![("project_id", token.map_or("demo", |t| t.0))];
        params.extend_from_slice(ids);
        let url = format!("/volume{}{query}", concrete(&template, &params));
        let version = format!("volume {mv}");
        let mut h = vec![("OpenStack-API-Version", version.as_str())];
        if let Some((_, t)) = token {
            h.push(("X-Auth-Token", t));
        }
        let text = body.map(|b| b.to_string());
        if text.is_some() {
            h.push(("Content-Type", "application/json"));
        }
        let r = self.api.send(
            &method.to_uppercase(),
            &url,
            &h,
            text.as_deref().map(str::as_bytes),
        );
        assert_eq!(r.status, status, "{method} {url}: {}", r.text);
        documented(&self.doc, &template, method, &r);
        r
    }

    /// As `demo` at the newest microversion.
    #[track_caller]
    fn me(
        &self,
        method: &str,
        path: &str,
        ids: &[(&str, &str)],
        body: Option<Value>,
        status: u16,
    ) -> Resp {
        self.call(
            method,
            path,
            ids,
            "",
            Some(("demo", DEMO)),
            "3.62",
            body,
            status,
        )
    }
}

pub(super) fn id(r: &Resp, key: &str) -> String {
    r.json[key]["id"].as_str().expect("id").to_string()
}

pub fn cinder(api: &Api) {
    let r = api.raw("GET", "/volume/", None, None);
    assert_eq!(r.status, 300);
    let link = format!(
        "<{}/volume/v3/openapi.json>; rel=\"service-desc\"",
        api.base
    );
    assert_eq!(r.header("link"), Some(link.as_str()));
    let d = api.raw("GET", "/volume/v3/openapi.json", None, None);
    assert_eq!(d.status, 200, "{}", d.text);
    let doc = d.json;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], format!("{}/volume", api.base));
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["name"],
        "X-Auth-Token"
    );
    let c = Cinder { api, doc };
    documented(&c.doc, "/", "get", &r);
    let r = c.call("get", "!/v3/", &[], "", None, "3.0", None, 200);
    assert_eq!(r.header("link"), Some(link.as_str()));
    c.call("get", "!/", &[], "", None, "3.99", None, 406);
    c.call("get", "!/v3/", &[], "", None, "x", None, 400);
    c.call("get", "!/v3/openapi.json", &[], "", None, "3.0", None, 200);

    // Volumes.
    let body = json!({"volume": {"size": 1, "name": "a", "metadata": {"k": "v"}}});
    let r = c.me("post", "/volumes", &[], Some(body), 202);
    let vid = id(&r, "volume");
    let v = [("volume_id", vid.as_str())];
    let one = "/volumes/{volume_id}";
    c.me("post", "/volumes", &[], Some(json!({"volume": {}})), 400);
    c.me(
        "post",
        "/volumes",
        &[],
        Some(json!({"volume": {"snapshot_id": "nope"}})),
        404,
    );
    c.call(
        "post",
        "/volumes",
        &[],
        "",
        Some(("small", SMALL)),
        "3.0",
        Some(json!({"volume": {"size": 4}})),
        413,
    );
    for q in ["", "?with_count=true&limit=1"] {
        c.call(
            "get",
            "/volumes",
            &[],
            q,
            Some(("demo", DEMO)),
            "3.62",
            None,
            200,
        );
        let r = c.call(
            "get",
            "/volumes/detail",
            &[],
            q,
            Some(("demo", DEMO)),
            "3.62",
            None,
            200,
        );
        assert!(r.json["volumes"][0]["id"].is_string(), "{}", r.text);
    }
    for mv in ["3.0", "3.13", "3.48", "3.62"] {
        c.call("get", one, &v, "", Some(("demo", DEMO)), mv, None, 200);
    }
    c.me("get", "/volumes/summary", &[], None, 200);
    let r = c.me(
        "put",
        one,
        &v,
        Some(json!({"volume": {"name": "b", "description": "d"}})),
        200,
    );
    assert_eq!(r.json["volume"]["name"], "b");
    c.me("get", one, &[("volume_id", "nope")], None, 404);
    c.call("get", one, &v, "", None, "3.0", None, 401);
    c.call("get", one, &v, "", Some(("demo", OTHER)), "3.0", None, 403);
    c.call("get", one, &v, "", Some(("demo", DEMO)), "3.63", None, 406);
    let md = "/volumes/{volume_id}/metadata";
    let item = "/volumes/{volume_id}/metadata/{key}";
    let vk = [("volume_id", vid.as_str()), ("key", "k")];
    c.me("get", md, &v, None, 200);
    c.me("post", md, &v, Some(json!({"metadata": {"x": "1"}})), 200);
    c.me("put", md, &v, Some(json!({"metadata": {"k": "v"}})), 200);
    c.me("get", item, &vk, None, 200);
    c.me("put", item, &vk, Some(json!({"meta": {"k": "w"}})), 200);
    c.me("delete", item, &vk, None, 200);
    c.me("get", item, &vk, None, 404);
    let act = "/volumes/{volume_id}/action";
    c.me(
        "post",
        act,
        &v,
        Some(json!({"os-extend": {"new_size": 2}})),
        202,
    );
    let r = c.me(
        "post",
        act,
        &v,
        Some(json!({"os-set_image_metadata": {"metadata": {"i": "j"}}})),
        200,
    );
    assert_eq!(r.json["metadata"]["i"], "j");
    let r = c.me(
        "post",
        act,
        &v,
        Some(json!({"os-initialize_connection": {"connector": {}}})),
        200,
    );
    assert_eq!(r.json["connection_info"]["driver_volume_type"], "nbd");
    c.me("post", act, &v, Some(json!({"nope": {}})), 400);
    // The schemas bite: an unknown member, a missing one, a wrong type.
    let r = c.me("get", one, &v, None, 200);
    assert_eq!(
        schema_errors(&c.doc, &format!("{P}{one}"), "get", 200, &r.json),
        0
    );
    let mut extra = r.json.clone();
    extra["volume"]["extra"] = json!(1);
    let mut missing = r.json.clone();
    missing["volume"].as_object_mut().unwrap().remove("status");
    let mut wrong = r.json.clone();
    wrong["volume"]["size"] = json!("2");
    for bad in [extra, missing, wrong] {
        assert!(
            schema_errors(&c.doc, &format!("{P}{one}"), "get", 200, &bad) > 0,
            "{bad}"
        );
    }

    // Snapshots.
    let r = c.me(
        "post",
        "/snapshots",
        &[],
        Some(json!({"snapshot": {"volume_id": vid, "name": "s"}})),
        202,
    );
    let sid = id(&r, "snapshot");
    let s = [("snapshot_id", sid.as_str())];
    let snap = "/snapshots/{snapshot_id}";
    c.me(
        "post",
        "/snapshots",
        &[],
        Some(json!({"snapshot": {"volume_id": "nope"}})),
        404,
    );
    c.me("get", "/snapshots", &[], None, 200);
    c.me("get", "/snapshots/detail", &[], None, 200);
    c.me("get", snap, &s, None, 200);
    c.me(
        "put",
        snap,
        &s,
        Some(json!({"snapshot": {"name": "t"}})),
        200,
    );
    let smd = "/snapshots/{snapshot_id}/metadata";
    c.me("post", smd, &s, Some(json!({"metadata": {"a": "b"}})), 200);
    c.me("get", smd, &s, None, 200);
    let sk = [("snapshot_id", sid.as_str()), ("key", "a")];
    c.me(
        "get",
        "/snapshots/{snapshot_id}/metadata/{key}",
        &sk,
        None,
        200,
    );

    // Backups.
    let r = c.me(
        "post",
        "/backups",
        &[],
        Some(json!({"backup": {"volume_id": vid, "name": "bk"}})),
        202,
    );
    let bid = id(&r, "backup");
    let b = [("backup_id", bid.as_str())];
    let backup = "/backups/{backup_id}";
    c.me("get", "/backups", &[], None, 200);
    for mv in ["3.0", "3.62"] {
        c.call(
            "get",
            "/backups/detail",
            &[],
            "",
            Some(("demo", DEMO)),
            mv,
            None,
            200,
        );
        c.call("get", backup, &b, "", Some(("demo", DEMO)), mv, None, 200);
    }
    c.me(
        "put",
        backup,
        &b,
        Some(json!({"backup": {"name": "bk2"}})),
        200,
    );
    c.call(
        "put",
        backup,
        &b,
        "",
        Some(("demo", DEMO)),
        "3.0",
        Some(json!({"backup": {"name": "bk2"}})),
        405,
    );
    let r = c.me(
        "post",
        "/backups/{backup_id}/restore",
        &b,
        Some(json!({"restore": {}})),
        202,
    );
    let restored = r.json["restore"]["volume_id"]
        .as_str()
        .expect("id")
        .to_string();
    c.me("delete", backup, &b, None, 202);
    c.me("get", backup, &b, None, 404);

    // Attachments (3.27+), on the restored volume.
    let a = [("attachment_id", restored.as_str())];
    let att = "/attachments/{attachment_id}";
    c.me(
        "post",
        "/attachments",
        &[],
        Some(json!({"attachment": {"volume_uuid": restored, "instance_uuid": "srv-1"}})),
        200,
    );
    c.me("get", "/attachments", &[], None, 200);
    c.me("get", "/attachments/detail", &[], None, 200);
    let r = c.me("get", att, &a, None, 200);
    assert_eq!(r.json["attachment"]["status"], "reserved");
    let r = c.me(
        "put",
        att,
        &a,
        Some(json!({"attachment": {"connector": {"mountpoint": "/dev/vdb"}}})),
        200,
    );
    assert_eq!(r.json["attachment"]["status"], "attached");
    let r = c.me("get", "/attachments/detail", &[], None, 200);
    assert!(
        r.json["attachments"][0]["connection_info"]["data"].is_object(),
        "{}",
        r.text
    );
    c.me("delete", att, &a, None, 200);
    c.me("get", att, &a, None, 404);

    // Transfers, under both names.
    for coll in ["/os-volume-transfer", "/volume-transfers"] {
        let r = c.me(
            "post",
            coll,
            &[],
            Some(json!({"transfer": {"volume_id": restored, "name": "tr"}})),
            202,
        );
        assert!(r.json["transfer"]["auth_key"].is_string());
        let tid = id(&r, "transfer");
        let t = [("transfer_id", tid.as_str())];
        c.me("get", coll, &[], None, 200);
        c.me("get", &format!("{coll}/detail"), &[], None, 200);
        let one = format!("{coll}/{{transfer_id}}");
        c.me("get", &one, &t, None, 200);
        c.me(
            "post",
            &format!("{one}/accept"),
            &t,
            Some(json!({"accept": {"auth_key": "0"}})),
            400,
        );
        c.me("delete", &one, &t, None, 202);
        c.me("get", &one, &t, None, 404);
    }

    // Types, quotas, information; the operator views are 403 for a tenant.
    c.me("get", "/types", &[], None, 200);
    let ty = [("type_id", "default")];
    c.me("get", "/types/{type_id}", &ty, None, 200);
    c.me("get", "/types/{type_id}/extra_specs", &ty, None, 200);
    c.me(
        "get",
        "/types/{type_id}/extra_specs/{key}",
        &[("type_id", "default"), ("key", "nope")],
        None,
        404,
    );
    c.me(
        "post",
        "/types",
        &[],
        Some(json!({"volume_type": {"name": "gold"}})),
        403,
    );
    c.me("get", "/messages", &[], None, 200);
    for p in ["/os-availability-zone", "/extensions", "/limits"] {
        c.me("get", p, &[], None, 200);
    }
    let q = "/os-quota-sets/{quota_project_id}";
    let mine = [("quota_project_id", "demo")];
    c.me("get", q, &mine, None, 200);
    c.call(
        "get",
        q,
        &mine,
        "?usage=true",
        Some(("demo", DEMO)),
        "3.62",
        None,
        200,
    );
    c.me("get", &format!("{q}/defaults"), &mine, None, 200);
    c.me(
        "put",
        q,
        &mine,
        Some(json!({"quota_set": {"volumes": 9}})),
        403,
    );
    for p in ["/os-services", "/os-hosts", "/scheduler-stats/get_pools"] {
        c.me("get", p, &[], None, 403);
    }

    // Every documented path, with the methods that change nothing.
    let params = [
        ("project_id", "demo"),
        ("volume_id", vid.as_str()),
        ("snapshot_id", sid.as_str()),
        ("attachment_id", restored.as_str()),
        ("backup_id", bid.as_str()),
        ("transfer_id", "nope"),
        ("type_id", "default"),
        ("key", "k"),
        ("message_id", "nope"),
        ("quota_project_id", "demo"),
        ("class_name", "default"),
        ("service_action", "enable"),
        ("host_name", "blockd@engine"),
        ("group_type_id", "nope"),
        ("group_id", "nope"),
        ("group_snapshot_id", "nope"),
        ("qos_id", "nope"),
        ("encryption_id", "cipher"),
    ];
    let n = sweep(
        api,
        &c.doc,
        ("/volume", ""),
        &["get"],
        &params,
        &[
            ("X-Auth-Token", DEMO),
            ("OpenStack-API-Version", "volume 3.62"),
        ],
        ("", b""),
    );
    assert_eq!(n, 63);
    // Every documented operation is a route answering what it declares:
    // with unknown ids and an empty body (nothing is changed)...
    let nope: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (*k, if *k == "project_id" { *v } else { "nope" }))
        .collect();
    let n = sweep(
        api,
        &c.doc,
        ("/volume", ""),
        &["post", "put", "delete"],
        &nope,
        &[
            ("X-Auth-Token", DEMO),
            ("OpenStack-API-Version", "volume 3.62"),
        ],
        ("application/json", b"{}"),
    );
    assert_eq!(n, 64);
    // ... and the faults every project operation declares: no token (401),
    // another project's token (403), a malformed (400) or unsupported (406)
    // microversion.
    let mut n = 0;
    for (path, item) in c.doc["paths"].as_object().expect("paths") {
        if !path.starts_with(P) {
            continue;
        }
        let url = format!("/volume{}", concrete(path, &nope));
        for m in item.as_object().expect("item").keys() {
            for (token, version, status) in [
                (None, "volume 3.62", 401),
                (Some(OTHER), "volume 3.62", 403),
                (Some(DEMO), "volume 3.x", 400),
                (Some(DEMO), "volume 3.99", 406),
            ] {
                let mut h = vec![("OpenStack-API-Version", version)];
                if let Some(t) = token {
                    h.push(("X-Auth-Token", t));
                }
                let r = api.send(&m.to_uppercase(), &url, &h, None);
                assert_eq!(r.status, status, "{m} {url}: {}", r.text);
                documented(&c.doc, path, m, &r);
                n += 1;
            }
        }
    }
    assert_eq!(n, 4 * 124);

    // Deletes.
    c.me("delete", snap, &s, None, 202);
    c.me("delete", one, &v, None, 202);
    c.me(
        "delete",
        one,
        &[("volume_id", restored.as_str())],
        None,
        202,
    );
    c.me("get", one, &v, None, 404);

    // What the cycle did not reach: unknown ids with valid bodies, lists
    // from an unknown marker, paths below their microversion.
    let nope = "nope";
    for (m, p, key, body) in [
        (
            "put",
            "/volumes/{volume_id}",
            "volume_id",
            json!({"volume": {"name": "x"}}),
        ),
        (
            "get",
            "/volumes/{volume_id}/metadata",
            "volume_id",
            Value::Null,
        ),
        (
            "post",
            "/volumes/{volume_id}/metadata",
            "volume_id",
            json!({"metadata": {"a": "b"}}),
        ),
        (
            "put",
            "/volumes/{volume_id}/metadata",
            "volume_id",
            json!({"metadata": {"a": "b"}}),
        ),
        (
            "put",
            "/volumes/{volume_id}/metadata/{key}",
            "volume_id",
            json!({"meta": {"k": "v"}}),
        ),
        (
            "post",
            "/volumes/{volume_id}/action",
            "volume_id",
            json!({"os-extend": {"new_size": 3}}),
        ),
        (
            "get",
            "/snapshots/{snapshot_id}",
            "snapshot_id",
            Value::Null,
        ),
        (
            "put",
            "/snapshots/{snapshot_id}",
            "snapshot_id",
            json!({"snapshot": {"name": "x"}}),
        ),
        (
            "get",
            "/snapshots/{snapshot_id}/metadata",
            "snapshot_id",
            Value::Null,
        ),
        (
            "post",
            "/snapshots/{snapshot_id}/metadata",
            "snapshot_id",
            json!({"metadata": {"a": "b"}}),
        ),
        (
            "put",
            "/snapshots/{snapshot_id}/metadata",
            "snapshot_id",
            json!({"metadata": {"a": "b"}}),
        ),
        (
            "put",
            "/snapshots/{snapshot_id}/metadata/{key}",
            "snapshot_id",
            json!({"meta": {"k": "v"}}),
        ),
        (
            "post",
            "/snapshots/{snapshot_id}/action",
            "snapshot_id",
            json!({"os-update_snapshot_status": {"status": "error"}}),
        ),
        (
            "put",
            "/backups/{backup_id}",
            "backup_id",
            json!({"backup": {"name": "x"}}),
        ),
        (
            "post",
            "/backups/{backup_id}/restore",
            "backup_id",
            json!({"restore": {}}),
        ),
        (
            "post",
            "/backups",
            "",
            json!({"backup": {"volume_id": nope}}),
        ),
        (
            "put",
            "/attachments/{attachment_id}",
            "attachment_id",
            json!({"attachment": {"connector": {}}}),
        ),
        (
            "post",
            "/attachments/{attachment_id}/action",
            "attachment_id",
            json!({"os-complete": {}}),
        ),
        (
            "post",
            "/attachments",
            "",
            json!({"attachment": {"volume_uuid": nope}}),
        ),
        (
            "post",
            "/os-volume-transfer",
            "",
            json!({"transfer": {"volume_id": nope}}),
        ),
        (
            "post",
            "/volume-transfers",
            "",
            json!({"transfer": {"volume_id": nope}}),
        ),
        (
            "post",
            "/os-volume-transfer/{transfer_id}/accept",
            "transfer_id",
            json!({"accept": {"auth_key": "k"}}),
        ),
        (
            "post",
            "/volume-transfers/{transfer_id}/accept",
            "transfer_id",
            json!({"accept": {"auth_key": "k"}}),
        ),
        ("get", "/types/{type_id}", "type_id", Value::Null),
        (
            "get",
            "/types/{type_id}/extra_specs",
            "type_id",
            Value::Null,
        ),
    ] {
        let ids = [(key, nope), ("key", "k")];
        let body = (!body.is_null()).then_some(body);
        c.me(m, p, &ids, body, 404);
    }
    for p in [
        "/volumes",
        "/volumes/detail",
        "/snapshots",
        "/snapshots/detail",
        "/backups",
        "/backups/detail",
    ] {
        let demo = Some(("demo", DEMO));
        c.call("get", p, &[], "?marker=nope", demo, "3.62", None, 404);
    }
    for (p, mv) in [
        ("/volumes/summary", "3.11"),
        ("/attachments", "3.26"),
        ("/attachments/detail", "3.26"),
        ("/messages", "3.2"),
        ("/volume-transfers", "3.54"),
        ("/volume-transfers/detail", "3.54"),
    ] {
        c.call("get", p, &[], "", Some(("demo", DEMO)), mv, None, 404);
    }
    c.call("get", "!/", &[], "", None, "x", None, 400);
    c.call("get", "!/v3/", &[], "", None, "3.99", None, 406);
    c.call("get", "!/v3/openapi.json", &[], "", None, "x", None, 400);
    c.call("get", "!/v3/openapi.json", &[], "", None, "3.99", None, 406);
    // A reservation completed by os-complete (204).
    let r = c.me(
        "post",
        "/volumes",
        &[],
        Some(json!({"volume": {"size": 1}})),
        202,
    );
    let rid = id(&r, "volume");
    let a = [("attachment_id", rid.as_str())];
    let body = json!({"attachment": {"volume_uuid": rid, "instance_uuid": "srv-2"}});
    c.me("post", "/attachments", &[], Some(body), 200);
    let done = json!({"os-complete": {}});
    c.me(
        "post",
        "/attachments/{attachment_id}/action",
        &a,
        Some(done),
        204,
    );
    c.me("delete", "/attachments/{attachment_id}", &a, None, 200);
    // A transfer accepted by another project.
    for coll in ["/os-volume-transfer", "/volume-transfers"] {
        let body = json!({"transfer": {"volume_id": rid}});
        let r = c.me("post", coll, &[], Some(body), 202);
        let key = r.json["transfer"]["auth_key"].as_str().expect("key");
        let t = [(
            "transfer_id",
            r.json["transfer"]["id"].as_str().expect("id"),
        )];
        let them = Some(("other", OTHER));
        let body = Some(json!({"accept": {"auth_key": key}}));
        let p = format!("{coll}/{{transfer_id}}/accept");
        c.call("post", &p, &t, "", them, "3.62", body, 202);
        // Back to demo for the second round.
        let body = json!({"transfer": {"volume_id": rid}});
        let r = c.call("post", coll, &[], "", them, "3.62", Some(body), 202);
        let key = r.json["transfer"]["auth_key"].as_str().expect("key");
        let t = [(
            "transfer_id",
            r.json["transfer"]["id"].as_str().expect("id"),
        )];
        let body = Some(json!({"accept": {"auth_key": key}}));
        c.call("post", &p, &t, "", Some(("demo", DEMO)), "3.62", body, 202);
    }
    c.me("delete", one, &[("volume_id", rid.as_str())], None, 202);

    admin(c.doc);
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

/// The admins' operations, on a server of its own with an admin tenant;
/// then every response `doc` declares has been checked.
fn admin(doc: Value) {
    let api = Api::start_with(Some(ADMIN_AUTH), |_| {});
    let c = Cinder { api: &api, doc };
    let ops = Some(("ops", OPS));
    let a = |m: &str, p: &str, ids: &[(&str, &str)], body: Option<Value>, status: u16| {
        c.call(m, p, ids, "", ops, "3.62", body, status)
    };
    // Volume types, their extra specs and access.
    let gold = json!({"volume_type": {"name": "gold", "os-volume-type-access:is_public": false}});
    let r = a("post", "/types", &[], Some(gold.clone()), 200);
    let tid = id(&r, "volume_type");
    let t = [("type_id", tid.as_str()), ("key", "a")];
    let no = [("type_id", "nope"), ("key", "a")];
    a("post", "/types", &[], Some(gold), 409);
    let desc = json!({"volume_type": {"description": "x"}});
    a("put", "/types/{type_id}", &t, Some(desc.clone()), 200);
    a("put", "/types/{type_id}", &no, Some(desc), 404);
    let clash = json!({"volume_type": {"name": "__DEFAULT__"}});
    a("put", "/types/{type_id}", &t, Some(clash), 409);
    let specs = json!({"extra_specs": {"a": "b"}});
    a(
        "post",
        "/types/{type_id}/extra_specs",
        &t,
        Some(specs.clone()),
        200,
    );
    a(
        "post",
        "/types/{type_id}/extra_specs",
        &no,
        Some(specs),
        404,
    );
    let spec = "/types/{type_id}/extra_specs/{key}";
    a("get", spec, &t, None, 200);
    a("put", spec, &t, Some(json!({"a": "c"})), 200);
    a("put", spec, &no, Some(json!({"a": "c"})), 404);
    a("delete", spec, &t, None, 202);
    a("delete", spec, &t, None, 404);
    let act = "/types/{type_id}/action";
    let add = json!({"addProjectAccess": {"project": "demo"}});
    a("post", act, &t, Some(add.clone()), 202);
    a("post", act, &t, Some(add.clone()), 409);
    a("post", act, &no, Some(add), 404);
    let access = "/types/{type_id}/os-volume-type-access";
    a("get", access, &t, None, 200);
    a("get", access, &no, None, 404);
    a("delete", "/types/{type_id}", &t, None, 202);
    a("delete", "/types/{type_id}", &t, None, 404);

    // The operator views.
    let host = [("host_name", "blockd@engine")];
    let unknown = [("host_name", "nope")];
    a("get", "/os-services", &[], None, 200);
    let svc = [("service_action", "enable")];
    let on = json!({"host": "blockd@engine", "binary": "cinder-volume"});
    a("put", "/os-services/{service_action}", &svc, Some(on), 200);
    let off = json!({"host": "nope", "binary": "cinder-volume"});
    a("put", "/os-services/{service_action}", &svc, Some(off), 404);
    a("get", "/os-hosts", &[], None, 200);
    a("get", "/os-hosts/{host_name}", &host, None, 200);
    a("get", "/os-hosts/{host_name}", &unknown, None, 404);
    a("get", "/scheduler-stats/get_pools", &[], None, 200);
    a("get", "/capabilities/{host_name}", &host, None, 200);
    a("get", "/capabilities/{host_name}", &unknown, None, 404);

    // Quotas.
    let class = "/os-quota-class-sets/{class_name}";
    let dflt = [("class_name", "default")];
    let other = [("class_name", "nope")];
    let set = json!({"quota_class_set": {"volumes": -1}});
    a("get", class, &dflt, None, 200);
    a("get", class, &other, None, 404);
    a("put", class, &dflt, Some(set.clone()), 200);
    a("put", class, &other, Some(set), 404);
    let q = "/os-quota-sets/{quota_project_id}";
    let demo = [("quota_project_id", "demo")];
    let nobody = [("quota_project_id", "nope")];
    let set = json!({"quota_set": {"volumes": 10}});
    a("put", q, &demo, Some(set.clone()), 200);
    a("put", q, &nobody, Some(set), 404);
    a("get", q, &nobody, None, 404);
    a("get", &format!("{q}/defaults"), &nobody, None, 404);
    a("delete", q, &demo, None, 200);
    a("delete", q, &nobody, None, 404);

    // A user message: a volume whose type no backend matches.
    let bad = json!({"volume_type": {"name": "bad", "extra_specs": {"vendor_name": "x"}}});
    a("post", "/types", &[], Some(bad), 200);
    let vol = json!({"volume": {"size": 1, "volume_type": "bad"}});
    a("post", "/volumes", &[], Some(vol), 202);
    let r = a("get", "/messages", &[], None, 200);
    let mid = r.json["messages"][0]["id"].as_str().expect("message");
    let m = [("message_id", mid)];
    a("get", "/messages/{message_id}", &m, None, 200);
    a("delete", "/messages/{message_id}", &m, None, 204);

    // Snapshot and backup admin actions, backup records, quotas hit.
    let r = a(
        "post",
        "/volumes",
        &[],
        Some(json!({"volume": {"size": 1}})),
        202,
    );
    let vid = id(&r, "volume");
    let r = a(
        "post",
        "/snapshots",
        &[],
        Some(json!({"snapshot": {"volume_id": vid}})),
        202,
    );
    let sid = id(&r, "snapshot");
    let s = [("snapshot_id", sid.as_str()), ("key", "a")];
    let reset = json!({"os-reset_status": {"status": "available"}});
    a(
        "post",
        "/snapshots/{snapshot_id}/action",
        &s,
        Some(reset.clone()),
        202,
    );
    let md = json!({"metadata": {"a": "b"}});
    a(
        "put",
        "/snapshots/{snapshot_id}/metadata",
        &s,
        Some(md),
        200,
    );
    let item = "/snapshots/{snapshot_id}/metadata/{key}";
    a("put", item, &s, Some(json!({"meta": {"a": "c"}})), 200);
    a("delete", item, &s, None, 200);
    let r = a(
        "post",
        "/backups",
        &[],
        Some(json!({"backup": {"volume_id": vid}})),
        202,
    );
    let bid = id(&r, "backup");
    let b = [("backup_id", bid.as_str())];
    let gone = [("backup_id", "nope")];
    a(
        "post",
        "/backups/{backup_id}/action",
        &b,
        Some(reset.clone()),
        202,
    );
    a(
        "post",
        "/backups/{backup_id}/action",
        &gone,
        Some(reset),
        404,
    );
    let export = "/backups/{backup_id}/export_record";
    a("get", export, &gone, None, 404);
    let r = a("get", export, &b, None, 200);
    let record = r.json["backup-record"].clone();
    let with_id = |new_id: &str| {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let url = record["backup_url"].as_str().expect("url");
        let mut rec: Value = serde_json::from_slice(&b64.decode(url).expect("b64")).expect("json");
        rec["id"] = json!(new_id);
        json!({"backup-record": {
            "backup_service": record["backup_service"],
            "backup_url": b64.encode(rec.to_string()),
        }})
    };
    let imp = "/backups/import_record";
    let copy = "1c6f0d3e-2b4a-4c5d-8e9f-0a1b2c3d4e5f";
    a("post", imp, &[], Some(with_id(copy)), 201);
    // Quotas reached: no more images (backups, snapshots) or volumes.
    let full = json!({"quota_set": {"snapshots": 0, "volumes": 0}});
    a("put", q, &[("quota_project_id", "ops")], Some(full), 200);
    let twice = "2d7a1e4f-3c5b-4d6e-9fa0-1b2c3d4e5f60";
    a("post", imp, &[], Some(with_id(twice)), 413);
    let more = json!({"backup": {"volume_id": vid}});
    a("post", "/backups", &[], Some(more), 413);
    let snap = json!({"snapshot": {"volume_id": vid}});
    a("post", "/snapshots", &[], Some(snap), 413);
    let restore = Some(json!({"restore": {}}));
    a("post", "/backups/{backup_id}/restore", &b, restore, 413);
    a("delete", q, &[("quota_project_id", "ops")], None, 200);
    // The record's image gone: 404.
    a(
        "delete",
        "/backups/{backup_id}",
        &[("backup_id", copy)],
        None,
        202,
    );
    a("delete", "/backups/{backup_id}", &b, None, 202);
    a("post", imp, &[], Some(with_id(twice)), 404);

    crate::cinder_groups::groups(&c);
    crate::cinder_qos::qos(&c);
    all_covered(&c.doc);
}
