//! The real `openstack` CLI (python-openstackclient with cinderclient and
//! keystoneauth, from the virtual environment `scripts/test.sh` makes and
//! names in `BLOCKD_OPENSTACK_VENV`) against `blockd serve`: it logs in
//! through the minimal Keystone, finds Cinder in the catalogue and runs
//! volume, snapshot, backup (create, incremental, show, list, restore to a
//! new and, with `--force`, an existing volume, delete), attachment
//! (3.27: list, show, delete), type (with encryption), QoS spec, quota
//! and limits commands (and `volume create --image` through the
//! read-only Glance); every command's
//! exit status and output are checked. openstacksdk's block storage proxy does a Python
//! round trip. Without `BLOCKD_OPENSTACK_VENV` the tests say so and pass
//! without running.

mod api_common;

use api_common::Api;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The `openstack` program, or `None` (with a message) when the virtual
/// environment is not configured.
fn openstack_bin() -> Option<PathBuf> {
    let Some(venv) = std::env::var_os("BLOCKD_OPENSTACK_VENV") else {
        eprintln!(
            "SKIPPED: BLOCKD_OPENSTACK_VENV is not set; scripts/test.sh sets it \
             (a virtual environment with python-openstackclient)"
        );
        return None;
    };
    let bin = PathBuf::from(venv).join("bin/openstack");
    assert!(bin.exists(), "{} is missing", bin.display());
    Some(bin)
}

struct Cli<'a> {
    bin: PathBuf,
    api: &'a Api,
    user: &'a str,
    password: &'a str,
}

impl Cli<'_> {
    /// Runs `openstack ARGS`; returns (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let o = Command::new(&self.bin)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.api.tmp.path())
            .env("OS_AUTH_URL", format!("{}/identity", self.api.base))
            .env("OS_IDENTITY_API_VERSION", "3")
            .env("OS_PROJECT_NAME", self.user)
            .env("OS_USERNAME", self.user)
            .env("OS_PASSWORD", self.password)
            .env("OS_USER_DOMAIN_NAME", "Default")
            .env("OS_PROJECT_DOMAIN_NAME", "Default")
            .env("OS_REGION_NAME", "RegionOne")
            .output()
            .expect("run openstack");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Runs a command that must succeed; returns stdout.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "openstack {args:?} failed:\n{out}\n{err}");
        out
    }

    /// Runs a command with `-f json`; returns the parsed output.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-f", "json"]);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("openstack {args:?}: {e}: {out}"))
    }
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|v| v[key] == value)
}

