//! Serialization: storage volumes, storage snapshots and the entry point
//! as Deltacloud XML (written with quick-xml, which escapes text and
//! attributes) and JSON, with absolute hrefs ending in the id, engine
//! statuses in Deltacloud's uppercase states and times as Deltacloud
//! printed them (`Thu Jul 28 21:54:19 UTC 2011`).
//!
//! ```text
//! <storage_volume href=".../api/storage_volumes/ID" id="ID">
//!   <created/> <capacity unit="GB"/> <name/> <description/>? <realm id/> <state/>
//!   <mount><instance href id/><device name/><nbd export uri/></mount>  (when attached)
//!   <actions><link rel method href/>...</actions>
//! </storage_volume>
//! <storage_snapshot href=".../api/storage_snapshots/ID" id="ID">
//!   <created/> <storage_volume href id/> <state/> <name/> <description/>
//! </storage_snapshot>
//! ```
//!
//! The JSON is serialized from the typed bodies of `json.rs`.

use super::format::Format;
use super::json;
use crate::meta;
use crate::nbd_access::NbdAccess;
use engine::ObjectInfo;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use std::io;

/// The driver name the entry point advertises.
pub(crate) const DRIVER: &str = "blockd";
/// The Deltacloud API version the entry point advertises.
pub(crate) const VERSION: &str = "1.1.0";
/// The realm of volumes created without one (OpenStack's default zone).
pub(crate) const DEFAULT_REALM: &str = "nova";

pub(crate) type XmlWriter = Writer<Vec<u8>>;
pub(crate) type XmlResult = io::Result<Vec<u8>>;

