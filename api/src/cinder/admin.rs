//! Cinder's read-only operator resources, admin only (403 otherwise):
//! `os-services` (filters `host`, `binary`), `os-hosts` and
//! `os-hosts/{host}`, `scheduler-stats/get_pools` (`?detail=true` adds
//! capabilities) and `capabilities/{host}`.
//!
//! blockd is one process, so it reports Cinder's services as that process
//! runs them: the scheduler and the backup service on host [`HOST`], the
//! volume service on backend [`BACKEND`] with the one pool [`POOL`] (the
//! `os-vol-host-attr:host` of every volume). All are up and enabled; they
//! cannot be disabled (`PUT os-services/...` is not routed). Capacities are
//! reported as `unknown`: the engine's store grows on demand.

use super::info::ZONE;
use super::volumes::cinder_time;
use super::Ctx;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::ObjectKind;
use serde_json::{json, Value};

/// The host of the scheduler and backup services.
pub(crate) const HOST: &str = "blockd";
/// The volume service's `host@backend`.
pub(crate) const BACKEND: &str = "blockd@engine";
/// The one pool, `host@backend#pool`.
pub(crate) const POOL: &str = "blockd@engine#default";
/// The backend name of the volume service.
pub(crate) const BACKEND_NAME: &str = "engine";
/// What pools and capabilities report.
pub(crate) const VENDOR: &str = "blockd";
pub(crate) const PROTOCOL: &str = "nbd";
const DRIVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The services: (binary, host).
const SERVICES: &[(&str, &str)] = &[
    ("cinder-scheduler", HOST),
    ("cinder-volume", BACKEND),
    ("cinder-backup", HOST),
];

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    cinder_time(secs)
}

/// The host part of `host@backend#pool`.
fn host_of(s: &str) -> &str {
    s.split(['@', '#']).next().unwrap_or(s)
}

/// `GET os-services`: `?host=` matches the host with or without its
/// backend part, `?binary=` the binary.
pub fn services(ctx: &Ctx) -> Result<Reply> {
    ctx.require_admin("volume_extension:services:index")?;
    let host = ctx.req.query_param("host").filter(|h| !h.is_empty());
    let binary = ctx.req.query_param("binary").filter(|b| !b.is_empty());
    let updated = now();
    let list: Vec<Value> = SERVICES
        .iter()
        .filter(|(b, h)| {
            binary.is_none_or(|want| want == *b)
                && host.is_none_or(|want| want == *h || want == host_of(h))
        })
        .map(|(b, h)| {
            let mut s = json!({
                "binary": b,
                "host": h,
                "zone": ZONE,
                "status": "enabled",
                "state": "up",
                "updated_at": updated,
                "disabled_reason": null,
                "frozen": false,
            });
            if *b == "cinder-volume" {
                s["replication_status"] = json!("disabled");
                s["active_backend_id"] = Value::Null;
                if ctx.version.at_least(49) {
                    s["backend_state"] = json!("up");
                }
            }
            s
        })
        .collect();
    Ok(Reply::json(200, json!({ "services": list })))
}

