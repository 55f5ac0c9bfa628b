//! Disk full, for real: `blockd serve` on a 512 MiB tmpfs made by the test,
//! filled through NBD. Clients get ENOSPC, earlier data stay intact, the
//! server keeps serving, deleting a volume (through the REST API) frees
//! room so that writes resume without a restart, and `blockd check` is
//! clean afterwards. Needs root (to mount the tmpfs), as in CI.

mod api_common;

use api_common::{blockd, run, Api, AUTH, DEMO};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Lazily unmounts the tmpfs when the test ends, however it ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", &self.0.display().to_string()]);
    }
}

fn is_root() -> bool {
    String::from_utf8_lossy(&run("id", &["-u"]).stdout).trim() == "0"
}

fn mount_tmpfs(dir: &Path, size: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let o = run(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            &dir.display().to_string(),
        ],
    );
    assert!(
        o.status.success(),
        "mount tmpfs: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs one qemu-io command on an NBD export; (success, output).
fn qemu_io(api: &Api, export: &str, cmd: &str) -> (bool, String) {
    let o = run("qemu-io", &["-f", "raw", "-c", cmd, &api.nbd_uri(export)]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // qemu-io exits 0 even when a command fails: look at what it printed.
    let failed =
        !o.status.success() || text.contains("failed") || text.contains("Pattern verification");
    (!failed, text)
}

fn create_volume(api: &Api, gb: u64) -> String {
    let r = api.post(
        "/v1.1/demo/os-volumes",
        DEMO,
        &json!({"volume": {"size": gb}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let v: Value = serde_json::from_str(&r.text).unwrap();
    v["volume"]["id"].as_str().unwrap().to_string()
}

#[test]
fn full_disk_refuses_writes_cleanly_and_a_delete_makes_room() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let mut api = Api::start_with(Some(AUTH), |dir| mount_tmpfs(dir, "512M"));
    let _mount = Mount(api.dir.clone());

    let a = create_volume(&api, 1);
    let b = create_volume(&api, 1);

    // B: 160 MiB of data that must survive whatever happens to A.
    let (ok, out) = qemu_io(&api, &b, "write -P 0x5b 0 160M");
    assert!(ok, "{out}");
    let (ok, out) = qemu_io(&api, &b, "flush");
    assert!(ok, "{out}");

    // A: more than the disk holds. The write fails with ENOSPC.
    let (ok, out) = qemu_io(&api, &a, "write -P 0xa1 0 1G");
    assert!(!ok, "a 1 GiB write fit on a 512 MiB disk: {out}");
    assert!(out.contains("No space left on device"), "{out}");

    // Nothing lost, nothing corrupted, the server still serves.
    let (ok, out) = qemu_io(&api, &b, "read -P 0x5b 0 160M");
    assert!(ok, "{out}");
    assert!(api.alive(), "server died on a full disk");
    let (ok, out) = qemu_io(&api, &a, "read 0 4k");
    assert!(ok, "{out}");
    // Still full: another large write is refused as cleanly.
    let (ok, out) = qemu_io(&api, &a, "write -P 0xb2 0 200M");
    assert!(!ok && out.contains("No space left on device"), "{out}");

    // Deleting B frees room; writes resume without a restart.
    let r = api.delete(&format!("/v1.1/demo/os-volumes/{b}"), DEMO);
    assert_eq!(r.status, 202, "{}", r.text);
    let (ok, out) = qemu_io(&api, &a, "write -P 0xc3 0 96M");
    assert!(ok, "write after the delete: {out}");
    let (ok, out) = qemu_io(&api, &a, "flush");
    assert!(ok, "{out}");
    let (ok, out) = qemu_io(&api, &a, "read -P 0xc3 0 96M");
    assert!(ok, "{out}");
    assert!(
        api.log()
            .iter()
            .any(|l| l.contains("disk full: reclaimed space")),
        "no reclaim was logged"
    );

    // A clean stop and start on the full disk, then an offline check.
    api.restart();
    let (ok, out) = qemu_io(&api, &a, "read -P 0xc3 0 96M");
    assert!(ok, "after restart: {out}");
    api.stop();
    let report = blockd(&api.dir, &["check"]);
    assert!(report.contains("0 corruption"), "{report}");
}
