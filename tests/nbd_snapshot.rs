//! NBD snapshot and image exports (group C): READ_ONLY flag, writes, trims
//! and zeroes refused with EPERM (libnbd in non-strict mode sends them), and
//! later writes to the volume change neither the snapshot's bytes nor its map.

mod common;
use common::*;

#[test]
fn snapshots_are_read_only_and_frozen() {
    let (t, d) = data_dir();
    let src = t.path().join("src.raw");
    let mut bytes = vec![0u8; 8 << 20];
    bytes[..1 << 20].copy_from_slice(&pattern(1 << 20, 5));
    bytes[4 << 20..5 << 20].copy_from_slice(&pattern(1 << 20, 6));
    std::fs::write(&src, &bytes).unwrap();
    blockd(&d, &["import", src.to_str().unwrap(), "v"]);
    let sid = blockd(&d, &["snapshot", "create", "v", "s"])
        .trim()
        .to_string();
    blockd(&d, &["image", "create", "v", "img"]);
    let mut s = Serve::start(&d, &[]);
    s.tmp = Some(t);

    for name in ["s", sid.as_str(), "img"] {
        let info: serde_json::Value =
            serde_json::from_str(&ok("nbdinfo", &["--json", &s.uri(name)])).unwrap();
        assert_eq!(info["exports"][0]["is_read_only"], true, "{name}: {info}");
        assert_eq!(info["exports"][0]["can_trim"], false);
    }
    let v_info: serde_json::Value =
        serde_json::from_str(&ok("nbdinfo", &["--json", &s.uri("v")])).unwrap();
    assert_eq!(v_info["exports"][0]["is_read_only"], false);

    let map_before = ok("nbdinfo", &["--map", &s.uri("s")]);
    // Writes of every kind are refused with EPERM, and the connection stays.
    let out = nbdsh(
        &s,
        "s",
        r#"
h = nbd.NBD()
h.set_strict_mode(0)
h.connect_uri(uri)
for name, f in [("write", lambda: h.pwrite(b"x" * 4096, 0)),
                ("write_fua", lambda: h.pwrite(b"x" * 512, 4096, nbd.CMD_FLAG_FUA)),
                ("trim", lambda: h.trim(4096, 0)),
                ("zero", lambda: h.zero(4096, 0))]:
    try:
        f()
        print(name, "succeeded")
    except nbd.Error as e:
        print(name, e.errnum)
assert h.pread(4, 0) == h.pread(4, 0)
h.flush()
print("alive")
"#,
    );
    for op in ["write", "write_fua", "trim", "zero"] {
        assert!(out.contains(&format!("{op} 1\n")), "{op} not EPERM: {out}");
    }
    assert!(out.contains("alive"), "{out}");
    let o = run("qemu-io", &["-f", "raw", "-c", "write 0 4k", &s.uri("s")]);
    assert!(
        !o.status.success()
            || String::from_utf8_lossy(&o.stdout).contains("error")
            || String::from_utf8_lossy(&o.stderr).contains("read-only")
            || String::from_utf8_lossy(&o.stderr).contains("ermission")
    );

    // Overwrite, trim and fill the volume: the snapshot does not change.
    let u = s.uri("v");
    ok(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0xee 0 2M",
            "-c",
            "discard 4M 1M",
            "-c",
            "write -P 1 6M 1M",
            &u,
        ],
    );
    for name in ["s", "img"] {
        let out = t_out(&s, name);
        ok("nbdcopy", &[&s.uri(name), out.to_str().unwrap()]);
        assert!(std::fs::read(&out).unwrap() == bytes, "{name} changed");
    }
    assert_eq!(ok("nbdinfo", &["--map", &s.uri("s")]), map_before);
    assert_ne!(ok("nbdinfo", &["--map", &u]), map_before);
}

fn t_out(s: &Serve, name: &str) -> std::path::PathBuf {
    s.tmp.as_ref().unwrap().path().join(format!("{name}.out"))
}