/// An XML document: the declaration, then what `body` writes.
pub(crate) fn xml_doc(body: impl FnOnce(&mut XmlWriter) -> io::Result<()>) -> XmlResult {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    body(&mut w)?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

/// `base/api/collection/id`.
pub(crate) fn href(base: &str, collection: &str, id: &str) -> String {
    format!(
        "{base}/api/{collection}/{}",
        crate::http::encode_segment(id)
    )
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Unix seconds as `Thu Jul 28 21:54:19 UTC 2011`.
pub(crate) fn format_created(secs: u64) -> String {
    // meta::format_time gives "YYYY-MM-DD HH:MM:SS" (UTC).
    let t = meta::format_time(secs);
    let (date, time) = t.split_once(' ').unwrap_or((t.as_str(), "00:00:00"));
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (
        parts.next().unwrap_or("1970"),
        parts
            .next()
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(1),
        parts.next().unwrap_or("01"),
    );
    // 1970-01-01 was a Thursday.
    let wd = DAYS
        .get(((secs / 86_400 + 4) % 7) as usize)
        .unwrap_or(&"Thu");
    let mon = MONTHS.get(m.saturating_sub(1)).unwrap_or(&"Jan");
    format!("{wd} {mon} {d} {time} UTC {y}")
}

/// A volume's Deltacloud state.
pub(crate) fn volume_state(status: &str) -> String {
    status.to_ascii_uppercase()
}

/// A snapshot's Deltacloud state: PENDING, COMPLETED or ERROR (others
/// uppercased).
pub(crate) fn snapshot_state(status: &str) -> String {
    match status {
        "creating" => "PENDING".into(),
        meta::AVAILABLE => "COMPLETED".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// What a volume view shows, in either format.
struct VolumeView {
    id: String,
    href: String,
    created: String,
    capacity: String,
    name: Option<String>,
    description: Option<String>,
    realm: String,
    state: String,
    mount: Option<(String, String, String)>,
    /// The attachment's NBD export name and URI.
    nbd: Option<(String, String)>,
    actions: Vec<(&'static str, &'static str, String)>,
}

fn volume_view(base: &str, o: &ObjectInfo, nbd: Option<&NbdAccess>) -> VolumeView {
    let id = o.id.to_string();
    let href = href(base, "storage_volumes", &id);
    let mount = meta::get(o, meta::ATTACHED_SERVER).map(|server| {
        (
            server.to_string(),
            super::views::href(base, "instances", server),
            meta::get(o, meta::ATTACHED_DEVICE)
                .unwrap_or("")
                .to_string(),
        )
    });
    let nbd = mount
        .as_ref()
        .and(nbd)
        .and_then(|n| n.uri(o).map(|uri| (crate::nbd_access::export_name(o), uri)));
    let mut actions = Vec::new();
    if o.status == meta::IN_USE {
        actions.push(("detach", "post", format!("{href}/detach")));
    } else {
        actions.push(("attach", "post", format!("{href}/attach")));
        actions.push(("destroy", "delete", href.clone()));
    }
    actions.push(("snapshot", "post", format!("{base}/api/storage_snapshots")));
    VolumeView {
        created: format_created(o.created),
        capacity: meta::gb(o.size).to_string(),
        name: meta::get(o, meta::DISPLAY_NAME).map(str::to_string),
        description: meta::get(o, meta::DISPLAY_DESCRIPTION).map(str::to_string),
        realm: meta::get(o, meta::AVAILABILITY_ZONE)
            .unwrap_or(DEFAULT_REALM)
            .to_string(),
        state: volume_state(&o.status),
        mount,
        nbd,
        actions,
        id,
        href,
    }
}

fn text(w: &mut XmlWriter, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn volume_xml(w: &mut XmlWriter, v: &VolumeView) -> io::Result<()> {
    w.create_element("storage_volume")
        .with_attribute(("href", v.href.as_str()))
        .with_attribute(("id", v.id.as_str()))
        .write_inner_content(|w| {
            text(w, "created", &v.created)?;
            w.create_element("capacity")
                .with_attribute(("unit", "GB"))
                .write_text_content(BytesText::new(&v.capacity))?;
            // Always there (empty when unnamed), as in Deltacloud.
            text(w, "name", v.name.as_deref().unwrap_or(""))?;
            if let Some(d) = &v.description {
                text(w, "description", d)?;
            }
            w.create_element("realm")
                .with_attribute(("id", v.realm.as_str()))
                .write_empty()?;
            text(w, "state", &v.state)?;
            if let Some((server, server_href, device)) = &v.mount {
                w.create_element("mount").write_inner_content(|w| {
                    w.create_element("instance")
                        .with_attribute(("href", server_href.as_str()))
                        .with_attribute(("id", server.as_str()))
                        .write_empty()?;
                    w.create_element("device")
                        .with_attribute(("name", device.as_str()))
                        .write_empty()?;
                    if let Some((export, uri)) = &v.nbd {
                        w.create_element("nbd")
                            .with_attribute(("export", export.as_str()))
                            .with_attribute(("uri", uri.as_str()))
                            .write_empty()?;
                    }
                    Ok(())
                })?;
            }
            w.create_element("actions").write_inner_content(|w| {
                for (rel, method, href) in &v.actions {
                    w.create_element("link")
                        .with_attribute(("rel", *rel))
                        .with_attribute(("method", *method))
                        .with_attribute(("href", href.as_str()))
                        .write_empty()?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

fn volume_json(v: &VolumeView) -> json::StorageVolume {
    json::StorageVolume {
        id: v.id.clone(),
        href: v.href.clone(),
        created: v.created.clone(),
        capacity: v.capacity.clone(),
        capacity_unit: "GB".into(),
        name: v.name.clone(),
        description: v.description.clone(),
        realm: json::Realm {
            id: v.realm.clone(),
        },
        state: v.state.clone(),
        mount: v
            .mount
            .as_ref()
            .map(|(server, server_href, device)| json::Mount {
                instance: json::Ref {
                    id: server.clone(),
                    href: server_href.clone(),
                },
                device: json::Device {
                    name: device.clone(),
                },
                nbd: v.nbd.as_ref().map(|(export, uri)| json::Nbd {
                    export: export.clone(),
                    uri: uri.clone(),
                }),
            }),
        actions: v
            .actions
            .iter()
            .map(|(rel, method, href)| json::Action {
                rel: (*rel).into(),
                method: (*method).into(),
                href: href.clone(),
            })
            .collect(),
    }
}

/// What a snapshot view shows, in either format.
struct SnapshotView {
    id: String,
    href: String,
    created: String,
    volume_id: String,
    volume_href: String,
    state: String,
    name: Option<String>,
    description: Option<String>,
}

fn snapshot_view(base: &str, o: &ObjectInfo) -> SnapshotView {
    let id = o.id.to_string();
    let volume_id = o.parent.map(|p| p.to_string()).unwrap_or_default();
    SnapshotView {
        href: href(base, "storage_snapshots", &id),
        volume_href: href(base, "storage_volumes", &volume_id),
        created: format_created(o.created),
        state: snapshot_state(&o.status),
        name: meta::get(o, meta::DISPLAY_NAME).map(str::to_string),
        description: meta::get(o, meta::DISPLAY_DESCRIPTION).map(str::to_string),
        volume_id,
        id,
    }
}

fn snapshot_xml(w: &mut XmlWriter, s: &SnapshotView) -> io::Result<()> {
    w.create_element("storage_snapshot")
        .with_attribute(("href", s.href.as_str()))
        .with_attribute(("id", s.id.as_str()))
        .write_inner_content(|w| {
            text(w, "created", &s.created)?;
            // As in the seed: an element with an (empty) end tag.
            w.create_element("storage_volume")
                .with_attribute(("href", s.volume_href.as_str()))
                .with_attribute(("id", s.volume_id.as_str()))
                .write_text_content(BytesText::new(""))?;
            text(w, "state", &s.state)?;
            if let Some(n) = &s.name {
                text(w, "name", n)?;
            }
            if let Some(d) = &s.description {
                text(w, "description", d)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn snapshot_json(s: &SnapshotView) -> json::StorageSnapshot {
    json::StorageSnapshot {
        id: s.id.clone(),
        href: s.href.clone(),
        created: s.created.clone(),
        storage_volume: json::Ref {
            id: s.volume_id.clone(),
            href: s.volume_href.clone(),
        },
        state: s.state.clone(),
        name: s.name.clone(),
        description: s.description.clone(),
    }
}

/// One volume document.
pub(crate) fn volume(
    fmt: Format,
    base: &str,
    o: &ObjectInfo,
    nbd: Option<&NbdAccess>,
) -> XmlResult {
    let v = volume_view(base, o, nbd);
    match fmt {
        Format::Xml => xml_doc(|w| volume_xml(w, &v)),
        Format::Json => Ok(json::bytes(&json::VolumeOne {
            storage_volume: volume_json(&v),
        })),
    }
}

/// The volume collection document.
pub(crate) fn volumes(
    fmt: Format,
    base: &str,
    all: &[ObjectInfo],
    nbd: Option<&NbdAccess>,
) -> XmlResult {
    let views: Vec<VolumeView> = all.iter().map(|o| volume_view(base, o, nbd)).collect();
    match fmt {
        Format::Xml => xml_doc(|w| {
            w.create_element("storage_volumes")
                .write_inner_content(|w| views.iter().try_for_each(|v| volume_xml(w, v)))?;
            Ok(())
        }),
        Format::Json => {
            let storage_volumes = views.iter().map(volume_json).collect();
            Ok(json::bytes(&json::VolumeList { storage_volumes }))
        }
    }
}

/// One snapshot document.
pub(crate) fn snapshot(fmt: Format, base: &str, o: &ObjectInfo) -> XmlResult {
    let s = snapshot_view(base, o);
    match fmt {
        Format::Xml => xml_doc(|w| snapshot_xml(w, &s)),
        Format::Json => Ok(json::bytes(&json::SnapshotOne {
            storage_snapshot: snapshot_json(&s),
        })),
    }
}

/// The snapshot collection document.
pub(crate) fn snapshots(fmt: Format, base: &str, all: &[ObjectInfo]) -> XmlResult {
    let views: Vec<SnapshotView> = all.iter().map(|o| snapshot_view(base, o)).collect();
    match fmt {
        Format::Xml => xml_doc(|w| {
            w.create_element("storage_snapshots")
                .write_inner_content(|w| views.iter().try_for_each(|s| snapshot_xml(w, s)))?;
            Ok(())
        }),
        Format::Json => {
            let storage_snapshots = views.iter().map(snapshot_json).collect();
            Ok(json::bytes(&json::SnapshotList { storage_snapshots }))
        }
    }
}

/// The collections the entry point advertises.
const COLLECTIONS: [&str; 2] = ["storage_snapshots", "storage_volumes"];

/// The entry point document (`GET /api`).
pub(crate) fn entry_point(fmt: Format, base: &str) -> XmlResult {
    match fmt {
        Format::Xml => xml_doc(|w| {
            w.create_element("api")
                .with_attribute(("driver", DRIVER))
                .with_attribute(("version", VERSION))
                .write_inner_content(|w| {
                    for c in COLLECTIONS {
                        w.create_element("link")
                            .with_attribute(("href", format!("{base}/api/{c}").as_str()))
                            .with_attribute(("rel", c))
                            .write_text_content(BytesText::new(""))?;
                    }
                    Ok(())
                })?;
            Ok(())
        }),
        Format::Json => {
            let links = COLLECTIONS
                .iter()
                .map(|c| json::CollectionLink {
                    rel: (*c).into(),
                    href: format!("{base}/api/{c}"),
                    features: Vec::new(),
                })
                .collect();
            Ok(json::bytes(&json::EntryPoint {
                api: json::Api {
                    driver: DRIVER.into(),
                    version: VERSION.into(),
                    links,
                },
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_times() {
        assert_eq!(
            format_created(1_311_890_059),
            "Thu Jul 28 21:54:19 UTC 2011"
        );
        assert_eq!(
            format_created(1_224_527_039),
            "Mon Oct 20 18:23:59 UTC 2008"
        );
        assert_eq!(format_created(0), "Thu Jan 01 00:00:00 UTC 1970");
    }

    #[test]
    fn states_and_hrefs() {
        assert_eq!(volume_state("in-use"), "IN-USE");
        assert_eq!(snapshot_state("available"), "COMPLETED");
        assert_eq!(snapshot_state("creating"), "PENDING");
        assert_eq!(snapshot_state("error"), "ERROR");
        assert_eq!(
            href("http://h", "instances", "a b/../c"),
            "http://h/api/instances/a%20b%2F..%2Fc"
        );
    }

    #[test]
    fn entry_point_xml() {
        let b = entry_point(Format::Xml, "http://h:1").unwrap();
        let s = String::from_utf8(b).unwrap();
        assert!(
            s.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
            "{s}"
        );
        assert!(
            s.contains("<api driver=\"blockd\" version=\"1.1.0\">"),
            "{s}"
        );
        assert!(
            s.contains("<link href=\"http://h:1/api/storage_volumes\" rel=\"storage_volumes\">"),
            "{s}"
        );
    }
}
