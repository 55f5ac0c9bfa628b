//! The object-storage tier against a real S3 server: Ceph's RADOS Gateway
//! on a one-node cluster that the test starts with scripts/ceph.sh (the
//! test is skipped, saying so, only when the Ceph binaries are absent;
//! scripts/test.sh installs them).
//!
//! 1. Clean stop: `serve --object-store` with data written through NBD
//!    (volume, snapshot, image), stopped with SIGTERM, which waits for the
//!    final generation to reach the bucket; `restore` into an empty
//!    directory (a non-empty one is refused), served again: every byte of
//!    every object reads back through NBD, and `check` passes; `stats`
//!    and /metrics show the uploader's counters.
//! 2. kill -9 while uploading: a volume written in order while generations
//!    upload, the server killed; the restored store is a consistent prefix
//!    of the log: each 64 KiB piece holds its new or its old contents, the
//!    new ones a prefix of the write order, and `check` passes.
//!
//! Prints the Ceph start time and the upload and restore throughput.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running one-node Ceph with radosgw (stopped when dropped).
struct Ceph {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    bucket: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ceph.sh")
}

impl Ceph {
    /// Starts the cluster; `None` (the test is skipped) when Ceph is not
    /// installed.
    fn start() -> Option<Ceph> {
        let missing: Vec<&str> = ["ceph-mon", "ceph-mgr", "ceph-osd", "radosgw", "ceph"]
            .into_iter()
            .filter(|b| {
                !Command::new("sh")
                    .args(["-c", &format!("command -v {b}")])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
                    .success()
            })
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "SKIPPED tests/object_store.rs: Ceph is not installed (missing {missing:?}); \
                 scripts/test.sh installs ceph-mon ceph-mgr ceph-osd ceph-common radosgw"
            );
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ceph");
        let t = Instant::now();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/ceph.sh start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "ceph (mon, mgr, osd, radosgw) started in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        let env = std::fs::read_to_string(dir.join("env")).unwrap();
        let mut bucket = String::new();
        for line in env.lines() {
            let (k, v) = line.split_once('=').unwrap();
            if k == "S3_BUCKET" {
                bucket = v.to_string();
            }
            // The servers and commands this test runs inherit these.
            std::env::set_var(k, v);
        }
        assert!(!bucket.is_empty());
        Some(Ceph {
            dir,
            _tmp: tmp,
            bucket,
        })
    }

    fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }
}

