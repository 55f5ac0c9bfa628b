//! Black-box tests of the REST API's Danube Cloud dialect against a real
//! `blockd serve`: the seed's requests (image list, show, import, update,
//! delete, servers using an image, image from a VM snapshot) with their
//! element names compared to `fixtures/danube/`; image imports from a
//! local HTTP server (raw, gzip, zstd; wrong checksum; held pending) and
//! from the `file://` import directory; an image made from a VM snapshot,
//! cloned into a volume through OpenStack's `imageRef` and read back
//! through NBD. Rules, errors and isolation are in `api_danube_rules.rs`.

mod api_common;
mod danube_common;

use api_common::{blockd, qemu_io, qemu_io_ro, Api, DEMO};
use danube_common::*;
use serde_json::{json, Value};

/// Imports `bytes` (stored with `compression`) as image `name` from `fs`;
/// returns the final task response.
fn import_from(
    api: &Api,
    fs: &FileServer,
    name: &str,
    stored: Vec<u8>,
    compression: &str,
) -> api_common::Resp {
    fs.put(&format!("/{name}"), manifest(&stored, compression, None));
    fs.put(&format!("/{name}/file"), stored);
    let task = import(
        api,
        DEMO,
        name,
        json!({"manifest_url": fs.url(&format!("/{name}"))}),
    );
    wait_task(api, DEMO, &task)
}

#[test]
fn seed_image_import_from_http_raw_gzip_zstd() {
    let fs = FileServer::start();
    let api = api_importing_from(&fs);
    let data = image_bytes();
    for (name, stored, comp) in [
        ("raw-img", data.clone(), "none"),
        ("gz-img", compress("gzip", &data), "gzip"),
        ("zst-img", compress("zstd", &data), "zstd"),
    ] {
        let r = import_from(&api, &fs, name, stored, comp);
        let img = ok(&r);
        assert_eq!(
            r.json["task_id"].as_str().map(|t| t.starts_with("demo-")),
            Some(true)
        );
        assert_shape(&img, &fixture("image.json")["result"], "imported image");
        assert_eq!(img["name"], name);
        assert_eq!(img["size"], 1, "MB");
        assert_eq!(img["owner"], "demo");
        assert_eq!(img["access"], 3);
        assert_eq!(img["status"], 1);
        // From the manifest: version, description, os linux zvol, tags.
        assert_eq!(img["version"], "18.04");
        assert_eq!(img["desc"], "A test image");
        assert_eq!(img["ostype"], 1);
        assert_eq!(img["resize"], true);
        // The bytes, through NBD (images are read-only exports).
        let uuid = img["uuid"].as_str().unwrap();
        qemu_io_ro(
            &api.nbd_uri(uuid),
            &[
                "read -P 0x11 0 256k",
                "read -P 0 256k 256k",
                "read -P 0x33 512k 256k",
                "read -P 0x44 768k 256k",
            ],
        );
        let shown = ok(&dn(&api, "GET", &format!("/api/image/{name}/"), DEMO, None));
        assert_eq!(shown, img);
    }
    // The seed's list: names, sorted by name by default.
    let r = dn(&api, "GET", "/api/image/", DEMO, None);
    assert_same_keys(&r.json, &fixture("image_list.json"), "list envelope");
    assert_eq!(ok(&r), json!(["gz-img", "raw-img", "zst-img"]));
    // Nothing else was left behind: three images, no temporary volume.
    let mut api = api;
    api.stop();
    let vols: Value =
        serde_json::from_str(&blockd(&api.dir, &["volume", "list", "--json"])).unwrap();
    assert_eq!(vols, json!([]));
    let imgs: Value =
        serde_json::from_str(&blockd(&api.dir, &["image", "list", "--json"])).unwrap();
    assert_eq!(imgs.as_array().map(Vec::len), Some(3));
}

