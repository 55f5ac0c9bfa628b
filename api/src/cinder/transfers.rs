//! Cinder volume transfers, at `os-volume-transfer` (every version) and
//! `volume-transfers` (3.55+; 3.57 adds the project fields): the owner of
//! an available volume offers it (`POST`, 202 with a one-time `auth_key`;
//! the volume becomes `awaiting-transfer`), lists, shows and withdraws its
//! offers (`DELETE`, the volume is `available` again); any other tenant
//! holding the id and key accepts it (`POST .../{id}/accept`), and the
//! volume becomes that tenant's, under its quota, `available`.
//!
//! A transfer lives in its volume's metadata (`api.cinder_transfer_*`):
//! the key only as its SHA-256, compared in constant time, never logged.
//! Volumes with snapshots are not offered (400): blockd moves a volume,
//! not its snapshots.

use super::params::{opt_string, parse_bool, wrapped, MAX_FIELD};
use super::views::{reply, Link, Transfer, TransferList, TransferOne};
use super::volumes::{cinder_time, snapshots_of};
use super::Ctx;
use crate::domain::ops;
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use rand::RngCore;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ID: &str = "api.cinder_transfer_id";
const NAME: &str = "api.cinder_transfer_name";
const KEY_SHA256: &str = "api.cinder_transfer_key_sha256";
const AT: &str = "api.cinder_transfer_at";
const NO_SNAPSHOTS: &str = "api.cinder_transfer_no_snapshots";
/// The status of an offered volume.
const AWAITING: &str = "awaiting-transfer";

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Transfer {} could not be found.",
        id.escape_debug()
    ))
}

/// The collection path the client used.
fn collection(ctx: &Ctx) -> &'static str {
    if ctx.req.segments.iter().any(|s| s == "volume-transfers") {
        "volume-transfers"
    } else {
        "os-volume-transfer"
    }
}

fn view(ctx: &Ctx, o: &ObjectInfo, detail: bool) -> Transfer {
    let id = meta::get(o, ID).unwrap_or_default().to_string();
    let c = collection(ctx);
    let at = meta::get(o, AT)
        .and_then(|t| t.parse().ok())
        .unwrap_or(o.created);
    let v57 = detail && ctx.version.at_least(57);
    Transfer {
        links: vec![
            Link::new("self", format!("{}/{c}/{id}", ctx.base())),
            Link::new("bookmark", format!("{}/{c}/{id}", ctx.bookmark())),
        ],
        id,
        name: meta::get(o, NAME).map(str::to_string),
        volume_id: o.id.to_string(),
        created_at: detail.then(|| cinder_time(at)),
        no_snapshots: (detail && ctx.version.at_least(55))
            .then(|| meta::get(o, NO_SNAPSHOTS) == Some("true")),
        source_project_id: v57.then(|| meta::get(o, meta::TENANT).map(str::to_string)),
        destination_project_id: v57.then_some(None),
        accepted: v57.then_some(false),
        auth_key: None,
    }
}

/// The caller's offered volumes.
fn offered(ctx: &Ctx) -> Vec<ObjectInfo> {
    ctx.objects(ObjectKind::Volume)
        .into_iter()
        .filter(|o| meta::get(o, ID).is_some())
        .collect()
}

/// The caller's offered volume of transfer `id` (404 otherwise).
fn own(ctx: &Ctx, id: &str) -> Result<ObjectInfo> {
    offered(ctx)
        .into_iter()
        .find(|o| meta::get(o, ID) == Some(id))
        .ok_or_else(|| not_found(id))
}

/// `GET {transfers}` and `{transfers}/detail`.
pub fn list(ctx: &Ctx, detail: bool) -> Result<Reply> {
    let transfers = offered(ctx).iter().map(|o| view(ctx, o, detail)).collect();
    Ok(reply(200, &TransferList { transfers }))
}

/// `GET {transfers}/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let o = own(ctx, id)?;
    Ok(reply(
        200,
        &TransferOne {
            transfer: view(ctx, &o, true),
        },
    ))
}

