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
use super::views::reply;
use super::views_info::{
    Capabilities, Host, HostList, HostResource, HostRow, HostShow, Pool, PoolCapabilities,
    PoolList, Service, ServiceEnabled, ServiceList,
};
use super::volumes::cinder_time;
use super::Ctx;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::ObjectKind;
use serde_json::Value;

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
    let services = SERVICES
        .iter()
        .filter(|(b, h)| {
            binary.is_none_or(|want| want == *b)
                && host.is_none_or(|want| want == *h || want == host_of(h))
        })
        .map(|(b, h)| {
            let volume = *b == "cinder-volume";
            Service {
                binary: b.to_string(),
                host: h.to_string(),
                zone: ZONE.into(),
                status: "enabled".into(),
                state: "up".into(),
                updated_at: updated.clone(),
                disabled_reason: None,
                frozen: false,
                replication_status: volume.then(|| "disabled".to_string()),
                active_backend_id: volume.then_some(None),
                backend_state: (volume && ctx.version.at_least(49)).then(|| "up".to_string()),
            }
        })
        .collect();
    Ok(reply(200, &ServiceList { services }))
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
                "enable" => Ok(reply(
                    200,
                    &ServiceEnabled {
                        host: h.to_string(),
                        binary: b.to_string(),
                        service: b.to_string(),
                        status: "enabled".into(),
                        disabled: false,
                        disabled_reason: None,
                    },
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
    let hosts = SERVICES
        .iter()
        .map(|(b, h)| Host {
            host_name: h.to_string(),
            service: b.to_string(),
            zone: ZONE.into(),
            service_status: "available".into(),
            service_state: "enabled".into(),
            last_update: updated.clone(),
        })
        .collect();
    Ok(reply(200, &HostList { hosts }))
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
    let row = |project: &str, v: &[u64; 4]| HostRow {
        resource: HostResource {
            host: name.to_string(),
            project: project.to_string(),
            volume_count: v[0].to_string(),
            total_volume_gb: v[1].to_string(),
            snapshot_count: v[2].to_string(),
            total_snapshot_gb: v[3].to_string(),
        },
    };
    let mut rows = vec![row("(total)", &total)];
    rows.extend(per.iter().map(|(p, v)| row(p, v)));
    Ok(reply(200, &HostShow { host: rows }))
}

/// `GET scheduler-stats/get_pools` (`?detail=true`: with capabilities).
pub fn pools(ctx: &Ctx) -> Result<Reply> {
    ctx.require_admin("scheduler_extension:scheduler_stats:get_pools")?;
    let detail = ctx
        .req
        .query_param("detail")
        .is_some_and(|d| d.eq_ignore_ascii_case("true") || d == "1");
    let capabilities = detail.then(|| PoolCapabilities {
        volume_backend_name: BACKEND_NAME.into(),
        vendor_name: VENDOR.into(),
        driver_version: DRIVER_VERSION.into(),
        storage_protocol: PROTOCOL.into(),
        total_capacity_gb: "unknown".into(),
        free_capacity_gb: "unknown".into(),
        reserved_percentage: 0,
        qos_support: false,
        timestamp: now(),
    });
    let pool = Pool {
        name: POOL.into(),
        capabilities,
    };
    Ok(reply(200, &PoolList { pools: vec![pool] }))
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
    Ok(reply(
        200,
        &Capabilities {
            namespace: format!("OS::Storage::Capabilities::{BACKEND}"),
            vendor_name: VENDOR.into(),
            volume_backend_name: BACKEND_NAME.into(),
            pool_name: None,
            driver_version: DRIVER_VERSION.into(),
            storage_protocol: PROTOCOL.into(),
            display_name: None,
            description: None,
            visibility: None,
            replication_targets: Vec::new(),
            properties: Default::default(),
        },
    ))
}
