//! Tenant isolation, black-box against a real `blockd serve`: no answer
//! lets a tenant learn that another tenant's private object or name
//! exists, and the one quota rule holds whatever the dialect. One test per
//! former leak: Danube image names and alias/version uniqueness (per
//! tenant now), names held by running imports, OpenStack `imageRef` by
//! name, `PUT owner` (an operator's action), CIMI's `imageLocation` of
//! another tenant's public image, images counted against the snapshot
//! quota in every dialect, and imports counted against quota.

mod api_common;
mod danube_common;

use api_common::{basic, Api, DEMO, DEMO_BASIC, OTHER, OTHER_BASIC, SMALL, SMALL_BASIC};
use danube_common::*;
use serde_json::json;

/// `demo`, `other`, and `op` (an operator); `tight` with room for one
/// snapshot or image and 2 GB.
const AUTH: &str = r#"
[[tenants]]
id = "demo"
token = "demo-token-0123456789abcdef"
user = "demo"
password = "demo-password"

[[tenants]]
id = "other"
token = "other-token-0123456789abcdef"
user = "other"
password = "other-password"

[[tenants]]
id = "op"
token = "op-token-0123456789abcdef012"
user = "op"
password = "op-password"
admin = true

[[tenants]]
id = "tight"
token = "tight-token-0123456789abcdef"
user = "tight"
password = "tight-password"
[tenants.quota]
gigabytes = 2
snapshots = 1
"#;

const OP: &str = "op-token-0123456789abcdef012";
const TIGHT: &str = "tight-token-0123456789abcdef";

