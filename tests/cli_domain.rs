//! The CLI's object commands go through the API's domain layer, online
//! (admin socket of a `blockd serve` with the API running) and offline: a
//! volume attached through the OpenStack os-volumes API is not deleted
//! (exit 3, saying why) while an unattached one is; CLI-made volumes list
//! the same online and offline and stay invisible to API tenants; acting
//! for a tenant (`--tenant`) makes objects the tenant owns and sees, under
//! its quota (exit 4); a volume a Cinder attachment has reserved is not
//! deleted either.

mod api_common;
mod cinder_common;

use api_common::{bin, blockd, Api, AUTH, DEMO, SMALL};
use cinder_common::{create, send_v, token, C};
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// Runs the CLI on `dir` (with `BLOCKD_AUTH_FILE` set to `auth` when
/// given); returns stdout, stderr and the exit code.
fn cli(dir: &Path, auth: Option<&Path>, args: &[&str]) -> (String, String, i32) {
    let mut c = Command::new(bin());
    c.arg("--data-dir").arg(dir).args(args);
    if let Some(a) = auth {
        c.env("BLOCKD_AUTH_FILE", a);
    }
    let o = c.output().expect("run blockd");
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

/// The ids in a `list --json` output.
fn ids(json_list: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json_list).expect("list json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn an_attached_volume_is_not_deleted_online_or_offline() {
    let mut api = Api::start_with(Some(AUTH), |_| {});
    let dir = api.dir.clone();
    let attached = api.volume("demo", DEMO, 1);
    let free = api.volume("demo", DEMO, 1);
    let r = api.post(
        "/v1.1/demo/servers/vm-7/os-volume_attachments",
        DEMO,
        &json!({"volumeAttachment": {"volumeId": attached, "device": "/dev/vdc"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // Online: the operator sees both tenant volumes, deletes only the
    // unattached one.
    let listed = ids(&blockd(&dir, &["volume", "list", "--json"]));
    assert!(
        listed.contains(&attached) && listed.contains(&free),
        "{listed:?}"
    );
    let (out, err, code) = cli(&dir, None, &["volume", "delete", &attached]);
    assert_eq!(code, 3, "refused: {out} {err}");
    assert!(
        err.starts_with("blockd: ") && err.contains("is attached to server vm-7 as /dev/vdc"),
        "the message says why: {err}"
    );
    assert!(err.contains("detach it"), "{err}");
    let r = api.get(&format!("/v1.1/demo/os-volumes/{attached}"), DEMO);
    assert_eq!(r.status, 200, "still there: {}", r.text);
    assert_eq!(r.json["volume"]["status"], "in-use");
    let (_, err, code) = cli(&dir, None, &["volume", "delete", &free]);
    assert_eq!(code, 0, "{err}");
    let r = api.get(&format!("/v1.1/demo/os-volumes/{free}"), DEMO);
    assert_eq!(r.status, 404, "deleted from the CLI: {}", r.text);

    // Offline: the same refusal, from the same rule.
    api.stop();
    assert!(!dir.join("admin.sock").exists());
    let (_, err, code) = cli(&dir, None, &["volume", "delete", &attached]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("is attached to server vm-7"), "{err}");
    let listed = ids(&blockd(&dir, &["volume", "list", "--json"]));
    assert_eq!(listed, vec![attached.clone()]);
    // Its snapshot, not attached, goes.
    let snap = blockd(&dir, &["snapshot", "create", &attached, "before-detach"]);
    let (_, err, code) = cli(&dir, None, &["snapshot", "delete", snap.trim()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn cli_volumes_list_the_same_online_and_offline() {
    let mut api = Api::start_with(Some(AUTH), |_| {});
    let dir = api.dir.clone();
    let id = blockd(&dir, &["volume", "create", "ops-vol", "--size", "64M"]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 36, "prints the id: {id}");
    let snap = blockd(&dir, &["snapshot", "create", "ops-vol", "ops-snap"]);
    let table = blockd(&dir, &["volume", "list"]);
    let row = table
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("listed online: {table}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols,
        [id.as_str(), "ops-vol", "64M", "available", "-"],
        "{row}"
    );
    let online_json = blockd(&dir, &["volume", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&online_json).unwrap();
    assert_eq!(v[0]["name"], "ops-vol");
    assert!(
        v[0]["metadata"].get("api.tenant").is_none(),
        "operator-made: no owner {v}"
    );
    // No tenant sees an operator's volume or snapshot.
    let r = api.get("/v1.1/demo/os-volumes", DEMO);
    assert_eq!(r.json["volumes"], json!([]), "{}", r.text);
    let r = api.get(&format!("/v1.1/demo/os-snapshots/{}", snap.trim()), DEMO);
    assert_eq!(r.status, 404);

    api.stop();
    assert_eq!(blockd(&dir, &["volume", "list"]), table);
    assert_eq!(blockd(&dir, &["volume", "list", "--json"]), online_json);
}

#[test]
fn acting_for_a_tenant_owns_and_is_quota_checked() {
    // `small`: 2 volumes, 1 snapshot, 3 GB.
    let mut api = Api::start_with(Some(AUTH), |_| {});
    let dir = api.dir.clone();
    let auth = api.auth.clone();
    blockd(&dir, &["volume", "create", "ops-only", "--size", "1M"]);
    let small = ["--tenant", "small"];
    let mk = |name: &str, size: &str| {
        let mut a = small.to_vec();
        a.extend(["volume", "create", name, "--size", size]);
        cli(&dir, None, &a)
    };
    let (a, err, code) = mk("s-a", "1G");
    assert_eq!(code, 0, "{err}");
    let (_, err, code) = mk("s-b", "1G");
    assert_eq!(code, 0, "{err}");
    let (_, err, code) = mk("s-c", "1G");
    assert_eq!(code, 4, "over the volume quota: {err}");
    assert!(err.contains("Volume quota exceeded"), "{err}");

    // The tenant sees them through the API, named; the operator's stays
    // hidden from it, and it from the tenant's CLI listing.
    let r = api.get("/v1.1/small/os-volumes/detail", SMALL);
    let mut names: Vec<&str> = r.json["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["displayName"].as_str().unwrap_or_default())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["s-a", "s-b"], "{}", r.text);
    let mut args = small.to_vec();
    args.extend(["volume", "list"]);
    let (out, _, code) = cli(&dir, None, &args);
    assert_eq!(code, 0);
    assert!(out.contains("s-a") && !out.contains("ops-only"), "{out}");
    // Another tenant's volume is not found for `demo`.
    let (_, err, code) = cli(
        &dir,
        None,
        &["--tenant", "demo", "volume", "delete", a.trim()],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no volume with id"), "{err}");
    // Growing past 3 GB is refused; the snapshot quota holds.
    let mut args = small.to_vec();
    args.extend(["volume", "resize", "s-a", "--size", "3G"]);
    let (_, err, code) = cli(&dir, None, &args);
    assert_eq!(code, 4, "{err}");
    let mut args = small.to_vec();
    args.extend(["snapshot", "create", "s-a", "s-snap"]);
    assert_eq!(cli(&dir, None, &args).2, 0);
    let mut args = small.to_vec();
    args.extend(["image", "create", "s-a", "s-img"]);
    let (_, err, code) = cli(&dir, None, &args);
    assert_eq!(code, 4, "images count as snapshots: {err}");
    // Unknown tenants and non-object commands.
    let (_, err, code) = cli(&dir, None, &["--tenant", "nobody", "volume", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("no tenant 'nobody'"), "{err}");
    let (_, err, code) = cli(&dir, None, &["--tenant", "small", "gc"]);
    assert_eq!(code, 2);
    assert!(err.contains("--tenant applies to"), "{err}");

    // Offline, with the server's auth file: the same quota.
    api.stop();
    let (_, err, code) = cli(
        &dir,
        Some(&auth),
        &[
            "--tenant", "small", "volume", "create", "s-d", "--size", "1M",
        ],
    );
    assert_eq!(code, 4, "{err}");
    let (_, err, code) = cli(
        &dir,
        Some(&auth),
        &["--tenant", "small", "volume", "delete", "s-b"],
    );
    assert_eq!(code, 0, "{err}");
    let (_, err, code) = cli(
        &dir,
        Some(&auth),
        &[
            "--tenant", "small", "volume", "create", "s-d", "--size", "1M",
        ],
    );
    assert_eq!(code, 0, "room again: {err}");
    let v: serde_json::Value =
        serde_json::from_str(&blockd(&dir, &["volume", "list", "--json"])).unwrap();
    let d = v
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "s-d")
        .expect("s-d listed");
    assert_eq!(d["metadata"]["api.tenant"], "small");
}

#[test]
fn a_volume_reserved_by_a_cinder_attachment_is_not_deleted() {
    let api = Api::start_with(Some(AUTH), |_| {});
    let t = token(&api, "demo", "demo-password");
    let v = create(&api, &t, json!({"size": 1}));
    let id = v["id"].as_str().unwrap().to_string();
    let body = json!({"attachment": {"volume_uuid": id, "instance_uuid": "vm-2"}});
    let r = send_v(
        &api,
        "POST",
        &format!("{C}/attachments"),
        &t,
        "volume 3.27",
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["attachment"]["status"], "reserved");
    let (_, err, code) = cli(&api.dir, None, &["volume", "delete", &id]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(&format!("volume {id} is reserved")), "{err}");
    // Its attachment gone, the operator may delete it.
    let at = format!("{C}/attachments/{id}");
    let r = send_v(&api, "DELETE", &at, &t, "volume 3.27", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, err, code) = cli(&api.dir, None, &["volume", "delete", &id]);
    assert_eq!(code, 0, "{err}");
}