#[test]
fn openstack_cli_volumes_snapshots_quotas() {
    let Some(bin) = openstack_bin() else { return };
    let api = Api::start_with(Some(api_common::AUTH), |dir| {
        api_common::blockd(dir, &["volume", "create", "base", "--size", "1M"]);
        api_common::blockd(dir, &["image", "create", "base", "golden"]);
    });
    let cli = Cli {
        bin,
        api: &api,
        user: "demo",
        password: "demo-password",
    };

    // Volume create / show / list / set --size / set --name.
    let v = cli.json(&[
        "volume",
        "create",
        "--size",
        "1",
        "--description",
        "cli",
        "vol1",
    ]);
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!(v["name"], "vol1");
    assert_eq!(v["size"], 1);
    let v = cli.json(&["volume", "show", "vol1"]);
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["status"], "available");
    assert_eq!(v["description"], "cli");
    let list = cli.json(&["volume", "list"]);
    let row = find(&list, "ID", &id).unwrap_or_else(|| panic!("{list}"));
    assert_eq!(row["Name"], "vol1");
    assert_eq!(row["Size"], 1);
    cli.ok(&[
        "volume",
        "set",
        "--size",
        "2",
        "--property",
        "tier=gold",
        &id,
    ]);
    let v = cli.json(&["volume", "show", &id]);
    assert_eq!(v["size"], 2);
    assert!(v["properties"].to_string().contains("gold"), "{v}");
    cli.ok(&["volume", "set", "--name", "vol1b", &id]);
    assert_eq!(cli.json(&["volume", "show", &id])["name"], "vol1b");
    // The same volume through the v1.1 dialect.
    let r = api.get(&format!("/v1.1/demo/os-volumes/{id}"), api_common::DEMO);
    assert_eq!(r.json["volume"]["displayName"], "vol1b");
    assert_eq!(r.json["volume"]["size"], 2);

    // Snapshots: create, list, a volume from one, delete.
    let s = cli.json(&["volume", "snapshot", "create", "--volume", &id, "snap1"]);
    let sid = s["id"].as_str().expect("snapshot id").to_string();
    let list = cli.json(&["volume", "snapshot", "list"]);
    assert!(find(&list, "ID", &sid).is_some(), "{list}");
    let c = cli.json(&["volume", "create", "--snapshot", &sid, "fromsnap"]);
    assert_eq!(c["size"], 2);
    assert_eq!(c["snapshot_id"], sid.as_str());
    let c2 = cli.json(&[
        "volume", "create", "--source", &id, "--size", "3", "fromvol",
    ]);
    assert_eq!(c2["size"], 3);
    cli.ok(&["volume", "snapshot", "delete", &sid]);
    let list = cli.json(&["volume", "snapshot", "list"]);
    assert!(find(&list, "ID", &sid).is_none(), "{list}");

    // From an engine image, found through the image service.
    let i = cli.json(&[
        "volume", "create", "--image", "golden", "--size", "1", "fromimg",
    ]);
    assert_eq!(i["bootable"], "true", "{i}");

    // Types, quotas, limits.
    let types = cli.json(&["volume", "type", "list"]);
    assert!(find(&types, "Name", "__DEFAULT__").is_some(), "{types}");
    let q = cli.ok(&["quota", "show", "--volume"]);
    assert!(q.contains("volumes") && q.contains("gigabytes"), "{q}");
    let limits = cli.json(&["limits", "show", "--absolute"]);
    let used = find(&limits, "Name", "total_volumes_used").unwrap_or_else(|| panic!("{limits}"));
    assert_eq!(used["Value"], 4);

    // Delete; a missing volume fails cleanly.
    for v in [&id, "fromsnap", "fromvol", "fromimg"] {
        cli.ok(&["volume", "delete", v]);
    }
    assert_eq!(cli.json(&["volume", "list"]), Value::Array(vec![]));
    let (ok, _, err) = cli.run(&["volume", "show", &id]);
    assert!(!ok && err.contains("No volume with a name or ID"), "{err}");
    // A wrong password is refused by Keystone.
    let bad = Cli {
        password: "nope",
        ..cli
    };
    let (ok, _, err) = bad.run(&["volume", "list"]);
    assert!(!ok && err.contains("401"), "{err}");
}

/// openstacksdk's block storage proxy: create, wait for available,
/// snapshot, a volume from it, delete everything.
const SDK_SCRIPT: &str = r#"
import os, openstack
conn = openstack.connect(
    auth_url=os.environ["OS_AUTH_URL"], project_name="demo", username="demo",
    password="demo-password", user_domain_name="Default",
    project_domain_name="Default", region_name="RegionOne")
bs = conn.block_storage
v = bs.create_volume(size=1, name="sdk-vol")
v = bs.wait_for_status(v, status="available", failures=["error"], interval=1, wait=60)
s = bs.create_snapshot(volume_id=v.id, name="sdk-snap")
s = bs.wait_for_status(s, status="available", failures=["error"], interval=1, wait=60)
c = bs.create_volume(snapshot_id=s.id, name="sdk-clone")
c = bs.wait_for_status(c, status="available", failures=["error"], interval=1, wait=60)
print("volumes", sorted(x.name for x in bs.volumes()))
print("snapshots", [x.name for x in bs.snapshots()])
bs.delete_volume(c)
bs.delete_snapshot(s)
bs.wait_for_delete(s, interval=1, wait=60)
bs.delete_volume(v)
bs.wait_for_delete(v, interval=1, wait=60)
print("left", len(list(bs.volumes())))
"#;

