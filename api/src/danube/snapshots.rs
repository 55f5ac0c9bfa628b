//! VM disk snapshots, `/api/vm/<vm>/snapshot/[<snapname>/]`, and images
//! made from them, `POST /api/vm/<vm>/snapshot/<snapname>/image/<name>/`.
//!
//! A VM is a server id of the shared attachment model (OpenStack's
//! os-volume_attachments): its disks are the caller's volumes attached to
//! it, ordered by device name, and `disk_id` N (1-based, default 1) is the
//! N-th (412 when there is none). A VM snapshot is an engine snapshot of
//! that volume, so OpenStack's os-snapshots lists it too (its Danube name
//! is the shared display name). Snapshot names are unique per VM. An image
//! from a snapshot is derived in O(1), so it is answered at once (200
//! SUCCESS) instead of as a task; it counts against the snapshot and
//! gigabytes quotas like every image.

use super::fields::{check_name, Data, MAX_NOTE};
use super::images::{self, Fields};
use super::views::{
    Detail, Envelope, FieldErrors, Image, ImageUpdate, Message, Snapshot, SnapshotItem,
    SnapshotNote,
};
use super::{success, Ctx, DResult, Fail};
use crate::domain::{ops, visibility};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use std::collections::BTreeMap;

fn check_vm(vm: &str) -> DResult<()> {
    if vm.is_empty() || vm.len() > 255 || vm.chars().any(char::is_control) {
        return Err(Fail::not_found("VM not found."));
    }
    Ok(())
}

/// The VM's disks: the caller's volumes attached to `vm`, by device name.
fn disks(ctx: &Ctx, vm: &str) -> DResult<Vec<ObjectInfo>> {
    check_vm(vm)?;
    let mut v: Vec<ObjectInfo> = ctx.dom.attached_to(vm);
    if v.is_empty() {
        return Err(Fail::not_found("VM not found."));
    }
    v.sort_by(|a, b| {
        let dev = |o: &ObjectInfo| {
            meta::get(o, meta::ATTACHED_DEVICE)
                .unwrap_or("")
                .to_string()
        };
        (dev(a).len(), dev(a), a.id).cmp(&(dev(b).len(), dev(b), b.id))
    });
    Ok(v)
}

/// The `disk_id` parameter (default 1); 412 when the VM has no such disk.
fn disk_id(d: &Data, n_disks: usize) -> DResult<Option<usize>> {
    let Some(n) = d.integer("disk_id")? else {
        return Ok(None);
    };
    match usize::try_from(n) {
        Ok(n) if n >= 1 && n <= n_disks => Ok(Some(n)),
        _ => Err(Fail::detail(412, "Invalid disk_id")),
    }
}

/// The snapshot's name in this dialect.
fn snap_name(o: &ObjectInfo) -> String {
    meta::get(o, meta::DISPLAY_NAME)
        .map(str::to_string)
        .unwrap_or_else(|| o.id.to_string())
}

/// The disk number of snapshot `o` of `vm`.
fn snap_disk(o: &ObjectInfo, disks: &[ObjectInfo]) -> usize {
    disks
        .iter()
        .position(|d| Some(d.id) == o.parent)
        .map(|i| i + 1)
        .or_else(|| meta::get(o, super::SNAP_DISK).and_then(|n| n.parse().ok()))
        .unwrap_or(1)
}

fn view(o: &ObjectInfo, vm: &str, disks: &[ObjectInfo]) -> Snapshot {
    Snapshot {
        hostname: vm.to_string(),
        id: o.id.to_string(),
        name: snap_name(o),
        disk_id: snap_disk(o, disks),
        note: meta::get(o, super::SNAP_NOTE).unwrap_or("").to_string(),
        kind: 2,
        status: if o.status == meta::AVAILABLE { 1 } else { 2 },
        size: o.size.div_ceil(1 << 20),
        created: images::iso_time(o.created),
    }
}

