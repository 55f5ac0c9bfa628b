//! Black-box tests of the CIMI dialect's rules and errors against a real
//! `blockd serve`: HTTP Basic auth, CIMI-Specification-Version
//! negotiation, media types, `$filter`/`$first`/`$last`, quotas, the
//! attachment rules, and bad input of every kind (malformed or hostile
//! XML and JSON, wrong types, unknown ids and hrefs, oversized bodies,
//! path traversal), each answered with a CIMI error body and nothing
//! half-made.

mod api_common;
mod cimi_common;

use api_common::DEMO as DEMO_TOKEN;
use cimi_common::*;
use serde_json::json;

#[test]
fn basic_auth() {
    let c = Cimi::start();
    for auth in [
        None,
        Some(("demo", "wrong")),
        Some(("nobody", "demo-password")),
    ] {
        let r = c.req("GET", "/cimi/volumes", auth, &[], None);
        error(&r, 401);
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"CIMI\""));
    }
    for header in [
        "Bearer x",
        "Basic !!!",
        "Basic ZGVtbw==",
        "Basic",
        DEMO_TOKEN,
    ] {
        let r = c.req(
            "GET",
            "/cimi/volumes",
            None,
            &[("Authorization", header)],
            None,
        );
        error(&r, 401);
    }
    // The OpenStack token is not a CIMI credential.
    let r = c.req(
        "GET",
        "/cimi/volumes",
        None,
        &[("X-Auth-Token", DEMO_TOKEN)],
        None,
    );
    error(&r, 401);
    // XML error bodies when XML is asked for.
    let r = c.req(
        "GET",
        "/cimi/volumes",
        None,
        &[("Accept", "application/xml")],
        None,
    );
    xml_error(&r, 401);
    assert_eq!(c.get("volumes").status, 200);
}

#[test]
fn version_negotiation_and_media_types() {
    let c = Cimi::start();
    let get = |v: &str| {
        c.req(
            "GET",
            "/cimi/cloudEntryPoint",
            Some(DEMO),
            &[("CIMI-Specification-Version", v)],
            None,
        )
    };
    for ok in ["1.0.1", "1.0", "2.0, 1.0.1", " 1.0.0 ,1.5"] {
        let r = get(ok);
        assert_eq!(r.status, 200, "{ok}: {}", r.text);
        assert_eq!(r.header("cimi-specification-version"), Some("1.0.1"));
    }
    for bad in ["2.0", "1.1", "x", "1.0.1,", "1..0", "1.0-beta"] {
        error(&get(bad), 400);
    }
    // Response format by Accept.
    let accept = |a: &str| c.req("GET", "/cimi/volumes", Some(DEMO), &[("Accept", a)], None);
    for (a, want) in [
        ("application/xml", "application/xml"),
        ("text/xml", "application/xml"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        (
            "application/json;q=0.4, application/xml;q=0.8",
            "application/xml",
        ),
        ("text/html", "application/json"),
    ] {
        let r = accept(a);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some(want), "{a}");
    }
    // Request bodies: JSON or XML only.
    let body = json!({"volumeTemplate": {"volumeConfig": {"capacity": 1024}}}).to_string();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = c.req(
            "POST",
            "/cimi/volumes",
            Some(DEMO),
            &[("Content-Type", ct)],
            Some(body.as_bytes()),
        );
        error(&r, 415);
    }
    assert_eq!(c.get("volumes").json["count"], 0);
    // Wrong methods: 405 with Allow.
    let r = c.req("PATCH", "/cimi/volumes", Some(DEMO), &[], None);
    error(&r, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
    let r = c.req(
        "POST",
        "/cimi/cloudEntryPoint",
        Some(DEMO),
        &[],
        Some(b"{}"),
    );
    error(&r, 405);
    error(&c.get("nothing"), 404);
    error(&c.get("volumes/x/y"), 404);
}

