//! Object-store failures, injected between `blockd serve --object-store`
//! and a real radosgw (the one-node Ceph of scripts/ceph.sh) by the test's
//! fault proxy (tests/fault_proxy): the server reaches the bucket through
//! the proxy (`--object-store-config` names its endpoint), while restores
//! and checks go to radosgw directly.
//!
//! 1. `faults_then_catch_up`: for each fault in turn (503 to everything,
//!    500 to uploads only, responses held back 1.5 s, PUTs cut half way
//!    through their body, the server down, and a full bucket: radosgw's
//!    real bucket quota), a slice of a volume is written and flushed
//!    through NBD while the fault is on and reads back at once from the
//!    local store; the uploader is seen retrying (its error counter and
//!    log) while the bucket lags (or, only slowed, still advancing). While
//!    PUTs are being cut, every object in the bucket is whole and the
//!    commit points name only whole objects. Then the fault is lifted, the
//!    bucket catches up, the server is stopped and `check`ed, a restore
//!    into a new empty data directory is `check`ed and served (a restore
//!    takes the prefix's lease: the copy goes on as the writer for the
//!    next fault) and every slice so far reads back byte-exact.
//! 2. `enospc_while_away`: with `--cache-dir-size 16M` and the server
//!    down, writes past the bound fail with NBD ENOSPC (not EIO, not a
//!    hang), the server stays up and what was flushed reads back; once the
//!    server is back, uploads catch up, eviction makes room and the same
//!    writes succeed; a restore reads everything back.
//!
//! 3. `stop_while_away`: stopped while the server is down, `serve` waits
//!    `--object-store-wait`, then exits non-zero saying how far the bucket
//!    is behind; the local store is clean; served again once the server is
//!    back, it uploads what the bucket lacked.
//!
//! Prints what each fault did (errors counted, the last error, how long the
//! bucket took to catch up) and the ENOSPC figures.

mod common;
mod fault_proxy;
mod objstore_common;

use common::*;
use fault_proxy::{Fault, FaultProxy};
use objstore_common::{caught_up, py, small_segment_volume, tier_stats, Ceph};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

#[test]
fn object_store_faults_through_a_proxy() {
    let Some(ceph) = Ceph::start("tests/object_store_faults.rs") else {
        return;
    };
    let proxy = FaultProxy::start(&ceph.endpoint);
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("s3.toml");
    std::fs::write(&cfg, format!("endpoint = {:?}\n", proxy.endpoint())).unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    faults_then_catch_up(&ceph, &proxy, &cfg);
    enospc_while_away(&ceph, &proxy, &cfg);
    stop_while_away(&ceph, &proxy, &cfg);
}

/// Polls `f` every 100 ms until it gives a value; panics after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn num(st: &serde_json::Value, key: &str) -> u64 {
    st[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {st}"))
}

/// `restore --full` of `url` into a new directory (straight from radosgw);
/// the restored generation.
fn restore_full(url: &str) -> (tempfile::TempDir, PathBuf, u64) {
    let (t, dst) = data_dir();
    let out = blockd(&dst, &["restore", "--full", "--object-store", url]);
    let g = out
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    (t, dst, g)
}

/// The offsets of `slices` (label, start, end) whose 64 KiB pieces differ
/// on `export` of `srv`.
fn bad_pieces(srv: &Serve, export: &str, slices: &[(String, u64, u64)]) -> String {
    let list: Vec<String> = slices
        .iter()
        .map(|(l, a, b)| format!("({l:?}, {a}, {b})"))
        .collect();
    py(
        srv,
        export,
        &format!(
            "print([o for (l, a, b) in [{}] for o in range(a, b, PIECE) \
             if h.pread(PIECE, o) != piece(l, o)])",
            list.join(", ")
        ),
    )
    .trim()
    .to_string()
}

/// Restores `url` into a new directory, checks it, serves it and compares
/// `slices`; returns the restored generation.
fn restore_and_compare(url: &str, slices: &[(String, u64, u64)]) -> u64 {
    let (_t, dst, g) = restore_full(url);
    blockd(&dst, &["check"]);
    let mut srv = Serve::start(&dst, &[]);
    assert_eq!(
        bad_pieces(&srv, "vol", slices),
        "[]",
        "restored generation {g}: pieces differ at these offsets"
    );
    assert!(srv.signal("TERM").success());
    g
}

