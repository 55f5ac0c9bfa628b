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
//! 3. Bounded cache, deletes, lazy restore (`cache_and_lazy_restore`):
//!    a volume written through NBD well past `--cache-dir-size` (uploads
//!    keeping up between slices) leaves the data directory within the
//!    bound, with segments evicted; every object reads back byte-exact
//!    through ranged GETs (counted in `stats`); after a snapshot delete,
//!    `gc` and newer generations the bucket holds exactly what the newest
//!    two commit points name; offline `check` and `export` read through the
//!    bucket (and fail clearly without it); a lazy restore downloads no
//!    segment, serves every object back byte-exact, and is compared with
//!    `restore --full`.
//!
//! 4. The remote durability mode (kill -9 right after acknowledged
//!    flushes, restored into new directories), fencing of one server by
//!    another, and flush latency in both modes: tests/object_store_remote.
//!
//! Prints the Ceph start time, the upload and restore throughput, the
//! ranged GET latency and the lazy and full restore times.

mod common;
mod object_store_remote;
mod objstore_common;

use common::*;
use object_store_remote::{fencing_two_servers, flush_latency, remote_kill9_rounds};
use objstore_common::{caught_up, py, small_segment_volume, tier_stats, Ceph, PY};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `blockd` with the given data directory; asserts success; stdout.
fn cli(dir: &Path, args: &[&str]) -> String {
    blockd(dir, args)
}

#[test]
fn object_store_on_radosgw() {
    let Some(ceph) = Ceph::start("tests/object_store.rs") else {
        return;
    };
    clean_stop_then_restore(&ceph);
    kill9_then_restore(&ceph);
    cache_and_lazy_restore(&ceph);
    remote_kill9_rounds(&ceph);
    fencing_two_servers(&ceph);
    flush_latency(&ceph);
}

