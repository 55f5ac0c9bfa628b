//! The `remote` durability mode and lease fencing against radosgw, on the
//! cluster tests/object_store.rs starts (its `Ceph`, `py` and `cli`):
//!
//! 1. `remote_kill9_rounds`: `serve --durability remote`; a client writes
//!    64 KiB pieces in order through NBD, flushing after each and noting
//!    each acknowledged flush; the server is killed (-9) at a random point;
//!    `blockd restore` into a new empty data directory, served: every
//!    piece up to the last acknowledged flush reads back byte-exact, and
//!    the new pieces form a prefix of the writes. Three rounds, each on the
//!    previous round's restored store.
//! 2. `fencing_two_servers`: server A writes; a restore into B takes the
//!    lease; A's next write-and-flush fails ("fenced by lease" in its
//!    log, stats say so); B serves and writes; a third restore sees all
//!    of B's flushed writes and none of A's after the fence.
//! 3. `flush_latency`: 200 flushes of 4 KiB writes in local and in remote
//!    mode, side by side, p50/p99 printed (not asserted).

use super::{cli, small_segment_volume, tier_stats, Ceph, PY};
use crate::common::*;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Labels of each 64 KiB piece of `export`: the first of `cands` whose
/// contents it holds (`zero`: all zeros), `?` for none.
fn labels(srv: &Serve, export: &str, cands: &[&str]) -> Vec<String> {
    let out = nbdsh(
        srv,
        export,
        &format!(
            "{PY}cands = {cands:?}\n\
             out = []\n\
             for off in range(0, h.get_size(), PIECE):\n\
             \x20   got = h.pread(PIECE, off)\n\
             \x20   lab = '?'\n\
             \x20   for c in cands:\n\
             \x20       if (c == 'zero' and got == bytes(PIECE)) or (c != 'zero' and got == piece(c, off)):\n\
             \x20           lab = c\n\
             \x20           break\n\
             \x20   out.append(lab)\n\
             print(' '.join(out))"
        ),
    );
    out.split_whitespace().map(str::to_string).collect()
}

/// A client writing `label`'s pieces in order through `uri`, flushing
/// after each and printing its index once the flush is acknowledged.
fn writer(uri: &str, label: &str) -> (std::process::Child, std::sync::mpsc::Receiver<u64>) {
    let code = format!(
        "import nbd\nuri = {uri:?}\n{PY}\
         for i in range(h.get_size() // PIECE):\n\
         \x20   h.pwrite(piece({label:?}, i * PIECE), i * PIECE)\n\
         \x20   h.flush()\n\
         \x20   print(i, flush=True)\n"
    );
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(code)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(i) = line.trim().parse() {
                let _ = tx.send(i);
            }
        }
    });
    (child, rx)
}

/// A small xorshift for the kill points (seeded from the clock, printed).
fn rng() -> impl FnMut(u64) -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("remote rounds: kill points seeded with {seed}");
    let mut x = seed;
    move |n| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    }
}

