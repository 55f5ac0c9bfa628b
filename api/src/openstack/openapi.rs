//! `GET /openapi.json`: an OpenAPI 3.0 description of this dialect, built
//! from the same field lists the handlers use, with the server URL taken
//! from the request's Host header.

use crate::http::Request;
use serde_json::{json, Value};

fn fault_response(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Fault"}}}})
}

fn ok(desc: &str, schema: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn errors(codes: &[(&str, &str)]) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert(
        "401".into(),
        fault_response("unauthorized: missing or invalid X-Auth-Token"),
    );
    m.insert(
        "403".into(),
        fault_response("forbidden: token of another tenant"),
    );
    for (c, d) in codes {
        m.insert((*c).into(), fault_response(d));
    }
    m
}

fn op(
    summary: &str,
    mut responses: serde_json::Map<String, Value>,
    ok_code: &str,
    ok_resp: Value,
) -> Value {
    responses.insert(ok_code.into(), ok_resp);
    json!({"summary": summary, "responses": responses})
}

fn with_body(mut op: Value, schema: &str) -> Value {
    op["requestBody"] = body(schema);
    op
}

/// The document.
pub fn document(req: &Request) -> Value {
    let nf = ("404", "itemNotFound");
    let br = ("400", "badRequest: invalid field or broken business rule");
    let ue = ("422", "unprocessableEntity: missing or non-object wrapper");
    let mt = ("415", "badMediaType: Content-Type is not JSON");
    let ol = ("413", "overLimit: quota exceeded or body over 1 MiB");
    let cf = (
        "409",
        "conflictingRequest: device name in use on the server",
    );
    let empty = json!({"description": "accepted, no body"});
    let paged = json!([
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000}},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    ]);
    let mut list_vol = op(
        "List volumes",
        errors(&[br]),
        "200",
        ok("volumes", "VolumeList"),
    );
    list_vol["parameters"] = paged.clone();
    let mut list_snap = op(
        "List snapshots",
        errors(&[br]),
        "200",
        ok("snapshots", "SnapshotList"),
    );
    list_snap["parameters"] = paged.clone();
    let mut list_att = op(
        "List a server's attachments",
        errors(&[br]),
        "200",
        ok("attachments", "AttachmentList"),
    );
    list_att["parameters"] = paged;
    let nstr = json!({"type": "string", "nullable": true});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "blockd block storage API (HP Cloud / OpenStack os-volumes v1.1)",
            "version": "1.1",
            "description": "Requests snake_case, responses camelCase; ids are UUID strings; faults are {\"<name>\": {\"code\", \"message\"}}.",
        },
        "servers": [{"url": format!("{}/v1.1/{{tenant_id}}", req.base_url()), "variables": {"tenant_id": {"default": "demo"}}}],
        "security": [{"token": []}],
        "paths": {
            "/os-volumes": {
                "get": list_vol.clone(),
                "post": with_body(op("Create a volume (empty, from snapshot_id or from imageRef)", errors(&[br, nf, ol, mt, ue]), "200", ok("volume", "VolumeOne")), "VolumeCreate"),
            },
            "/os-volumes/detail": {"get": list_vol},
            "/os-volumes/{volume_id}": {
                "get": op("Show a volume", errors(&[nf]), "200", ok("volume", "VolumeOne")),
                "put": with_body(op("Update display name, description, metadata", errors(&[br, nf, mt, ue]), "200", ok("volume", "VolumeOne")), "VolumeUpdate"),
                "delete": op("Delete a volume (not while in-use)", errors(&[br, nf]), "202", empty.clone()),
            },
            "/os-volumes/{volume_id}/action": {
                "post": with_body(op("os-extend {new_size} or revert {snapshot_id}", errors(&[br, nf, ol, mt]), "202", empty.clone()), "VolumeAction"),
            },
            "/os-snapshots": {
                "get": list_snap.clone(),
                "post": with_body(op("Create a snapshot (force for in-use volumes)", errors(&[br, nf, ol, mt, ue]), "200", ok("snapshot", "SnapshotOne")), "SnapshotCreate"),
            },
            "/os-snapshots/detail": {"get": list_snap},
            "/os-snapshots/{snapshot_id}": {
                "get": op("Show a snapshot", errors(&[nf]), "200", ok("snapshot", "SnapshotOne")),
                "delete": op("Delete a snapshot", errors(&[nf]), "202", empty.clone()),
            },
            "/servers/{server_id}/os-volume_attachments": {
                "get": list_att,
                "post": with_body(op("Attach a volume", errors(&[br, nf, cf, mt, ue]), "200", ok("attachment", "AttachmentOne")), "AttachmentCreate"),
            },
            "/servers/{server_id}/os-volume_attachments/{volume_id}": {
                "get": op("Show an attachment", errors(&[nf]), "200", ok("attachment", "AttachmentOne")),
                "delete": op("Detach a volume (only when in-use)", errors(&[br, nf]), "202", empty),
            },
        },
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
            "schemas": {
                "Fault": {"type": "object", "description": "one key: badRequest, unauthorized, forbidden, itemNotFound, badMethod, conflictingRequest, overLimit (+retryAfter), badMediaType, unprocessableEntity, cloudServersFault",
                    "additionalProperties": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "retryAfter": {"type": "integer"}}}},
                "Attachment": {"type": "object", "required": ["id", "volumeId", "serverId", "device"], "properties": {"id": {"type": "string"}, "volumeId": {"type": "string"}, "serverId": {"type": "string"}, "device": {"type": "string"},
                    "connection_info": {"type": "object", "description": "How the attachment is reached over NBD (blockd extension; the export name is a per-attachment secret)", "required": ["driver_volume_type", "data"], "properties": {"driver_volume_type": {"type": "string", "enum": ["nbd"]}, "data": {"type": "object"}}}}},
                "Volume": {"type": "object",
                    "required": ["id", "status", "size", "availabilityZone", "createdAt", "attachments", "displayName", "displayDescription", "volumeType", "snapshotId", "metadata"],
                    "properties": {
                        "id": {"type": "string"}, "status": {"type": "string", "enum": ["creating", "available", "in-use", "error"]},
                        "size": {"type": "integer"}, "availabilityZone": {"type": "string"}, "createdAt": {"type": "string", "example": "2012-06-29 19:24:03"},
                        "attachments": {"type": "array", "items": {"type": "object", "description": "{} when detached, else an Attachment"}},
                        "displayName": nstr, "displayDescription": nstr, "volumeType": nstr,
                        "snapshotId": {"type": "string", "description": "\"\" when not from a snapshot"},
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                    }},
                "Snapshot": {"type": "object",
                    "required": ["id", "volumeId", "status", "size", "createdAt", "displayName", "displayDescription"],
                    "properties": {"id": {"type": "string"}, "volumeId": {"type": "string"}, "status": {"type": "string"}, "size": {"type": "integer"},
                        "createdAt": {"type": "string"}, "displayName": nstr, "displayDescription": nstr}},
                "VolumeOne": {"type": "object", "required": ["volume"], "properties": {"volume": {"$ref": "#/components/schemas/Volume"}}},
                "VolumeList": {"type": "object", "required": ["volumes"], "properties": {"volumes": {"type": "array", "items": {"$ref": "#/components/schemas/Volume"}}}},
                "SnapshotOne": {"type": "object", "required": ["snapshot"], "properties": {"snapshot": {"$ref": "#/components/schemas/Snapshot"}}},
                "SnapshotList": {"type": "object", "required": ["snapshots"], "properties": {"snapshots": {"type": "array", "items": {"$ref": "#/components/schemas/Snapshot"}}}},
                "AttachmentOne": {"type": "object", "required": ["volumeAttachment"], "properties": {"volumeAttachment": {"$ref": "#/components/schemas/Attachment"}}},
                "AttachmentList": {"type": "object", "required": ["volumeAttachments"], "properties": {"volumeAttachments": {"type": "array", "items": {"$ref": "#/components/schemas/Attachment"}}}},
                "VolumeCreate": {"type": "object", "required": ["volume"], "properties": {"volume": {"type": "object", "properties": {
                    "size": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]+$"}], "description": "GB; required unless snapshot_id or imageRef"},
                    "snapshot_id": nstr, "imageRef": {"type": "string", "nullable": true, "description": "image id or name; exclusive with snapshot_id"},
                    "display_name": nstr, "display_description": nstr, "availability_zone": nstr, "volume_type": nstr,
                    "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}}}},
                "VolumeUpdate": {"type": "object", "required": ["volume"], "properties": {"volume": {"type": "object", "properties": {
                    "display_name": nstr, "display_description": nstr, "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}}}},
                "VolumeAction": {"oneOf": [
                    {"type": "object", "required": ["os-extend"], "properties": {"os-extend": {"type": "object", "required": ["new_size"], "properties": {"new_size": {"type": "integer"}}}}},
                    {"type": "object", "required": ["revert"], "properties": {"revert": {"type": "object", "required": ["snapshot_id"], "properties": {"snapshot_id": {"type": "string"}}}}},
                ]},
                "SnapshotCreate": {"type": "object", "required": ["snapshot"], "properties": {"snapshot": {"type": "object", "required": ["volume_id"], "properties": {
                    "volume_id": {"type": "string"}, "force": {"oneOf": [{"type": "boolean"}, {"type": "string"}]}, "display_name": nstr, "display_description": nstr}}}},
                "AttachmentCreate": {"type": "object", "required": ["volumeAttachment"], "properties": {"volumeAttachment": {"type": "object", "required": ["volumeId"], "properties": {
                    "volumeId": {"type": "string"}, "device": {"type": "string", "pattern": "^/dev/[a-z]+[0-9]*$"}}}}},
            },
        },
    })
}