/// `POST {transfers}`: `{"transfer": {"volume_id", "name", "no_snapshots"}}`.
pub fn create(ctx: &Ctx) -> Result<Reply> {
    let body = wrapped(ctx, "transfer")?;
    let volume_id = opt_string(&body, "volume_id", MAX_FIELD)?
        .ok_or_else(|| ApiError::bad_request("Invalid input received: volume_id is required"))?;
    let name = opt_string(&body, "name", MAX_FIELD)?;
    let no_snapshots = match body.get("no_snapshots") {
        Some(v) if ctx.version.at_least(55) && !v.is_null() => parse_bool(v, "no_snapshots")?,
        _ => false,
    };
    let locked = ctx.dom.lock();
    let o = ctx.volume(&volume_id)?;
    if o.status != meta::AVAILABLE || ops::attached(&o) {
        return Err(ApiError::bad_request(format!(
            "Invalid volume: status must be available (status: {}).",
            o.status
        )));
    }
    super::groups::refuse_member(ctx, &o, "transfer")?;
    if !snapshots_of(ctx, &o).is_empty() {
        return Err(ApiError::bad_request(
            "Invalid volume: blockd transfers volumes without snapshots; delete them first.",
        ));
    }
    let mut raw = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let auth_key = hex::encode(raw);
    let id = uuid::Uuid::new_v4().to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string();
    let mut m = o.metadata.clone();
    meta::set(&mut m, ID, Some(&id));
    meta::set(&mut m, NAME, name.as_deref());
    meta::set(&mut m, KEY_SHA256, Some(&key_hash(&auth_key)));
    meta::set(&mut m, AT, Some(&now));
    meta::set(&mut m, NO_SNAPSHOTS, no_snapshots.then_some("true"));
    let o = ctx.dom.save(&locked, o.id, AWAITING, m)?;
    tracing::info!(tenant = %ctx.tenant.id, volume = %o.id, transfer = %id, "cinder: volume offered for transfer");
    let mut transfer = view(ctx, &o, true);
    transfer.auth_key = Some(auth_key);
    Ok(reply(202, &TransferOne { transfer }))
}

/// The volume without its transfer fields.
fn cleared(o: &ObjectInfo) -> std::collections::BTreeMap<String, String> {
    let mut m = o.metadata.clone();
    for k in [ID, NAME, KEY_SHA256, AT, NO_SNAPSHOTS] {
        meta::set(&mut m, k, None);
    }
    m
}

/// `DELETE {transfers}/{id}`: the offer is withdrawn.
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = own(ctx, id)?;
    let status = if o.status == AWAITING {
        meta::AVAILABLE
    } else {
        o.status.as_str()
    };
    ctx.dom.save(&locked, o.id, status, cleared(&o))?;
    Ok(Reply::empty(202))
}

/// `POST {transfers}/{id}/accept`: `{"accept": {"auth_key"}}`.
pub fn accept(ctx: &Ctx, id: &str) -> Result<Reply> {
    let body = wrapped(ctx, "accept")?;
    let key = opt_string(&body, "auth_key", MAX_FIELD)?
        .ok_or_else(|| ApiError::bad_request("Invalid input received: auth_key is required"))?;
    let locked = ctx.dom.lock();
    let o = ctx
        .store()
        .list()
        .into_iter()
        .find(|o| o.kind == ObjectKind::Volume && meta::get(o, ID) == Some(id))
        .ok_or_else(|| not_found(id))?;
    let want = meta::get(&o, KEY_SHA256).unwrap_or_default();
    if !bool::from(key_hash(&key).as_bytes().ct_eq(want.as_bytes())) {
        return Err(ApiError::bad_request(format!(
            "Invalid auth key: Attempt to transfer {} with invalid auth key.",
            id.escape_debug()
        )));
    }
    let transfer = view(ctx, &o, false);
    ops::take_over_volume(&ctx.dom, &locked, &o, cleared(&o), meta::AVAILABLE)?;
    Ok(reply(202, &TransferOne { transfer }))
}
