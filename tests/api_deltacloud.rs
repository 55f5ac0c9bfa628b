//! Black-box tests of the REST API's Deltacloud dialect against a real
//! `blockd serve`: the seed's examples (its bodies are the fixtures in
//! `fixtures/deltacloud/`, compared by structure), the entry point, format
//! negotiation, HTTP Basic, ETags, parameters by form, multipart and query
//! string, and cross-dialect visibility with OpenStack. Business rules,
//! errors and bad input are in `api_deltacloud_rules.rs`.

mod api_common;
mod deltacloud_common;

use api_common::Api;
use deltacloud_common::*;
use serde_json::json;

// ---- the seed's examples ----

#[test]
fn seed_snapshot_examples() {
    let api = Api::start();
    let vol = volume(&api, DEMO, "capacity=1");

    // Create, with the seed's form body (its volume id replaced by ours).
    let form = fixture("storage_snapshot_create.form").replace("vol-99fbe5f2", &vol);
    let r = call(
        &api,
        "POST",
        "/api/storage_snapshots?format=xml",
        Some(DEMO),
        &[("Accept", "*/*")],
        Some(("application/x-www-form-urlencoded", form.trim().as_bytes())),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/xml"));
    let s = xml(&r.text);
    same_structure("storage_snapshot_create.xml", &s);
    let id = s.attr("id").to_string();
    let href = format!("{}/api/storage_snapshots/{id}", api.base);
    assert_eq!(s.attr("href"), href);
    assert_eq!(r.header("location"), Some(href.as_str()));
    let sv = s.child("storage_volume");
    assert_eq!(sv.attr("id"), vol);
    assert_eq!(
        sv.attr("href"),
        format!("{}/api/storage_volumes/{vol}", api.base)
    );
    assert_eq!(s.text_of("state"), "COMPLETED");
    // "Thu Jul 28 21:54:19 UTC 2011".
    let created = s.text_of("created");
    let parts: Vec<&str> = created.split(' ').collect();
    assert_eq!(parts.len(), 6, "{created}");
    assert_eq!(parts[4], "UTC");
    assert!(parts[5].parse::<u32>().unwrap() >= 2024, "{created}");

    // Show.
    let r = call(
        &api,
        "GET",
        &format!("/api/storage_snapshots/{id}?format=xml"),
        Some(DEMO),
        &[("Accept", "*/*")],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let shown = xml(&r.text);
    same_structure("storage_snapshot_show.xml", &shown);
    assert_eq!(shown.attr("id"), id);
    assert_eq!(shown.text_of("created"), created);

    // List: a second snapshot so that the list has several.
    let id2 = snapshot(&api, DEMO, &vol);
    let r = get(&api, "/api/storage_snapshots?format=xml", DEMO);
    assert_eq!(r.status, 200, "{}", r.text);
    let list = xml(&r.text);
    same_structure("storage_snapshots_list.xml", &list);
    let mut ids: Vec<&str> = list
        .all("storage_snapshot")
        .iter()
        .map(|s| s.attr("id"))
        .collect();
    ids.sort();
    let mut want = vec![id.as_str(), id2.as_str()];
    want.sort();
    assert_eq!(ids, want);

    // Delete: 204, no body; then it is gone.
    let r = delete(
        &api,
        &format!("/api/storage_snapshots/{id2}?format=xml"),
        DEMO,
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    xml_error(
        &get(&api, &format!("/api/storage_snapshots/{id2}"), DEMO),
        404,
    );
    let r = get(&api, "/api/storage_snapshots", DEMO);
    assert_eq!(xml(&r.text).all("storage_snapshot").len(), 1);
}

#[test]
fn entry_point() {
    let api = Api::start();
    // No credentials needed; XML by default.
    let r = call(&api, "GET", "/api", None, &[], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/xml"));
    assert!(r.header("etag").is_some());
    let e = xml(&r.text);
    same_structure("api_entry_point.xml", &e);
    assert_eq!(e.attr("driver"), "blockd");
    assert!(!e.attr("version").is_empty());
    let links: Vec<(&str, &str)> = e
        .all("link")
        .iter()
        .map(|l| (l.attr("rel"), l.attr("href")))
        .collect();
    let vols = format!("{}/api/storage_volumes", api.base);
    let snaps = format!("{}/api/storage_snapshots", api.base);
    assert!(
        links.contains(&("storage_volumes", vols.as_str())),
        "{links:?}"
    );
    assert!(
        links.contains(&("storage_snapshots", snaps.as_str())),
        "{links:?}"
    );
    // The advertised hrefs work.
    assert_eq!(get(&api, "/api/storage_volumes", DEMO).status, 200);

    // JSON, trailing slash.
    let r = call(&api, "GET", "/api/?format=json", None, &[], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["api"]["driver"], "blockd");
    let rels: Vec<&str> = r.json["api"]["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    assert!(rels.contains(&"storage_volumes") && rels.contains(&"storage_snapshots"));

    // force_auth checks the credentials.
    let r = call(&api, "GET", "/api?force_auth=1", None, &[], None);
    xml_error(&r, 401);
    let r = call(&api, "GET", "/api?force_auth=1", Some(DEMO), &[], None);
    assert_eq!(r.status, 200);
    // Only GET.
    let r = call(&api, "POST", "/api", None, &[], Some(("text/plain", b"")));
    xml_error(&r, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
}

// ---- formats ----

#[test]
fn format_negotiation() {
    let api = Api::start();
    let vol = volume(&api, DEMO, "capacity=2&name=n");
    let path = format!("/api/storage_volumes/{vol}");
    let ct = |query: &str, accept: Option<&str>| {
        let h: Vec<(&str, &str)> = accept.map(|a| vec![("Accept", a)]).unwrap_or_default();
        let r = call(&api, "GET", &format!("{path}{query}"), Some(DEMO), &h, None);
        (
            r.status,
            r.header("content-type").map(str::to_string),
            r.text,
        )
    };
    let xml_ct = Some("application/xml".to_string());
    let json_ct = Some("application/json".to_string());
    assert_eq!(ct("", None).1, xml_ct);
    assert_eq!(ct("", Some("*/*")).1, xml_ct);
    assert_eq!(ct("", Some("application/json")).1, json_ct);
    assert_eq!(ct("", Some("text/html, application/json;q=0.8")).1, json_ct);
    assert_eq!(
        ct("", Some("application/xml;q=0.1, application/json")).1,
        json_ct
    );
    // ?format= beats Accept.
    assert_eq!(ct("?format=xml", Some("application/json")).1, xml_ct);
    assert_eq!(ct("?format=json", Some("application/xml")).1, json_ct);
    assert_eq!(ct("?format=json", Some("text/html")).1, json_ct);
    assert_eq!(ct("?format=JSON", None).1, json_ct);
    assert_eq!(ct("?format=", Some("application/json")).1, json_ct);
    // Nothing acceptable: 406, empty body.
    for (q, a) in [
        ("", Some("text/html")),
        ("", Some("application/json;q=0")),
        ("?format=yaml", None),
        ("?format=html", Some("*/*")),
    ] {
        let (status, _, text) = ct(q, a);
        assert_eq!(status, 406, "{q} {a:?}");
        assert!(text.is_empty(), "{text}");
    }
    // Also before authentication.
    let r = call(
        &api,
        "GET",
        "/api/storage_volumes",
        None,
        &[("Accept", "image/png")],
        None,
    );
    assert_eq!(r.status, 406);

    // The same volume in both formats.
    let x = xml(&ct("", None).2);
    let j: serde_json::Value = serde_json::from_str(&ct("?format=json", None).2).unwrap();
    let v = &j["storage_volume"];
    assert_eq!(v["id"], x.attr("id"));
    assert_eq!(v["href"], x.attr("href"));
    assert_eq!(v["capacity"], x.text_of("capacity"));
    assert_eq!(v["capacity"], "2");
    assert_eq!(x.child("capacity").attr("unit"), "GB");
    assert_eq!(v["name"], "n");
    assert_eq!(v["state"], "AVAILABLE");
    assert_eq!(v["realm"]["id"], x.child("realm").attr("id"));
    assert_eq!(v["created"], x.text_of("created"));
    let r = get(&api, "/api/storage_volumes?format=json", DEMO);
    assert_eq!(r.json["storage_volumes"][0]["id"], vol.as_str());
    let r = get(&api, "/api/storage_snapshots?format=json", DEMO);
    assert_eq!(r.json, json!({"storage_snapshots": []}));
}

#[test]
fn etags() {
    let api = Api::start();
    let vol = volume(&api, DEMO, "");
    let path = format!("/api/storage_volumes/{vol}");
    let r = get(&api, &path, DEMO);
    let etag = r.header("etag").expect("etag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    // Stable while nothing changes; differs by format.
    assert_eq!(get(&api, &path, DEMO).header("etag"), Some(etag.as_str()));
    let j = get(&api, &format!("{path}?format=json"), DEMO);
    assert_ne!(j.header("etag"), Some(etag.as_str()));
    // If-None-Match: 304 with no body.
    let r = call(
        &api,
        "GET",
        &path,
        Some(DEMO),
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!(r.status, 304);
    assert!(r.text.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = call(
        &api,
        "GET",
        &path,
        Some(DEMO),
        &[("If-None-Match", "\"nope\"")],
        None,
    );
    assert_eq!(r.status, 200);
    // A change (attach) changes the tag.
    let r = post_form(
        &api,
        &format!("{path}/attach"),
        DEMO,
        "instance_id=i-1&device=/dev/sdh",
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let r = call(
        &api,
        "GET",
        &path,
        Some(DEMO),
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!(r.status, 200);
    assert_ne!(r.header("etag"), Some(etag.as_str()));
    // Lists carry tags too.
    assert!(get(&api, "/api/storage_volumes", DEMO)
        .header("etag")
        .is_some());
}

// ---- authentication ----

#[test]
fn http_basic() {
    let api = Api::start();
    let vol = volume(&api, DEMO, "");
    for path in [
        "/api/storage_volumes".to_string(),
        format!("/api/storage_volumes/{vol}"),
        "/api/storage_snapshots".to_string(),
    ] {
        for creds in [
            None,
            Some(("demo", "wrong")),
            Some(("nobody", "demo-password")),
        ] {
            let r = call(&api, "GET", &path, creds, &[], None);
            let e = xml_error(&r, 401);
            assert_eq!(e.attr("url"), path);
            let challenge = r.header("www-authenticate").expect("challenge");
            assert!(challenge.starts_with("Basic realm=\""), "{challenge}");
        }
    }
    // Malformed Authorization headers are 401 too, in JSON when asked.
    for h in [
        "Basic",
        "Basic !!!",
        "Bearer x",
        "Basic ZGVtbw==",
        "Token demo-token-0123456789abcdef",
    ] {
        let r = call(
            &api,
            "GET",
            "/api/storage_volumes?format=json",
            None,
            &[("Authorization", h)],
            None,
        );
        json_error(&r, 401);
        assert!(r.header("www-authenticate").is_some());
    }
    // The OpenStack token does not work here.
    let r = call(
        &api,
        "GET",
        "/api/storage_volumes",
        None,
        &[("X-Auth-Token", api_common::DEMO)],
        None,
    );
    assert_eq!(r.status, 401);
    // A POST without credentials creates nothing.
    let r = call(
        &api,
        "POST",
        "/api/storage_volumes",
        None,
        &[],
        Some(("application/x-www-form-urlencoded", b"capacity=1")),
    );
    assert_eq!(r.status, 401);
    let r = get(&api, "/api/storage_volumes", DEMO);
    assert_eq!(xml(&r.text).all("storage_volume").len(), 1);
}

// ---- parameters ----

#[test]
fn parameters_by_form_multipart_query_json_and_xml() {
    let api = Api::start();
    // Query string.
    let r = call(
        &api,
        "POST",
        "/api/storage_volumes?capacity=2&name=from%20query",
        Some(DEMO),
        &[],
        None,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let v = xml(&r.text);
    assert_eq!(v.text_of("capacity"), "2");
    assert_eq!(v.text_of("name"), "from query");

    // Multipart, as curl -F sends it.
    let mp = "--XyZ\r\nContent-Disposition: form-data; name=\"capacity\"\r\n\r\n3\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nmulti part\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nline 1\nline 2\r\n\
              --XyZ--\r\n";
    let r = call(
        &api,
        "POST",
        "/api/storage_volumes",
        Some(DEMO),
        &[],
        Some(("multipart/form-data; boundary=XyZ", mp.as_bytes())),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let v = xml(&r.text);
    assert_eq!(v.text_of("capacity"), "3");
    assert_eq!(v.text_of("name"), "multi part");
    assert_eq!(v.text_of("description"), "line 1\nline 2");
    let vol = v.attr("id").to_string();

    // Multipart snapshot create.
    let mp = format!(
        "--b\r\nContent-Disposition: form-data; name=\"volume_id\"\r\n\r\n{vol}\r\n--b--\r\n"
    );
    let r = call(
        &api,
        "POST",
        "/api/storage_snapshots",
        Some(DEMO),
        &[],
        Some(("multipart/form-data; boundary=b", mp.as_bytes())),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(xml(&r.text).child("storage_volume").attr("id"), vol);

    // The body wins over the query string.
    let r = call(
        &api,
        "POST",
        "/api/storage_volumes?name=query&capacity=1",
        Some(DEMO),
        &[],
        Some(("application/x-www-form-urlencoded", b"name=body")),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let v = xml(&r.text);
    assert_eq!(v.text_of("name"), "body");
    assert_eq!(v.text_of("capacity"), "1");

    // A flat JSON object and a flat XML document also work.
    let r = call(
        &api,
        "POST",
        "/api/storage_volumes?format=json",
        Some(DEMO),
        &[],
        Some(("application/json", br#"{"capacity": 4, "name": "json"}"#)),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["storage_volume"]["capacity"], "4");
    let r = call(
        &api,
        "POST",
        "/api/storage_volumes",
        Some(DEMO),
        &[],
        Some((
            "application/xml",
            b"<storage_volume><capacity>5</capacity><name>x &amp; y</name></storage_volume>",
        )),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let v = xml(&r.text);
    assert_eq!(v.text_of("capacity"), "5");
    assert_eq!(v.text_of("name"), "x & y");
}

// ---- one engine under every dialect ----

#[test]
fn cross_dialect_with_openstack() {
    let api = Api::start();
    let os = "/v1.1/demo";
    // Made in OpenStack, seen here.
    let r = api.post(
        &format!("{os}/os-volumes"),
        api_common::DEMO,
        &json!({"volume": {"size": 2, "display_name": "os vol", "display_description": "d",
                           "availability_zone": "zone-a"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let os_vol = r.json["volume"]["id"].as_str().unwrap().to_string();
    let r = get(&api, &format!("/api/storage_volumes/{os_vol}"), DEMO);
    assert_eq!(r.status, 200, "{}", r.text);
    let v = xml(&r.text);
    assert_eq!(v.text_of("name"), "os vol");
    assert_eq!(v.text_of("description"), "d");
    assert_eq!(v.text_of("capacity"), "2");
    assert_eq!(v.child("realm").attr("id"), "zone-a");
    assert_eq!(v.text_of("state"), "AVAILABLE");
    assert!(v.find("mount").is_none());

    // Attached in OpenStack: IN-USE with its mount here; delete is refused.
    let r = api.post(
        &format!("{os}/servers/srv-1/os-volume_attachments"),
        api_common::DEMO,
        &json!({"volumeAttachment": {"volumeId": os_vol, "device": "/dev/vdc"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let v = xml(&get(&api, &format!("/api/storage_volumes/{os_vol}"), DEMO).text);
    assert_eq!(v.text_of("state"), "IN-USE");
    let m = v.child("mount");
    assert_eq!(m.child("instance").attr("id"), "srv-1");
    assert_eq!(
        m.child("instance").attr("href"),
        format!("{}/api/instances/srv-1", api.base)
    );
    assert_eq!(m.child("device").attr("name"), "/dev/vdc");
    same_structure("storage_volume_show.xml", &v);
    xml_error(
        &delete(&api, &format!("/api/storage_volumes/{os_vol}"), DEMO),
        409,
    );
    // Detached here: available there.
    let r = post_form(
        &api,
        &format!("/api/storage_volumes/{os_vol}/detach"),
        DEMO,
        "",
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let r = api.get(&format!("{os}/os-volumes/{os_vol}"), api_common::DEMO);
    assert_eq!(r.json["volume"]["status"], "available");
    assert_eq!(r.json["volume"]["attachments"], json!([{}]));

    // Made here, seen in OpenStack.
    let vol = volume(
        &api,
        DEMO,
        "capacity=3&name=dc%20vol&description=dd&realm_id=zone-b",
    );
    let r = api.get(&format!("{os}/os-volumes/{vol}"), api_common::DEMO);
    assert_eq!(r.status, 200, "{}", r.text);
    let o = &r.json["volume"];
    assert_eq!(o["size"], 3);
    assert_eq!(o["displayName"], "dc vol");
    assert_eq!(o["displayDescription"], "dd");
    assert_eq!(o["availabilityZone"], "zone-b");
    assert_eq!(o["status"], "available");
    // Attached here: in-use there, with the same server and device.
    let r = post_form(
        &api,
        &format!("/api/storage_volumes/{vol}/attach"),
        DEMO,
        "instance_id=srv-1&device=/dev/vdd",
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let r = api.get(
        &format!("{os}/servers/srv-1/os-volume_attachments/{vol}"),
        api_common::DEMO,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["volumeAttachment"]["device"], "/dev/vdd");
    let r = api.get(&format!("{os}/os-volumes/{vol}"), api_common::DEMO);
    assert_eq!(r.json["volume"]["status"], "in-use");
    // The device taken through OpenStack is taken here too (same server).
    let r = api.post(
        &format!("{os}/servers/srv-1/os-volume_attachments"),
        api_common::DEMO,
        &json!({"volumeAttachment": {"volumeId": os_vol, "device": "/dev/vdd"}}),
    );
    assert_eq!(r.status, 409, "{}", r.text);

    // Snapshots both ways.
    let snap = snapshot(&api, DEMO, &vol);
    let r = api.get(&format!("{os}/os-snapshots/{snap}"), api_common::DEMO);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["snapshot"]["volumeId"], vol.as_str());
    assert_eq!(r.json["snapshot"]["status"], "available");
    let r = api.post(
        &format!("{os}/os-snapshots"),
        api_common::DEMO,
        &json!({"snapshot": {"volume_id": os_vol, "display_name": "os snap"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let os_snap = r.json["snapshot"]["id"].as_str().unwrap().to_string();
    let s = xml(&get(&api, &format!("/api/storage_snapshots/{os_snap}"), DEMO).text);
    assert_eq!(s.child("storage_volume").attr("id"), os_vol);
    assert_eq!(s.text_of("state"), "COMPLETED");
    assert_eq!(s.text_of("name"), "os snap");

    // Deleted here: gone there.
    assert_eq!(
        delete(&api, &format!("/api/storage_snapshots/{os_snap}"), DEMO).status,
        204
    );
    let r = api.get(&format!("{os}/os-snapshots/{os_snap}"), api_common::DEMO);
    assert_eq!(r.status, 404);

    // Other tenants see none of it, in either dialect.
    let r = get(&api, "/api/storage_volumes", OTHER);
    assert!(xml(&r.text).all("storage_volume").is_empty(), "{}", r.text);
    xml_error(
        &get(&api, &format!("/api/storage_volumes/{vol}"), OTHER),
        404,
    );
    xml_error(
        &get(&api, &format!("/api/storage_snapshots/{snap}"), OTHER),
        404,
    );
    let r = api.get(&format!("/v1.1/other/os-volumes/{vol}"), api_common::OTHER);
    assert_eq!(r.status, 404);
}

#[test]
fn survives_restart() {
    let mut api = Api::start();
    let vol = volume(&api, DEMO, "capacity=2&name=keep");
    let r = post_form(
        &api,
        &format!("/api/storage_volumes/{vol}/attach"),
        DEMO,
        "instance_id=i-7&device=/dev/sdf",
    );
    assert_eq!(r.status, 202);
    let snap = snapshot(&api, DEMO, &vol);
    api.restart();
    let v = xml(&get(&api, &format!("/api/storage_volumes/{vol}"), DEMO).text);
    assert_eq!(v.text_of("name"), "keep");
    assert_eq!(v.text_of("state"), "IN-USE");
    assert_eq!(v.child("mount").child("device").attr("name"), "/dev/sdf");
    let s = xml(&get(&api, &format!("/api/storage_snapshots/{snap}"), DEMO).text);
    assert_eq!(s.child("storage_volume").attr("id"), vol);
}