fn clean_stop_then_restore(ceph: &Ceph) {
    let (_t, dir) = data_dir();
    let size = 32u64 << 20;
    small_segment_volume(&dir, "vol", "32M");
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
    let out = cli(&dst, &["restore", "--full", "--object-store", &url]);
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
    small_segment_volume(&dir, "kv", "16M");
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
    let out = cli(&dst, &["restore", "--full", "--object-store", &url]);
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

/// Offsets of the 64 KiB pieces of `file` that differ from `label`'s.
fn file_bad_pieces(file: &Path, label: &str) -> String {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(format!(
            "import random\nPIECE = 65536\nf = open({:?}, 'rb').read()\n\
             print([o for o in range(0, len(f), PIECE) \
             if f[o:o + PIECE] != random.Random(f'{label}:{{o}}').randbytes(PIECE)])",
            file.display().to_string()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn cache_and_lazy_restore(ceph: &Ceph) {
    let (_t, dir) = data_dir();
    let size = 64u64 << 20;
    let slice = 8u64 << 20;
    let bound = 24u64 << 20;
    cli(
        &dir,
        &[
            "--segment-size",
            "2M",
            "volume",
            "create",
            "vol",
            "--size",
            "64M",
        ],
    );
    let url = ceph.url("cache");
    let mut srv = Serve::start(
        &dir,
        &[
            "--object-store",
            &url,
            "--object-store-interval",
            "0.3",
            "--cache-dir-size",
            "24M",
        ],
    );
    // A slice written faster than the uploads go may take the directory
    // over its bound before older segments can be evicted; such writes get
    // ENOSPC (the bound holds) and are tried again, as a client would.
    let t = Instant::now();
    let mut refused = 0u64;
    for at in (0..size).step_by(slice as usize) {
        let out = py(
            &srv,
            "vol",
            &format!("print(fill_retry(h, 'a', {at}, {}))", at + slice),
        );
        refused += out.trim().parse::<u64>().unwrap();
        caught_up(&dir);
    }
    eprintln!(
        "cache: wrote {} MiB through NBD with uploads keeping up in {:.1}s ({refused} writes refused with ENOSPC and retried)",
        size >> 20,
        t.elapsed().as_secs_f64()
    );
    cli(&dir, &["snapshot", "create", "vol", "snap"]);
    cli(&dir, &["image", "create", "snap", "img"]);
    py(&srv, "vol", &format!("fill_retry(h, 'b', 0, {slice})"));
    // The bound is kept at each commit in the bucket; between commits new
    // records (the writes, the background cleaner's copies) add to the
    // directory until they are uploaded and older segments evicted, so wait
    // for a commit that finds it settled.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (st, usage) = loop {
        let st = caught_up(&dir);
        let usage = tier::cache::dir_usage(&dir);
        if usage <= bound {
            break (st, usage);
        }
        assert!(
            Instant::now() < deadline,
            "data dir holds {usage} bytes, over its bound {bound}: {st}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(st["evicted_segments"].as_u64().unwrap() >= 10, "{st}");
    let gets = st["range_gets"].as_u64().unwrap();
    let bad = py(
        &srv,
        "vol",
        &format!("print(verify(h, lambda off: 'b' if off < {slice} else 'a'))"),
    );
    assert_eq!(bad.trim(), "[]", "volume pieces differ at these offsets");
    for obj in ["snap", "img"] {
        let bad = py(&srv, obj, "print(verify(h, lambda off: 'a'))");
        assert_eq!(bad.trim(), "[]", "{obj} pieces differ at these offsets");
    }
    let st = tier_stats(&dir);
    let fetched = st["range_gets"].as_u64().unwrap() - gets;
    assert!(fetched > 0, "no ranged GET for evicted segments: {st}");
    eprintln!(
        "cache: data dir {:.1} MiB of a {} MiB bound after {} MiB written; reading back took {fetched} ranged GETs; \
         {} GETs in all, {:.1} MiB, {:.2} ms mean",
        usage as f64 / 1048576.0,
        bound >> 20,
        (size + slice) >> 20,
        st["range_gets"],
        st["range_bytes"].as_u64().unwrap() as f64 / 1048576.0,
        st["range_get_micros"].as_u64().unwrap() as f64 / 1000.0 / st["range_gets"].as_u64().unwrap() as f64
    );

    // Deletes reach the bucket.
    cli(&dir, &["snapshot", "delete", "snap"]);
    cli(&dir, &["gc"]);
    for label in ["c", "d", "e"] {
        py(
            &srv,
            "vol",
            &format!("fill(h, '{label}', {slice}, {})", 2 * slice),
        );
        caught_up(&dir);
    }
    let st = tier_stats(&dir);
    assert!(st["deleted_objects"].as_u64().unwrap() > 0, "{st}");
    // Stopped, the server's last generation is committed and pruned
    // (while it runs, the next generation's objects may be going up).
    assert!(srv.signal("TERM").success(), "{:#?}", srv.log());
    let remote = tier::Remote::from_url(&url).unwrap();
    let (gens, objects) = tier::bucket_contents(&remote).unwrap();
    assert_eq!(gens.len(), 2, "commit points in the bucket: {gens:?}");
    let mut named = std::collections::BTreeSet::new();
    for g in &gens {
        for s in tier::commit_point(&remote, *g).unwrap().segments {
            named.insert(s.key);
        }
    }
    let present: std::collections::BTreeSet<String> =
        objects.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        present, named,
        "bucket objects vs what the kept commit points name"
    );
    eprintln!(
        "deletes: {} commit points and {} segment objects ({:.1} MiB) deleted; the bucket holds {} objects",
        st["deleted_generations"],
        st["deleted_objects"],
        st["deleted_bytes"].as_u64().unwrap() as f64 / 1048576.0,
        present.len() + 2
    );

    // Offline commands read evicted segments through the bucket.
    let check = blockd_output(&dir, &["check"]);
    assert!(
        !check.status.success(),
        "check without the bucket: {check:?}"
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        said.contains("is in the object store: open the store with --object-store"),
        "{said}"
    );
    cli(&dir, &["--object-store", &url, "check"]);
    let stats = cli(&dir, &["--object-store", &url, "stats"]);
    assert!(stats.contains("img"), "{stats}");
    let img_file = dir.with_file_name("img.raw");
    cli(
        &dir,
        &[
            "--object-store",
            &url,
            "export",
            "img",
            img_file.to_str().unwrap(),
        ],
    );
    assert_eq!(file_bad_pieces(&img_file, "a"), "[]");
    let _ = std::fs::remove_file(&img_file);

    // Lazy restore vs full (the lazy one last: each restore takes the
    // store's lease, and the lazy copy is served below).
    let (_t3, full) = data_dir();
    let t = Instant::now();
    let full_out = cli(&full, &["restore", "--full", "--object-store", &url]);
    let full_time = t.elapsed();
    let full_usage = tier::cache::dir_usage(&full);
    let (_t2, lazy) = data_dir();
    let t = Instant::now();
    let out = cli(&lazy, &["restore", "--object-store", &url]);
    let lazy_time = t.elapsed();
    let lazy_usage = tier::cache::dir_usage(&lazy);
    eprintln!(
        "lazy restore ({:.2}s, {:.1} MiB on disk): {}",
        lazy_time.as_secs_f64(),
        lazy_usage as f64 / 1048576.0,
        out.trim()
    );
    eprintln!(
        "full restore ({:.2}s, {:.1} MiB on disk): {}",
        full_time.as_secs_f64(),
        full_usage as f64 / 1048576.0,
        full_out.trim()
    );
    assert!(
        out.contains("lazily") && out.contains("ranged GETs"),
        "{out}"
    );
    assert!(full_usage >= size, "{full_usage}");
    assert!(
        lazy_usage * 16 < full_usage,
        "the lazy restore holds {lazy_usage} bytes, the full one {full_usage}"
    );
    let mut srv = Serve::start(&lazy, &["--object-store", &url, "--cache-dir-size", "24M"]);
    let bad = py(
        &srv,
        "vol",
        &format!(
            "print(verify(h, lambda off: 'b' if off < {slice} else ('e' if off < {} else 'a')))",
            2 * slice
        ),
    );
    assert_eq!(
        bad.trim(),
        "[]",
        "restored volume pieces differ at these offsets"
    );
    let bad = py(&srv, "img", "print(verify(h, lambda off: 'a'))");
    assert_eq!(
        bad.trim(),
        "[]",
        "restored image pieces differ at these offsets"
    );
    let st = tier_stats(&lazy);
    assert!(st["range_gets"].as_u64().unwrap() > 0, "{st}");
    // The restored store takes writes and uploads them.
    py(&srv, "vol", "fill(h, 'f', 0, 1 << 20)");
    assert!(srv.signal("TERM").success(), "{:#?}", srv.log());
    cli(&lazy, &["--object-store", &url, "check"]);
}