/// The caller's snapshots of `vm`: those taken through this dialect, and
/// those of its current disks taken through another.
fn snapshots(ctx: &Ctx, vm: &str, disks: &[ObjectInfo]) -> Vec<ObjectInfo> {
    ctx.dom
        .objects(ObjectKind::Snapshot)
        .into_iter()
        .filter(|o| {
            meta::get(o, super::SNAP_VM) == Some(vm)
                || (meta::get(o, super::SNAP_VM).is_none()
                    && disks.iter().any(|d| Some(d.id) == o.parent))
        })
        .collect()
}

fn find(ctx: &Ctx, vm: &str, snap: &str, disks: &[ObjectInfo]) -> DResult<ObjectInfo> {
    snapshots(ctx, vm, disks)
        .into_iter()
        .find(|o| snap_name(o) == snap || o.id.to_string() == snap)
        .ok_or_else(|| Fail::not_found("Snapshot not found."))
}

/// `GET /api/vm/<vm>/snapshot/`: names (or objects with `full`), filtered
/// by `disk_id`, sorted by `order_by` (name, created, `-` descending).
#[utoipa::path(
    get,
    path = "/vm/{vm}/snapshot/",
    operation_id = "listSnapshots",
    tag = "vm",
    summary = "A VM's snapshots: names, or objects with `full`",
    params(
        ("vm" = String, Path, description = "the VM (server id)"),
        ("full" = Option<bool>, Query, description = "whole snapshots"),
        ("disk_id" = Option<i64>, Query, description = "only of this disk (from 1)"),
        ("order_by" = Option<String>, Query, description = "name or created (default -created)"),
    ),
    responses(
        (status = 200, description = "SUCCESS: the snapshots", body = Envelope<Vec<SnapshotItem>>),
        (status = 400, description = "FAILURE: field errors", body = Envelope<FieldErrors>),
        (status = 404, description = "no such VM (no disk attached to it)", body = Detail),
        (status = 412, description = "no such disk_id", body = Detail),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
pub fn list(ctx: &Ctx, vm: &str) -> DResult<Reply> {
    let d = Data::of(ctx.req)?;
    let full = d.boolean("full")?.unwrap_or(false);
    let order = d
        .string("order_by", 16)?
        .unwrap_or_else(|| "-created".into());
    let disks = disks(ctx, vm)?;
    let disk = disk_id(&d, disks.len())?;
    let mut snaps: Vec<ObjectInfo> = snapshots(ctx, vm, &disks)
        .into_iter()
        .filter(|o| disk.is_none_or(|n| snap_disk(o, &disks) == n))
        .collect();
    let (desc, key) = match order.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, order.as_str()),
    };
    match key {
        "name" => snaps.sort_by_key(snap_name),
        "created" => snaps.sort_by_key(|o| (o.created, o.id)),
        _ => {
            return Err(Fail::invalid(
                "order_by",
                "Invalid order_by field. Available fields: name, created.",
            ))
        }
    }
    if desc {
        snaps.reverse();
    }
    let result: Vec<SnapshotItem> = if full {
        snaps
            .iter()
            .map(|o| SnapshotItem::Snapshot(view(o, vm, &disks)))
            .collect()
    } else {
        snaps
            .iter()
            .map(|o| SnapshotItem::Name(snap_name(o)))
            .collect()
    };
    Ok(success(&result))
}