#[test]
fn filter_first_last() {
    let c = Cimi::start();
    let mut ids = Vec::new();
    for (i, name) in ["alpha", "beta", "gamma", "beta"].iter().enumerate() {
        let r = c.post(
            "volumes",
            &json!({"name": name, "volumeTemplate": {"volumeConfig": {"capacity": 1024 * (i as u64 + 1)}}}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.json["id"].as_str().unwrap().to_string());
    }
    let names = |q: &str| -> (u64, Vec<String>) {
        let r = c.get(&format!("volumes?{q}"));
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        let v = r.json["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect();
        (r.json["count"].as_u64().unwrap(), v)
    };
    let beta = || vec!["beta".to_string(), "beta".to_string()];
    assert_eq!(names("$filter=name='beta'"), (2, beta()));
    assert_eq!(names("$filter=name=beta"), (2, beta()));
    assert_eq!(
        names("$filter=name='beta' and capacity=4096"),
        (1, vec!["beta".into()])
    );
    let mut rest = names("$filter=name!='beta'").1;
    rest.sort();
    assert_eq!(rest, ["alpha", "gamma"]);
    assert_eq!(names("$filter=state='AVAILABLE'").0, 4);
    assert_eq!(names("$filter=name='nobody'"), (0, vec![]));
    // Positions are 1-based and inclusive, in the collection's order.
    let (count, all) = names("");
    assert_eq!(count, 4);
    assert_eq!(names("$first=2&$last=3"), (4, all[1..3].to_vec()));
    assert_eq!(names("$first=3").1, all[2..]);
    assert_eq!(names("$last=1").1, all[..1]);
    assert_eq!(names("$first=9").1, Vec::<String>::new());
    assert_eq!(names("$first=3&$last=2").1, Vec::<String>::new());
    assert_eq!(
        names("$filter=name='beta'&$first=2"),
        (2, vec!["beta".into()])
    );
    let id = &ids[2];
    assert_eq!(names(&format!("$filter=id='{id}'")).1, ["gamma"]);
    for bad in [
        "$first=0",
        "$last=-1",
        "$first=x",
        "$filter=name",
        "$filter=name='x",
        "$filter=a=1 or b=2",
    ] {
        error(&c.get(&format!("volumes?{bad}")), 400);
    }
    // XML collection with a filter.
    let e = xml(&c.get_xml("volumes?$filter=name%3D'alpha'").text);
    assert_eq!(e.text_of("count"), "1");
    assert_eq!(e.all("Volume")[0].text_of("name"), "alpha");
}

#[test]
fn quotas() {
    let c = Cimi::start();
    // small: 2 volumes, 3 GB, 1 snapshot.
    let r = c.post_as(
        SMALL,
        "volumes",
        &json!({"volumeTemplate": {"volumeConfig": {"capacity": 4u64 << 20}}}),
    );
    error(&r, 413);
    let v1 = c.volume_as(SMALL, 2 << 20);
    let r = c.post_as(
        SMALL,
        "volumes",
        &json!({"volumeTemplate": {"volumeConfig": {"capacity": (1u64 << 20) + 1}}}),
    );
    error(&r, 413);
    c.volume_as(SMALL, 1 << 20);
    // Volume count reached.
    let r = c.post_as(
        SMALL,
        "volumes",
        &json!({"volumeTemplate": {"volumeConfig": {"capacity": 1}}}),
    );
    error(&r, 413);
    let n = c.req("GET", "/cimi/volumes", Some(SMALL), &[], None).json["count"].as_u64();
    assert_eq!(n, Some(2));
    // A VolumeImage counts as a snapshot and its size as gigabytes: 3 GB
    // are in use already.
    let img = json!({"imageLocation": {"href": c.url(&format!("volumes/{v1}"))}});
    error(&c.post_as(SMALL, "volume_images", &img), 413);
    let n = c
        .req("GET", "/cimi/volume_images", Some(SMALL), &[], None)
        .json["count"]
        .as_u64();
    assert_eq!(n, Some(0));
    // The OpenStack view agrees on the usage.
    let r = c.api.get("/v1.1/small/os-volumes", api_common::SMALL);
    assert_eq!(r.json["volumes"].as_array().unwrap().len(), 2);
}

#[test]
fn attachment_rules() {
    let c = Cimi::start();
    let v1 = c.volume(1024);
    let v2 = c.volume(1024);
    let attach = |m: &str, body: serde_json::Value| c.post(&format!("machines/{m}/volumes"), &body);
    let vref = |v: &str| json!({"href": c.url(&format!("volumes/{v}"))});
    assert_eq!(
        attach(
            "m1",
            json!({"volume": vref(&v1), "initialLocation": "/dev/vdb"})
        )
        .status,
        201
    );
    // Attached elsewhere, or again: 409.
    error(&attach("m2", json!({"volume": vref(&v1)})), 409);
    error(
        &attach(
            "m1",
            json!({"volume": vref(&v1), "initialLocation": "/dev/vdc"}),
        ),
        409,
    );
    // Device taken on this machine: 409; free on another.
    error(
        &attach(
            "m1",
            json!({"volume": vref(&v2), "initialLocation": "/dev/vdb"}),
        ),
        409,
    );
    for bad in ["vdb", "/dev/../etc/passwd", "/dev/VDB", "/dev/"] {
        error(
            &attach("m1", json!({"volume": vref(&v2), "initialLocation": bad})),
            400,
        );
    }
    error(&attach("m1", json!({"initialLocation": "/dev/vdd"})), 400);
    error(
        &attach(
            "m1",
            json!({"volume": {"href": c.url("volumes/00000000-0000-0000-0000-000000000000")}}),
        ),
        404,
    );
    error(
        &attach(
            "m1",
            json!({"volume": {"href": c.url(&format!("volume_images/{v2}"))}}),
        ),
        400,
    );
    // An attached volume cannot be deleted; another tenant cannot detach.
    error(&c.delete(&format!("volumes/{v1}")), 409);
    let r = c.req(
        "DELETE",
        &format!("/cimi/machines/m1/volumes/{v1}"),
        Some(OTHER),
        &[],
        None,
    );
    error(&r, 404);
    // Detach from the wrong machine: 404.
    error(&c.delete(&format!("machines/m2/volumes/{v1}")), 404);
    assert_eq!(c.delete(&format!("machines/m1/volumes/{v1}")).status, 200);
    error(&c.delete(&format!("machines/m1/volumes/{v1}")), 404);
    // Machine ids with control characters are refused.
    error(&c.get("machines/a%0Ab/volumes"), 400);
    // Now it can be deleted.
    assert_eq!(c.delete(&format!("volumes/{v1}")).status, 200);
    let r = c
        .api
        .get(&format!("/v1.1/demo/os-volumes/{v2}"), DEMO_TOKEN);
    assert_eq!(r.json["volume"]["status"], "available");
}

#[test]
fn public_and_foreign_images() {
    let c = Cimi::start();
    let vol = c.volume(1024);
    let img = c.image(&vol, "mine");
    // Another tenant: not visible, not deletable, not clonable, not
    // capturable from our volume.
    let r = c.req(
        "GET",
        &format!("/cimi/volume_images/{img}"),
        Some(OTHER),
        &[],
        None,
    );
    error(&r, 404);
    let r = c.req(
        "DELETE",
        &format!("/cimi/volume_images/{img}"),
        Some(OTHER),
        &[],
        None,
    );
    error(&r, 404);
    let r = c.post_as(
        OTHER,
        "volumes",
        &json!({"volumeTemplate": {"volumeImage": {"href": c.url(&format!("volume_images/{img}"))}}}),
    );
    error(&r, 404);
    let r = c.post_as(
        OTHER,
        "volume_images",
        &json!({"imageLocation": {"href": c.url(&format!("volumes/{vol}"))}}),
    );
    error(&r, 404);
    // Update an image.
    let r = c.put(
        &format!("volume_images/{img}"),
        &json!({"description": "golden", "bootable": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["bootable"], true);
    assert_eq!(r.json["name"], "mine");
    assert_eq!(r.json["description"], "golden");
    // A clone of a bootable image is bootable.
    let r = c.post(
        "volumes",
        &json!({"volumeTemplate": {"volumeImage": {"href": c.url(&format!("volume_images/{img}"))}}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["bootable"], true);
}

#[test]
fn bad_input() {
    let c = Cimi::start();
    let post = |path: &str, ct: &str, body: &[u8]| {
        c.req(
            "POST",
            &format!("/cimi/{path}"),
            Some(DEMO),
            &[("Content-Type", ct)],
            Some(body),
        )
    };
    let vol = c.volume(1024);
    let vol_url = c.url(&format!("volumes/{vol}"));
    let json_ct = "application/json";
    let xml_ct = "application/xml";
    // Malformed and hostile bodies.
    for (ct, body) in [
        (json_ct, "{".to_string()),
        (json_ct, "[1]".to_string()),
        (json_ct, "".to_string()),
        (json_ct, "\"x\"".to_string()),
        (xml_ct, "<VolumeCreate>".to_string()),
        (xml_ct, "<VolumeCreate></Volume>".to_string()),
        (xml_ct, "not xml".to_string()),
        (xml_ct, "<VolumeCreate>&xxe;</VolumeCreate>".to_string()),
        (
            xml_ct,
            "<!DOCTYPE v [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><VolumeCreate><name>&xxe;</name></VolumeCreate>".to_string(),
        ),
        (xml_ct, format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000))),
        (xml_ct, "<Machine><name>x</name></Machine>".to_string()),
        (json_ct, json!({"resourceURI": format!("{NS}/Machine")}).to_string()),
    ] {
        let r = post("volumes", ct, body.as_bytes());
        error(&r, 400);
        let r = c.req(
            "POST",
            "/cimi/volumes",
            Some(DEMO),
            &[("Content-Type", ct), ("Accept", "application/xml")],
            Some(body.as_bytes()),
        );
        xml_error(&r, 400);
    }
    let r = post("volumes", xml_ct, b"<VolumeCreate>\xff\xfe</VolumeCreate>");
    error(&r, 400);
    // Wrong types and values.
    for body in [
        json!({}),
        json!({"volumeTemplate": "x"}),
        json!({"volumeTemplate": {}}),
        json!({"volumeTemplate": {"volumeConfig": {"capacity": "big"}}}),
        json!({"volumeTemplate": {"volumeConfig": {"capacity": -1}}}),
        json!({"volumeTemplate": {"volumeConfig": {"capacity": 1.5}}}),
        json!({"volumeTemplate": {"volumeConfig": {"capacity": 0}}}),
        json!({"volumeTemplate": {"volumeConfig": {"capacity": u64::MAX}}}),
        json!({"volumeTemplate": {"volumeConfig": {}}}),
        json!({"volumeTemplate": {"volumeConfig": {"href": "http://x/cimi/volume_templates/small"}}}),
        json!({"name": 5, "volumeTemplate": {"volumeConfig": {"capacity": 1}}}),
        json!({"name": "x".repeat(300), "volumeTemplate": {"volumeConfig": {"capacity": 1}}}),
        json!({"name": "a\u{1}b", "volumeTemplate": {"volumeConfig": {"capacity": 1}}}),
        json!({"properties": ["a"], "volumeTemplate": {"volumeConfig": {"capacity": 1}}}),
        json!({"properties": {"k": 1}, "volumeTemplate": {"volumeConfig": {"capacity": 1}}}),
        json!({"volumeTemplate": {"volumeConfig": {"capacity": 1}, "volumeImage": "x"}}),
        json!({"volumeTemplate": {"volumeConfig": {"capacity": 1}, "volumeImage": {"href": "../../etc/passwd"}}}),
    ] {
        error(&post("volumes", json_ct, body.to_string().as_bytes()), 400);
    }
    // Unknown referenced ids.
    for body in [
        json!({"volumeTemplate": {"href": c.url("volume_templates/nope")}}),
        json!({"volumeTemplate": {"volumeConfig": {"href": c.url("volume_configurations/nope")}}}),
        json!({"volumeTemplate": {"volumeImage": {"href": c.url("volume_images/nope")}}}),
    ] {
        error(&post("volumes", json_ct, body.to_string().as_bytes()), 404);
    }
    for body in [
        json!({}),
        json!({"imageLocation": vol_url}),
        json!({"imageLocation": {"href": 5}}),
        json!({"imageLocation": {"href": c.url("volume_images/x")}}),
        json!({"imageLocation": {"href": vol_url}, "bootable": "maybe"}),
    ] {
        error(
            &post("volume_images", json_ct, body.to_string().as_bytes()),
            400,
        );
    }
    let r = post(
        "volume_images",
        json_ct,
        json!({"imageLocation": {"href": c.url("volumes/..%2F..%2Fetc%2Fpasswd")}})
            .to_string()
            .as_bytes(),
    );
    error(&r, 404);
    // Names are display strings, never paths.
    let r = post(
        "volumes",
        json_ct,
        json!({"name": "../../../etc/passwd", "volumeTemplate": {"volumeConfig": {"capacity": 1}}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["name"], "../../../etc/passwd");
    assert_eq!(
        c.delete(&format!(
            "volumes/{}",
            last_segment(r.json["id"].as_str().unwrap())
        ))
        .status,
        200
    );
    // Nothing was made by any of it.
    assert_eq!(c.get("volumes").json["count"], 1);
    assert_eq!(c.get("volume_images").json["count"], 0);
    // Unknown ids and path traversal in paths: CIMI 404s.
    for path in [
        "volumes/nope",
        "volumes/..%2F..%2Fetc%2Fpasswd",
        "volume_images/..%2Fx",
        "volume_images/00000000-0000-0000-0000-000000000000",
        "machines/m/volumes/nope",
    ] {
        error(&c.get(path), 404);
        error(&c.delete(path), 404);
    }
    // Oversized bodies: 413 in the CIMI format (JSON and XML).
    let big = vec![b' '; (1 << 20) + 10];
    let r = post("volumes", json_ct, &big);
    error(&r, 413);
    let r = c.req(
        "POST",
        "/cimi/volumes",
        Some(DEMO),
        &[("Content-Type", xml_ct), ("Accept", "application/xml")],
        Some(&big),
    );
    xml_error(&r, 413);
    // The server is still fine.
    assert_eq!(c.get("volumes").json["count"], 1);
}

#[test]
fn danube_access_rules_hold_in_cimi() {
    let c = Cimi::start();
    let vol = c.volume(1024);
    let img = c.image(&vol, "shared");
    let href = c.url(&format!("volume_images/{img}"));
    let set_access = |access: i64| {
        let body = json!({ "access": access }).to_string();
        c.req(
            "PUT",
            &format!("/api/image/{img}/"),
            None,
            &[
                ("ES-API-KEY", DEMO_TOKEN),
                ("Content-Type", "application/json"),
            ],
            Some(body.as_bytes()),
        )
    };
    let clone_as = |who| {
        c.post_as(
            who,
            "volumes",
            &json!({"volumeTemplate": {"volumeImage": {"href": href}}}),
        )
    };
    // Private (the default): the other tenant does not see it.
    error(&clone_as(OTHER), 404);
    // Made public through Danube: the other tenant sees and clones it, but
    // may not change or delete it.
    let r = set_access(1);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c.req(
        "GET",
        &format!("/cimi/volume_images/{img}"),
        Some(OTHER),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = clone_as(OTHER);
    assert_eq!(r.status, 201, "{}", r.text);
    let r = c.req(
        "DELETE",
        &format!("/cimi/volume_images/{img}"),
        Some(OTHER),
        &[],
        None,
    );
    error(&r, 403);
    // Marked deleted: no new volume from it, for anyone.
    let r = set_access(4);
    assert_eq!(r.status, 200, "{}", r.text);
    error(&clone_as(DEMO), 409);
    error(&clone_as(OTHER), 404);
}
