//! The CIMI part of `api_openapi`: every route and status the generated
//! document declares, requested for real in JSON and validated; then a
//! sweep of every documented path.

use super::{all_covered, documented, schema_errors, sweep};
use crate::api_common::{basic, Api, Resp, DEMO_BASIC, OTHER_BASIC, SMALL_BASIC};
use serde_json::{json, Value};

type Who = Option<(&'static str, &'static str)>;

/// A CIMI request under `/cimi` as `who`, with a JSON body if given.
fn cimi(api: &Api, method: &str, path: &str, who: Who, body: Option<&Value>) -> Resp {
    let auth = who.map(basic);
    let mut h = vec![("Accept", "application/json")];
    if let Some(a) = &auth {
        h.push(("Authorization", a));
    }
    let text = body.map(Value::to_string);
    if text.is_some() {
        h.push(("Content-Type", "application/json"));
    }
    api.send(
        method,
        &format!("/cimi{path}"),
        &h,
        text.as_deref().map(str::as_bytes),
    )
}

/// The last segment of a resource id.
fn tail(id: &Value) -> String {
    id.as_str()
        .expect("id")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

pub fn cimi_dialect(api: &Api) {
    let r = api.raw("GET", "/cimi/openapi.json", None, None);
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = r.json.clone();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], format!("{}/cimi", api.base));
    assert_eq!(
        doc["components"]["securitySchemes"]["basic"]["scheme"],
        "basic"
    );
    let d = |path: &str, method: &str, r: &Resp| documented(&doc, path, method, r);
    let expect = |path: &str, method: &str, r: Resp, status: u16| {
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        documented(&doc, path, method, &r);
        r
    };
    d("/openapi.json", "get", &r);
    let me: Who = Some(DEMO_BASIC);
    let other: Who = Some(OTHER_BASIC);
    let small: Who = Some(SMALL_BASIC);

    // The entry point links the document.
    let ep = "/cloudEntryPoint";
    let r = expect(ep, "get", cimi(api, "GET", ep, me, None), 200);
    let link = format!("<{}/cimi/openapi.json>; rel=\"service-desc\"", api.base);
    assert_eq!(r.header("link"), Some(link.as_str()));
    let r = api.send(
        "GET",
        "/cimi/cloudEntryPoint",
        &[
            ("Authorization", &basic(DEMO_BASIC)),
            ("CIMI-Specification-Version", "2.0"),
        ],
        None,
    );
    expect(ep, "get", r, 400);

    // Every operation: 401 without credentials, 404 for an unknown id.
    let ops = [
        (ep, "GET"),
        ("/volumes", "GET"),
        ("/volumes", "POST"),
        ("/volumes/{id}", "GET"),
        ("/volumes/{id}", "PUT"),
        ("/volumes/{id}", "DELETE"),
        ("/volume_images", "GET"),
        ("/volume_images", "POST"),
        ("/volume_images/{id}", "GET"),
        ("/volume_images/{id}", "PUT"),
        ("/volume_images/{id}", "DELETE"),
        ("/volume_configurations", "GET"),
        ("/volume_configurations/{id}", "GET"),
        ("/volume_templates", "GET"),
        ("/volume_templates/{id}", "GET"),
        ("/machines", "GET"),
        ("/machines/{id}", "GET"),
        ("/machines/{id}/volumes", "GET"),
        ("/machines/{id}/volumes", "POST"),
        ("/machines/{id}/volumes/{volume}", "GET"),
        ("/machines/{id}/volumes/{volume}", "DELETE"),
    ];
    let at = |p: &str, id: &str| p.replace("{id}", id).replace("{volume}", id);
    for (p, m) in ops {
        let r = cimi(api, m, &at(p, "nope"), None, None);
        assert_eq!(r.status, 401, "{m} {p}");
        assert!(r.header("www-authenticate").is_some());
        d(p, &m.to_lowercase(), &r);
    }
    for (p, m) in ops.iter().filter(|(p, _)| {
        p.contains("{volume}") || (p.contains("{id}") && !p.starts_with("/machines"))
    }) {
        let body = json!({});
        let r = cimi(api, m, &at(p, "nope"), me, (*m == "PUT").then_some(&body));
        assert_eq!(r.status, 404, "{m} {p}: {}", r.text);
        d(p, &m.to_lowercase(), &r);
    }
    // Malformed collection queries.
    for p in [
        "/volumes",
        "/volume_images",
        "/volume_configurations",
        "/volume_templates",
        "/machines",
        "/machines/{id}/volumes",
    ] {
        let r = cimi(api, "GET", &format!("{}?$first=0", at(p, "m-1")), me, None);
        assert_eq!(r.status, 400, "{p}: {}", r.text);
        d(p, "get", &r);
    }

    // Volumes.
    let vols = "/volumes";
    let vol = "/volumes/{id}";
    let create = json!({"name": "v1", "description": "d", "properties": {"k": "v"},
        "volumeTemplate": {"volumeConfig": {"capacity": 1024}}});
    let r = expect(
        vols,
        "post",
        cimi(api, "POST", vols, me, Some(&create)),
        201,
    );
    assert_eq!(r.json["properties"]["k"], "v");
    assert!(r.header("location").is_some());
    let id = tail(&r.json["id"]);
    let from_template =
        json!({"volumeTemplate": {"href": format!("{}/cimi/volume_templates/small", api.base)}});
    let r = expect(
        vols,
        "post",
        cimi(api, "POST", vols, me, Some(&from_template)),
        201,
    );
    assert_eq!(r.json["capacity"], 1 << 20);
    assert!(r.json.get("name").is_none());
    let unnamed = tail(&r.json["id"]);
    expect(
        vols,
        "post",
        cimi(api, "POST", vols, me, Some(&json!({"name": "x"}))),
        400,
    );
    let nope =
        json!({"volumeTemplate": {"href": format!("{}/cimi/volume_templates/nope", api.base)}});
    expect(vols, "post", cimi(api, "POST", vols, me, Some(&nope)), 404);
    let big = json!({"volumeTemplate": {"volumeConfig": {"capacity": 4u64 << 20}}});
    expect(
        vols,
        "post",
        cimi(api, "POST", vols, small, Some(&big)),
        413,
    );
    let r = api.send(
        "POST",
        "/cimi/volumes",
        &[
            ("Authorization", &basic(DEMO_BASIC)),
            ("Content-Type", "text/plain"),
        ],
        Some(b"x"),
    );
    expect(vols, "post", r, 415);
    let r = expect(vols, "get", cimi(api, "GET", vols, me, None), 200);
    assert!(r.json["count"].as_u64() >= Some(2), "{}", r.text);
    assert!(r.json["volumes"][0].get("resourceURI").is_none());
    let r = cimi(api, "GET", "/volumes?$filter=name='v1'", me, None);
    assert_eq!(r.json["count"], 1, "{}", r.text);
    d(vols, "get", &r);
    let r = expect(vol, "get", cimi(api, "GET", &at(vol, &id), me, None), 200);
    // The schemas bite: an unknown member, a missing one, a wrong type.
    assert_eq!(schema_errors(&doc, vol, "get", 200, &r.json), 0);
    let mut extra = r.json.clone();
    extra["extra"] = json!(1);
    let mut missing = r.json.clone();
    missing.as_object_mut().unwrap().remove("capacity");
    let mut wrong = r.json.clone();
    wrong["capacity"] = json!("1024");
    for bad in [extra, missing, wrong] {
        assert!(schema_errors(&doc, vol, "get", 200, &bad) > 0, "{bad}");
    }
    let r = cimi(
        api,
        "PUT",
        &at(vol, &id),
        me,
        Some(&json!({"name": "v2", "properties": {}})),
    );
    let r = expect(vol, "put", r, 200);
    assert_eq!(r.json["name"], "v2");
    let r = cimi(api, "PUT", &at(vol, &id), me, Some(&json!({"name": 5})));
    expect(vol, "put", r, 400);

    // Configurations and templates.
    for (list, one) in [
        ("/volume_configurations", "/volume_configurations/{id}"),
        ("/volume_templates", "/volume_templates/{id}"),
    ] {
        let r = expect(list, "get", cimi(api, "GET", list, me, None), 200);
        assert_eq!(r.json["count"], 3);
        expect(
            one,
            "get",
            cimi(api, "GET", &at(one, "large"), me, None),
            200,
        );
    }

    // Volume images.
    let imgs = "/volume_images";
    let img = "/volume_images/{id}";
    let href = |p: &str| json!({"href": format!("{}/cimi{p}", api.base)});
    let body =
        json!({"name": "i1", "bootable": true, "imageLocation": href(&format!("/volumes/{id}"))});
    let r = expect(imgs, "post", cimi(api, "POST", imgs, me, Some(&body)), 201);
    assert_eq!(r.json["imageLocation"], href(&format!("/volumes/{id}")));
    let iid = tail(&r.json["id"]);
    let r = cimi(api, "POST", imgs, me, Some(&json!({"name": "i"})));
    expect(imgs, "post", r, 400);
    let r = cimi(
        api,
        "POST",
        imgs,
        me,
        Some(&json!({"imageLocation": href("/volumes/nope")})),
    );
    expect(imgs, "post", r, 404);
    // One of small's volumes (other parts of the test made some), or a
    // new one.
    let mine = cimi(api, "GET", vols, small, None);
    let sv = match mine.json["volumes"][0].get("id") {
        Some(id) => id.clone(),
        None => {
            let new = json!({"volumeTemplate": {"volumeConfig": {"capacity": 1024}}});
            let r = cimi(api, "POST", vols, small, Some(&new));
            assert_eq!(r.status, 201, "{}", r.text);
            r.json["id"].clone()
        }
    };
    let sv = json!({"imageLocation": href(&format!("/volumes/{}", tail(&sv)))});
    let mut r = cimi(api, "POST", imgs, small, Some(&sv));
    if r.status == 201 {
        r = cimi(api, "POST", imgs, small, Some(&sv));
    }
    expect(imgs, "post", r, 413);
    let r = expect(imgs, "get", cimi(api, "GET", imgs, me, None), 200);
    assert!(r.json["count"].as_u64() >= Some(1));
    let r = expect(img, "get", cimi(api, "GET", &at(img, &iid), me, None), 200);
    assert_eq!(r.json["bootable"], true);
    let r = cimi(
        api,
        "PUT",
        &at(img, &iid),
        me,
        Some(&json!({"bootable": false})),
    );
    assert_eq!(expect(img, "put", r, 200).json["bootable"], false);
    let r = cimi(
        api,
        "PUT",
        &at(img, &iid),
        me,
        Some(&json!({"bootable": 3})),
    );
    expect(img, "put", r, 400);
    // Danube's public image `golden`: seen by another tenant, without
    // operations, which may not change or delete it.
    let r = cimi(
        api,
        "GET",
        "/volume_images?$filter=name='golden'",
        other,
        None,
    );
    assert_eq!(r.json["count"], 1, "{}", r.text);
    assert!(r.json["volumeImages"][0].get("operations").is_none());
    d(imgs, "get", &r);
    let golden = tail(&r.json["volumeImages"][0]["id"]);
    let r = cimi(
        api,
        "PUT",
        &at(img, &golden),
        other,
        Some(&json!({"name": "x"})),
    );
    expect(img, "put", r, 403);
    let r = cimi(api, "DELETE", &at(img, &golden), other, None);
    expect(img, "delete", r, 403);

    // Machines and machine volumes.
    let mvols = "/machines/{id}/volumes";
    let mvol = "/machines/{id}/volumes/{volume}";
    let attach = json!({"volume": href(&format!("/volumes/{id}")), "initialLocation": "/dev/vdc"});
    let r = cimi(api, "POST", &at(mvols, "m-1"), me, Some(&attach));
    let r = expect(mvols, "post", r, 201);
    assert_eq!(r.json["initialLocation"], "/dev/vdc");
    expect(
        mvols,
        "post",
        cimi(api, "POST", &at(mvols, "m-1"), me, Some(&attach)),
        409,
    );
    let r = cimi(api, "POST", &at(mvols, "m-1"), me, Some(&json!({})));
    expect(mvols, "post", r, 400);
    let r = cimi(
        api,
        "POST",
        &at(mvols, "m-1"),
        me,
        Some(&json!({"volume": href("/volumes/nope")})),
    );
    expect(mvols, "post", r, 404);
    let r = expect(
        mvols,
        "get",
        cimi(api, "GET", &at(mvols, "m-1"), me, None),
        200,
    );
    assert_eq!(r.json["count"], 1);
    let one = format!("/machines/m-1/volumes/{id}");
    expect(mvol, "get", cimi(api, "GET", &one, me, None), 200);
    let r = expect(
        "/machines",
        "get",
        cimi(api, "GET", "/machines", me, None),
        200,
    );
    assert_eq!(r.json["machines"][0]["name"], "m-1", "{}", r.text);
    let r = cimi(api, "GET", "/machines/m-1", me, None);
    expect("/machines/{id}", "get", r, 200);
    let r = cimi(api, "GET", "/machines/a%01b", me, None);
    expect("/machines/{id}", "get", r, 400);
    let r = cimi(api, "GET", "/machines/a%01b/volumes", me, None);
    expect(mvols, "get", r, 400);
    expect(
        vol,
        "delete",
        cimi(api, "DELETE", &at(vol, &id), me, None),
        409,
    );

    let n = sweep(
        api,
        &doc,
        ("/cimi", ""),
        &["get"],
        &[("id", &id), ("volume", &id)],
        &[("Authorization", &basic(DEMO_BASIC))],
        ("", b""),
    );
    assert_eq!(n, 14);

    expect(mvol, "delete", cimi(api, "DELETE", &one, me, None), 200);
    expect(
        img,
        "delete",
        cimi(api, "DELETE", &at(img, &iid), me, None),
        200,
    );
    expect(
        vol,
        "delete",
        cimi(api, "DELETE", &at(vol, &id), me, None),
        200,
    );
    expect(
        vol,
        "delete",
        cimi(api, "DELETE", &at(vol, &unnamed), me, None),
        200,
    );
    all_covered(&doc);
}
