//! The tenant-scoped operations. Each takes the caller's [`Ctx`] and a
//! [`Locked`] (the API-wide lock is held: the checks it makes still hold
//! when it acts), objects the dialect already looked up (so "not found"
//! stays in the dialect's words), and returns the object as it now is.
//!
//! State rules whose answer differs between dialects (an in-use volume is
//! a 400 in OpenStack, a 409 in Deltacloud) are checked by the dialect;
//! the quota rule, ownership, metadata, the engine step and the log line
//! are here, once.

use super::quota::{self, Charge};
use super::{settings, visibility};
use super::{Ctx, Locked};
use crate::error::{ApiError, ErrorKind, Result};
use crate::meta::{self, GIB};
use engine::{ObjectId, ObjectInfo, ObjectKind, ObjectUpdate, Store};
use std::collections::BTreeMap;

/// Undoes the steps of a multi-step operation that fails: the objects it
/// made are deleted when it is dropped uncommitted; scratch objects are
/// deleted either way.
pub(crate) struct Txn<'s> {
    store: &'s Store,
    made: Vec<ObjectId>,
    scratch: Vec<ObjectId>,
    committed: bool,
}

impl<'s> Txn<'s> {
    /// An empty transaction on `store`.
    pub fn new(store: &'s Store) -> Self {
        Txn {
            store,
            made: Vec::new(),
            scratch: Vec::new(),
            committed: false,
        }
    }

    /// `id` was made by this operation: deleted if it fails.
    pub fn made(&mut self, id: ObjectId) {
        self.made.push(id);
    }

    /// `id` is a scratch object: deleted when the operation ends.
    pub fn scratch(&mut self, id: ObjectId) {
        self.scratch.push(id);
    }

    /// The operation succeeded: keep what it made.
    pub fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        let undo = if self.committed {
            &[][..]
        } else {
            &self.made[..]
        };
        for id in undo.iter().rev().chain(self.scratch.iter().rev()) {
            if let Err(e) = self.store.delete(*id) {
                if e.kind() != engine::ErrorKind::NotFound {
                    tracing::warn!(object = %id, error = %e, "api: cannot undo a step");
                }
            }
        }
    }
}

/// Where a new volume's contents come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'o> {
    /// Zeroes.
    Empty,
    /// A snapshot (recorded as `api.snapshot_id`).
    Snapshot(&'o ObjectInfo),
    /// An image (recorded as `api.image_ref`); it must be usable.
    Image(&'o ObjectInfo),
    /// Another volume (a clone; no dialect of v1.1's era offers it, the
    /// Cinder dialect's `source_volid` does).
    #[allow(dead_code)]
    Volume(&'o ObjectInfo),
}

/// Metadata of a new object owned by the caller: `user` metadata (prefix
/// added) and the reserved keys in `reserved`.
pub(crate) fn new_metadata(
    ctx: &Ctx,
    user: &BTreeMap<String, String>,
    reserved: &[(&str, Option<&str>)],
) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = user
        .iter()
        .map(|(k, v)| (format!("{}{k}", meta::USER_PREFIX), v.clone()))
        .collect();
    for (k, v) in reserved {
        meta::set(&mut m, k, *v);
    }
    meta::set(&mut m, meta::TENANT, ctx.owner());
    m
}

fn available(m: BTreeMap<String, String>) -> ObjectUpdate {
    ObjectUpdate {
        name: None,
        status: Some(meta::AVAILABLE.to_string()),
        metadata: Some(m),
    }
}

/// How the engine records a new object. API-made objects have no engine
/// name (display names are not unique) and are not compressed; the
/// command line's objects keep their engine names (unique per kind), as
/// ever.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct EngineSide<'n> {
    /// The engine name.
    pub name: Option<&'n str>,
    /// Compress a new empty volume's data.
    pub compress: bool,
}

/// Creates a volume of `size` bytes (at least the source's size) from
/// `source`, owned by the caller, `available`, with metadata `m` (see
/// [`new_metadata`]), in one durable engine step, under the volume quota.
pub(crate) fn create_volume(
    ctx: &Ctx,
    locked: &Locked,
    source: Source,
    size: u64,
    m: BTreeMap<String, String>,
) -> Result<ObjectInfo> {
    create_volume_as(ctx, locked, source, size, m, EngineSide::default())
}

