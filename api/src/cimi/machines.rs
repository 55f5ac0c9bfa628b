//! `/cimi/machines` and `/cimi/machines/{id}/volumes`: the MachineVolume
//! collection on the attachment model shared with OpenStack's
//! os-volume_attachments (`meta::ATTACHED_SERVER` + `ATTACHED_DEVICE`,
//! status `in-use`). Machines are external: any machine id is accepted, and
//! the machine collection lists those the tenant's volumes are attached to.
//!
//! Rules as in OpenStack: attach only an available, unattached volume (409
//! otherwise); one machine per volume; `initialLocation` is the device
//! (`/dev/[a-z]+[0-9]*`, default the first free `/dev/vdb`..`/dev/vdz`),
//! unique per machine (409 when taken); detach only a volume attached to
//! that machine (404 otherwise). Attach answers 201 + Location, detach 200.

use super::body::{self, opt_href, opt_text, ref_id};
use super::query::Query;
use super::views::{
    self, ops, Href, Machine, MachineCollection, MachineVolume, MachineVolumeCollection,
};
use super::Ctx;
use crate::domain::{ops, valid_device};
use crate::error::{ApiError, Result};
use crate::http::Reply;
use crate::meta;
use engine::{ObjectInfo, ObjectKind};
use std::collections::{BTreeMap, BTreeSet};

/// Longest machine id.
const MAX_MACHINE: usize = 255;

fn check_machine(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_MACHINE || id.chars().any(|c| c.is_control() || c == '/') {
        return Err(ApiError::bad_request(format!(
            "Invalid machine id '{}'.",
            id.escape_debug()
        )));
    }
    Ok(())
}

fn attached_to(ctx: &Ctx, machine: &str) -> Vec<ObjectInfo> {
    ctx.dom.attached_to(machine)
}

/// Path segments are percent-decoded: encode the machine id back.
fn seg(s: &str) -> String {
    crate::http::encode_segment(s)
}

fn machine_url(ctx: &Ctx, machine: &str) -> String {
    ctx.url(&format!("machines/{}", seg(machine)))
}

/// The MachineVolume view of an attached volume (without `resourceURI`).
fn view(ctx: &Ctx, machine: &str, o: &ObjectInfo) -> MachineVolume {
    let url = format!("{}/volumes/{}", machine_url(ctx, machine), o.id);
    let props = nbd_properties(ctx, o);
    MachineVolume {
        resource_uri: None,
        operations: ops(&["delete"], &url),
        id: url,
        properties: (!props.is_empty()).then_some(props),
        initial_location: meta::get(o, meta::ATTACHED_DEVICE).unwrap_or("").into(),
        volume: Href::new(ctx.url(&format!("volumes/{}", o.id))),
    }
}

/// How the attachment is reached over NBD, as CIMI properties.
fn nbd_properties(ctx: &Ctx, o: &ObjectInfo) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    if let Some(nbd) = ctx.dom.state.nbd() {
        p.insert("nbdExport".into(), crate::nbd_access::export_name(o));
        if let Some(uri) = nbd.uri(o) {
            p.insert("nbdUri".into(), uri);
        }
    }
    p
}

fn machine_view(ctx: &Ctx, machine: &str) -> Machine {
    let url = machine_url(ctx, machine);
    Machine {
        resource_uri: None,
        volumes: Href::new(format!("{url}/volumes")),
        id: url,
        name: machine.to_string(),
    }
}

