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
use super::doc::{Doc, Node};
use super::query::Query;
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

/// The MachineVolume view of an attached volume.
fn view(ctx: &Ctx, machine: &str, o: &ObjectInfo) -> Doc {
    let url = format!("{}/volumes/{}", machine_url(ctx, machine), o.id);
    let mut d = Doc::resource("MachineVolume").with("id", Node::Text(url.clone()));
    let props = nbd_properties(ctx, o);
    if !props.is_empty() {
        d = d.with("properties", Node::Props(props));
    }
    d.with(
        "initialLocation",
        Node::Text(meta::get(o, meta::ATTACHED_DEVICE).unwrap_or("").into()),
    )
    .with("volume", Node::Href(ctx.url(&format!("volumes/{}", o.id))))
    .with("operations", Node::Ops(vec![("delete", url)]))
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

fn machine_view(ctx: &Ctx, machine: &str) -> Doc {
    let url = machine_url(ctx, machine);
    Doc::resource("Machine")
        .with("id", Node::Text(url.clone()))
        .with("name", Node::Text(machine.to_string()))
        .with("volumes", Node::Href(format!("{url}/volumes")))
}

/// `GET /cimi/machines`: the machines the tenant's volumes are attached to.
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
    let d = Doc::collection(
        "Machine",
        ctx.url("machines"),
        count,
        "machines",
        page,
        vec![],
    );
    Ok(ctx.ok(&d))
}

/// `GET /cimi/machines/{id}`.
pub fn show_machine(ctx: &Ctx, machine: &str) -> Result<Reply> {
    check_machine(machine)?;
    Ok(ctx.ok(&machine_view(ctx, machine)))
}

/// `GET /cimi/machines/{id}/volumes`.
pub fn list(ctx: &Ctx, machine: &str) -> Result<Reply> {
    check_machine(machine)?;
    let q = Query::of(ctx.req())?;
    let all = attached_to(ctx, machine)
        .iter()
        .map(|o| view(ctx, machine, o))
        .collect();
    let (page, count) = q.apply(all);
    let url = format!("{}/volumes", machine_url(ctx, machine));
    let d = Doc::collection(
        "MachineVolume",
        url.clone(),
        count,
        "machineVolumes",
        page,
        vec![("add", url)],
    );
    Ok(ctx.ok(&d))
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
pub fn show(ctx: &Ctx, machine: &str, id: &str) -> Result<Reply> {
    let o = attached(ctx, machine, id)?;
    Ok(ctx.ok(&view(ctx, machine, &o)))
}

/// `POST /cimi/machines/{id}/volumes` with a MachineVolume (`volume`
/// href, optional `initialLocation`).
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
    let d = view(ctx, machine, &o);
    let url = format!("{}/volumes/{}", machine_url(ctx, machine), o.id);
    Ok(ctx.created(&d, url))
}

/// `DELETE /cimi/machines/{id}/volumes/{volume}`: 200, empty.
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