/// [`create_volume`], with the engine name and compression of `engine`.
pub(crate) fn create_volume_as(
    ctx: &Ctx,
    _locked: &Locked,
    source: Source,
    size: u64,
    mut m: BTreeMap<String, String>,
    engine: EngineSide,
) -> Result<ObjectInfo> {
    let store = ctx.store();
    let src = match source {
        Source::Empty => None,
        Source::Snapshot(s) => {
            meta::set(&mut m, meta::SOURCE_SNAPSHOT, Some(&s.id.to_string()));
            Some(s)
        }
        Source::Image(i) => {
            if !ctx.image_usable(i) {
                return Err(ApiError::bad_request(format!(
                    "Image {} cannot be used to make a volume.",
                    i.id
                )));
            }
            meta::set(&mut m, meta::IMAGE_REF, Some(&i.id.to_string()));
            Some(i)
        }
        Source::Volume(v) => Some(v),
    };
    let size = size.max(src.map_or(0, |s| s.size));
    quota::check(&store.list(), ctx.tenant(), Charge::Volume(meta::gb(size)))?;
    meta::set(&mut m, meta::TENANT, ctx.owner());
    let o = match src {
        None => store.create_volume_with(engine.name, size, engine.compress, available(m))?,
        Some(s) => store.derive_with(
            s.id,
            ObjectKind::Volume,
            engine.name,
            Some(size).filter(|&w| w > s.size),
            available(m),
        )?,
    };
    tracing::info!(tenant = ctx.tenant_id(), volume = %o.id, size, "api: volume created");
    Ok(o)
}

/// An O(1) snapshot of volume `vol`, owned by the caller, under the
/// snapshot quota.
pub(crate) fn snapshot(
    ctx: &Ctx,
    locked: &Locked,
    vol: &ObjectInfo,
    m: BTreeMap<String, String>,
) -> Result<ObjectInfo> {
    snapshot_as(ctx, locked, vol, m, None)
}

/// [`snapshot`], with an engine name.
pub(crate) fn snapshot_as(
    ctx: &Ctx,
    _locked: &Locked,
    vol: &ObjectInfo,
    mut m: BTreeMap<String, String>,
    engine_name: Option<&str>,
) -> Result<ObjectInfo> {
    let store = ctx.store();
    quota::check(
        &store.list(),
        ctx.tenant(),
        Charge::Snapshot(meta::gb(vol.size)),
    )?;
    meta::set(&mut m, meta::TENANT, ctx.owner());
    let o = store.derive_with(
        vol.id,
        ObjectKind::Snapshot,
        engine_name,
        None,
        available(m),
    )?;
    tracing::info!(tenant = ctx.tenant_id(), snapshot = %o.id, volume = %vol.id, "api: snapshot created");
    Ok(o)
}

/// An O(1) image of `src` (a volume or a snapshot), owned by the caller,
/// under the snapshot quota (images count as snapshots). With a `name`,
/// it must be new among the caller's images (406-style conflict).
pub(crate) fn capture_image(
    ctx: &Ctx,
    locked: &Locked,
    src: &ObjectInfo,
    name: Option<&str>,
    m: BTreeMap<String, String>,
) -> Result<ObjectInfo> {
    capture_image_as(ctx, locked, src, name, m, None)
}

/// [`capture_image`], with an engine name.
pub(crate) fn capture_image_as(
    ctx: &Ctx,
    _locked: &Locked,
    src: &ObjectInfo,
    name: Option<&str>,
    mut m: BTreeMap<String, String>,
    engine_name: Option<&str>,
) -> Result<ObjectInfo> {
    let store = ctx.store();
    let all = store.list();
    if let Some(n) = name {
        if visibility::own_image_named(&all, ctx.tenant_id(), n) {
            return Err(ApiError::conflict("Image already exists."));
        }
        meta::set(&mut m, meta::IMAGE_NAME, Some(n));
    }
    quota::check(&all, ctx.tenant(), Charge::Image(meta::gb(src.size)))?;
    meta::set(&mut m, meta::TENANT, ctx.owner());
    let o = store.derive_with(src.id, ObjectKind::Image, engine_name, None, available(m))?;
    tracing::info!(tenant = ctx.tenant_id(), image = %o.id, source = %src.id, "api: image captured");
    Ok(o)
}

