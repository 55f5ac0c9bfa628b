//! JSON schemas of the os-volumes v1.1 responses, as strict as OpenStack
//! Tempest's (`additionalProperties: false`, every field required), and
//! the assertions the API tests build on them.

use super::Resp;
use serde_json::{json, Value};

pub fn nullable_string() -> Value {
    json!({"type": ["string", "null"]})
}

pub fn attachment_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "device": {"type": "string"},
            "volumeId": {"type": "string"},
            "serverId": {"type": "string"},
            // blockd's extension (issue #15): how to reach the attachment
            // over NBD; Nova's schema has no such field.
            "connection_info": {
                "type": "object",
                "properties": {
                    "driver_volume_type": {"const": "nbd"},
                    "data": {"type": "object", "required": ["export_name", "uris"]},
                },
                "additionalProperties": false,
                "required": ["driver_volume_type", "data"],
            },
        },
        "additionalProperties": false,
        "required": ["id", "device", "volumeId", "serverId"],
    })
}

pub fn volume_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"enum": ["creating", "available", "in-use", "error"]},
            "displayName": nullable_string(),
            "availabilityZone": {"type": "string"},
            "createdAt": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"},
            "displayDescription": nullable_string(),
            "volumeType": nullable_string(),
            "snapshotId": nullable_string(),
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "size": {"type": "integer", "minimum": 1},
            "attachments": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {"oneOf": [
                    {"type": "object", "additionalProperties": false, "maxProperties": 0},
                    attachment_schema(),
                ]},
            },
        },
        "additionalProperties": false,
        "required": ["id", "status", "displayName", "availabilityZone", "createdAt",
            "displayDescription", "volumeType", "snapshotId", "metadata", "size", "attachments"],
    })
}

pub fn snapshot_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "volumeId": {"type": "string"},
            "status": {"enum": ["creating", "available", "error"]},
            "size": {"type": "integer", "minimum": 1},
            "createdAt": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"},
            "displayName": nullable_string(),
            "displayDescription": nullable_string(),
        },
        "additionalProperties": false,
        "required": ["id", "volumeId", "status", "size", "createdAt", "displayName", "displayDescription"],
    })
}

pub fn one(key: &str, inner: Value) -> Value {
    json!({"type": "object", "properties": {key: inner}, "additionalProperties": false, "required": [key]})
}

pub fn many(key: &str, inner: Value) -> Value {
    one(key, json!({"type": "array", "items": inner}))
}

pub fn fault_schema(name: &str, code: u16) -> Value {
    let mut props = json!({"code": {"const": code}, "message": {"type": "string", "minLength": 1}});
    let mut required = json!(["code", "message"]);
    if code == 413 {
        props["retryAfter"] = json!({"type": "integer", "minimum": 0});
        required = json!(["code", "message", "retryAfter"]);
    }
    one(
        name,
        json!({"type": "object", "properties": props, "additionalProperties": false, "required": required}),
    )
}

pub fn link_schema() -> Value {
    json!({"type": "object", "properties": {"href": {"type": "string"}, "rel": {"type": "string"},
        "type": {"type": "string"}}, "additionalProperties": false, "required": ["href", "rel"]})
}

pub fn version_schema(media: bool) -> Value {
    let mut props = json!({
        "id": {"type": "string"},
        "status": {"enum": ["CURRENT", "SUPPORTED", "DEPRECATED"]},
        "updated": {"type": "string", "format": "date-time"},
        "links": {"type": "array", "items": link_schema(), "minItems": 1},
    });
    let mut required = json!(["id", "status", "updated", "links"]);
    if media {
        props["media-types"] = json!({"type": "array", "items": {"type": "object",
            "properties": {"base": {"type": "string"}, "type": {"type": "string"}},
            "additionalProperties": false, "required": ["base", "type"]}});
        required = json!(["id", "status", "updated", "links", "media-types"]);
    }
    json!({"type": "object", "properties": props, "additionalProperties": false, "required": required})
}

#[track_caller]
pub fn check(schema: &Value, r: &Resp) {
    let v = jsonschema::validator_for(schema).expect("valid schema");
    let errors: Vec<String> = v.iter_errors(&r.json).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}\nin {}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[track_caller]
pub fn expect(r: &Resp, status: u16, schema: &Value) {
    assert_eq!(r.status, status, "{}", r.text);
    check(schema, r);
}

#[track_caller]
pub fn fault(r: &Resp, code: u16) {
    let name = match code {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 => "overLimit",
        415 => "badMediaType",
        422 => "unprocessableEntity",
        _ => "cloudServersFault",
    };
    expect(r, code, &fault_schema(name, code));
}

#[track_caller]
pub fn accepted(r: &Resp) {
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.text.is_empty(), "202 with a body: {}", r.text);
}

pub fn vol_one() -> Value {
    one("volume", volume_schema())
}
pub fn vol_list() -> Value {
    many("volumes", volume_schema())
}
pub fn snap_one() -> Value {
    one("snapshot", snapshot_schema())
}
pub fn snap_list() -> Value {
    many("snapshots", snapshot_schema())
}
pub fn att_one() -> Value {
    one("volumeAttachment", attachment_schema())
}
pub fn att_list() -> Value {
    many("volumeAttachments", attachment_schema())
}

pub fn ids(r: &Resp, key: &str) -> Vec<String> {
    r.json[key]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect()
}

/// The schema the served OpenAPI document `doc` declares for `status` of
/// `method` on `path`, as a JSON Schema with the document's components
/// alongside so its `$ref`s resolve; `None` when that response has no
/// body. Panics when the document does not declare the response at all.
#[track_caller]
pub fn doc_schema(doc: &Value, path: &str, method: &str, status: u16) -> Option<Value> {
    let resp = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        resp.is_object(),
        "the OpenAPI document does not declare {status} for {method} {path}"
    );
    let schema = resp["content"]["application/json"]["schema"].clone();
    if schema.is_null() {
        return None;
    }
    let mut s = schema;
    s["components"] = doc["components"].clone();
    Some(s)
}

/// Checks a real response against what the OpenAPI document `doc` says
/// `method` on `path` answers with its status: a JSON body that validates
/// against the declared schema, or no body where none is declared.
#[track_caller]
pub fn documented(doc: &Value, path: &str, method: &str, r: &Resp) {
    match doc_schema(doc, path, method, r.status) {
        Some(schema) => check(&schema, r),
        None => assert!(r.text.is_empty(), "undocumented body: {}", r.text),
    }
}
