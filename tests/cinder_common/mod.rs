//! Helpers of the Cinder v3 black-box tests (`api_cinder.rs`,
//! `api_cinder_backups.rs`, `api_cinder_admin.rs`,
//! `api_cinder_quotas_types.rs`, `api_cinder_groups.rs`): the
//! three-tenant auth file, Keystone logins, requests with a
//! microversion header, the Cinder fault check, volume creation.
#![allow(dead_code)]

use crate::api_common::{Api, Resp};
use serde_json::{json, Value};

/// The Cinder v3 path of tenant `demo`.
pub const C: &str = "/volume/v3/demo";

/// The Cinder v3 path of the admin tenant `ops`.
pub const A: &str = "/volume/v3/ops";

/// The body of `r`, which must have status `code`.
#[track_caller]
pub fn ok(r: &Resp, code: u16) -> &Value {
    assert_eq!(r.status, code, "{}", r.text);
    &r.json
}

/// Token of tenant `demo` in [`three_tenants`].
pub const DEMO: &str = "demo-token-0123456789abcdef";
/// Token of tenant `other` in [`three_tenants`].
pub const OTHER: &str = "other-token-0123456789abcdef";
/// Token of the admin tenant `ops` in [`three_tenants`].
pub const OPS: &str = "ops-token-0123456789abcdef";

/// An auth file with members `demo` and `other` and the admin `ops`
/// (Keystone users `demo`, `other`, `ops-user`); `demo_extra` is added to
/// `demo`'s table (for example a quota line).
pub fn three_tenants(demo_extra: &str) -> String {
    format!(
        r#"
[[tenants]]
id = "demo"
token = "{DEMO}"
user = "demo"
password = "demo-password"
{demo_extra}

[[tenants]]
id = "other"
token = "{OTHER}"
user = "other"
password = "other-password"

[[tenants]]
id = "ops"
token = "{OPS}"
user = "ops-user"
password = "ops-password"
admin = true
"#
    )
}

/// A Keystone password login body for `user`, scoped to `project`.
pub fn login_body(user: &str, password: &str, project: Value) -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": project},
    }})
}

/// Logs in through Keystone as `user`; returns the response.
pub fn login(api: &Api, user: &str, password: &str) -> Resp {
    let b = login_body(
        user,
        password,
        json!({"name": user, "domain": {"id": "default"}}),
    );
    api.send(
        "POST",
        "/v3/auth/tokens",
        &[("Content-Type", "application/json")],
        Some(b.to_string().as_bytes()),
    )
}

/// Logs in through Keystone as `user`; returns the token.
pub fn token(api: &Api, user: &str, password: &str) -> String {
    let r = login(api, user, password);
    assert_eq!(r.status, 201, "{}", r.text);
    r.header("x-subject-token")
        .expect("X-Subject-Token")
        .to_string()
}

/// A request with a microversion header.
pub fn get_v(api: &Api, path: &str, token: &str, version: &str) -> Resp {
    api.send(
        "GET",
        path,
        &[("X-Auth-Token", token), ("OpenStack-API-Version", version)],
        None,
    )
}

#[track_caller]
pub fn cinder_fault(r: &Resp, code: u16, name: &str) {
    assert_eq!(r.status, code, "{}", r.text);
    assert_eq!(r.json[name]["code"], code, "{}", r.text);
    assert!(r.json[name]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

pub fn create(api: &Api, token: &str, body: Value) -> Value {
    let r = api.post(&format!("{C}/volumes"), token, &json!({ "volume": body }));
    assert_eq!(r.status, 202, "{}", r.text);
    r.json["volume"].clone()
}

/// A request with a microversion header and a JSON body.
pub fn send_v(
    api: &Api,
    method: &str,
    path: &str,
    token: &str,
    version: &str,
    body: &Value,
) -> Resp {
    api.send(
        method,
        path,
        &[
            ("X-Auth-Token", token),
            ("OpenStack-API-Version", version),
            ("Content-Type", "application/json"),
        ],
        Some(body.to_string().as_bytes()),
    )
}