/// Attaches volume `vol` (the dialect checked it is available) to
/// `server` as `device`, or as the first free `/dev/vdb`..`/dev/vdz`. A
/// device already used on that server is a conflict. A fresh NBD secret
/// (see `nbd_access.rs`) becomes the export name of the attachment.
pub(crate) fn attach(
    ctx: &Ctx,
    locked: &Locked,
    vol: &ObjectInfo,
    server: &str,
    device: Option<String>,
) -> Result<ObjectInfo> {
    let used: Vec<String> = ctx
        .attached_to(server)
        .iter()
        .filter_map(|v| meta::get(v, meta::ATTACHED_DEVICE).map(str::to_string))
        .collect();
    let device = match device {
        Some(d) if used.contains(&d) => {
            return Err(ApiError::conflict(format!(
                "The supplied device path ({d}) is in use."
            )))
        }
        Some(d) => d,
        None => (b'b'..=b'z')
            .map(|c| format!("/dev/vd{}", c as char))
            .find(|d| !used.contains(d))
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "No free device name left on server {}",
                    server.escape_debug()
                ))
            })?,
    };
    let mut m = vol.metadata.clone();
    meta::set(&mut m, meta::ATTACHED_SERVER, Some(server));
    meta::set(&mut m, meta::ATTACHED_DEVICE, Some(&device));
    // The export name that reaches the volume while attached (kept when
    // a Cinder client initialized the connection first).
    if meta::get(vol, meta::NBD_SECRET).is_none() {
        let secret = crate::nbd_access::new_secret();
        meta::set(&mut m, meta::NBD_SECRET, Some(&secret));
    }
    let o = ctx.save(locked, vol.id, meta::IN_USE, m)?;
    tracing::info!(tenant = ctx.tenant_id(), volume = %o.id, server, device, "api: volume attached");
    Ok(o)
}

/// Detaches volume `vol` (the dialect checked it is attached): its NBD
/// secret is removed and the connections opened with it are closed.
pub(crate) fn detach(ctx: &Ctx, locked: &Locked, vol: &ObjectInfo) -> Result<ObjectInfo> {
    let mut m = vol.metadata.clone();
    meta::set(&mut m, meta::ATTACHED_SERVER, None);
    meta::set(&mut m, meta::ATTACHED_DEVICE, None);
    meta::set(&mut m, meta::NBD_SECRET, None);
    let o = ctx.save(locked, vol.id, meta::AVAILABLE, m)?;
    revoked(ctx, vol);
    tracing::info!(tenant = ctx.tenant_id(), volume = %o.id, "api: volume detached");
    Ok(o)
}

/// Gives volume `vol` an NBD secret if it has none (Cinder's
/// `os-initialize_connection` before `os-attach`); the status is kept.
pub(crate) fn grant_connection(ctx: &Ctx, locked: &Locked, vol: &ObjectInfo) -> Result<ObjectInfo> {
    if meta::get(vol, meta::NBD_SECRET).is_some() {
        return Ok(vol.clone());
    }
    let mut m = vol.metadata.clone();
    let secret = crate::nbd_access::new_secret();
    meta::set(&mut m, meta::NBD_SECRET, Some(&secret));
    ctx.save(locked, vol.id, &vol.status, m)
}

/// Removes volume `vol`'s NBD secret (Cinder's `os-terminate_connection`)
/// and closes the connections opened with it; the status is kept.
pub(crate) fn revoke_connection(
    ctx: &Ctx,
    locked: &Locked,
    vol: &ObjectInfo,
) -> Result<ObjectInfo> {
    let mut m = vol.metadata.clone();
    meta::set(&mut m, meta::NBD_SECRET, None);
    let o = ctx.save(locked, vol.id, &vol.status, m)?;
    revoked(ctx, vol);
    Ok(o)
}

/// The secret of `vol` is gone: close the connections opened with it.
fn revoked(ctx: &Ctx, vol: &ObjectInfo) {
    if let Some(nbd) = ctx.state.nbd() {
        (nbd.revoke)(vol.id);
    }
}

/// True when volume `o` is attached (by status or by the attachment keys).
pub(crate) fn attached(o: &ObjectInfo) -> bool {
    o.status == meta::IN_USE || meta::get(o, meta::ATTACHED_SERVER).is_some()
}

/// The Cinder group or group snapshot that holds `o` (a member volume or
/// snapshot), if its record exists: a member goes only with its group
/// (snapshot), through [`delete_member`]. A member naming a record a
/// crash lost is free.
pub(crate) fn held_by(ctx: &Ctx, o: &ObjectInfo) -> Option<String> {
    let (key, prefix, what) = match o.kind {
        ObjectKind::Volume => (meta::GROUP_ID, settings::GROUP_RECORD, "volume group"),
        ObjectKind::Snapshot => (
            meta::GROUP_SNAPSHOT_ID,
            settings::GROUP_SNAPSHOT_RECORD,
            "group snapshot",
        ),
        ObjectKind::Image => return None,
    };
    let id = meta::get(o, key)?;
    settings::read_store(ctx.store())
        .contains_key(&format!("{prefix}{id}"))
        .then(|| format!("{what} {id}"))
}