/// Waits until the server's pending-free queue is empty; returns its stats.
fn wait_freed(dir: &std::path::Path) -> serde_json::Value {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let st: serde_json::Value =
            serde_json::from_str(&blockd(dir, &["stats", "--json"])).unwrap();
        if st["pending_free_refs"].as_u64() == Some(0) {
            return st;
        }
        assert!(std::time::Instant::now() < end, "frees not done: {st}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn trims_and_deletes_are_freed_in_the_background() {
    let (t, d) = data_dir();
    let src = t.path().join("src.raw");
    let bytes = pattern(8 << 20, 9);
    std::fs::write(&src, &bytes).unwrap();
    blockd(&d, &["import", src.to_str().unwrap(), "v"]);
    let sid = blockd(&d, &["snapshot", "create", "v", "s"])
        .trim()
        .to_string();
    let mut s = Serve::start(&d, &[]);
    s.tmp = Some(t);
    let u = s.uri("v");
    // The volume diverges from its snapshot, then is trimmed whole: its
    // map goes on the pending-free queue and a thread frees it.
    ok("qemu-io", &["-f", "raw", "-c", "write -P 0xab 0 8M", &u]);
    ok("qemu-io", &["-f", "raw", "-c", "discard 0 8M", &u]);
    assert!(s.wait_log("pending frees done", std::time::Duration::from_secs(30)));
    let st = wait_freed(&s.dir);
    assert_eq!(st["allocated_bytes"].as_u64(), Some(8 << 20), "{st}");
    let map = ok("nbdinfo", &["--map", &u]);
    assert!(!map.contains("data"), "{map}");
    let out = t_out(&s, "s");
    ok("nbdcopy", &[&s.uri("s"), out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == bytes, "snapshot changed");
    // A delete through the admin socket answers with the snapshot gone.
    blockd(&s.dir, &["snapshot", "delete", "s"]);
    assert!(!blockd(&s.dir, &["snapshot", "list"]).contains(&sid));
    let st = wait_freed(&s.dir);
    assert_eq!(st["allocated_bytes"].as_u64(), Some(0), "{st}");
    let dir = s.dir.clone();
    assert!(s.signal("TERM").success());
    assert!(blockd(&dir, &["check"]).contains("0 corruption, 0 leaks"));
}

#[test]
fn kill_9_after_a_delete_resumes_frees_and_checks_clean() {
    let (t, d) = data_dir();
    let src = t.path().join("src.raw");
    let bytes = pattern(64 << 20, 3);
    std::fs::write(&src, &bytes).unwrap();
    blockd(&d, &["import", src.to_str().unwrap(), "v"]);
    blockd(&d, &["snapshot", "create", "v", "s"]);
    blockd(&d, &["import", src.to_str().unwrap(), "w"]);
    let mut s = Serve::start(&d, &[]);
    s.tmp = Some(t);
    // Killed as soon as the deletes answered, while the thread frees or
    // just after (16,000 references take it about 10 ms; the engine's
    // tests, `background_free.rs` and the power-cut generations, stage
    // crashes in the middle of freeing exactly).
    blockd(&s.dir, &["volume", "delete", "v"]);
    blockd(&s.dir, &["snapshot", "delete", "s"]);
    s.kill9();
    let dir = s.dir.clone();
    // Offline, queued references count as references: no leak, no
    // corruption; the objects stay deleted.
    let out = blockd(&dir, &["check"]);
    assert!(out.contains("0 corruption, 0 leaks"), "{out}");
    assert!(!blockd(&dir, &["volume", "list"]).contains(" v "));
    // The server resumes the frees on start.
    let s = Serve::start(&dir, &[]);
    let st = wait_freed(&s.dir);
    assert_eq!(st["allocated_bytes"].as_u64(), Some(64 << 20), "{st}");
    let out = t_out_dir(&s, &dir);
    ok("nbdcopy", &[&s.uri("w"), out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == bytes, "w changed");
    let mut s = s;
    assert!(s.signal("TERM").success());
    assert!(blockd(&dir, &["check"]).contains("0 corruption, 0 leaks"));
}

fn t_out_dir(_s: &Serve, dir: &std::path::Path) -> std::path::PathBuf {
    dir.parent().unwrap().join("w.out")
}