impl Drop for Ceph {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// Python (libnbd) helpers: deterministic 64 KiB pieces per (label, offset).
const PY: &str = r#"
import random
PIECE = 65536
def piece(label, off):
    return random.Random(f"{label}:{off}").randbytes(PIECE)
def fill(h, label, start, end, flush_every=4 << 20, delay=0.0):
    import time
    for off in range(start, end, PIECE):
        h.pwrite(piece(label, off), off)
        if (off + PIECE) % flush_every == 0:
            h.flush()
        if delay:
            time.sleep(delay)
    h.flush()
def verify(h, labels_at):
    size = h.get_size()
    bad = []
    for off in range(0, size, PIECE):
        got = h.pread(PIECE, off)
        if got != piece(labels_at(off), off):
            bad.append(off)
    return bad
h = nbd.NBD()
h.connect_uri(uri)
"#;

fn py(srv: &Serve, export: &str, code: &str) -> String {
    nbdsh(srv, export, &format!("{PY}{code}"))
}

/// `blockd` with the given data directory; asserts success; stdout.
fn cli(dir: &Path, args: &[&str]) -> String {
    blockd(dir, args)
}

/// The server's object-store counters (`blockd stats --json`, online).
fn tier_stats(dir: &Path) -> serde_json::Value {
    let out = cli(dir, &["stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["object_store"].clone()
}

#[test]
fn object_store_on_radosgw() {
    let Some(ceph) = Ceph::start() else {
        return;
    };
    clean_stop_then_restore(&ceph);
    kill9_then_restore(&ceph);
}

fn clean_stop_then_restore(ceph: &Ceph) {
    let (_t, dir) = data_dir();
    let size = 32u64 << 20;
    cli(
        &dir,
        &[
            "--segment-size",
            "1M",
            "volume",
            "create",
            "vol",
            "--size",
            "32M",
        ],
    );
    let url = ceph.url("clean");
    // No periodic checkpoints: the final generation, uploaded at stop,
    // carries everything (which measures the upload).
    let mut srv = Serve::start(
        &dir,
        &[
            "--object-store",
            &url,
            "--object-store-interval",
            "3600",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    py(&srv, "vol", &format!("fill(h, 'a', 0, {size})"));
    cli(&dir, &["snapshot", "create", "vol", "snap"]);
    cli(&dir, &["image", "create", "snap", "img"]);
    py(&srv, "vol", "fill(h, 'b', 0, 8 << 20)");
    let st = tier_stats(&dir);
    assert!(st["local_generation"].as_u64().unwrap() >= 1, "{st}");
    let text = cli(&dir, &["stats"]);
    assert!(text.contains("object store: generation"), "{text}");
    let maddr = srv
        .log()
        .iter()
        .find_map(|l| l.split("metrics on http://").nth(1).map(str::to_string))
        .expect("metrics address logged");
    let metrics = ureq::get(&format!("http://{}", maddr.trim()))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for name in [
        "blockd_tier_pending_bytes ",
        "blockd_tier_local_generation ",
        "blockd_tier_remote_generation ",
        "blockd_tier_uploaded_bytes_total ",
    ] {
        assert!(metrics.contains(name), "no {name} in {metrics}");
    }

    let t = Instant::now();
    let status = srv.signal("TERM");
    let stop = t.elapsed();
    assert!(status.success(), "serve exited {status}: {:#?}", srv.log());
    let log = srv.log();
    let line = log
        .iter()
        .find(|l| l.contains("the bucket holds the final generation"))
        .unwrap_or_else(|| panic!("no final upload in the log: {log:#?}"));
    let uploaded: u64 = line
        .split(" (")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(uploaded >= size + (8 << 20), "{line}");
    eprintln!(
        "clean stop: uploaded {:.1} MiB to radosgw in {:.2}s at stop ({:.0} MiB/s)",
        uploaded as f64 / 1048576.0,
        stop.as_secs_f64(),
        uploaded as f64 / 1048576.0 / stop.as_secs_f64()
    );
    for l in &log {
        assert!(
            !l.contains(&std::env::var("AWS_SECRET_ACCESS_KEY").unwrap()),
            "a secret in the log: {l}"
        );
    }

    // Restore into an empty directory; a non-empty one is refused.
    let (_t2, dst) = data_dir();
    let t = Instant::now();
    let out = cli(&dst, &["restore", "--object-store", &url]);
    let took = t.elapsed();
    assert!(out.contains("restored generation"), "{out}");
    eprintln!("restore: {} ({:.2}s)", out.trim(), took.as_secs_f64());
    let again = blockd_output(&dst, &["restore", "--object-store", &url]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{again:?}"
    );
    let empty = blockd_output(
        &dst.with_file_name("never"),
        &["restore", "--object-store", &ceph.url("nothing-here")],
    );
    assert_eq!(empty.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&empty.stderr).contains("no committed generation"),
        "{empty:?}"
    );

    let mut srv = Serve::start(&dst, &[]);
    let bad = py(
        &srv,
        "vol",
        "print(verify(h, lambda off: 'b' if off < (8 << 20) else 'a'))",
    );
    assert_eq!(bad.trim(), "[]", "volume pieces differ at these offsets");
    for obj in ["snap", "img"] {
        let bad = py(&srv, obj, "print(verify(h, lambda off: 'a'))");
        assert_eq!(bad.trim(), "[]", "{obj} pieces differ at these offsets");
    }
    // The restored store takes writes.
    py(&srv, "vol", "fill(h, 'c', 0, 1 << 20)");
    assert!(srv.signal("TERM").success());
    // Exit status 0: no damage, no leaks.
    cli(&dst, &["check"]);
}

fn kill9_then_restore(ceph: &Ceph) {
    let (_t, dir) = data_dir();
    let size = 16u64 << 20;
    cli(
        &dir,
        &[
            "--segment-size",
            "1M",
            "volume",
            "create",
            "kv",
            "--size",
            "16M",
        ],
    );
    let url = ceph.url("kill9");
    let mut srv = Serve::start(
        &dir,
        &["--object-store", &url, "--object-store-interval", "0.2"],
    );
    // Old contents, uploaded before the new ones start.
    py(&srv, "kv", &format!("fill(h, 'old', 0, {size})"));
    std::thread::sleep(Duration::from_millis(500));
    let target = tier_stats(&dir)["local_generation"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = tier_stats(&dir);
        if st["remote_generation"].as_u64().unwrap() >= target {
            break;
        }
        assert!(Instant::now() < deadline, "upload does not catch up: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // New contents, written in order, slowly enough for several
    // generations to go up meanwhile; the server dies mid-way.
    let code = format!("{PY}fill(h, 'new', 0, {size}, flush_every=1 << 20, delay=0.02)");
    let mut writer = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(format!(
            "import nbd, os, sys\nuri = {:?}\n{code}",
            srv.uri("kv")
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let before = tier_stats(&dir);
    srv.kill9();
    let _ = writer.kill();
    let _ = writer.wait();
    eprintln!("kill -9 with uploader at {before}");

    let (_t2, dst) = data_dir();
    let out = cli(&dst, &["restore", "--object-store", &url]);
    eprintln!("restore after kill -9: {}", out.trim());
    let g: u64 = out
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        g >= target,
        "restored generation {g} is older than {target}"
    );
    let mut srv = Serve::start(&dst, &[]);
    // Each piece is old or new; the new ones form a prefix.
    let kinds = py(
        &srv,
        "kv",
        "size = h.get_size()\n\
         out = ''\n\
         for off in range(0, size, PIECE):\n\
         \x20   got = h.pread(PIECE, off)\n\
         \x20   out += 'n' if got == piece('new', off) else ('o' if got == piece('old', off) else 'x')\n\
         print(out)",
    );
    let kinds = kinds.trim();
    assert_eq!(kinds.len() as u64, size / 65536);
    let new = kinds.chars().take_while(|&c| c == 'n').count();
    assert!(
        kinds[new..].chars().all(|c| c == 'o'),
        "not a prefix of the writes: {kinds}"
    );
    eprintln!(
        "restored after kill -9: generation {g}, {new} of {} pieces new",
        kinds.len()
    );
    assert!(srv.signal("TERM").success());
    cli(&dst, &["check"]);
}