fn remote_args(url: &str) -> Vec<String> {
    [
        "--object-store",
        url,
        "--durability",
        "remote",
        "--object-store-interval",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start(dir: &Path, args: &[String]) -> Serve {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Serve::start(dir, &a)
}

pub(super) fn remote_kill9_rounds(ceph: &Ceph) {
    let url = ceph.url("remote-rounds");
    let mut tmps = Vec::new();
    let (t, mut dir) = data_dir();
    tmps.push(t);
    small_segment_volume(&dir, "rv", "6M");
    let mut rand = rng();
    // What each piece held before the round: "zero" at first.
    let pieces = 96;
    let mut before = vec!["zero".to_string(); pieces];
    let mut srv = start(&dir, &remote_args(&url));
    for round in 0..3 {
        let label = format!("r{round}");
        let (mut w, acks) = writer(&srv.uri("rv"), &label);
        let kill_after = Duration::from_millis(300 + rand(1200));
        std::thread::sleep(kill_after);
        srv.kill9();
        let _ = w.wait();
        let acked: Vec<u64> = acks.try_iter().collect();
        let last = acked.last().copied();
        eprintln!(
            "round {round}: killed after {:?} with {} flushes acknowledged",
            kill_after,
            acked.len()
        );
        let (t, next) = data_dir();
        tmps.push(t);
        let out = cli(&next, &["restore", "--object-store", &url]);
        eprintln!("round {round}: {}", out.trim());
        srv = start(&next, &remote_args(&url));
        let mut cands: Vec<&str> = vec![&label];
        let prev: std::collections::BTreeSet<&str> = before.iter().map(String::as_str).collect();
        cands.extend(prev.iter().copied().filter(|c| *c != label));
        let got = labels(&srv, "rv", &cands);
        assert_eq!(got.len(), pieces, "{got:?}");
        let new = got.iter().take_while(|l| **l == label).count();
        if let Some(last) = last {
            assert!(
                new as u64 > last,
                "round {round}: flush {last} was acknowledged, but only {new} pieces are in the restore: {got:?}"
            );
        }
        for (i, l) in got.iter().enumerate().skip(new) {
            assert_eq!(
                l, &before[i],
                "round {round}: piece {i} is neither new in order nor its old contents: {got:?}"
            );
        }
        eprintln!("round {round}: restored {new} new pieces (last acknowledged flush {last:?})");
        before = got;
        dir = next;
    }
    assert!(srv.signal("TERM").success(), "{:#?}", srv.log());
    // Offline stats with the bucket: after a clean stop, the bucket holds
    // all of this directory's log (until an offline command's own final
    // checkpoint adds to it).
    let v: serde_json::Value =
        serde_json::from_str(&cli(&dir, &["--object-store", &url, "stats", "--json"])).unwrap();
    let b = &v["object_store"];
    assert_eq!(b["newest_lease"], b["local_lease"], "{b}");
    assert_eq!(b["newest_commit_point"]["lease"], b["local_lease"], "{b}");
    assert_eq!(b["unuploaded_log_bytes"], 0, "{b}");
    let text = cli(&dir, &["--object-store", &url, "stats"]);
    assert!(text.contains("object store: newest commit point"), "{text}");
    // (lazily restored: its older segments are read through the bucket)
    cli(&dir, &["--object-store", &url, "check"]);
}

pub(super) fn fencing_two_servers(ceph: &Ceph) {
    let url = ceph.url("fencing");
    let (_ta, a_dir) = data_dir();
    small_segment_volume(&a_dir, "fv", "2M");
    let mut a = start(&a_dir, &remote_args(&url));
    py(&a, "fv", "fill(h, 'a1', 0, 1 << 20)");
    // B: a restore takes the lease (A is fenced from here on).
    let (_tb, b_dir) = data_dir();
    let out = cli(&b_dir, &["restore", "--object-store", &url]);
    eprintln!("fencing: {}", out.trim());
    // A's next write and flush fail (the write may land locally; the flush
    // is never acknowledged), and A says why.
    let r = nbdsh(
        &a,
        "fv",
        &format!(
            "{PY}try:\n\
             \x20   h.pwrite(piece('a2', 0), 0)\n\
             \x20   h.flush()\n\
             \x20   print('acked')\n\
             except nbd.Error as e:\n\
             \x20   print('failed', e)"
        ),
    );
    assert!(
        r.starts_with("failed") && r.contains("EIO"),
        "A's flush after the fence: {r}"
    );
    assert!(
        a.wait_log("fenced by lease", Duration::from_secs(5)),
        "{:#?}",
        a.log()
    );
    let st = tier_stats(&a_dir);
    assert!(
        st["fenced_by"].as_u64().unwrap() > st["lease"].as_u64().unwrap(),
        "{st}"
    );
    let r = nbdsh(
        &a,
        "fv",
        &format!(
            "{PY}try:\n\
             \x20   h.pwrite(piece('a3', PIECE), PIECE)\n\
             \x20   print('acked')\n\
             except nbd.Error as e:\n\
             \x20   print('failed', e)"
        ),
    );
    assert!(r.starts_with("failed"), "A's write after the fence: {r}");
    // A plain serve of A's directory is refused now.
    a.kill9();
    let out = crate::common::serve_command(&a_dir, &["--object-store", &url])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--take-over"),
        "{err}"
    );

    // B serves (its lease follows the restore's) and writes.
    let mut b = start(&b_dir, &remote_args(&url));
    py(&b, "fv", "fill(h, 'b', 1 << 20, 2 << 20)");
    // A third copy: B's flushed writes, none of A's after the fence.
    let (_tc, c_dir) = data_dir();
    let out = cli(&c_dir, &["restore", "--full", "--object-store", &url]);
    eprintln!("fencing: {}", out.trim());
    b.kill9();
    let c = Serve::start(&c_dir, &[]);
    let got = labels(&c, "fv", &["a1", "b", "a2", "a3", "zero"]);
    let want: Vec<&str> = (0..32).map(|i| if i < 16 { "a1" } else { "b" }).collect();
    assert_eq!(got, want, "the third restore");
    drop(c);
    cli(&c_dir, &["check"]);
}

/// p50 and p99 of `v` (sorted in place), milliseconds.
fn pct(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99))
}