#[test]
fn seed_image_import_with_every_parameter_and_failures() {
    let fs = FileServer::start();
    let api = api_importing_from(&fs);
    let data = image_bytes();
    let stored = compress("gzip", &data);
    fs.put("/m", manifest(&stored, "gzip", Some(4)));
    fs.put("/f.gz", stored.clone());
    // The seed's parameters, all of them (file_url given explicitly).
    let mut body = fixture("image_import_request.json");
    body["manifest_url"] = json!(fs.url("/m"));
    body["file_url"] = json!(fs.url("/f.gz"));
    body["owner"] = json!("demo");
    let task = import(&api, DEMO, "full-img", body.clone());
    let img = ok(&wait_task(&api, DEMO, &task));
    assert_eq!(img["alias"], "base64");
    assert_eq!(img["version"], "18.04");
    assert_eq!(img["desc"], "Base 64-bit image");
    assert_eq!(img["tags"], json!(["base"]));
    assert_eq!(img["dc_bound"], true);
    assert_eq!(img["size"], 4, "image_size from the manifest");

    // A wrong checksum: FAILURE, no image, and the name is free again.
    let mut bad = manifest(&stored, "gzip", None);
    let text = String::from_utf8(bad.clone()).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let sum = v["files"][0]["sha1"].as_str().unwrap().to_string();
    let wrong: String = sum.chars().rev().collect();
    bad = text.replace(&sum, &wrong).into_bytes();
    fs.put("/bad", bad);
    fs.put("/bad/file", stored.clone());
    let task = import(
        &api,
        DEMO,
        "bad-sum",
        json!({"manifest_url": fs.url("/bad")}),
    );
    let r = wait_task(&api, DEMO, &task);
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json["status"], "FAILURE");
    assert!(
        r.json["result"]["detail"]
            .as_str()
            .unwrap()
            .contains("checksum"),
        "{}",
        r.text
    );
    detail(&dn(&api, "GET", "/api/image/bad-sum/", DEMO, None), 404);

    // Other broken imports: all FAILURE, nothing left.
    let mut two = fixture("manifest.json");
    two["files"] = json!([two["files"][0], two["files"][0]]);
    fs.put("/two", two.to_string().into_bytes());
    fs.put("/big", vec![b' '; (1 << 20) + 10]);
    fs.put("/short", manifest(&stored, "gzip", None));
    fs.put("/short/file", stored[..stored.len() - 10].to_vec());
    fs.put("/long", manifest(&stored[..100], "none", None));
    fs.put("/long/file", stored.clone());
    fs.put("/nofile", manifest(&stored, "gzip", None));
    fs.put("/notgz", manifest(&data, "gzip", None));
    fs.put("/notgz/file", data.clone());
    fs.put("/small", manifest(&stored, "gzip", Some(1)));
    let mut big = image_bytes();
    big.extend(image_bytes());
    fs.put("/small/file", compress("gzip", &big));
    fs.put("/small", manifest(&compress("gzip", &big), "gzip", Some(1)));
    for (i, path) in [
        "/two", "/big", "/short", "/long", "/nofile", "/notgz", "/small", "/absent",
    ]
    .iter()
    .enumerate()
    {
        let name = format!("broken-{i}");
        let task = import(&api, DEMO, &name, json!({"manifest_url": fs.url(path)}));
        let r = wait_task(&api, DEMO, &task);
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(r.json["status"], "FAILURE", "{path}");
        detail(
            &dn(&api, "GET", &format!("/api/image/{name}/"), DEMO, None),
            404,
        );
    }
    // The failed names can be imported afterwards.
    let task = import(
        &api,
        DEMO,
        "bad-sum",
        json!({"manifest_url": fs.url("/m"), "file_url": fs.url("/f.gz")}),
    );
    ok(&wait_task(&api, DEMO, &task));
    assert_eq!(
        ok(&dn(&api, "GET", "/api/image/", DEMO, None)),
        json!(["bad-sum", "full-img"])
    );
    let mut api = api;
    api.stop();
    let vols: Value =
        serde_json::from_str(&blockd(&api.dir, &["volume", "list", "--json"])).unwrap();
    assert_eq!(vols, json!([]), "no temporary volume left");
}

