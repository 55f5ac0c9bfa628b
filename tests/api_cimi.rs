//! Black-box tests of the REST API's DMTF CIMI 1.0.1 dialect against a real
//! `blockd serve`: the seed's VolumeImage examples (request bodies sent
//! verbatim, response structure compared with `fixtures/cimi/`), the cloud
//! entry point, volumes in JSON and XML, the fixed configurations and
//! templates, a volume cloned from a VolumeImage read back through NBD,
//! machine volumes, and cross-dialect visibility with OpenStack. Rules,
//! errors and bad input are in `api_cimi_rules.rs`.

mod api_common;
mod cimi_common;

use api_common::{qemu_io, DEMO as DEMO_TOKEN};
use cimi_common::*;
use serde_json::json;

const GIB_KIB: u64 = 1 << 20;

// ---- the seed's examples ----

#[test]
fn seed_volume_images() {
    let c = Cimi::start();
    let vol = c.volume(GIB_KIB);
    let vol2 = c.volume(2 * GIB_KIB);
    let vol_url = c.url(&format!("volumes/{vol}"));

    // Create: the seed's request body, with its href pointing at our volume.
    let body = fixture("volume_image_create_request.xml")
        .replace("http://localhost:3001/cimi/volumes/vol1", &vol_url);
    let r = c.post_xml("volume_images", &body);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("cimi-specification-version"), Some("1.0.1"));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/xml"));
    let doc = xml(&r.text);
    same_shape(&xml(&fixture("volume_image_create_response.xml")), &doc);
    let id_url = doc.text_of("id");
    assert_eq!(r.header("location"), Some(id_url.as_str()));
    assert!(id_url.starts_with(&c.url("volume_images/")));
    assert_eq!(doc.text_of("name"), "my_vol_image");
    assert_eq!(doc.text_of("description"), "marios first volume image");
    assert_eq!(doc.href("imageLocation"), vol_url);
    assert_eq!(doc.text_of("bootable"), "false");
    assert_eq!(doc.text_of("state"), "AVAILABLE");
    let created = doc.text_of("created");
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    let ops: Vec<_> = doc
        .all("operation")
        .iter()
        .map(|o| o.attr("rel").unwrap().to_string())
        .collect();
    assert_eq!(ops, ["edit", "delete"]);
    let img1 = last_segment(&id_url);
    let img2 = c.image(&vol2, "second");
    let img3 = c.image(&vol2, "third");

    // List: a Collection with count and one VolumeImage per image.
    let r = c.get_xml("volume_images");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cimi-specification-version"), Some("1.0.1"));
    let list = xml(&r.text);
    same_shape(&xml(&fixture("volume_images_list_response.xml")), &list);
    assert_eq!(list.text_of("id"), c.url("volume_images"));
    assert_eq!(list.text_of("count"), "3");
    let members = list.all("VolumeImage");
    assert_eq!(members.len(), 3);
    // The engine orders by creation second, then id.
    let mut ids: Vec<String> = members
        .iter()
        .map(|m| last_segment(&m.text_of("id")))
        .collect();
    ids.sort();
    let mut want = [img1.clone(), img2.clone(), img3.clone()];
    want.sort();
    assert_eq!(ids, want);
    for m in &members {
        let from = if last_segment(&m.text_of("id")) == img1 {
            &vol
        } else {
            &vol2
        };
        assert_eq!(m.href("imageLocation"), c.url(&format!("volumes/{from}")));
    }
    let add = list.all("operation");
    assert_eq!(add[0].attr("rel"), Some("add"));

    // Get one: the image asked for (the middle one), not the first.
    let r = c.get_xml(&format!("volume_images/{img2}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let one = xml(&r.text);
    same_shape(&xml(&fixture("volume_image_get_response.xml")), &one);
    assert_eq!(one.text_of("id"), c.url(&format!("volume_images/{img2}")));
    assert_eq!(one.text_of("name"), "second");

    // The same in JSON (the default).
    let r = c.get("volume_images");
    assert_eq!(r.status, 200);
    assert_eq!(r.json["resourceURI"], format!("{NS}/VolumeImageCollection"));
    assert_eq!(r.json["count"], 3);
    let mut names: Vec<&str> = r.json["volumeImages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["my_vol_image", "second", "third"]);
    assert_eq!(r.json["operations"][0]["rel"], "add");
    let r = c.get(&format!("volume_images/{img3}"));
    assert_eq!(r.json["resourceURI"], format!("{NS}/VolumeImage"));
    assert_eq!(r.json["id"], c.url(&format!("volume_images/{img3}")));
    assert_eq!(r.json["bootable"], false);

    // Delete: 200, empty body; then 404.
    let r = c.req(
        "DELETE",
        &format!("/cimi/volume_images/{img1}"),
        Some(DEMO),
        &[("Accept", "application/xml")],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, "");
    assert_eq!(r.header("cimi-specification-version"), Some("1.0.1"));
    xml_error(&c.get_xml(&format!("volume_images/{img1}")), 404);
    assert_eq!(c.get("volume_images").json["count"], 2);
    // The volume it was captured from is untouched.
    assert_eq!(c.get(&format!("volumes/{vol}")).status, 200);
}

#[test]
fn entry_point() {
    let c = Cimi::start();
    let r = c.get("cloudEntryPoint");
    assert_eq!(r.status, 200, "{}", r.text);
    let j = &r.json;
    assert_eq!(j["resourceURI"], format!("{NS}/CloudEntryPoint"));
    assert_eq!(j["id"], c.url("cloudEntryPoint"));
    assert_eq!(j["baseURI"], c.url(""));
    assert_eq!(j["volumes"]["href"], c.url("volumes"));
    assert_eq!(j["volumeImages"]["href"], c.url("volume_images"));
    assert_eq!(j["volumeConfigs"]["href"], c.url("volume_configurations"));
    assert_eq!(j["volumeTemplates"]["href"], c.url("volume_templates"));
    assert_eq!(j["machines"]["href"], c.url("machines"));
    // Every advertised link answers.
    for k in [
        "volumes",
        "volumeImages",
        "volumeConfigs",
        "volumeTemplates",
        "machines",
    ] {
        let href = j[k]["href"].as_str().unwrap();
        let path = href.strip_prefix(&c.api.base).unwrap();
        let r = c.req("GET", path, Some(DEMO), &[], None);
        assert_eq!(r.status, 200, "{k}: {}", r.text);
        assert!(r.json["count"].as_u64().is_some(), "{k}");
    }
    let r = c.get_xml("cloudEntryPoint");
    let e = xml(&r.text);
    assert_eq!(e.name, "CloudEntryPoint");
    assert_eq!(e.attr("xmlns"), Some(NS));
    assert_eq!(
        e.attr("resourceURI"),
        Some(format!("{NS}/CloudEntryPoint").as_str())
    );
    assert_eq!(e.text_of("baseURI"), c.url(""));
    assert_eq!(e.href("volumeImages"), c.url("volume_images"));
}

#[test]
fn volumes_json_and_xml() {
    let c = Cimi::start();
    // JSON, inline configuration, with properties.
    let r = c.post(
        "volumes",
        &json!({
            "resourceURI": format!("{NS}/VolumeCreate"),
            "name": "data", "description": "my data",
            "properties": {"owner": "ops"},
            "volumeTemplate": {"volumeConfig": {"capacity": 2 * GIB_KIB}}
        }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let v = &r.json;
    let id = last_segment(v["id"].as_str().unwrap());
    assert_eq!(r.header("location"), v["id"].as_str());
    assert_eq!(v["resourceURI"], format!("{NS}/Volume"));
    assert_eq!(v["name"], "data");
    assert_eq!(v["description"], "my data");
    assert_eq!(v["capacity"], 2 * GIB_KIB);
    assert_eq!(v["state"], "AVAILABLE");
    assert_eq!(v["bootable"], false);
    assert_eq!(v["properties"], json!({"owner": "ops"}));
    assert_eq!(v["type"], "http://schemas.dmtf.org/cimi/1/mapped");

    // XML, configuration by href.
    let body = format!(
        r#"<VolumeCreate xmlns="{NS}">
             <name>from config</name>
             <property key="tier">gold</property>
             <volumeTemplate>
               <volumeConfig href="{}"/>
             </volumeTemplate>
           </VolumeCreate>"#,
        c.url("volume_configurations/medium")
    );
    let r = c.post_xml("volumes", &body);
    assert_eq!(r.status, 201, "{}", r.text);
    let e = xml(&r.text);
    assert_eq!(e.name, "Volume");
    assert_eq!(e.attr("resourceURI"), Some(format!("{NS}/Volume").as_str()));
    assert_eq!(e.text_of("capacity"), (10 * GIB_KIB).to_string());
    assert_eq!(e.text_of("state"), "AVAILABLE");
    let p = e.child("property").unwrap();
    assert_eq!((p.attr("key"), p.text.as_str()), (Some("tier"), "gold"));
    let id2 = last_segment(&e.text_of("id"));

    // text/xml, template by href, JSON answer (no Accept).
    let body = format!(
        r#"<VolumeCreate xmlns="{NS}"><volumeTemplate href="{}"/></VolumeCreate>"#,
        c.url("volume_templates/small")
    );
    let r = c.req(
        "POST",
        "/cimi/volumes",
        Some(DEMO),
        &[("Content-Type", "text/xml; charset=utf-8")],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["capacity"], GIB_KIB);
    let id3 = last_segment(r.json["id"].as_str().unwrap());

    // List and get.
    let r = c.get("volumes");
    assert_eq!(r.json["resourceURI"], format!("{NS}/VolumeCollection"));
    assert_eq!(r.json["count"], 3);
    let mut ids: Vec<String> = r.json["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| last_segment(v["id"].as_str().unwrap()))
        .collect();
    ids.sort();
    let mut want = [id.clone(), id2.clone(), id3.clone()];
    want.sort();
    assert_eq!(ids, want);
    let r = c.get_xml("volumes");
    let e = xml(&r.text);
    assert_eq!(
        e.attr("resourceURI"),
        Some(format!("{NS}/VolumeCollection").as_str())
    );
    assert_eq!(e.all("Volume").len(), 3);
    assert_eq!(c.get(&format!("volumes/{id2}")).json["name"], "from config");

    // Update.
    let r = c.put(
        &format!("volumes/{id}"),
        &json!({"name": "renamed", "properties": {"a": "b"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["name"], "renamed");
    assert_eq!(r.json["description"], "my data");
    assert_eq!(r.json["properties"], json!({"a": "b"}));

    // Delete: 200 with an empty body, then 404.
    let r = c.delete(&format!("volumes/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, "");
    error(&c.get(&format!("volumes/{id}")), 404);
    assert_eq!(c.get("volumes").json["count"], 2);
}

#[test]
fn configurations_and_templates() {
    let c = Cimi::start();
    let r = c.get("volume_configurations");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json["resourceURI"],
        format!("{NS}/VolumeConfigurationCollection")
    );
    assert_eq!(r.json["count"], 3);
    let caps: Vec<u64> = r.json["volumeConfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["capacity"].as_u64().unwrap())
        .collect();
    assert_eq!(caps, [GIB_KIB, 10 * GIB_KIB, 100 * GIB_KIB]);
    let r = c.get("volume_configurations/large");
    assert_eq!(r.json["resourceURI"], format!("{NS}/VolumeConfiguration"));
    assert_eq!(r.json["capacity"], 100 * GIB_KIB);
    let r = c.get_xml("volume_templates/medium");
    let e = xml(&r.text);
    assert_eq!(e.name, "VolumeTemplate");
    assert_eq!(
        e.href("volumeConfig"),
        c.url("volume_configurations/medium")
    );
    let r = c.get("volume_templates?$filter=name='small'");
    assert_eq!(r.json["count"], 1);
    assert_eq!(
        r.json["volumeTemplates"][0]["id"],
        c.url("volume_templates/small")
    );
    error(&c.get("volume_configurations/huge"), 404);
    error(&c.get("volume_templates/..%2F..%2Fetc%2Fpasswd"), 404);
    // A fixed set: no create, no delete.
    let r = c.post("volume_configurations", &json!({"capacity": 1}));
    error(&r, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    error(&c.delete("volume_templates/small"), 405);
}

/// Data written to a volume is in the VolumeImage captured from it and in
/// a (larger) volume cloned from that image, read back through NBD; the
/// later write to the source does not leak into either.
#[test]
fn image_clone_keeps_data() {
    let c = Cimi::start();
    let vol = c.volume(4096);
    qemu_io(&c.api.nbd_uri(&vol), &["write -P 0x5a 0 64k"]);
    let img = c.image(&vol, "golden");
    qemu_io(&c.api.nbd_uri(&vol), &["write -P 0x11 0 64k"]);
    let r = c.post(
        "volumes",
        &json!({"name": "clone", "volumeTemplate": {
            "volumeConfig": {"capacity": 8192},
            "volumeImage": {"href": c.url(&format!("volume_images/{img}"))}
        }}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["capacity"], 8192);
    let clone = last_segment(r.json["id"].as_str().unwrap());
    qemu_io(
        &c.api.nbd_uri(&clone),
        &["read -P 0x5a 0 64k", "read -P 0 4M 4M"],
    );
    // Without a capacity, the clone has the image's.
    let r = c.post(
        "volumes",
        &json!({"volumeTemplate": {"volumeImage": {"href": format!("/cimi/volume_images/{img}")}}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["capacity"], 4096);
    // Smaller than the image: 400.
    let r = c.post(
        "volumes",
        &json!({"volumeTemplate": {"volumeConfig": {"capacity": 1024},
            "volumeImage": {"href": c.url(&format!("volume_images/{img}"))}}}),
    );
    error(&r, 400);
    // OpenStack sees the clone's origin.
    let r = c
        .api
        .get(&format!("/v1.1/demo/os-volumes/{clone}"), DEMO_TOKEN);
    assert_eq!(r.status, 200);
    assert_eq!(r.json["volume"]["displayName"], "clone");
    // Deleting the image keeps the clone's data.
    assert_eq!(c.delete(&format!("volume_images/{img}")).status, 200);
    qemu_io(&c.api.nbd_uri(&clone), &["read -P 0x5a 0 64k"]);
}

#[test]
fn machine_volumes() {
    let c = Cimi::start();
    let v1 = c.volume(GIB_KIB);
    let v2 = c.volume(GIB_KIB);
    let vref = |v: &str| json!({"href": c.url(&format!("volumes/{v}"))});

    // Attach with a device.
    let r = c.post(
        "machines/vm-1/volumes",
        &json!({"resourceURI": format!("{NS}/MachineVolume"), "initialLocation": "/dev/vdc", "volume": vref(&v1)}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let mv = c.url(&format!("machines/vm-1/volumes/{v1}"));
    assert_eq!(r.json["id"], mv);
    assert_eq!(r.header("location"), Some(mv.as_str()));
    assert_eq!(r.json["initialLocation"], "/dev/vdc");
    assert_eq!(r.json["volume"]["href"], c.url(&format!("volumes/{v1}")));
    // CIMI has no in-use state: the volume stays AVAILABLE; OpenStack
    // sees it in-use, attached to vm-1 on /dev/vdc.
    assert_eq!(c.get(&format!("volumes/{v1}")).json["state"], "AVAILABLE");
    let os = c
        .api
        .get(&format!("/v1.1/demo/os-volumes/{v1}"), DEMO_TOKEN);
    assert_eq!(os.json["volume"]["status"], "in-use");
    assert_eq!(os.json["volume"]["attachments"][0]["serverId"], "vm-1");
    assert_eq!(os.json["volume"]["attachments"][0]["device"], "/dev/vdc");

    // Attach in XML without a device: the first free one.
    let body = format!(
        r#"<MachineVolume xmlns="{NS}"><volume href="{}"/></MachineVolume>"#,
        c.url(&format!("volumes/{v2}"))
    );
    let r = c.post_xml("machines/vm-1/volumes", &body);
    assert_eq!(r.status, 201, "{}", r.text);
    let e = xml(&r.text);
    assert_eq!(e.name, "MachineVolume");
    assert_eq!(e.text_of("initialLocation"), "/dev/vdb");

    // List (JSON and XML), get one, the machines.
    let r = c.get("machines/vm-1/volumes");
    assert_eq!(
        r.json["resourceURI"],
        format!("{NS}/MachineVolumeCollection")
    );
    assert_eq!(r.json["count"], 2);
    let r = c.get_xml("machines/vm-1/volumes?$filter=initialLocation='/dev/vdb'");
    let e = xml(&r.text);
    assert_eq!(e.text_of("count"), "1");
    assert_eq!(
        e.all("MachineVolume")[0].href("volume"),
        c.url(&format!("volumes/{v2}"))
    );
    assert_eq!(
        c.get(&format!("machines/vm-1/volumes/{v1}")).json["initialLocation"],
        "/dev/vdc"
    );
    let r = c.get("machines");
    assert_eq!(r.json["count"], 1);
    assert_eq!(r.json["machines"][0]["name"], "vm-1");
    assert_eq!(c.get("machines/vm-2/volumes").json["count"], 0);

    // Detach: 200, then OpenStack sees it available.
    let r = c.delete(&format!("machines/vm-1/volumes/{v1}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, "");
    let os = c
        .api
        .get(&format!("/v1.1/demo/os-volumes/{v1}"), DEMO_TOKEN);
    assert_eq!(os.json["volume"]["status"], "available");
    assert_eq!(os.json["volume"]["attachments"], json!([{}]));
    error(&c.get(&format!("machines/vm-1/volumes/{v1}")), 404);

    // Attached through OpenStack: a MachineVolume in CIMI; detached in CIMI.
    let r = c.api.post(
        "/v1.1/demo/servers/srv-9/os-volume_attachments",
        DEMO_TOKEN,
        &json!({"volumeAttachment": {"volumeId": v1, "device": "/dev/vde"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c.get(&format!("machines/srv-9/volumes/{v1}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["initialLocation"], "/dev/vde");
    assert_eq!(
        c.delete(&format!("machines/srv-9/volumes/{v1}")).status,
        200
    );
    let os = c
        .api
        .get(&format!("/v1.1/demo/os-volumes/{v1}"), DEMO_TOKEN);
    assert_eq!(os.json["volume"]["status"], "available");
}

#[test]
fn cross_dialect_visibility() {
    let c = Cimi::start();
    // OpenStack -> CIMI.
    let r = c.api.post(
        "/v1.1/demo/os-volumes",
        DEMO_TOKEN,
        &json!({"volume": {"size": 2, "display_name": "from os", "metadata": {"k": "v"}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let os_id = r.json["volume"]["id"].as_str().unwrap().to_string();
    let r = c.get(&format!("volumes/{os_id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["name"], "from os");
    assert_eq!(r.json["capacity"], 2 * GIB_KIB);
    assert_eq!(r.json["state"], "AVAILABLE");
    assert_eq!(r.json["properties"], json!({"k": "v"}));
    // An OpenStack snapshot is not a VolumeImage; a VolumeImage is not an
    // OpenStack snapshot.
    let r = c.api.post(
        "/v1.1/demo/os-snapshots",
        DEMO_TOKEN,
        &json!({"snapshot": {"volume_id": os_id}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(c.get("volume_images").json["count"], 0);
    c.image(&os_id, "img");
    assert_eq!(
        c.api.get("/v1.1/demo/os-snapshots", DEMO_TOKEN).json["snapshots"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // CIMI -> OpenStack.
    let r = c.post(
        "volumes",
        &json!({"name": "from cimi", "description": "d", "properties": {"x": "y"},
                "volumeTemplate": {"volumeConfig": {"capacity": GIB_KIB + 1}}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let cimi_id = last_segment(r.json["id"].as_str().unwrap());
    let r = c
        .api
        .get(&format!("/v1.1/demo/os-volumes/{cimi_id}"), DEMO_TOKEN);
    assert_eq!(r.status, 200, "{}", r.text);
    let v = &r.json["volume"];
    assert_eq!(v["displayName"], "from cimi");
    assert_eq!(v["displayDescription"], "d");
    assert_eq!(v["status"], "available");
    assert_eq!(v["size"], 2, "sizes round up to whole GB");
    assert_eq!(v["metadata"], json!({"x": "y"}));

    // Deleted in one, gone in the other.
    assert_eq!(
        c.api
            .delete(&format!("/v1.1/demo/os-volumes/{cimi_id}"), DEMO_TOKEN)
            .status,
        202
    );
    error(&c.get(&format!("volumes/{cimi_id}")), 404);
    assert_eq!(c.delete(&format!("volumes/{os_id}")).status, 200);
    assert_eq!(
        c.api
            .get(&format!("/v1.1/demo/os-volumes/{os_id}"), DEMO_TOKEN)
            .status,
        404
    );

    // Another tenant sees none of it, in either dialect.
    let r = c.req("GET", "/cimi/volume_images", Some(OTHER), &[], None);
    assert_eq!(r.json["count"], 0);
    let vol = c.volume(GIB_KIB);
    let r = c.req(
        "GET",
        &format!("/cimi/volumes/{vol}"),
        Some(OTHER),
        &[],
        None,
    );
    error(&r, 404);
    let r = c
        .api
        .get(&format!("/v1.1/other/os-volumes/{vol}"), api_common::OTHER);
    assert_eq!(r.status, 404);
}

#[test]
fn persists_across_restart() {
    let mut c = Cimi::start();
    let vol = c.volume(GIB_KIB);
    let img = c.image(&vol, "kept");
    let r = c.post(
        "machines/m1/volumes",
        &json!({"volume": {"href": c.url(&format!("volumes/{vol}"))}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    c.api.restart();
    let r = c.get(&format!("volume_images/{img}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["name"], "kept");
    assert_eq!(
        r.json["imageLocation"]["href"],
        c.url(&format!("volumes/{vol}"))
    );
    assert_eq!(c.get("machines/m1/volumes").json["count"], 1);
}
