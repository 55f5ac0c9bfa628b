//! What every dialect's generated OpenAPI document shares: the security
//! schemes (HTTP Basic, the `X-Auth-Token` header) and the last step of
//! `generate` (the one server, serialization, and the path of the
//! document itself, which needs no credentials). Each dialect's
//! `openapi.rs` keeps its own paths, schemas and adjustments.

use serde_json::{json, Value};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::ServerBuilder;
use utoipa::openapi::OpenApi;
use utoipa::Modify;

/// Registers the HTTP Basic scheme as `basic` (Deltacloud, CIMI).
pub(crate) struct BasicScheme;

impl Modify for BasicScheme {
    fn modify(&self, doc: &mut OpenApi) {
        if let Some(c) = doc.components.as_mut() {
            c.add_security_scheme(
                "basic",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
            );
        }
    }
}

/// Registers the `X-Auth-Token` header scheme as `token` (os-volumes,
/// Keystone, Glance).
pub(crate) struct TokenScheme;

impl Modify for TokenScheme {
    fn modify(&self, doc: &mut OpenApi) {
        if let Some(c) = doc.components.as_mut() {
            c.add_security_scheme(
                "token",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Auth-Token"))),
            );
        }
    }
}

/// `doc` as JSON with `server` as its one server, and `self_path` (tagged
/// `tag`) describing the document itself.
pub(crate) fn finish(mut doc: OpenApi, server: String, self_path: &str, tag: &str) -> Value {
    doc.servers = Some(vec![ServerBuilder::new().url(server).build()]);
    let mut v = serde_json::to_value(&doc).unwrap_or(Value::Null);
    if let Some(paths) = v["paths"].as_object_mut() {
        paths.insert(
            self_path.into(),
            json!({"get": {
                "operationId": "openapi",
                "tags": [tag],
                "summary": "This document",
                "security": [{}],
                "responses": {"200": {"description": "the OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object"}}}}},
            }}),
        );
    }
    v
}