/// A private image `name` of `tenant` made from a new `gb` GB volume
/// attached to `vm` (through a VM snapshot); returns its uuid.
fn image(api: &Api, tenant: &str, token: &str, vm: &str, name: &str, gb: u64) -> String {
    let id = api.volume(tenant, token, gb);
    let r = api.post(
        &format!("/v1.1/{tenant}/servers/{vm}/os-volume_attachments"),
        token,
        &json!({"volumeAttachment": {"volumeId": id}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    ok(&dn(
        api,
        "POST",
        &format!("/api/vm/{vm}/snapshot/s/"),
        token,
        None,
    ));
    let img = ok(&dn(
        api,
        "POST",
        &format!("/api/vm/{vm}/snapshot/s/image/{name}/"),
        token,
        None,
    ));
    img["uuid"].as_str().expect("uuid").to_string()
}

#[test]
fn danube_image_names_and_aliases_are_per_tenant() {
    let api = Api::start();
    let mine = image(&api, "demo", DEMO, "vm1", "base", 1);
    // The other tenant neither sees the name nor is refused it.
    detail(&dn(&api, "GET", "/api/image/base/", OTHER, None), 404);
    let theirs = image(&api, "other", OTHER, "vm2", "base", 1);
    assert_ne!(mine, theirs);
    for (token, uuid) in [(DEMO, &mine), (OTHER, &theirs)] {
        assert_eq!(
            ok(&dn(&api, "GET", "/api/image/", token, None)),
            json!(["base"])
        );
        let shown = ok(&dn(&api, "GET", "/api/image/base/", token, None));
        assert_eq!(shown["uuid"], json!(uuid));
        assert_eq!(shown["name"], "base");
    }
    // Alias and version: unique per tenant only.
    ok(&dn(
        &api,
        "PUT",
        "/api/image/base/",
        DEMO,
        Some(json!({"alias": "golden", "version": "2"})),
    ));
    ok(&dn(
        &api,
        "PUT",
        "/api/image/base/",
        OTHER,
        Some(json!({"alias": "golden", "version": "2"})),
    ));
    // Within one tenant the rules hold: a second "base" is 406.
    detail(
        &dn(
            &api,
            "POST",
            "/api/vm/vm1/snapshot/s/image/base/",
            DEMO,
            None,
        ),
        406,
    );
}

#[test]
fn a_running_import_holds_its_name_for_its_tenant_only() {
    let fs = FileServer::start();
    let api = api_importing_from(&fs);
    let data = image_bytes();
    fs.put("/m", manifest(&data, "none", None));
    fs.put("/f", data);
    fs.hold("/m");
    let body = json!({"manifest_url": fs.url("/m"), "file_url": fs.url("/f")});
    let t1 = import(&api, DEMO, "held", body.clone());
    fs.wait_hit("/m");
    // The same tenant: 409; another tenant: its own import starts.
    detail(
        &dn(&api, "POST", "/api/image/held/", DEMO, Some(body.clone())),
        409,
    );
    let t2 = import(&api, OTHER, "held", body);
    fs.release();
    ok(&wait_task(&api, DEMO, &t1));
    ok(&wait_task(&api, OTHER, &t2));
    let a = ok(&dn(&api, "GET", "/api/image/held/", DEMO, None));
    let b = ok(&dn(&api, "GET", "/api/image/held/", OTHER, None));
    assert_ne!(a["uuid"], b["uuid"]);
    assert_eq!(
        (a["owner"].clone(), b["owner"].clone()),
        (json!("demo"), json!("other"))
    );
}

#[test]
fn openstack_image_ref_by_name_prefers_own_and_hides_private() {
    let api = Api::start();
    // demo: private "base" of 1 GB; other: public "base" of 2 GB.
    image(&api, "demo", DEMO, "vm1", "base", 1);
    image(&api, "other", OTHER, "vm2", "base", 2);
    ok(&dn(
        &api,
        "PUT",
        "/api/image/base/",
        OTHER,
        Some(json!({"access": 1})),
    ));
    let made = |tenant: &str, token: &str, image_ref: &str| {
        api.post(
            &format!("/v1.1/{tenant}/os-volumes"),
            token,
            &json!({"volume": {"imageRef": image_ref}}),
        )
    };
    let r = made("demo", DEMO, "base");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["volume"]["size"], 1, "demo's own image");
    let r = made("small", SMALL, "base");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["volume"]["size"], 2, "the public one");
    // A private name of another tenant answers as a missing one does.
    image(&api, "demo", DEMO, "vm3", "secret", 1);
    let hidden = made("other", OTHER, "secret");
    let missing = made("other", OTHER, "nothing");
    assert_eq!((hidden.status, missing.status), (400, 400));
    assert_eq!(
        hidden.text.replace("secret", "X"),
        missing.text.replace("nothing", "X")
    );
}

#[test]
fn handing_an_image_over_is_an_operator_action() {
    let api = Api::start_with(Some(AUTH), |_| {});
    image(&api, "demo", DEMO, "vm1", "img", 1);
    // A tenant: 403, whether or not the recipient exists; nothing changes.
    for to in ["other", "nobody"] {
        detail(
            &dn(
                &api,
                "PUT",
                "/api/image/img/",
                DEMO,
                Some(json!({"owner": to})),
            ),
            403,
        );
    }
    assert_eq!(
        ok(&dn(&api, "GET", "/api/image/img/", DEMO, None))["owner"],
        "demo"
    );
    // Naming itself is no change.
    ok(&dn(
        &api,
        "PUT",
        "/api/image/img/",
        DEMO,
        Some(json!({"owner": "demo"})),
    ));
    // The operator hands its image over, with its quota charge.
    image(&api, "op", OP, "vm2", "gift", 1);
    failure(
        &dn(
            &api,
            "PUT",
            "/api/image/gift/",
            OP,
            Some(json!({"owner": "nobody"})),
        ),
        "owner",
    );
    let t = ok(&dn(
        &api,
        "PUT",
        "/api/image/gift/",
        OP,
        Some(json!({"owner": "tight"})),
    ));
    assert_eq!(t["owner"], "tight");
    detail(&dn(&api, "GET", "/api/image/gift/", OP, None), 404);
    ok(&dn(&api, "GET", "/api/image/gift/", TIGHT, None));
    // tight's one snapshot-or-image is used by the gift now.
    let v = api.volume("tight", TIGHT, 1);
    let r = api.post(
        "/v1.1/tight/os-snapshots",
        TIGHT,
        &json!({"snapshot": {"volume_id": v}}),
    );
    assert_eq!(r.status, 413, "{}", r.text);
    // A recipient without room: 413, and the image stays where it was.
    image(&api, "op", OP, "vm3", "gift2", 1);
    detail(
        &dn(
            &api,
            "PUT",
            "/api/image/gift2/",
            OP,
            Some(json!({"owner": "tight"})),
        ),
        413,
    );
    assert_eq!(
        ok(&dn(&api, "GET", "/api/image/gift2/", OP, None))["owner"],
        "op"
    );
}

#[test]
fn images_count_against_the_snapshot_quota_in_every_dialect() {
    let api = Api::start();
    // small: 2 volumes, 3 GB, 1 snapshot. A CIMI volume image takes the
    // one snapshot.
    let v = api.volume("small", SMALL, 1);
    let auth = basic(SMALL_BASIC);
    let img = json!({"imageLocation": {"href": format!("{}/cimi/volumes/{v}", api.base)}});
    let r = api.send(
        "POST",
        "/cimi/volume_images",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(img.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    // OpenStack, Deltacloud and Danube all count it.
    let r = api.post(
        "/v1.1/small/os-snapshots",
        SMALL,
        &json!({"snapshot": {"volume_id": v}}),
    );
    assert_eq!(r.status, 413, "{}", r.text);
    let r = api.send(
        "POST",
        "/api/storage_snapshots",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
        ],
        Some(format!("volume_id={v}").as_bytes()),
    );
    assert_eq!(r.status, 413, "{}", r.text);
    let r = api.post(
        "/v1.1/small/servers/vm1/os-volume_attachments",
        SMALL,
        &json!({"volumeAttachment": {"volumeId": v}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    detail(
        &dn(&api, "POST", "/api/vm/vm1/snapshot/s/", SMALL, None),
        413,
    );
}

#[test]
fn imports_count_against_quota() {
    let fs = FileServer::start();
    let api = api_importing_from(&fs);
    let data = image_bytes();
    // small has 3 GB: an image of 4 GB fails at the end, leaving nothing.
    fs.put("/big", manifest(&data, "none", Some(4096)));
    fs.put("/f", data.clone());
    let t = import(
        &api,
        SMALL,
        "big",
        json!({"manifest_url": fs.url("/big"), "file_url": fs.url("/f")}),
    );
    let r = wait_task(&api, SMALL, &t);
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("quota"), "{}", r.text);
    detail(&dn(&api, "GET", "/api/image/big/", SMALL, None), 404);
    // A small one fits; then the snapshot quota (1) is used up: 413 at once.
    fs.put("/m", manifest(&data, "none", None));
    let body = json!({"manifest_url": fs.url("/m"), "file_url": fs.url("/f")});
    let t = import(&api, SMALL, "one", body.clone());
    ok(&wait_task(&api, SMALL, &t));
    detail(&dn(&api, "POST", "/api/image/two/", SMALL, Some(body)), 413);
    let snaps = api.get("/v1.1/small/os-snapshots", SMALL);
    assert_eq!(snaps.json["snapshots"], json!([]));
}

#[test]
fn a_public_image_does_not_name_its_owners_private_volume() {
    let api = Api::start();
    let v = api.volume("demo", DEMO, 1);
    let cimi = |who: (&str, &str), method: &str, path: &str, body: Option<String>| {
        let auth = basic(who);
        api.send(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_deref().map(str::as_bytes),
        )
    };
    let img = json!({"imageLocation": {"href": format!("{}/cimi/volumes/{v}", api.base)}});
    let r = cimi(
        DEMO_BASIC,
        "POST",
        "/cimi/volume_images",
        Some(img.to_string()),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["id"]
        .as_str()
        .expect("id")
        .rsplit('/')
        .next()
        .expect("uuid")
        .to_string();
    // The owner sees where it came from.
    assert!(r.text.contains(&v), "{}", r.text);
    // Made public (through Danube, by uuid): the other tenant sees the
    // image, not the volume's id.
    ok(&dn(
        &api,
        "PUT",
        &format!("/api/image/{id}/"),
        DEMO,
        Some(json!({"access": 1})),
    ));
    let r = cimi(
        OTHER_BASIC,
        "GET",
        &format!("/cimi/volume_images/{id}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.text.contains(&v), "{}", r.text);
    assert!(r.json.get("imageLocation").is_none(), "{}", r.text);
}