#[test]
fn import_is_a_task_and_reserves_the_name() {
    let fs = FileServer::start();
    let api = api_importing_from(&fs);
    let data = image_bytes();
    fs.put("/slow", manifest(&data, "none", None));
    fs.put("/slow/file", data.clone());
    fs.hold("/slow/file");
    let task = import(&api, DEMO, "slow", json!({"manifest_url": fs.url("/slow")}));
    // Pending: 201 with the task; the name is taken (409), the image not
    // visible yet, the task listed.
    let r = dn(
        &api,
        "GET",
        &format!("/api/task/{task}/status/"),
        DEMO,
        None,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["status"], "PENDING");
    assert_eq!(
        ok(&dn(&api, "GET", "/api/task/", DEMO, None)),
        json!([task])
    );
    let again = dn(
        &api,
        "POST",
        "/api/image/slow/",
        DEMO,
        Some(json!({"manifest_url": fs.url("/slow")})),
    );
    detail(&again, 409);
    detail(&dn(&api, "GET", "/api/image/slow/", DEMO, None), 404);
    // At most four running imports per tenant.
    let more: Vec<String> = (1..4)
        .map(|i| {
            import(
                &api,
                DEMO,
                &format!("slow{i}"),
                json!({"manifest_url": fs.url("/slow")}),
            )
        })
        .collect();
    let fifth = dn(
        &api,
        "POST",
        "/api/image/slow4/",
        DEMO,
        Some(json!({"manifest_url": fs.url("/slow")})),
    );
    detail(&fifth, 409);
    assert_eq!(
        ok(&dn(&api, "GET", "/api/task/", DEMO, None))
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    // Another tenant does not see the task.
    detail(
        &dn(
            &api,
            "GET",
            &format!("/api/task/{task}/status/"),
            api_common::OTHER,
            None,
        ),
        404,
    );
    fs.release();
    let img = ok(&wait_task(&api, DEMO, &task));
    assert_eq!(img["name"], "slow");
    for t in &more {
        ok(&wait_task(&api, DEMO, t));
    }
    assert_eq!(ok(&dn(&api, "GET", "/api/task/", DEMO, None)), json!([]));
    // Now it exists: 406.
    let again = dn(
        &api,
        "POST",
        "/api/image/slow/",
        DEMO,
        Some(json!({"manifest_url": fs.url("/slow")})),
    );
    detail(&again, 406);
    detail(&dn(&api, "GET", "/api/task/nope/status/", DEMO, None), 404);
}

#[test]
fn import_from_the_file_import_directory_only() {
    let api = Api::start();
    let dir = api.dir.join("import");
    std::fs::create_dir_all(&dir).unwrap();
    let data = image_bytes();
    let stored = compress("zstd", &data);
    std::fs::write(dir.join("img.zst"), &stored).unwrap();
    std::fs::write(dir.join("img.json"), manifest(&stored, "zstd", None)).unwrap();
    let url = |p: &std::path::Path| format!("file://{}", p.display());
    let task = import(
        &api,
        DEMO,
        "local",
        json!({"manifest_url": url(&dir.join("img.json")), "file_url": url(&dir.join("img.zst"))}),
    );
    let img = ok(&wait_task(&api, DEMO, &task));
    qemu_io_ro(
        &api.nbd_uri(img["uuid"].as_str().unwrap()),
        &["read -P 0x44 768k 256k"],
    );

    // Outside the directory: refused at once, whatever the spelling.
    let outside = api.tmp.path().join("auth.toml");
    std::fs::write(
        api.tmp.path().join("m.json"),
        manifest(&stored, "zstd", None),
    )
    .unwrap();
    std::os::unix::fs::symlink(api.tmp.path().join("m.json"), dir.join("link.json")).unwrap();
    for bad in [
        url(&outside),
        url(&api.tmp.path().join("m.json")),
        format!("file://{}/../m.json", dir.display()),
        format!("file://{}/%2e%2e/m.json", dir.display()),
        url(&dir.join("link.json")),
        url(&dir.join("absent.json")),
        url(&dir),
        "file:///etc/passwd".to_string(),
        "file://relative/x".to_string(),
    ] {
        let r = dn(
            &api,
            "POST",
            "/api/image/evil/",
            DEMO,
            Some(json!({"manifest_url": bad, "file_url": url(&dir.join("img.zst"))})),
        );
        failure(&r, "manifest_url");
    }
    // The file URL is checked the same way.
    let r = dn(
        &api,
        "POST",
        "/api/image/evil/",
        DEMO,
        Some(json!({"manifest_url": url(&dir.join("img.json")), "file_url": url(&outside)})),
    );
    failure(&r, "file_url");
    assert_eq!(
        ok(&dn(&api, "GET", "/api/image/", DEMO, None)),
        json!(["local"])
    );
}

#[test]
fn seed_image_from_vm_snapshot_cloned_and_read_through_nbd() {
    let api = Api::start();
    let vol = attached_volume(&api, "demo", DEMO, "web01", "/dev/vdb");
    qemu_io(
        &api.nbd_uri(&vol),
        &["write -P 0x5a 0 1M", "write -P 0xa5 1020M 4M"],
    );
    // A VM snapshot of disk 1 (the seed's VM snapshot resource).
    let snap = ok(&dn(
        &api,
        "POST",
        "/api/vm/web01/snapshot/daily-1/",
        DEMO,
        Some(json!({"disk_id": 1, "note": "before"})),
    ));
    assert_shape(&snap, &fixture("vm_snapshot.json")["result"], "VM snapshot");
    assert_eq!(snap["disk_id"], 1);
    assert_eq!(snap["size"], 1024);
    // Written after the snapshot: not in the image.
    qemu_io(&api.nbd_uri(&vol), &["write -P 0x01 0 1M"]);
    // The seed's POST /vm/(hostname)/snapshot/(snapname)/image/(name).
    let mut body = fixture("snapshot_image_request.json");
    body["owner"] = json!("demo");
    let img = ok(&dn(
        &api,
        "POST",
        "/api/vm/web01/snapshot/daily-1/image/web-golden/",
        DEMO,
        Some(body),
    ));
    assert_shape(
        &img,
        &fixture("image.json")["result"],
        "image from snapshot",
    );
    assert_eq!(img["alias"], "web-golden");
    assert_eq!(img["desc"], "Golden image of web01");
    assert_eq!(img["size"], 1024);
    // Cloned through OpenStack's imageRef by name, attached, read by NBD.
    let r = api.post(
        "/v1.1/demo/os-volumes",
        DEMO,
        &json!({"volume": {"imageRef": "web-golden", "display_name": "clone"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let clone = r.json["volume"]["id"].as_str().unwrap().to_string();
    qemu_io(
        &api.nbd_uri(&clone),
        &["read -P 0x5a 0 1M", "read -P 0xa5 1020M 4M"],
    );
    qemu_io(&api.nbd_uri(&vol), &["read -P 0x01 0 1M"]);
    let r = api.post(
        "/v1.1/demo/servers/web02/os-volume_attachments",
        DEMO,
        &json!({"volumeAttachment": {"volumeId": clone, "device": "/dev/vdb"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // The seed's GET /image/(name)/vm and the 428 on delete.
    assert_eq!(
        ok(&dn(&api, "GET", "/api/image/web-golden/vm/", DEMO, None)),
        json!(["web02"])
    );
    let ext = ok(&dn(
        &api,
        "GET",
        "/api/image/web-golden/?extended=true",
        DEMO,
        None,
    ));
    assert_shape(
        &ext,
        &fixture("image_extended.json")["result"],
        "extended image",
    );
    assert_eq!(ext["vms"], json!(["web02"]));
    let d = detail(
        &dn(&api, "DELETE", "/api/image/web-golden/", DEMO, None),
        428,
    );
    assert_eq!(d, "Image is used by some VMs");
    // The way out: access=4 (deleted) stops new clones in OpenStack too.
    let upd = ok(&dn(
        &api,
        "PUT",
        "/api/image/web-golden/",
        DEMO,
        Some(json!({"access": 4})),
    ));
    assert_eq!(upd["access"], 4);
    let r = api.post(
        "/v1.1/demo/os-volumes",
        DEMO,
        &json!({"volume": {"imageRef": "web-golden"}}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let r = api.post(
        "/v1.1/demo/os-volumes",
        DEMO,
        &json!({"volume": {"imageRef": img["uuid"]}}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    // A snapshot of the clone, and a volume of that snapshot, attached
    // elsewhere: still used once web02 lets go of the clone.
    let r = api.post(
        "/v1.1/demo/os-snapshots",
        DEMO,
        &json!({"snapshot": {"volume_id": clone, "force": true}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let s2 = r.json["snapshot"]["id"].as_str().unwrap().to_string();
    let r = api.post(
        "/v1.1/demo/os-volumes",
        DEMO,
        &json!({"volume": {"snapshot_id": s2}}),
    );
    let grandchild = r.json["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.delete(
            &format!("/v1.1/demo/servers/web02/os-volume_attachments/{clone}"),
            DEMO
        )
        .status,
        202
    );
    let r = api.post(
        "/v1.1/demo/servers/web03/os-volume_attachments",
        DEMO,
        &json!({"volumeAttachment": {"volumeId": grandchild}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        ok(&dn(&api, "GET", "/api/image/web-golden/vm/", DEMO, None)),
        json!(["web03"])
    );
    detail(
        &dn(&api, "DELETE", "/api/image/web-golden/", DEMO, None),
        428,
    );
    assert_eq!(
        api.delete(
            &format!("/v1.1/demo/servers/web03/os-volume_attachments/{grandchild}"),
            DEMO
        )
        .status,
        202
    );
    let r = dn(&api, "DELETE", "/api/image/web-golden/", DEMO, None);
    ok(&r);
    detail(&dn(&api, "GET", "/api/image/web-golden/", DEMO, None), 404);
    // The clone keeps its data.
    qemu_io(&api.nbd_uri(&clone), &["read -P 0x5a 0 1M"]);
}

#[test]
fn seed_image_list_show_update() {
    let api = Api::start();
    attached_volume(&api, "demo", DEMO, "vm1", "/dev/vdb");
    ok(&dn(&api, "POST", "/api/vm/vm1/snapshot/s1/", DEMO, None));
    for name in ["zeta", "alpha", "mid"] {
        ok(&dn(
            &api,
            "POST",
            &format!("/api/vm/vm1/snapshot/s1/image/{name}/"),
            DEMO,
            None,
        ));
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let names = |q: &str| ok(&dn(&api, "GET", &format!("/api/image/{q}"), DEMO, None));
    assert_eq!(names(""), json!(["alpha", "mid", "zeta"]));
    assert_eq!(names("?order_by=-name"), json!(["zeta", "mid", "alpha"]));
    assert_eq!(names("?order_by=created"), json!(["zeta", "alpha", "mid"]));
    assert_eq!(names("?order_by=-created"), json!(["mid", "alpha", "zeta"]));
    // Without a trailing slash too.
    assert_eq!(ok(&dn(&api, "GET", "/api/image", DEMO, None)), names(""));
    let full = names("?full=true");
    let want = fixture("image.json");
    for o in full.as_array().unwrap() {
        assert_shape(o, &want["result"], "full list item");
    }
    assert_eq!(full[0]["name"], "alpha");
    let ext = names("?extended=true&order_by=-name");
    assert_shape(
        &ext[0],
        &fixture("image_extended.json")["result"],
        "extended list item",
    );
    assert_eq!(ext[0]["name"], "zeta");
    // Show; the seed's PUT with every parameter.
    let shown = ok(&dn(&api, "GET", "/api/image/mid/", DEMO, None));
    assert_eq!(shown["alias"], "mid");
    assert_eq!(shown["version"], "1.0");
    assert_eq!(shown["access"], 3);
    assert_eq!(shown["owner"], "demo");
    let mut put = fixture("image_update_request.json");
    put["owner"] = json!("demo");
    let upd = ok(&dn(&api, "PUT", "/api/image/mid/", DEMO, Some(put)));
    assert_eq!(upd["alias"], "base64");
    assert_eq!(upd["access"], 1);
    assert_eq!(upd["desc"], "Updated");
    assert_eq!(upd["version"], "18.04.1");
    assert_eq!(upd["resize"], false);
    assert_eq!(upd["deploy"], true);
    assert_eq!(upd["tags"], json!(["base", "lts"]));
    assert_eq!(upd["dc_bound"], false);
    assert_eq!(upd["uuid"], shown["uuid"]);
    assert_eq!(ok(&dn(&api, "GET", "/api/image/mid/", DEMO, None)), upd);
    // Authorization: Token works like ES-API-KEY.
    let r = call(&api, "GET", "/api/image/mid/", Key::Token(DEMO), None, None);
    assert_eq!(ok(&r), upd);
    // Delete of an unused image: 200, gone.
    ok(&dn(&api, "DELETE", "/api/image/alpha/", DEMO, None));
    assert_eq!(names(""), json!(["mid", "zeta"]));
}

#[test]
fn restart_forgets_tasks_and_deletes_an_interrupted_import() {
    let fs = FileServer::start();
    let mut api = api_importing_from(&fs);
    let data = image_bytes();
    let stored = compress("gzip", &data);
    fs.put("/held", manifest(&stored, "gzip", None));
    fs.put("/held/file", stored.clone());
    fs.hold("/held/file");
    let task = import(&api, DEMO, "held", json!({"manifest_url": fs.url("/held")}));
    // The temporary volume exists once the file is asked for.
    fs.wait_hit("/held/file");
    api.restart();
    assert!(
        api.log()
            .iter()
            .any(|l| l.contains("deleted a stale import volume")),
        "{:#?}",
        api.log()
    );
    // The task is forgotten, the image never appeared, the name is free.
    detail(
        &dn(
            &api,
            "GET",
            &format!("/api/task/{task}/status/"),
            DEMO,
            None,
        ),
        404,
    );
    detail(&dn(&api, "GET", "/api/image/held/", DEMO, None), 404);
    fs.put("/again", manifest(&stored, "gzip", None));
    fs.put("/again/file", stored);
    let task = import(
        &api,
        DEMO,
        "held",
        json!({"manifest_url": fs.url("/again")}),
    );
    let img = ok(&wait_task(&api, DEMO, &task));
    // An image survives a restart with all its fields.
    api.restart();
    assert_eq!(ok(&dn(&api, "GET", "/api/image/held/", DEMO, None)), img);
    fs.release();
    api.stop();
    let vols: Value =
        serde_json::from_str(&blockd(&api.dir, &["volume", "list", "--json"])).unwrap();
    assert_eq!(vols, json!([]));
}

#[test]
fn offline_images_are_public_and_read_only() {
    let api = Api::start_with(Some(api_common::AUTH), |dir| {
        blockd(dir, &["volume", "create", "base", "--size", "1M"]);
        blockd(dir, &["image", "create", "base", "cli-img"]);
    });
    for token in [DEMO, api_common::OTHER] {
        assert_eq!(
            ok(&dn(&api, "GET", "/api/image/", token, None)),
            json!(["cli-img"])
        );
        let img = ok(&dn(&api, "GET", "/api/image/cli-img/", token, None));
        assert_eq!(img["access"], 1);
        assert_eq!(img["owner"], "admin");
        assert_eq!(img["size"], 1);
        detail(
            &dn(
                &api,
                "PUT",
                "/api/image/cli-img/",
                token,
                Some(json!({"desc": "x"})),
            ),
            403,
        );
        detail(&dn(&api, "DELETE", "/api/image/cli-img/", token, None), 403);
    }
    // The offline volume has no owner: no tenant's VM disk, invisible.
    detail(&dn(&api, "GET", "/api/vm/base/snapshot/", DEMO, None), 404);
}