#[test]
fn openstacksdk_block_storage_round_trip() {
    let Some(bin) = openstack_bin() else { return };
    let python = bin.with_file_name("python");
    let api = Api::start();
    let o = Command::new(&python)
        .args(["-c", SDK_SCRIPT])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", api.tmp.path())
        .env("OS_AUTH_URL", format!("{}/identity", api.base))
        .output()
        .expect("run python");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "openstacksdk script failed:\n{out}\n{err}"
    );
    assert!(
        out.contains("volumes ['sdk-clone', 'sdk-vol']"),
        "{out}\n{err}"
    );
    assert!(out.contains("snapshots ['sdk-snap']"), "{out}");
    assert!(out.contains("left 0"), "{out}");
}

#[test]
fn openstack_cli_backups_and_attachments() {
    let Some(bin) = openstack_bin() else { return };
    let api = Api::start();
    let cli = Cli {
        bin,
        api: &api,
        user: "demo",
        password: "demo-password",
    };
    let v = cli.json(&["volume", "create", "--size", "1", "bvol"]);
    let id = v["id"].as_str().expect("id").to_string();
    api_common::qemu_io(&api.nbd_uri(&id), &["write -P 0x44 0 64k"]);

    // Backup create / show / list.
    let b = cli.json(&["volume", "backup", "create", "--name", "bk1", &id]);
    let bid = b["id"].as_str().expect("backup id").to_string();
    assert_eq!(b["name"], "bk1", "{b}");
    let b = cli.json(&["volume", "backup", "show", "bk1"]);
    assert_eq!(b["id"], bid.as_str(), "{b}");
    assert_eq!(b["status"], "available", "{b}");
    assert_eq!(b["volume_id"], id.as_str(), "{b}");
    assert_eq!(b["size"], 1, "{b}");
    let list = cli.json(&["volume", "backup", "list"]);
    let row = find(&list, "ID", &bid).unwrap_or_else(|| panic!("{list}"));
    assert_eq!(row["Name"], "bk1");
    assert_eq!(row["Status"], "available");
    let inc = cli.json(&[
        "volume",
        "backup",
        "create",
        "--incremental",
        "--name",
        "bk2",
        &id,
    ]);
    let inc_id = inc["id"].as_str().expect("backup id").to_string();

    // Restore to a new volume, then over the (changed) source.
    let r = cli.json(&["volume", "backup", "restore", "bk1", "restored"]);
    assert_eq!(r["volume_name"], "restored", "{r}");
    let new = cli.json(&["volume", "show", "restored"]);
    assert_eq!(new["status"], "available", "{new}");
    let new_id = new["id"].as_str().expect("id").to_string();
    api_common::qemu_io_ro(&api.nbd_uri(&new_id), &["read -P 0x44 0 64k"]);
    api_common::qemu_io(&api.nbd_uri(&id), &["write -P 0x55 0 64k"]);
    let (ok, _, err) = cli.run(&["volume", "backup", "restore", &bid, &id]);
    assert!(!ok && err.contains("--force"), "{err}");
    let r = cli.json(&["volume", "backup", "restore", "--force", &bid, &id]);
    assert_eq!(r["volume_id"], id.as_str(), "{r}");
    api_common::qemu_io_ro(&api.nbd_uri(&id), &["read -P 0x44 0 64k"]);

    // Attachments (3.27): one made through the API, seen by the CLI.
    let r = api.send(
        "POST",
        "/volume/v3/demo/attachments",
        &[
            ("X-Auth-Token", api_common::DEMO),
            ("OpenStack-API-Version", "volume 3.27"),
            ("Content-Type", "application/json"),
        ],
        Some(
            serde_json::json!({"attachment": {"volume_uuid": id, "instance_uuid": "vm-9",
                "connector": {"host": "h"}}})
            .to_string()
            .as_bytes(),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let list = cli.json(&[
        "--os-volume-api-version",
        "3.27",
        "volume",
        "attachment",
        "list",
    ]);
    let row = find(&list, "ID", &id).unwrap_or_else(|| panic!("{list}"));
    assert_eq!(row["Volume ID"], id.as_str());
    assert_eq!(row["Server ID"], "vm-9");
    assert_eq!(row["Status"], "attached");
    let a = cli.json(&[
        "--os-volume-api-version",
        "3.27",
        "volume",
        "attachment",
        "show",
        &id,
    ]);
    assert_eq!(
        a["Status"].as_str().or(a["status"].as_str()),
        Some("attached"),
        "{a}"
    );
    cli.ok(&[
        "--os-volume-api-version",
        "3.27",
        "volume",
        "attachment",
        "delete",
        &id,
    ]);
    assert_eq!(cli.json(&["volume", "show", &id])["status"], "available");

    // Delete: the incremental, then the full one.
    cli.ok(&["volume", "backup", "delete", &inc_id]);
    cli.ok(&["volume", "backup", "delete", "bk1"]);
    assert_eq!(
        cli.json(&["volume", "backup", "list"]),
        Value::Array(vec![])
    );
}

#[test]
fn openstack_cli_qos_specs_and_encryption_types() {
    let Some(bin) = openstack_bin() else { return };
    let api = Api::start_with(Some(api_common::DEMO_AND_ADMIN_AUTH), |_| {});
    let cli = Cli {
        bin,
        api: &api,
        user: "ops",
        password: "ops-password",
    };
    cli.ok(&["volume", "type", "create", "slow"]);
    let q = cli.json(&[
        "volume",
        "qos",
        "create",
        "--consumer",
        "back-end",
        "--property",
        "write_bytes_sec=1048576",
        "q1",
    ]);
    assert_eq!(q["name"], "q1");
    assert_eq!(q["consumer"], "back-end");
    cli.ok(&[
        "volume",
        "qos",
        "set",
        "--property",
        "read_iops_sec=100",
        "q1",
    ]);
    cli.ok(&["volume", "qos", "associate", "q1", "slow"]);
    let q = cli.json(&["volume", "qos", "show", "q1"]);
    assert!(q["associations"].to_string().contains("slow"), "{q}");
    assert!(q["properties"].to_string().contains("read_iops_sec"), "{q}");
    let list = cli.json(&["volume", "qos", "list"]);
    assert!(find(&list, "Name", "q1").is_some(), "{list}");
    cli.ok(&[
        "volume",
        "qos",
        "unset",
        "--property",
        "read_iops_sec",
        "q1",
    ]);
    let q = cli.json(&["volume", "qos", "show", "q1"]);
    assert!(
        !q["properties"].to_string().contains("read_iops_sec"),
        "{q}"
    );
    cli.ok(&[
        "volume",
        "qos",
        "disassociate",
        "--volume-type",
        "slow",
        "q1",
    ]);
    cli.ok(&["volume", "qos", "delete", "q1"]);
    let list = cli.json(&["volume", "qos", "list"]);
    assert_eq!(list, Value::Array(vec![]));

    // An encrypted type is stored; no volume of it is made.
    cli.ok(&[
        "volume",
        "type",
        "create",
        "--encryption-provider",
        "luks",
        "--encryption-cipher",
        "aes-xts-plain64",
        "--encryption-key-size",
        "256",
        "--encryption-control-location",
        "front-end",
        "enc",
    ]);
    let t = cli.json(&["volume", "type", "show", "--encryption-type", "enc"]);
    assert!(t["encryption"].to_string().contains("luks"), "{t}");
    let (ok, _, err) = cli.run(&["volume", "create", "--type", "enc", "--size", "1", "x"]);
    assert!(!ok);
    assert!(err.contains("no key manager"), "{err}");
}
