//! The QoS spec and volume type encryption part of the Cinder v3 check in
//! `api_openapi`: as the admin `ops`, every documented qos-specs and
//! encryption operation, each answer validated against the document, with
//! the statuses they declare beyond the common faults the sweeps in
//! `cinder.rs` cover: the successes, 404 for unknown ids, 409 for a QoS
//! spec name taken.

use super::cinder::{id, Cinder};
use serde_json::{json, Value};

/// `ops` (an admin) on its own project.
const OPS: Option<(&str, &str)> = Some(("ops", "ops-token-0123456789abcdef"));

/// Every QoS spec and encryption operation, as the admin `ops`.
pub(super) fn qos(c: &Cinder) {
    let a = |m: &str, p: &str, ids: &[(&str, &str)], q: &str, body: Option<Value>, status: u16| {
        c.call(m, p, ids, q, OPS, "3.62", body, status)
    };
    let r = a(
        "post",
        "/types",
        &[],
        "",
        Some(json!({"volume_type": {"name": "qos-type"}})),
        200,
    );
    let tid = id(&r, "volume_type");

    // QoS specs.
    let body =
        json!({"qos_specs": {"name": "gold", "consumer": "both", "write_bytes_sec": "1048576"}});
    let r = a("post", "/qos-specs", &[], "", Some(body.clone()), 200);
    let qid = id(&r, "qos_specs");
    a("post", "/qos-specs", &[], "", Some(body), 409);
    a("get", "/qos-specs", &[], "", None, 200);
    let one = "/qos-specs/{qos_id}";
    let q = [("qos_id", qid.as_str())];
    let no = [("qos_id", "nope")];
    a("get", one, &q, "", None, 200);
    a("get", one, &no, "", None, 404);
    let keys = json!({"qos_specs": {"iops_bytes": "500"}});
    a("put", one, &q, "", Some(keys.clone()), 200);
    a("put", one, &no, "", Some(keys), 404);
    let unset = "/qos-specs/{qos_id}/delete_keys";
    a(
        "put",
        unset,
        &q,
        "",
        Some(json!({"keys": ["iops_bytes"]})),
        202,
    );
    a(
        "put",
        unset,
        &q,
        "",
        Some(json!({"keys": ["iops_bytes"]})),
        404,
    );
    let with_type = format!("?vol_type_id={tid}");
    let assoc = "/qos-specs/{qos_id}/associate";
    a("get", assoc, &q, &with_type, None, 202);
    a("get", assoc, &no, &with_type, None, 404);
    let list = "/qos-specs/{qos_id}/associations";
    let r = a("get", list, &q, "", None, 200);
    assert_eq!(r.json["qos_associations"][0]["id"], tid.as_str());
    a("get", list, &no, "", None, 404);
    let dis = "/qos-specs/{qos_id}/disassociate";
    a("get", dis, &q, &with_type, None, 202);
    a("get", dis, &q, &with_type, None, 404);
    let all = "/qos-specs/{qos_id}/disassociate_all";
    a("get", assoc, &q, &with_type, None, 202);
    a("get", all, &q, "", None, 202);
    a("get", all, &no, "", None, 404);
    a("get", assoc, &q, &with_type, None, 202);
    a("delete", one, &q, "?force=false", None, 400);
    a("delete", one, &q, "?force=true", None, 202);
    a("delete", one, &q, "", None, 404);

    // Encryption types.
    let enc = "/types/{type_id}/encryption";
    let t = [("type_id", tid.as_str())];
    let tno = [("type_id", "nope")];
    let r = a("get", enc, &t, "", None, 200);
    assert_eq!(r.json, json!({}));
    a("get", enc, &tno, "", None, 404);
    let body = json!({"encryption": {"provider": "luks", "cipher": "aes-xts-plain64",
        "key_size": 256, "control_location": "front-end"}});
    let r = a("post", enc, &t, "", Some(body.clone()), 200);
    let eid = r.json["encryption"]["encryption_id"]
        .as_str()
        .unwrap()
        .to_string();
    a("post", enc, &tno, "", Some(body), 404);
    let r = a("get", enc, &t, "", None, 200);
    assert_eq!(r.json["encryption_id"], eid.as_str());
    let item = "/types/{type_id}/encryption/{encryption_id}";
    let field = [("type_id", tid.as_str()), ("encryption_id", "cipher")];
    let r = a("get", item, &field, "", None, 200);
    assert_eq!(r.json, json!({"cipher": "aes-xts-plain64"}));
    let nofield = [("type_id", tid.as_str()), ("encryption_id", "colour")];
    a("get", item, &nofield, "", None, 404);
    let e = [("type_id", tid.as_str()), ("encryption_id", eid.as_str())];
    let change = json!({"encryption": {"key_size": 128}});
    let r = a("put", item, &e, "", Some(change.clone()), 200);
    assert_eq!(r.json, json!({"encryption": {"key_size": 128}}));
    a("put", item, &nofield, "", Some(change), 404);
    a("delete", item, &nofield, "", None, 404);
    a("delete", item, &e, "", None, 202);
    a("delete", "/types/{type_id}", &t, "", None, 202);
}