/// Deletes `o`, which the caller owns (the dialect checked its own state
/// rules). Objects made from it keep their data. A member of a Cinder
/// group or group snapshot is a conflict (the command-line operator may).
pub(crate) fn delete(ctx: &Ctx, locked: &Locked, o: &ObjectInfo) -> Result<()> {
    if !ctx.owns(o) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "You do not have permission to perform this action.",
        ));
    }
    if !ctx.scope.operator {
        if let Some(holder) = held_by(ctx, o) {
            return Err(ApiError::conflict(format!(
                "{} {} is a member of {holder}: it goes only with it.",
                o.kind, o.id
            )));
        }
    }
    delete_member(ctx, locked, o)
}

/// Deletes `o`, which the caller owns or (an operator) any tenant's,
/// member of a group or group snapshot or not: Cinder's delete of a group
/// with its volumes, or of a group snapshot.
pub(crate) fn delete_member(ctx: &Ctx, _locked: &Locked, o: &ObjectInfo) -> Result<()> {
    if !ctx.owns(o) && !ctx.scope.admin {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "You do not have permission to perform this action.",
        ));
    }
    if o.kind == ObjectKind::Volume && attached(o) {
        return Err(ApiError::conflict(format!(
            "Volume {} is attached: detach it first.",
            o.id
        )));
    }
    ctx.store().delete(o.id)?;
    tracing::info!(tenant = ctx.tenant_id(), object = %o.id, kind = ?o.kind, "api: deleted");
    Ok(())
}

/// Deletes `o` of any tenant whatever its state (an operator's force
/// delete; 403 for other tenants). An attached volume is still refused.
pub(crate) fn operator_delete(ctx: &Ctx, locked: &Locked, o: &ObjectInfo) -> Result<()> {
    if ctx.owns(o) {
        return delete(ctx, locked, o);
    }
    if !ctx.scope.admin {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "You do not have permission to perform this action.",
        ));
    }
    if let Some(holder) = held_by(ctx, o) {
        return Err(ApiError::conflict(format!(
            "{} {} is a member of {holder}: it goes only with it.",
            o.kind, o.id
        )));
    }
    if o.kind == ObjectKind::Volume && attached(o) {
        return Err(ApiError::conflict(format!(
            "Volume {} is attached: detach it first.",
            o.id
        )));
    }
    ctx.store().delete(o.id)?;
    tracing::info!(tenant = ctx.tenant_id(), owner = meta::get(o, meta::TENANT).unwrap_or("-"), object = %o.id, kind = ?o.kind, "api: operator deleted");
    Ok(())
}

/// Takes volume `o` of another tenant over as the caller's (a volume
/// transfer the dialect has authorized), with metadata `m` and status
/// `status`, under the caller's volume quota.
pub(crate) fn take_over_volume(
    ctx: &Ctx,
    locked: &Locked,
    o: &ObjectInfo,
    mut m: BTreeMap<String, String>,
    status: &str,
) -> Result<ObjectInfo> {
    quota::check(
        &ctx.store().list(),
        ctx.tenant(),
        Charge::Volume(meta::gb(o.size)),
    )?;
    let from = meta::get(o, meta::TENANT).unwrap_or("-").to_string();
    meta::set(&mut m, meta::TENANT, Some(ctx.tenant_id()));
    let n = ctx.save(locked, o.id, status, m)?;
    tracing::info!(tenant = ctx.tenant_id(), volume = %o.id, from = %from, "api: volume taken over");
    Ok(n)
}

/// Grows volume `vol` to `new_gb` GB (larger than now), under the
/// gigabytes quota.
pub(crate) fn extend(
    ctx: &Ctx,
    _locked: &Locked,
    vol: &ObjectInfo,
    new_gb: u64,
) -> Result<ObjectInfo> {
    let cur = meta::gb(vol.size);
    let store = ctx.store();
    quota::check(
        &store.list(),
        ctx.tenant(),
        Charge::Grow(new_gb.saturating_sub(cur)),
    )?;
    store.resize(vol.id, new_gb * GIB)?;
    tracing::info!(tenant = ctx.tenant_id(), volume = %vol.id, new_gb, "api: volume extended");
    Ok(store.get(vol.id)?)
}

