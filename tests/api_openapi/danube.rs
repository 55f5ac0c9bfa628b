//! The Danube Cloud part of `api_openapi`: every route and status the
//! generated document declares, for real, against a file server for the
//! imports.

use super::{all_covered, documented, sweep};
use crate::api_common::{Api, Resp, DEMO, OTHER, SMALL};
use crate::danube_common::{
    attached_volume, call, dn, image_bytes, manifest, wait_task, FileServer, Key,
};
use serde_json::{json, Value};

/// A Danube request with `ES-API-KEY: DEMO`.
fn me(api: &Api, method: &str, path: &str, body: Option<Value>) -> Resp {
    dn(api, method, &format!("/api{path}"), DEMO, body)
}

pub fn danube(api: &Api, fs: &FileServer) {
    let doc = api.raw("GET", "/api/danube/openapi.json", None, None).json;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], format!("{}/api", api.base));
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["es_api_key"]["name"], "ES-API-KEY");
    assert_eq!(schemes["token"]["name"], "Authorization");
    let d = |path: &str, method: &str, r: &Resp| documented(&doc, path, method, r);
    let expect = |path: &str, method: &str, r: Resp, status: u16| {
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        documented(&doc, path, method, &r);
        r
    };
    d(
        "/danube/openapi.json",
        "get",
        &api.raw("GET", "/api/danube/openapi.json", None, None),
    );

    // VM snapshots.
    attached_volume(api, "demo", DEMO, "vm-1", "/dev/vdb");
    let list = "/vm/{vm}/snapshot/";
    let one = "/vm/{vm}/snapshot/{snap}/";
    let p = "/vm/vm-1/snapshot/s1/";
    let r = expect(
        one,
        "post",
        me(api, "POST", p, Some(json!({"note": "n"}))),
        200,
    );
    assert_eq!(r.json["result"]["note"], "n");
    expect(one, "post", me(api, "POST", p, None), 406);
    let s2 = "/vm/vm-1/snapshot/s2/";
    expect(
        one,
        "post",
        me(api, "POST", s2, Some(json!({"disk_id": 9}))),
        412,
    );
    expect(
        one,
        "post",
        me(api, "POST", s2, Some(json!({"disk_id": "x"}))),
        400,
    );
    expect(
        one,
        "post",
        me(api, "POST", "/vm/nope/snapshot/s/", None),
        404,
    );
    attached_volume(api, "small", SMALL, "vm-s", "/dev/vdb");
    let small = |p: &str| dn(api, "POST", &format!("/api{p}"), SMALL, None);
    // `small` took its one snapshot in the Deltacloud part.
    expect(one, "post", small("/vm/vm-s/snapshot/a/"), 413);

    let r = expect(list, "get", me(api, "GET", "/vm/vm-1/snapshot/", None), 200);
    assert_eq!(r.json["result"], json!(["s1"]));
    let r = me(api, "GET", "/vm/vm-1/snapshot/?full=1", None);
    assert_eq!(r.json["result"][0]["name"], "s1");
    expect(list, "get", r, 200);
    let bad = "/vm/vm-1/snapshot/?order_by=size";
    expect(list, "get", me(api, "GET", bad, None), 400);
    let bad = "/vm/vm-1/snapshot/?disk_id=9";
    expect(list, "get", me(api, "GET", bad, None), 412);
    expect(list, "get", me(api, "GET", "/vm/nope/snapshot/", None), 404);
    expect(one, "get", me(api, "GET", p, None), 200);
    expect(
        one,
        "get",
        me(api, "GET", "/vm/vm-1/snapshot/nope/", None),
        404,
    );
    let note = Some(json!({"note": "m"}));
    expect(one, "put", me(api, "PUT", p, note.clone()), 200);
    expect(
        one,
        "put",
        me(api, "PUT", "/vm/vm-1/snapshot/x/", note),
        404,
    );
    expect(
        one,
        "put",
        me(api, "PUT", p, Some(json!({"note": [1]}))),
        400,
    );

    // Images from the snapshot.
    let to = "/vm/{vm}/snapshot/{snap}/image/{name}/";
    let golden = "/vm/vm-1/snapshot/s1/image/golden/";
    let r = expect(to, "post", me(api, "POST", golden, None), 200);
    assert_eq!(r.json["result"]["name"], "golden");
    expect(to, "post", me(api, "POST", golden, None), 406);
    let gone = "/vm/vm-1/snapshot/s1/image/gone/";
    expect(
        to,
        "post",
        me(api, "POST", gone, Some(json!({"access": 9}))),
        400,
    );
    expect(
        to,
        "post",
        me(api, "POST", "/vm/vm-1/snapshot/x/image/y/", None),
        404,
    );
    expect(to, "post", me(api, "POST", gone, None), 200);

    let imgs = "/image/";
    let img = "/image/{name}/";
    let r = expect(imgs, "get", me(api, "GET", "/image/", None), 200);
    assert!(r.json["result"]
        .as_array()
        .expect("names")
        .contains(&json!("golden")));
    for q in ["?full=1", "?extended=1&order_by=-created"] {
        let r = me(api, "GET", &format!("/image/{q}"), None);
        assert!(r.json["result"][0]["uuid"].is_string(), "{}", r.text);
        expect(imgs, "get", r, 200);
    }
    expect(
        imgs,
        "get",
        me(api, "GET", "/image/?order_by=size", None),
        400,
    );
    expect(img, "get", me(api, "GET", "/image/golden/", None), 200);
    let r = me(api, "GET", "/image/golden/?extended=1", None);
    assert_eq!(r.json["result"]["dcs"], json!(["main"]));
    expect(img, "get", r, 200);
    expect(
        img,
        "get",
        me(api, "GET", "/image/golden/?extended=x", None),
        400,
    );
    expect(img, "get", me(api, "GET", "/image/nope/", None), 404);
    let public = Some(json!({"access": 1, "desc": "d", "tags": ["a"]}));
    expect(img, "put", me(api, "PUT", "/image/golden/", public), 200);
    let bad = Some(json!({"access": 9}));
    expect(img, "put", me(api, "PUT", "/image/golden/", bad), 400);
    expect(img, "put", me(api, "PUT", "/image/nope/", None), 404);
    let theirs = dn(api, "PUT", "/api/image/golden/", OTHER, Some(json!({})));
    expect(img, "put", theirs, 403);
    expect(
        img,
        "delete",
        dn(api, "DELETE", "/api/image/golden/", OTHER, None),
        403,
    );
    expect(img, "delete", me(api, "DELETE", "/image/nope/", None), 404);
    expect(img, "delete", me(api, "DELETE", "/image/gone/", None), 200);
    // A server using a volume made from the image: 428, and it is listed.
    let r = api.post(
        "/v1.1/demo/os-volumes",
        DEMO,
        &json!({"volume": {"size": 1, "imageRef": "golden"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let vid = r.json["volume"]["id"].as_str().expect("id");
    let r = api.post(
        "/v1.1/demo/servers/vm-2/os-volume_attachments",
        DEMO,
        &json!({"volumeAttachment": {"volumeId": vid, "device": "/dev/vdb"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    expect(
        img,
        "delete",
        me(api, "DELETE", "/image/golden/", None),
        428,
    );
    let vms = "/image/{name}/vm/";
    let r = expect(vms, "get", me(api, "GET", "/image/golden/vm/", None), 200);
    assert_eq!(r.json["result"], json!(["vm-2"]));
    expect(vms, "get", me(api, "GET", "/image/nope/vm/", None), 404);

    // Imports and tasks.
    let status = "/task/{task_id}/status/";
    let data = image_bytes();
    fs.put("/m", manifest(&data, "none", None));
    fs.put("/m/file", data.clone());
    let body = |path: &str| Some(json!({"manifest_url": fs.url(path)}));
    let r = expect(img, "post", me(api, "POST", "/image/imp/", body("/m")), 201);
    let task = r.json["task_id"].as_str().expect("task").to_string();
    let done = wait_task(api, DEMO, &task);
    assert_eq!(done.json["result"]["name"], "imp", "{}", done.text);
    expect(status, "get", done, 200);
    expect(
        img,
        "post",
        me(api, "POST", "/image/imp2/", Some(json!({}))),
        400,
    );
    expect(
        img,
        "post",
        me(api, "POST", "/image/golden/", body("/m")),
        406,
    );
    let r = expect(
        img,
        "post",
        me(api, "POST", "/image/bad/", body("/missing")),
        201,
    );
    let failed = r.json["task_id"].as_str().expect("task").to_string();
    expect(status, "get", wait_task(api, DEMO, &failed), 400);
    fs.put("/h", manifest(&data, "none", None));
    fs.put("/h/file", data);
    fs.hold("/h/file");
    let r = expect(
        img,
        "post",
        me(api, "POST", "/image/held/", body("/h")),
        201,
    );
    let held = r.json["task_id"].as_str().expect("task").to_string();
    let path = format!("/task/{held}/status/");
    expect(status, "get", me(api, "GET", &path, None), 201);
    let r = expect("/task/", "get", me(api, "GET", "/task/", None), 200);
    assert_eq!(r.json["result"], json!([held]));
    fs.release();
    expect(status, "get", wait_task(api, DEMO, &held), 200);
    expect(
        status,
        "get",
        me(api, "GET", "/task/nope/status/", None),
        404,
    );

    // Without a token, everywhere; with `Authorization: Token`, too.
    let params = [
        ("name", "golden"),
        ("vm", "vm-1"),
        ("snap", "s1"),
        ("task_id", task.as_str()),
    ];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if path.contains("openapi") {
            continue;
        }
        let url = format!("/api{}", super::concrete(path, &params));
        for m in item.as_object().expect("item").keys() {
            let r = call(api, &m.to_uppercase(), &url, Key::None, None, None);
            assert_eq!(r.status, 401, "{m} {url}");
            d(path, m, &r);
        }
        if item.get("get").is_some() {
            let r = call(api, "GET", &url, Key::Token(DEMO), None, None);
            assert_eq!(r.status, 200, "{url}: {}", r.text);
            d(path, "get", &r);
        }
    }
    let n = sweep(
        api,
        &doc,
        ("/api", ""),
        &["get"],
        &params,
        &[("ES-API-KEY", DEMO)],
        ("", b""),
    );
    assert_eq!(n, 8);
    expect(one, "delete", me(api, "DELETE", p, None), 200);
    expect(one, "delete", me(api, "DELETE", p, None), 404);
    all_covered(&doc);
}