/// `GET /cimi/machines`: the machines the tenant's volumes are attached to.
#[utoipa::path(
    get,
    path = "/machines",
    operation_id = "listMachines",
    tag = "machines",
    summary = "The machines the tenant's volumes are attached to",
    params(super::openapi::Filter),
    responses(
        (status = 200, description = "the machines", body = MachineCollection),
        (status = 400, description = "a malformed `$filter`, `$first` or `$last`", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn list_machines(ctx: &Ctx) -> Result<Reply> {
    let q = Query::of(ctx.req())?;
    let names: BTreeSet<String> = ctx
        .dom
        .objects(ObjectKind::Volume)
        .iter()
        .filter_map(|o| meta::get(o, meta::ATTACHED_SERVER).map(str::to_string))
        .collect();
    let all = names.iter().map(|m| machine_view(ctx, m)).collect();
    let (page, count) = q.apply(all);
    Ok(ctx.ok(&MachineCollection::new(
        ctx.url("machines"),
        count,
        page,
        false,
    )))
}

/// `GET /cimi/machines/{id}`.
#[utoipa::path(
    get,
    path = "/machines/{id}",
    operation_id = "showMachine",
    tag = "machines",
    summary = "A machine (any id names one)",
    params(("id" = String, Path, description = "the machine id (any id without `/` or control characters)")),
    responses(
        (status = 200, description = "the machine", body = Machine),
        (status = 400, description = "an invalid machine id", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn show_machine(ctx: &Ctx, machine: &str) -> Result<Reply> {
    check_machine(machine)?;
    Ok(ctx.ok(&machine_view(ctx, machine).top()))
}

/// `GET /cimi/machines/{id}/volumes`.
#[utoipa::path(
    get,
    path = "/machines/{id}/volumes",
    operation_id = "listMachineVolumes",
    tag = "machines",
    summary = "The volumes attached to a machine",
    params(("id" = String, Path, description = "the machine id (any id without `/` or control characters)"), super::openapi::Filter),
    responses(
        (status = 200, description = "the attachments", body = MachineVolumeCollection),
        (status = 400, description = "an invalid machine id, or a malformed `$filter`, `$first` or `$last`", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn list(ctx: &Ctx, machine: &str) -> Result<Reply> {
    check_machine(machine)?;
    let q = Query::of(ctx.req())?;
    let all = attached_to(ctx, machine)
        .iter()
        .map(|o| view(ctx, machine, o))
        .collect();
    let (page, count) = q.apply(all);
    let url = format!("{}/volumes", machine_url(ctx, machine));
    Ok(ctx.ok(&MachineVolumeCollection::new(url, count, page, true)))
}

/// The tenant's volume `id`, attached to `machine` (404 otherwise).
fn attached(ctx: &Ctx, machine: &str, id: &str) -> Result<ObjectInfo> {
    check_machine(machine)?;
    let o = ctx.volume(id)?;
    if meta::get(&o, meta::ATTACHED_SERVER) != Some(machine) {
        return Err(ApiError::not_found(format!(
            "Volume {id} is not attached to machine {}.",
            machine.escape_debug()
        )));
    }
    Ok(o)
}

/// `GET /cimi/machines/{id}/volumes/{volume}`.
#[utoipa::path(
    get,
    path = "/machines/{id}/volumes/{volume}",
    operation_id = "showMachineVolume",
    tag = "machines",
    summary = "A volume attached to a machine",
    params(("id" = String, Path, description = "the machine id (any id without `/` or control characters)"), ("volume" = String, Path, description = "the volume's UUID")),
    responses(
        (status = 200, description = "the attachment", body = MachineVolume),
        (status = 404, description = "no such volume, or not attached to the machine", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn show(ctx: &Ctx, machine: &str, id: &str) -> Result<Reply> {
    let o = attached(ctx, machine, id)?;
    Ok(ctx.ok(&view(ctx, machine, &o).top()))
}

/// `POST /cimi/machines/{id}/volumes` with a MachineVolume (`volume`
/// href, optional `initialLocation`).
#[utoipa::path(
    post,
    path = "/machines/{id}/volumes",
    operation_id = "attachVolume",
    tag = "machines",
    summary = "Attach a volume to a machine",
    params(("id" = String, Path, description = "the machine id (any id without `/` or control characters)")),
    request_body(content = super::openapi::MachineVolumeCreate, content_type = "application/json", description = "also as XML (`<MachineVolume>`)"),
    responses(
        (status = 201, description = "the attachment (`Location` names it)", body = MachineVolume),
        (status = 400, description = "a malformed body, no `volume`, or a bad `initialLocation`", body = views::Error),
        (status = 404, description = "no such volume", body = views::Error),
        (status = 409, description = "the volume is attached already, or not available", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn attach(ctx: &Ctx, machine: &str) -> Result<Reply> {
    check_machine(machine)?;
    let b = body::parse(ctx.req(), &["MachineVolume", "MachineVolumeCreate"])?;
    let href = opt_href(&b, "volume")?
        .ok_or_else(|| ApiError::bad_request("volume (the href of a volume) is required."))?;
    let vol_id = ref_id(&href, "volumes")?;
    let device = opt_text(&b, "initialLocation", 64, false)?.filter(|d| !d.is_empty());
    if let Some(d) = &device {
        if !valid_device(d) {
            return Err(ApiError::bad_request(format!(
                "initialLocation '{}' is not a device path such as /dev/vdb.",
                d.escape_debug()
            )));
        }
    }

    let locked = ctx.dom.lock();
    let o = ctx.volume(&vol_id)?;
    if let Some(other) = meta::get(&o, meta::ATTACHED_SERVER) {
        return Err(ApiError::conflict(format!(
            "Volume {} is already attached to machine {}.",
            o.id,
            other.escape_debug()
        )));
    }
    if o.status != meta::AVAILABLE {
        return Err(ApiError::conflict(format!(
            "Volume {} must be available to attach, but its status is {}.",
            o.id, o.status
        )));
    }
    let o = ops::attach(&ctx.dom, &locked, &o, machine, device)?;
    let d = view(ctx, machine, &o).top();
    let url = format!("{}/volumes/{}", machine_url(ctx, machine), o.id);
    Ok(ctx.created(&d, url))
}

/// `DELETE /cimi/machines/{id}/volumes/{volume}`: 200, empty.
#[utoipa::path(
    delete,
    path = "/machines/{id}/volumes/{volume}",
    operation_id = "detachVolume",
    tag = "machines",
    summary = "Detach a volume from a machine",
    params(("id" = String, Path, description = "the machine id (any id without `/` or control characters)"), ("volume" = String, Path, description = "the volume's UUID")),
    responses(
        (status = 200, description = "detached (no body)"),
        (status = 404, description = "no such volume, or not attached to the machine", body = views::Error),
        (status = 401, description = "no or wrong HTTP Basic credentials", body = views::Error),
    )
)]
pub fn detach(ctx: &Ctx, machine: &str, id: &str) -> Result<Reply> {
    let locked = ctx.dom.lock();
    let o = attached(ctx, machine, id)?;
    if o.status != meta::IN_USE {
        return Err(ApiError::conflict(format!(
            "Volume {} must be in use to detach, but its status is {}.",
            o.id, o.status
        )));
    }
    ops::detach(&ctx.dom, &locked, &o)?;
    Ok(Reply::empty(200))
}