/// Every segment object in the bucket of `url` is whole: a `.upto-N`
/// copy holds N bytes, a sealed segment's copy as many as its file in
/// `dir` (when the cleaner has not retired it since).
fn whole_objects(dir: &Path, url: &str) {
    let remote = tier::Remote::from_url(url).unwrap();
    let (_, objects) = tier::bucket_contents(&remote).unwrap();
    assert!(!objects.is_empty());
    for (key, size) in objects {
        // segments/seg-NNNNNNNN[.l-LEASE].log[.upto-LEN]
        let name = key.rsplit('/').next().unwrap();
        let local = format!("{}.log", &name[..12]);
        let want = match name.split_once(".upto-") {
            Some((_, n)) => n.parse::<u64>().unwrap(),
            None => match std::fs::metadata(dir.join("segments").join(&local)) {
                Ok(m) => m.len(),
                Err(_) => continue,
            },
        };
        assert_eq!(size, want, "{key} in the bucket is not whole");
    }
}

/// How a fault is switched on and off.
enum Switch {
    Proxy(Fault),
    /// radosgw's bucket quota, a few bytes: every put is refused with
    /// 403 QuotaExceeded.
    Quota,
}

fn quota(ceph: &Ceph, on: bool) {
    let b = format!("--bucket={}", ceph.bucket);
    if on {
        let o = ceph.radosgw_admin(&[
            "quota",
            "set",
            "--quota-scope=bucket",
            &b,
            "--max-size=4096",
        ]);
        assert!(o.status.success(), "quota set: {o:?}");
    }
    let o = ceph.radosgw_admin(&[
        "quota",
        if on { "enable" } else { "disable" },
        "--quota-scope=bucket",
        &b,
    ]);
    assert!(o.status.success(), "quota enable/disable: {o:?}");
}