pub(super) fn flush_latency(ceph: &Ceph) {
    let mut rows = Vec::new();
    for mode in ["local", "remote"] {
        let url = ceph.url(&format!("latency-{mode}"));
        let (_t, dir) = data_dir();
        cli(&dir, &["volume", "create", "lv", "--size", "16M"]);
        let mut srv = Serve::start(
            &dir,
            &[
                "--object-store",
                &url,
                "--durability",
                mode,
                "--object-store-interval",
                "10",
                "--metrics-listen",
                "127.0.0.1:0",
            ],
        );
        let out = nbdsh(
            &srv,
            "lv",
            "import time, os\n\
             h = nbd.NBD()\n\
             h.connect_uri(uri)\n\
             buf = os.urandom(4096)\n\
             out = []\n\
             for i in range(200):\n\
             \x20   h.pwrite(buf, (i * 4096 * 7) % (16 << 20))\n\
             \x20   t = time.perf_counter()\n\
             \x20   h.flush()\n\
             \x20   out.append((time.perf_counter() - t) * 1000)\n\
             print(' '.join(f'{x:.3f}' for x in out))",
        );
        let mut ms: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
        assert_eq!(ms.len(), 200);
        let (p50, p99) = pct(&mut ms);
        let st = tier_stats(&dir);
        // The counters: in local mode the log written since the first
        // commit point is not in the bucket until the next one; in remote
        // mode every flushed byte is.
        let metric = |name: &str| -> u64 {
            let text = metrics(&srv);
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in {text}"))
                .trim()
                .parse()
                .unwrap()
        };
        assert_eq!(st["durability"], mode, "{st}");
        if mode == "local" {
            let pending = metric("blockd_tier_unuploaded_log_bytes");
            assert!(pending >= 200 * 4096, "{pending} {st}");
            assert_eq!(metric("blockd_tier_remote_durability"), 0);
            // A checkpoint (here by gc, else the interval) brings it down.
            let g = st["remote_generation"].as_u64().unwrap();
            cli(&dir, &["gc"]);
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let s = tier_stats(&dir);
                if s["unuploaded_log_bytes"] == 0 && s["remote_generation"].as_u64().unwrap() > g {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "not uploaded: {s}");
                std::thread::sleep(Duration::from_millis(100));
            }
            assert_eq!(metric("blockd_tier_unuploaded_log_bytes"), 0);
        } else {
            assert_eq!(st["unuploaded_log_bytes"], 0, "{st}");
            assert_eq!(metric("blockd_tier_remote_durability"), 1);
            assert!(metric("blockd_tier_remote_flushes_total") >= 200);
            assert!(metric("blockd_tier_tail_bytes_total") >= 200 * 4096);
            assert!(metric("blockd_tier_lease") >= 1);
            assert_eq!(metric("blockd_tier_fenced_by_lease"), 0);
        }
        rows.push(format!(
            "{mode:>6}: 200 flushes of a 4 KiB write: p50 {p50:.2} ms, p99 {p99:.2} ms \
             (remote flushes {}, tail objects {})",
            st["remote_flushes"], st["tail_objects"]
        ));
        if mode == "remote" {
            assert!(st["remote_flushes"].as_u64().unwrap() >= 200, "{st}");
        }
        assert!(srv.signal("TERM").success());
    }
    for r in rows {
        eprintln!("flush latency against radosgw: {r}");
    }
}

/// The server's /metrics text.
fn metrics(srv: &Serve) -> String {
    let addr = srv
        .log()
        .iter()
        .find_map(|l| l.split("metrics on http://").nth(1).map(str::to_string))
        .expect("metrics address logged");
    ureq::get(&format!("http://{}", addr.trim()))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}

fn py(srv: &Serve, export: &str, code: &str) -> String {
    super::py(srv, export, code)
}