/// `PUT os-services/{action}` with `{"host", "binary"}`.
pub fn service_action(ctx: &Ctx, action: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:services:update")?;
    let body = match ctx.req.json_body()? {
        Some(Value::Object(m)) => m,
        _ => return Err(ApiError::bad_request("Malformed request body")),
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
    let host = field("host");
    let known_host = SERVICES
        .iter()
        .any(|(_, h)| *h == host || host_of(h) == host);
    let unsupported = |what: &str| {
        ApiError::bad_request(format!(
            "Invalid input received: blockd's services cannot be {what}."
        ))
    };
    match action {
        "freeze" | "thaw" => {
            if !known_host {
                return Err(ApiError::bad_request(format!(
                    "Invalid input received: host {} is not a volume backend.",
                    host.escape_debug()
                )));
            }
            Err(unsupported(if action == "freeze" {
                "frozen"
            } else {
                "thawed"
            }))
        }
        "enable" | "disable" | "disable-log-reason" => {
            let binary = field("binary");
            let matching = SERVICES
                .iter()
                .find(|(b, h)| *b == binary && (*h == host || host_of(h) == host));
            let Some((b, h)) = matching else {
                return Err(ApiError::not_found(format!(
                    "Service {} on host {} could not be found.",
                    binary.escape_debug(),
                    host.escape_debug()
                )));
            };
            match action {
                "enable" => Ok(Reply::json(
                    200,
                    json!({"host": h, "binary": b, "service": b, "status": "enabled",
                           "disabled": false, "disabled_reason": null}),
                )),
                "disable-log-reason"
                    if !body.get("disabled_reason").is_some_and(Value::is_string) =>
                {
                    Err(ApiError::bad_request(
                        "Invalid input received: disabled_reason must be a string.",
                    ))
                }
                _ => Err(unsupported("disabled")),
            }
        }
        _ => Err(ApiError::not_found("The resource could not be found.")),
    }
}

/// `GET os-hosts`.
pub fn hosts(ctx: &Ctx) -> Result<Reply> {
    ctx.require_admin("volume_extension:hosts")?;
    let updated = now();
    let list: Vec<Value> = SERVICES
        .iter()
        .map(|(b, h)| {
            json!({
                "host_name": h,
                "service": b,
                "zone": ZONE,
                "service-status": "available",
                "service-state": "enabled",
                "last-update": updated,
            })
        })
        .collect();
    Ok(Reply::json(200, json!({ "hosts": list })))
}

/// `GET os-hosts/{host}`: the volume service's use, in total and per
/// project (Cinder's strings); 404 for any other host.
pub fn host(ctx: &Ctx, name: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:hosts")?;
    if name != BACKEND {
        return Err(ApiError::not_found(format!(
            "Host {} could not be found.",
            name.escape_debug()
        )));
    }
    // (volumes, volume GB, snapshots, snapshot GB) per project.
    let mut per: std::collections::BTreeMap<String, [u64; 4]> = Default::default();
    for o in ctx.store().list() {
        let Some(t) = meta::get(&o, meta::TENANT) else {
            continue;
        };
        let e = per.entry(t.to_string()).or_default();
        match o.kind {
            ObjectKind::Volume => {
                e[0] += 1;
                e[1] += meta::gb(o.size);
            }
            ObjectKind::Snapshot => {
                e[2] += 1;
                e[3] += meta::gb(o.size);
            }
            _ => {}
        }
    }
    let total = per.values().fold([0u64; 4], |mut a, v| {
        a.iter_mut().zip(v).for_each(|(x, y)| *x += y);
        a
    });
    let row = |project: &str, v: &[u64; 4]| {
        json!({"resource": {
            "host": name,
            "project": project,
            "volume_count": v[0].to_string(),
            "total_volume_gb": v[1].to_string(),
            "snapshot_count": v[2].to_string(),
            "total_snapshot_gb": v[3].to_string(),
        }})
    };
    let mut rows = vec![row("(total)", &total)];
    rows.extend(per.iter().map(|(p, v)| row(p, v)));
    Ok(Reply::json(200, json!({ "host": rows })))
}

/// `GET scheduler-stats/get_pools` (`?detail=true`: with capabilities).
pub fn pools(ctx: &Ctx) -> Result<Reply> {
    ctx.require_admin("scheduler_extension:scheduler_stats:get_pools")?;
    let detail = ctx
        .req
        .query_param("detail")
        .is_some_and(|d| d.eq_ignore_ascii_case("true") || d == "1");
    let mut pool = json!({ "name": POOL });
    if detail {
        pool["capabilities"] = json!({
            "volume_backend_name": BACKEND_NAME,
            "vendor_name": VENDOR,
            "driver_version": DRIVER_VERSION,
            "storage_protocol": PROTOCOL,
            "total_capacity_gb": "unknown",
            "free_capacity_gb": "unknown",
            "reserved_percentage": 0,
            "QoS_support": false,
            "timestamp": now(),
        });
    }
    Ok(Reply::json(200, json!({ "pools": [pool] })))
}

/// `GET capabilities/{host}` (the backend, with or without the pool).
pub fn capabilities(ctx: &Ctx, name: &str) -> Result<Reply> {
    ctx.require_admin("volume_extension:capabilities")?;
    if name != BACKEND && name != POOL {
        return Err(ApiError::not_found(format!(
            "Host {} could not be found.",
            name.escape_debug()
        )));
    }
    Ok(Reply::json(
        200,
        json!({
            "namespace": format!("OS::Storage::Capabilities::{BACKEND}"),
            "vendor_name": VENDOR,
            "volume_backend_name": BACKEND_NAME,
            "pool_name": null,
            "driver_version": DRIVER_VERSION,
            "storage_protocol": PROTOCOL,
            "display_name": null,
            "description": null,
            "visibility": null,
            "replication_targets": [],
            "properties": {},
        }),
    ))
}