/// `GET /api/vm/<vm>/snapshot/<snapname>/`.
#[utoipa::path(
    get,
    path = "/vm/{vm}/snapshot/{snap}/",
    operation_id = "showSnapshot",
    tag = "vm",
    summary = "A snapshot",
    params(
        ("snap" = String, Path, description = "the snapshot name (or UUID)"),
        ("vm" = String, Path, description = "the VM (server id)"),
    ),
    responses(
        (status = 200, description = "SUCCESS: the snapshot", body = Envelope<Snapshot>),
        (status = 404, description = "no such VM or snapshot", body = Detail),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
pub fn show(ctx: &Ctx, vm: &str, snap: &str) -> DResult<Reply> {
    let disks = disks(ctx, vm)?;
    let o = find(ctx, vm, snap, &disks)?;
    Ok(success(&view(&o, vm, &disks)))
}

/// `POST /api/vm/<vm>/snapshot/<snapname>/` (`disk_id`, `note`): an
/// engine snapshot of the VM's disk, under the snapshot quota.
#[utoipa::path(
    post,
    path = "/vm/{vm}/snapshot/{snap}/",
    operation_id = "createSnapshot",
    tag = "vm",
    summary = "Snapshot a VM's disk",
    description = "417 `Detail` when the disk is neither available nor in use.",
    params(
        ("snap" = String, Path, description = "the snapshot name (or UUID)"),
        ("vm" = String, Path, description = "the VM (server id)"),
    ),
    request_body(content = SnapshotNote, description = "JSON object (query parameters for GET)"),
    responses(
        (status = 200, description = "SUCCESS: the snapshot", body = Envelope<Snapshot>),
        (status = 400, description = "FAILURE: field errors", body = Envelope<FieldErrors>),
        (status = 404, description = "no such VM", body = Detail),
        (status = 406, description = "a snapshot of this name exists", body = Detail),
        (status = 412, description = "no such disk_id", body = Detail),
        (status = 413, description = "quota exceeded", body = Detail),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
pub fn create(ctx: &Ctx, vm: &str, snap: &str) -> DResult<Reply> {
    check_name("name", snap)?;
    let d = Data::of(ctx.req)?;
    let note = d.string("note", MAX_NOTE)?;
    let locked = ctx.dom.lock();
    let disks = disks(ctx, vm)?;
    let n = disk_id(&d, disks.len())?.unwrap_or(1);
    let Some(vol) = disks.get(n - 1) else {
        return Err(Fail::detail(412, "Invalid disk_id"));
    };
    if snapshots(ctx, vm, &disks)
        .iter()
        .any(|o| snap_name(o) == snap)
    {
        return Err(Fail::detail(406, "Snapshot already exists."));
    }
    if vol.status != meta::IN_USE && vol.status != meta::AVAILABLE {
        return Err(Fail::detail(
            417,
            format!("VM disk has a bad status ({}).", vol.status),
        ));
    }
    let m = ops::new_metadata(
        &ctx.dom,
        &BTreeMap::new(),
        &[
            (meta::DISPLAY_NAME, Some(snap)),
            (super::SNAP_VM, Some(vm)),
            (super::SNAP_DISK, Some(&n.to_string())),
            (super::SNAP_NOTE, note.as_deref()),
            (meta::DISPLAY_DESCRIPTION, note.as_deref()),
        ],
    );
    let o = ops::snapshot(&ctx.dom, &locked, vol, m)?;
    Ok(success(&view(&o, vm, &disks)))
}

/// `PUT /api/vm/<vm>/snapshot/<snapname>/` (`note`).
#[utoipa::path(
    put,
    path = "/vm/{vm}/snapshot/{snap}/",
    operation_id = "updateSnapshot",
    tag = "vm",
    summary = "Change a snapshot's note",
    params(
        ("snap" = String, Path, description = "the snapshot name (or UUID)"),
        ("vm" = String, Path, description = "the VM (server id)"),
    ),
    request_body(content = SnapshotNote, description = "JSON object (query parameters for GET)"),
    responses(
        (status = 200, description = "SUCCESS: the snapshot", body = Envelope<Snapshot>),
        (status = 400, description = "FAILURE: field errors", body = Envelope<FieldErrors>),
        (status = 404, description = "no such VM or snapshot", body = Detail),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
pub fn update(ctx: &Ctx, vm: &str, snap: &str) -> DResult<Reply> {
    let d = Data::of(ctx.req)?;
    let note = d.string("note", MAX_NOTE)?;
    let locked = ctx.dom.lock();
    let disks = disks(ctx, vm)?;
    let mut o = find(ctx, vm, snap, &disks)?;
    if let Some(n) = note {
        let mut m = o.metadata.clone();
        meta::set(&mut m, super::SNAP_NOTE, Some(&n));
        meta::set(&mut m, meta::DISPLAY_DESCRIPTION, Some(&n));
        o = ops::update(&ctx.dom, &locked, &o, m)?;
    }
    Ok(success(&view(&o, vm, &disks)))
}

/// `DELETE /api/vm/<vm>/snapshot/<snapname>/`. Volumes and images made
/// from it keep their data.
#[utoipa::path(
    delete,
    path = "/vm/{vm}/snapshot/{snap}/",
    operation_id = "deleteSnapshot",
    tag = "vm",
    summary = "Delete a snapshot",
    params(
        ("snap" = String, Path, description = "the snapshot name (or UUID)"),
        ("vm" = String, Path, description = "the VM (server id)"),
    ),
    responses(
        (status = 200, description = "SUCCESS: deleted", body = Envelope<Message>),
        (status = 404, description = "no such VM or snapshot", body = Detail),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
pub fn delete(ctx: &Ctx, vm: &str, snap: &str) -> DResult<Reply> {
    let locked = ctx.dom.lock();
    let disks = disks(ctx, vm)?;
    let o = find(ctx, vm, snap, &disks)?;
    ops::delete(&ctx.dom, &locked, &o)?;
    Ok(success(&Message {
        message: format!("Snapshot {} deleted", snap_name(&o)),
    }))
}

/// `POST /api/vm/<vm>/snapshot/<snapname>/image/<name>/`: an image of
/// the snapshot, in O(1) (alias, access, owner, desc, version, resize,
/// deploy, tags).
#[utoipa::path(
    post,
    path = "/vm/{vm}/snapshot/{snap}/image/{name}/",
    operation_id = "snapshotToImage",
    tag = "vm",
    summary = "An image of a snapshot, at once",
    description = "409 `Detail` while an import of that name runs; 413 over quota; 417 when the snapshot is not ready.",
    params(
        ("name" = String, Path, description = "the image name (or UUID)"),
        ("snap" = String, Path, description = "the snapshot name (or UUID)"),
        ("vm" = String, Path, description = "the VM (server id)"),
    ),
    request_body(content = ImageUpdate, description = "JSON object (query parameters for GET)"),
    responses(
        (status = 200, description = "SUCCESS: the image", body = Envelope<Image>),
        (status = 400, description = "FAILURE: field errors", body = Envelope<FieldErrors>),
        (status = 404, description = "no such VM or snapshot", body = Detail),
        (status = 406, description = "an image of this name exists", body = Detail),
        (status = 401, description = "no or invalid token", body = Detail),
    )
)]
pub fn to_image(ctx: &Ctx, vm: &str, snap: &str, name: &str) -> DResult<Reply> {
    check_name("name", name)?;
    let d = Data::of(ctx.req)?;
    let f = Fields::parse(ctx, &d)?;
    let locked = ctx.dom.lock();
    let disks = disks(ctx, vm)?;
    if let Some(n) = disk_id(&d, disks.len())? {
        // The snapshot must be of that disk.
        let o = find(ctx, vm, snap, &disks)?;
        if snap_disk(&o, &disks) != n {
            return Err(Fail::not_found("Snapshot not found."));
        }
    }
    let s = find(ctx, vm, snap, &disks)?;
    if s.status != meta::AVAILABLE {
        return Err(Fail::detail(417, "Snapshot status is not OK."));
    }
    let tenant = ctx.dom.tenant_id();
    if ctx.dom.state.danube().is_reserved(tenant, name) {
        return Err(Fail::detail(409, "An import of this image is running."));
    }
    let all = ctx.dom.store().list();
    if visibility::own_image_named(&all, tenant, name) {
        return Err(Fail::detail(406, "Image already exists."));
    }
    images::check_alias_version(
        &all,
        tenant,
        None,
        name,
        f.alias.as_deref(),
        f.version.as_deref(),
    )?;
    let mut m = ops::new_metadata(
        &ctx.dom,
        &BTreeMap::new(),
        &[
            (meta::DISPLAY_NAME, Some(name)),
            (super::ACCESS, Some(&super::ACCESS_PRIVATE.to_string())),
            (super::VERSION, Some("1.0")),
            (super::RESIZE, Some("false")),
            (super::DEPLOY, Some("false")),
        ],
    );
    f.apply(&mut m);
    let o = ops::capture_image(&ctx.dom, &locked, &s, Some(name), m)?;
    let o = images::hand_over(&ctx.dom, &locked, &f, o)?;
    Ok(success(&images::view(&o)))
}