fn faults_then_catch_up(ceph: &Ceph, proxy: &FaultProxy, cfg: &Path) {
    let (_t, dir) = data_dir();
    small_segment_volume(&dir, "vol", "20M");
    let url = ceph.url("faults");
    let args = [
        "--object-store",
        &url,
        "--object-store-config",
        cfg.to_str().unwrap(),
        "--object-store-interval",
        "0.5",
    ];
    let mut srv = Serve::start(&dir, &args);
    // Each restore takes the prefix's lease: the restored copy goes on as
    // the writer (the directories are kept to the end).
    let mut dir = dir;
    let mut dirs = vec![_t];
    let mut slices: Vec<(String, u64, u64)> = vec![("base".into(), 0, 4 * MIB)];
    py(
        &srv,
        "vol",
        &format!("fill(h, 'base', 0, {}, 1 << 20)", 4 * MIB),
    );
    all_uploaded(&dir);

    let faults = [
        (
            "503 to every request",
            Switch::Proxy(Fault::Status {
                code: 503,
                puts_only: false,
            }),
            "503",
        ),
        (
            "500 to uploads",
            Switch::Proxy(Fault::Status {
                code: 500,
                puts_only: true,
            }),
            "500",
        ),
        (
            "responses 1.5 s late",
            Switch::Proxy(Fault::Delay(Duration::from_millis(1500))),
            "",
        ),
        ("PUTs cut mid-body", Switch::Proxy(Fault::CutPuts), ""),
        (
            "server down",
            Switch::Proxy(Fault::Refuse),
            "Connection refused",
        ),
        ("full bucket", Switch::Quota, "QuotaExceeded"),
    ];
    for (i, (name, switch, says)) in faults.iter().enumerate() {
        let label = format!("f{i}");
        let (a, b) = (4 * MIB + 2 * MIB * i as u64, 6 * MIB + 2 * MIB * i as u64);
        let before = tier_stats(&dir);
        let warned = srv
            .log()
            .iter()
            .filter(|l| l.contains("upload failed; retrying"))
            .count();
        let hits = (
            proxy.counts().failed.load(Ordering::Relaxed),
            proxy.counts().cut.load(Ordering::Relaxed),
            proxy.counts().delayed.load(Ordering::Relaxed),
        );
        match switch {
            Switch::Proxy(f) => proxy.set(*f),
            Switch::Quota => quota(ceph, true),
        }
        // Client I/O goes on from the local store.
        let t = Instant::now();
        py(
            &srv,
            "vol",
            &format!("fill(h, {label:?}, {a}, {b}, 1 << 20)"),
        );
        let write_time = t.elapsed();
        let one = [(label.clone(), a, b)];
        assert_eq!(bad_pieces(&srv, "vol", &one), "[]", "{name}: read back");
        slices.push((label.clone(), a, b));
        let slowed = matches!(switch, Switch::Proxy(Fault::Delay(_)));
        let st = if slowed {
            // Only slowed: the bucket still advances.
            let r0 = num(&before, "remote_generation");
            wait_for(
                &format!("{name}: a generation uploaded"),
                Duration::from_secs(60),
                || {
                    let st = tier_stats(&dir);
                    (num(&st, "remote_generation") > r0).then_some(st)
                },
            )
        } else {
            // Failing: counted, logged, retried; the bucket lags.
            let e0 = num(&before, "errors");
            let st = wait_for(
                &format!("{name}: upload errors"),
                Duration::from_secs(60),
                || {
                    let st = tier_stats(&dir);
                    (num(&st, "errors") >= e0 + 2).then_some(st)
                },
            );
            assert!(
                num(&st, "remote_generation") < num(&st, "local_generation"),
                "{name}: the bucket does not lag: {st}"
            );
            assert!(st["stopped"].is_null(), "{name}: uploading stopped: {st}");
            let last = st["last_error"].as_str().unwrap_or_default();
            assert!(last.contains(says), "{name}: last error {last:?}");
            assert!(
                srv.wait_log("upload failed; retrying", Duration::from_secs(5))
                    && srv
                        .log()
                        .iter()
                        .filter(|l| l.contains("upload failed; retrying"))
                        .count()
                        > warned,
                "{name}: no retry in the log"
            );
            st
        };
        let c = proxy.counts();
        match switch {
            Switch::Proxy(Fault::Status { .. }) => {
                assert!(c.failed.load(Ordering::Relaxed) > hits.0)
            }
            Switch::Proxy(Fault::CutPuts) => assert!(c.cut.load(Ordering::Relaxed) > hits.1),
            Switch::Proxy(Fault::Delay(_)) => assert!(c.delayed.load(Ordering::Relaxed) > hits.2),
            _ => {}
        }
        if matches!(switch, Switch::Proxy(Fault::CutPuts)) {
            // The cut PUTs left no object short of its length, and the
            // commit points name only whole objects.
            whole_objects(&dir, &url);
            named_objects_whole(&url);
        }
        eprintln!(
            "{name}: {} upload errors, remote generation {} of {}, client write+flush of 2 MiB {:.2}s; last error: {}",
            num(&st, "errors") - num(&before, "errors"),
            st["remote_generation"],
            st["local_generation"],
            write_time.as_secs_f64(),
            st["last_error"]
        );

        // Lifted: the bucket catches up; a restore has every slice.
        let t = Instant::now();
        match switch {
            Switch::Proxy(_) => proxy.set(Fault::Pass),
            Switch::Quota => quota(ceph, false),
        }
        caught_up(&dir);
        let took = t.elapsed();
        let st = all_uploaded(&dir);
        // Stopped (the final generation goes up), checked, restored into a
        // new directory, checked, served: every slice reads back.
        assert!(srv.signal("TERM").success(), "{:#?}", srv.log());
        no_secret(&srv);
        blockd(&dir, &["check"]);
        let (t, next, g) = restore_full(&url);
        assert!(g >= num(&st, "local_generation"), "{g} vs {st}");
        blockd(&next, &["check"]);
        srv = Serve::start(&next, &args);
        assert_eq!(
            bad_pieces(&srv, "vol", &slices),
            "[]",
            "{name}: restored generation {g}: pieces differ at these offsets"
        );
        (dir, _) = (next, dirs.push(t));
        eprintln!(
            "{name}: lifted, the bucket caught up in {:.1}s (generation {g} restored byte-exact)",
            took.as_secs_f64()
        );
    }
    assert!(srv.signal("TERM").success(), "{:#?}", srv.log());
    no_secret(&srv);
    blockd(&dir, &["check"]);
    named_objects_whole(&url);
}

fn no_secret(srv: &Serve) {
    for l in srv.log() {
        assert!(
            !l.contains(&std::env::var("AWS_SECRET_ACCESS_KEY").unwrap()),
            "a secret in the log: {l}"
        );
    }
}