/// Reverts volume `vol` to its snapshot `snap` (a snapshot of it: 400
/// otherwise), under the gigabytes quota when that makes it larger.
pub(crate) fn revert(
    ctx: &Ctx,
    _locked: &Locked,
    vol: &ObjectInfo,
    snap: &ObjectInfo,
) -> Result<ObjectInfo> {
    if snap.parent != Some(vol.id) {
        return Err(ApiError::bad_request(format!(
            "Invalid snapshot: snapshot {} is not a snapshot of volume {}",
            snap.id, vol.id
        )));
    }
    let (cur, new) = (meta::gb(vol.size), meta::gb(snap.size));
    let store = ctx.store();
    if new > cur {
        quota::check(&store.list(), ctx.tenant(), Charge::Grow(new - cur))?;
    }
    store.revert(vol.id, snap.id)?;
    tracing::info!(tenant = ctx.tenant_id(), volume = %vol.id, snapshot = %snap.id, "api: volume reverted");
    Ok(store.get(vol.id)?)
}

/// A change of display name, description and user metadata; `None`
/// leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default)]
pub(crate) struct Edit {
    /// The display name.
    pub name: Option<Option<String>>,
    /// The display description.
    pub description: Option<Option<String>>,
    /// The user metadata, replacing the old.
    pub user: Option<BTreeMap<String, String>>,
}

impl Edit {
    /// `o`'s metadata with this edit applied.
    pub fn apply(&self, o: &ObjectInfo) -> BTreeMap<String, String> {
        let mut m = match &self.user {
            Some(u) => meta::with_user_metadata(o, u),
            None => o.metadata.clone(),
        };
        if let Some(n) = &self.name {
            meta::set(&mut m, meta::DISPLAY_NAME, n.as_deref());
        }
        if let Some(d) = &self.description {
            meta::set(&mut m, meta::DISPLAY_DESCRIPTION, d.as_deref());
        }
        m
    }
}

/// Writes `m` as the metadata of `o`, which the caller owns, keeping its
/// status and owner.
pub(crate) fn update(
    ctx: &Ctx,
    locked: &Locked,
    o: &ObjectInfo,
    mut m: BTreeMap<String, String>,
) -> Result<ObjectInfo> {
    if !ctx.owns(o) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "You do not have permission to perform this action.",
        ));
    }
    let owner = ctx.owner().or(meta::get(o, meta::TENANT));
    meta::set(&mut m, meta::TENANT, owner);
    ctx.save(locked, o.id, &o.status, m)
}

/// Hands image `o` (the caller's) and its quota charge to tenant `to`:
/// an operator action (403 for other tenants); `to` must exist and have
/// room for it (413), and must not have an image of the same name.
pub(crate) fn transfer_image(
    ctx: &Ctx,
    locked: &Locked,
    o: &ObjectInfo,
    to: &str,
) -> Result<ObjectInfo> {
    if to == ctx.tenant_id() {
        return Ok(o.clone());
    }
    if !ctx.scope.admin {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "You do not have permission to perform this action.",
        ));
    }
    if !ctx.owns(o) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "You do not have permission to perform this action.",
        ));
    }
    let Some(recipient) = ctx.state.auth().tenants().iter().find(|t| t.id == to) else {
        return Err(ApiError::bad_request(format!(
            "No tenant {}.",
            to.escape_debug()
        )));
    };
    let all = ctx.store().list();
    if visibility::own_image_named(&all, to, &visibility::image_name(o)) {
        return Err(ApiError::conflict("Image already exists."));
    }
    quota::check(&all, recipient, Charge::Image(meta::gb(o.size)))?;
    let mut m = o.metadata.clone();
    meta::set(&mut m, meta::TENANT, Some(to));
    let n = ctx.save(locked, o.id, &o.status, m)?;
    tracing::info!(tenant = ctx.tenant_id(), image = %o.id, to, "api: image handed over");
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_txn_undoes_what_it_made_unless_committed() {
        let (_tmp, store) = super::super::scratch_store();
        let mk = || {
            store
                .create_volume_with(None, 1 << 20, false, ObjectUpdate::default())
                .expect("volume")
                .id
        };
        let (a, b, c) = (mk(), mk(), mk());
        {
            let mut t = Txn::new(&store);
            t.made(a);
            t.scratch(b);
        }
        assert!(store.get(a).is_err() && store.get(b).is_err());
        let d = mk();
        {
            let mut t = Txn::new(&store);
            t.made(c);
            t.scratch(d);
            t.commit();
        }
        assert!(store.get(c).is_ok());
        assert!(store.get(d).is_err());
    }
}
