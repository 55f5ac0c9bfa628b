//! What the object-store tests (tests/object_store.rs,
//! tests/object_store_faults.rs) share: a one-node Ceph with the RADOS
//! Gateway, started with scripts/ceph.sh and stopped when dropped, whose S3
//! settings are put in this process's environment (the servers and
//! commands a test runs inherit them; a test is skipped, saying so, only
//! when the Ceph binaries are absent: scripts/test.sh installs them); the
//! libnbd helpers writing and checking deterministic 64 KiB pieces; the
//! uploader's counters.
#![allow(dead_code)]

use crate::common::{blockd, nbdsh, Serve};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running one-node Ceph with radosgw (stopped when dropped).
pub struct Ceph {
    /// The cluster's directory (ceph.conf, keyrings, logs, env).
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    /// The bucket scripts/ceph.sh made.
    pub bucket: String,
    /// radosgw's endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ceph.sh")
}

impl Ceph {
    /// Starts the cluster; `None` (the test is skipped) when Ceph is not
    /// installed. `test` names the caller in the skip message.
    pub fn start(test: &str) -> Option<Ceph> {
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
                "SKIPPED {test}: Ceph is not installed (missing {missing:?}); \
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
        let mut endpoint = String::new();
        for line in env.lines() {
            let (k, v) = line.split_once('=').unwrap();
            match k {
                "S3_BUCKET" => bucket = v.to_string(),
                "AWS_ENDPOINT_URL" => endpoint = v.to_string(),
                _ => {}
            }
            // The servers and commands this test runs inherit these.
            std::env::set_var(k, v);
        }
        assert!(!bucket.is_empty() && !endpoint.is_empty());
        Some(Ceph {
            dir,
            _tmp: tmp,
            bucket,
            endpoint,
        })
    }

    /// The `--object-store` URL of `prefix` in the bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// Runs `radosgw-admin` on the cluster as its admin; returns the output
    /// whatever the status.
    pub fn radosgw_admin(&self, args: &[&str]) -> Output {
        Command::new("radosgw-admin")
            .arg("--conf")
            .arg(self.dir.join("ceph.conf"))
            .args(["--name", "client.admin", "--keyring"])
            .arg(self.dir.join("keyring.client.admin"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run radosgw-admin")
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
pub const PY: &str = r#"
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
def fill_retry(h, label, start, end):
    # fill, trying a write refused with ENOSPC (a data directory over its
    # cache bound until uploads let segments be evicted) again every 0.1 s
    # for up to 60 s, as a client would; returns how many were refused.
    import time
    refused = 0
    for off in range(start, end, PIECE):
        for attempt in range(600):
            try:
                h.pwrite(piece(label, off), off)
                if (off + PIECE) % (1 << 20) == 0:
                    h.flush()
                break
            except nbd.Error as e:
                if e.errnum != 28:
                    raise
                refused += 1
                time.sleep(0.1)
        else:
            raise Exception(f"still ENOSPC at {off} after 60 s")
    h.flush()
    return refused
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

/// Runs `code` after [`PY`] on `export` (`h` connected); stdout.
pub fn py(srv: &Serve, export: &str, code: &str) -> String {
    nbdsh(srv, export, &format!("{PY}{code}"))
}

/// Creates volume `name` of `size` (such as "32M") in a store of 1 MiB
/// segments, so that a few megabytes of writes seal segments to upload.
pub fn small_segment_volume(dir: &Path, name: &str, size: &str) {
    blockd(
        dir,
        &[
            "--segment-size",
            "1M",
            "volume",
            "create",
            name,
            "--size",
            size,
        ],
    );
}

/// The server's object-store counters (`blockd stats --json`, online).
pub fn tier_stats(dir: &Path) -> serde_json::Value {
    let out = blockd(dir, &["stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["object_store"].clone()
}

/// Waits until the bucket holds the generation committed locally now and
/// the cache pass after it left the data directory within its bound.
pub fn caught_up(dir: &Path) -> serde_json::Value {
    let target = tier_stats(dir)["local_generation"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = tier_stats(dir);
        if st["remote_generation"].as_u64().unwrap() >= target
            && !st["cache_full"].as_bool().unwrap()
            && st["cache_dir_bytes"].as_u64().unwrap() <= st["cache_bound"].as_u64().unwrap()
        {
            return st;
        }
        assert!(Instant::now() < deadline, "uploads do not catch up: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