/// Every object the bucket's commit points name is there, whole.
fn named_objects_whole(url: &str) {
    let remote = tier::Remote::from_url(url).unwrap();
    let (gens, objects) = tier::bucket_contents(&remote).unwrap();
    let sizes: std::collections::HashMap<String, u64> = objects.into_iter().collect();
    for g in &gens {
        for s in tier::commit_point(&remote, *g).unwrap().segments {
            assert_eq!(
                sizes.get(&s.key),
                Some(&s.len),
                "{} of generation {g}",
                s.key
            );
        }
    }
}

/// Waits until the bucket holds a generation with everything written so
/// far: the ticker (every 0.5 s here) checkpoints once after the last
/// write, unless a checkpoint already followed it; then [`caught_up`].
fn all_uploaded(dir: &Path) -> serde_json::Value {
    let g0 = num(&tier_stats(dir), "local_generation");
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end && num(&tier_stats(dir), "local_generation") == g0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    caught_up(dir)
}

/// Waits for a commit in the bucket after which the data directory is
/// within `bound` (what was written lately, and the cleaner's copies,
/// uploaded and older segments evicted).
fn settled(dir: &Path, bound: u64) -> serde_json::Value {
    wait_for(
        "the cache to settle under its bound",
        Duration::from_secs(90),
        || {
            let st = all_uploaded(dir);
            (tier::cache::dir_usage(dir) <= bound).then_some(st)
        },
    )
}

fn enospc_while_away(ceph: &Ceph, proxy: &FaultProxy, cfg: &Path) {
    let (_t, dir) = data_dir();
    let size = 48 * MIB;
    let bound = 16 * MIB;
    small_segment_volume(&dir, "vol", "48M");
    let url = ceph.url("enospc");
    let mut srv = Serve::start(
        &dir,
        &[
            "--object-store",
            &url,
            "--object-store-config",
            cfg.to_str().unwrap(),
            "--object-store-interval",
            "0.5",
            "--cache-dir-size",
            "16M",
        ],
    );
    // Past the bound in slices. Writes that outrun the uploads by the
    // bound get ENOSPC whatever the store does (the bound holds), so a
    // refused write is tried again, as a client would.
    for s in 0..3 {
        let (a, b) = (s * 8 * MIB, (s + 1) * 8 * MIB);
        py(&srv, "vol", &format!("fill_retry(h, 'a', {a}, {b})"));
        settled(&dir, bound);
    }
    assert!(num(&tier_stats(&dir), "evicted_segments") > 0);

    proxy.set(Fault::Refuse);
    // Write 'b' from the start, a flush after each MiB (about 8 MiB/s),
    // until a write fails; each call timed; then 8 more tries.
    let out = py(
        &srv,
        "vol",
        &format!(
            "import json, time\n\
             res = {{'done': 0, 'errno': None, 'slowest': 0.0, 'msg': '', 'again': []}}\n\
             for off in range(0, {size}, PIECE):\n\
             \x20   t = time.monotonic()\n\
             \x20   try:\n\
             \x20       h.pwrite(piece('b', off), off)\n\
             \x20       if (off + PIECE) % (1 << 20) == 0:\n\
             \x20           h.flush()\n\
             \x20           time.sleep(0.1)\n\
             \x20   except nbd.Error as e:\n\
             \x20       res['errno'] = e.errnum\n\
             \x20       res['msg'] = str(e)\n\
             \x20       break\n\
             \x20   finally:\n\
             \x20       res['slowest'] = max(res['slowest'], time.monotonic() - t)\n\
             \x20   if (off + PIECE) % (1 << 20) == 0:\n\
             \x20       res['done'] = off + PIECE\n\
             for i in range(8):\n\
             \x20   off = res['done'] + i * PIECE\n\
             \x20   try:\n\
             \x20       h.pwrite(piece('b', off), off)\n\
             \x20       res['again'].append(0)\n\
             \x20   except nbd.Error as e:\n\
             \x20       res['again'].append(e.errnum)\n\
             print(json.dumps(res))"
        ),
    );
    let res: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let st = tier_stats(&dir);
    eprintln!("server down, cache bound {bound}: {res}; {st}");
    assert_eq!(
        res["errno"].as_u64(),
        Some(ENOSPC as u64),
        "writes past the bound while the store is away: {res}; {:#?}",
        srv.log()
    );
    let done = num(&res, "done");
    assert!(done > 0 && done < size, "{res}");
    assert!(
        res["slowest"].as_f64().unwrap() < 30.0,
        "a write hung: {res}"
    );
    assert_eq!(res["again"], serde_json::json!(vec![ENOSPC; 8]), "{res}");
    assert!(st["cache_full"].as_bool().unwrap(), "{st}");
    // Over by what was written before the first upload attempt failed
    // (the next checkpoint, 0.5 s here, and about a second of retries),
    // then held.
    let usage = tier::cache::dir_usage(&dir);
    assert!(
        usage <= bound + 16 * MIB,
        "{usage} bytes in the data directory: {st}"
    );
    assert!(srv.alive());
    // Refused, not failed: the store never stops taking writes.
    assert!(
        !srv.log().iter().any(|l| l.contains("store failed")),
        "{:#?}",
        srv.log()
    );
    // The server stays up; what was flushed reads back (it is local).
    let b = [("b".to_string(), 0, done)];
    assert_eq!(bad_pieces(&srv, "vol", &b), "[]");
    assert!(
        srv.wait_log(
            "writes needing a new segment get ENOSPC",
            Duration::from_secs(5)
        ),
        "{:#?}",
        srv.log()
    );

    // The server is back: uploads catch up, eviction makes room, writes
    // succeed again.
    let t = Instant::now();
    proxy.set(Fault::Pass);
    let st = settled(&dir, bound);
    let took = t.elapsed();
    // The first write goes in at once; the rest, written faster than the
    // uploads free room, may meet ENOSPC again while a pass finds the
    // directory over its bound (as with a healthy store), and are tried
    // again until they go in.
    let out = py(
        &srv,
        "vol",
        &format!(
            "import json\n\
             h.pwrite(piece('b', {done}), {done})\n\
             print(json.dumps({{'first': 0, 'refused': fill_retry(h, 'b', {done} + PIECE, {size})}}))"
        ),
    );
    let again: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        again["first"], 0,
        "the first MiB after the store came back: {again}"
    );
    let all = [("b".to_string(), 0, size)];
    assert_eq!(bad_pieces(&srv, "vol", &all), "[]");
    eprintln!(
        "server back: caught up and writable in {:.1}s ({} segments evicted so far); {} MiB written before ENOSPC; \
         the other {} MiB written after with {} writes refused and tried again",
        took.as_secs_f64(),
        st["evicted_segments"],
        done / MIB,
        (size - done) / MIB,
        again["refused"]
    );
    assert!(srv.signal("TERM").success(), "{:#?}", srv.log());
    blockd(&dir, &["--object-store", &url, "check"]);
    let (_t2, dst, _) = restore_full(&url);
    blockd(&dst, &["check"]);
    let mut srv = Serve::start(&dst, &[]);
    assert_eq!(bad_pieces(&srv, "vol", &all), "[]");
    assert!(srv.signal("TERM").success());
}

