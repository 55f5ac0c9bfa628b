//! The offline commands while `blockd serve` holds the data directory:
//! they reach the store through the server's admin socket and behave as
//! they do offline (same output, same exit codes), with NBD clients
//! writing at the same time.

mod common;

use common::{blockd, blockd_output, ok, pattern, Serve};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn text(o: &std::process::Output) -> (String, String, i32) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

#[test]
fn commands_run_through_the_running_server() {
    let (_t, dir) = common::data_dir();
    let mut srv = Serve::start(&dir, &[]);
    let sock = dir.join("admin.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "admin socket must be owner-only");

    // Create and use a volume while the server runs.
    let id = blockd(&dir, &["volume", "create", "v1", "--size", "8M"]);
    assert_eq!(id.trim().len(), 36, "prints the new id: {id}");
    let data = pattern(1 << 20, 7);
    let src = dir.parent().unwrap().join("src.raw");
    std::fs::write(&src, &data).unwrap();
    ok(
        "qemu-img",
        &[
            "convert",
            "-n",
            "-f",
            "raw",
            "-O",
            "raw",
            src.to_str().unwrap(),
            &srv.uri("v1"),
        ],
    );
    let snap = blockd(&dir, &["snapshot", "create", "v1", "s1"]);
    assert_eq!(snap.trim().len(), 36);
    let list = blockd(&dir, &["snapshot", "list", "--json"]);
    let items: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(items[0]["name"], "s1");

    // Export with a path relative to the client's directory.
    let work = dir.parent().unwrap();
    let o = Command::new(common::bin())
        .current_dir(work)
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "export",
            "s1",
            "s1.raw",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let back = std::fs::read(work.join("s1.raw")).unwrap();
    assert_eq!(back.len(), 8 << 20);
    assert!(
        back[..1 << 20] == data[..],
        "export through the server returns the data written over NBD"
    );
    assert!(back[1 << 20..].iter().all(|&b| b == 0));

    // Import a file, clone, image: all online.
    let imp = blockd(&dir, &["import", src.to_str().unwrap(), "imported"]);
    assert_eq!(imp.trim().len(), 36);
    blockd(&dir, &["clone", "s1", "c1"]);
    blockd(&dir, &["image", "create", "s1", "img1"]);
    let out = ok("nbdinfo", &["--size", &srv.uri("c1")]);
    assert_eq!(
        out.trim(),
        (8u64 << 20).to_string(),
        "the clone is served at once"
    );

    // Maintenance online: check, scrub, gc, stats.
    let (out, _, code) = text(&blockd_output(&dir, &["check"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 corruption, 0 leaks"), "{out}");
    let (out, _, code) = text(&blockd_output(&dir, &["scrub"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 errors"), "{out}");
    let (out, _, code) = text(&blockd_output(&dir, &["gc"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("freed "), "{out}");
    let stats: serde_json::Value =
        serde_json::from_str(&blockd(&dir, &["stats", "--json"])).unwrap();
    assert!(stats["objects"].as_array().unwrap().len() >= 5);

    // Errors: the same one line and exit code as offline.
    let online = text(&blockd_output(&dir, &["volume", "delete", "nope"]));
    assert_eq!(online.2, 2);
    assert!(online.1.starts_with("blockd: "), "{online:?}");
    // Commands that cannot run beside the server say so.
    let (_, err, code) = text(&blockd_output(&dir, &["mount", "/nonexistent-mnt"]));
    assert_eq!(code, 2);
    assert!(err.contains("running `blockd serve`"), "{err}");

    // Deleting online removes the export.
    blockd(&dir, &["volume", "delete", "c1"]);
    assert!(!common::run("nbdinfo", &[&srv.uri("c1")]).status.success());

    // Stop the server: the same commands now run offline and agree.
    let online_list = blockd(&dir, &["volume", "list"]);
    assert!(srv.signal("TERM").success());
    assert!(!sock.exists(), "the admin socket goes with the server");
    let offline_list = blockd(&dir, &["volume", "list"]);
    assert_eq!(online_list, offline_list);
    let offline = text(&blockd_output(&dir, &["volume", "delete", "nope"]));
    assert_eq!(online, offline, "errors read the same online and offline");
}

#[test]
fn a_stale_admin_socket_is_ignored_and_replaced() {
    let (_t, dir) = common::data_dir();
    blockd(&dir, &["volume", "create", "v1", "--size", "1M"]);
    // A killed server leaves its socket behind.
    let mut srv = Serve::start(&dir, &[]);
    srv.kill9();
    assert!(dir.join("admin.sock").exists());
    // Offline commands still work (nobody answers on the socket)...
    let list = blockd(&dir, &["volume", "list"]);
    assert!(list.contains("v1"), "{list}");
    // ...and the next server binds a fresh one.
    let srv = Serve::start(&dir, &[]);
    let list = blockd(&dir, &["volume", "list"]);
    assert!(list.contains("v1"), "{list}");
    drop(srv);
}