fn stop_while_away(ceph: &Ceph, proxy: &FaultProxy, cfg: &Path) {
    let (_t, dir) = data_dir();
    small_segment_volume(&dir, "vol", "8M");
    let url = ceph.url("stop");
    let args = [
        "--object-store",
        &url,
        "--object-store-config",
        cfg.to_str().unwrap(),
        "--object-store-interval",
        "0.5",
        "--object-store-wait",
        "3",
    ];
    let mut srv = Serve::start(&dir, &args);
    py(
        &srv,
        "vol",
        &format!("fill(h, 'a', 0, {}, 1 << 20)", 4 * MIB),
    );
    all_uploaded(&dir);
    proxy.set(Fault::Refuse);
    py(
        &srv,
        "vol",
        &format!("fill(h, 'b', 0, {}, 1 << 20)", 8 * MIB),
    );
    let t = Instant::now();
    let status = srv.signal("TERM");
    let took = t.elapsed();
    let log = srv.log().join("\n");
    assert!(
        !status.success(),
        "serve exited {status} with the bucket behind: {log}"
    );
    assert!(
        log.contains("uploading the final generation") && log.contains("Connection refused"),
        "{log}"
    );
    assert!(took < Duration::from_secs(30), "stop took {took:?}");
    // The local store was closed cleanly; the bucket is behind it.
    blockd(&dir, &["check"]);
    eprintln!(
        "stopped while away: exit {status} after {:.1}s",
        took.as_secs_f64()
    );

    // Back: served again, the bucket catches up.
    proxy.set(Fault::Pass);
    let mut srv = Serve::start(&dir, &args);
    all_uploaded(&dir);
    assert!(srv.signal("TERM").success(), "{:#?}", srv.log());
    restore_and_compare(&url, &[("b".to_string(), 0, 8 * MIB)]);
}
