//! Black-box tests of the `blockd` command's offline subcommands: object
//! lifecycle, name and id resolution, import/export round trips with
//! sparseness, check (clean, leak and corruption), stats and bad input.

use std::path::Path;
use std::process::{Command, Output};

fn blockd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blockd"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run blockd")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = blockd(dir, args);
    assert!(
        o.status.success(),
        "blockd {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn fails(dir: &Path, args: &[&str], code: i32, needle: &str) {
    let o = blockd(dir, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "blockd {args:?}: {err}");
    assert!(
        err.contains(needle),
        "blockd {args:?}: stderr {err:?} lacks {needle:?}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line on stderr: {err:?}");
}

fn snapshot_of_store(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = walk(dir);
    v.retain(|(n, _)| !n.ends_with("lock"));
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[test]
fn lifecycle_and_resolution() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let vid = ok(&dir, &["volume", "create", "vol1", "--size", "64M"])
        .trim()
        .to_string();
    assert_eq!(vid.len(), 36, "prints an id: {vid}");
    let list = ok(&dir, &["volume", "list"]);
    assert!(
        list.contains("vol1") && list.contains(&vid) && list.contains("64M"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["volume", "list", "--json"])).unwrap();
    assert_eq!(json[0]["name"], "vol1");
    assert_eq!(json[0]["size"], 64 << 20);
    let sid = ok(&dir, &["snapshot", "create", &vid, "snap1"])
        .trim()
        .to_string();
    assert!(ok(&dir, &["snapshot", "list"]).contains("snap1"));
    let cid = ok(&dir, &["clone", "snap1", "clone1"]).trim().to_string();
    assert_ne!(cid, vid);
    ok(&dir, &["volume", "resize", "clone1", "--size", "1G"]);
    assert!(ok(&dir, &["volume", "list"]).contains("1G"));
    // A snapshot named like a volume: `clone` and `export` resolve by kind.
    ok(&dir, &["snapshot", "create", "vol1", "vol1"]);
    fails(
        &dir,
        &["export", "vol1", d.path().join("x").to_str().unwrap()],
        2,
        "ambiguous",
    );
    ok(&dir, &["snapshot", "delete", &sid]);
    ok(&dir, &["volume", "delete", "vol1"]);
    ok(&dir, &["snapshot", "delete", "vol1"]);
    let list = ok(&dir, &["volume", "list"]);
    assert!(!list.contains("vol1") && list.contains("clone1"), "{list}");
    assert!(ok(&dir, &["check"]).contains("0 corruption, 0 leaks"));
}

#[test]
fn bad_input_is_one_line_exit_2_and_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    ok(&dir, &["volume", "create", "v", "--size", "1M"]);
    let before = snapshot_of_store(&dir);
    fails(
        &dir,
        &["volume", "create", "w", "--size", "banana"],
        2,
        "banana",
    );
    fails(
        &dir,
        &["volume", "create", "v", "--size", "1M"],
        2,
        "already exists",
    );
    fails(
        &dir,
        &["volume", "create", "bad/name", "--size", "1M"],
        2,
        "invalid name",
    );
    fails(
        &dir,
        &["volume", "create", "z", "--size", "1000"],
        2,
        "invalid volume size",
    );
    fails(&dir, &["volume", "delete", "nope"], 2, "nope");
    fails(
        &dir,
        &["volume", "resize", "v", "--size", "512K"],
        2,
        "shrinking",
    );
    fails(&dir, &["snapshot", "create", "nope", "s"], 2, "nope");
    fails(
        &dir,
        &["import", "/definitely/missing.raw", "i"],
        2,
        "missing.raw",
    );
    fails(&dir, &["clone", "v", "c"], 2, "no snapshot or image");
    assert!(
        snapshot_of_store(&dir) == before,
        "bad input changed the store"
    );
}

#[test]
fn import_export_roundtrip_sparse() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let src = d.path().join("src.raw");
    // 20 MiB: data, a 12 MiB zero run, data, and an unaligned tail.
    let mut content = vec![0u8; (20 << 20) + 1000];
    for (i, b) in content[..(3 << 20)].iter_mut().enumerate() {
        *b = (i % 251) as u8 + 1;
    }
    let n = content.len();
    for (i, b) in content[(15 << 20)..n].iter_mut().enumerate() {
        *b = (i % 13) as u8;
    }
    std::fs::write(&src, &content).unwrap();
    let id = ok(&dir, &["import", src.to_str().unwrap(), "img"])
        .trim()
        .to_string();
    assert_eq!(id.len(), 36);
    let stats: serde_json::Value = serde_json::from_str(&ok(&dir, &["stats", "--json"])).unwrap();
    let alloc = stats["objects"][0]["allocated_bytes"].as_u64().unwrap();
    assert!(
        alloc < 10 << 20,
        "zero runs are not stored: allocated {alloc}"
    );
    let out = d.path().join("out.raw");
    ok(&dir, &["export", "img", out.to_str().unwrap()]);
    let back = std::fs::read(&out).unwrap();
    assert_eq!(back.len(), content.len().div_ceil(512) * 512);
    assert!(back[..n] == content[..], "export differs from import");
    assert!(back[n..].iter().all(|&b| b == 0));
    // Sparse output: the zero run takes no disk blocks.
    use std::os::unix::fs::MetadataExt;
    let used = std::fs::metadata(&out).unwrap().blocks() * 512;
    assert!(used < 16 << 20, "export not sparse: {used} bytes used");
    // Snapshot export and compressed import.
    ok(&dir, &["snapshot", "create", "img", "s"]);
    let out2 = d.path().join("snap.raw");
    ok(&dir, &["export", "s", out2.to_str().unwrap()]);
    assert!(std::fs::read(&out2).unwrap() == back);
    ok(
        &dir,
        &["import", "--compress", src.to_str().unwrap(), "imgz"],
    );
    let out3 = d.path().join("z.raw");
    ok(&dir, &["export", "imgz", out3.to_str().unwrap()]);
    assert!(std::fs::read(&out3).unwrap() == back);
    let st = ok(&dir, &["stats"]);
    assert!(st.contains("img") && st.contains("store:"), "{st}");
    assert!(st.contains("counters used: data ids <0.01%"), "{st}");
    // Each counter's headroom, in JSON too.
    let js: serde_json::Value = serde_json::from_str(&ok(&dir, &["stats", "--json"])).unwrap();
    let names: Vec<&str> = js["counters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["remaining"].as_u64().unwrap() > 1 << 30)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "data_ids",
            "node_ids",
            "record_seq",
            "generation",
            "segment_no"
        ],
        "{js}"
    );
    // Metadata per written block: live bytes that are not data.
    assert!(
        st.contains("metadata: ") && st.contains("bytes per written block"),
        "{st}"
    );
    let (live, data, meta) = (
        js["live_bytes"].as_u64().unwrap(),
        js["data_stored_bytes"].as_u64().unwrap(),
        js["metadata_bytes"].as_u64().unwrap(),
    );
    assert!(data > 0 && meta > 0 && live == data + meta, "{js}");
    let per = js["metadata_bytes_per_block"].as_f64().unwrap();
    let blocks = js["allocated_bytes"].as_u64().unwrap() / 4096;
    assert!((per - meta as f64 / blocks as f64).abs() < 1e-6, "{js}");
    // Each object's share of it, in the table and the JSON.
    assert!(st.contains("METADATA"), "{st}");
    let shares: u64 = js["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata_bytes"].as_u64().unwrap())
        .sum();
    assert!(shares > 0 && shares <= meta, "{js}");
    assert!(ok(&dir, &["check"]).contains("0 corruption"));
}

#[test]
fn check_finds_corruption() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let src = d.path().join("src.raw");
    std::fs::write(&src, vec![0x5au8; 1 << 20]).unwrap();
    ok(&dir, &["import", src.to_str().unwrap(), "v"]);
    ok(&dir, &["check"]);
    // Flip one byte inside the data payload (the 0x5a run) of the first segment.
    let seg = dir.join("segments/seg-00000001.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    let pos = bytes
        .windows(64)
        .position(|w| w.iter().all(|&b| b == 0x5a))
        .unwrap()
        + 100;
    bytes[pos] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let o = blockd(&dir, &["check"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("corruption: ") && out.contains("checksum"),
        "{out}"
    );
    let o = blockd(&dir, &["export", "v", d.path().join("o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("checksum mismatch"));
}

#[test]
fn scrub_finds_every_planted_flip() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let src = d.path().join("src.raw");
    // Two distinct recognisable blocks at offsets 0 and 1 MiB.
    let mut content = vec![0u8; 2 << 20];
    content[..4096].fill(0x5a);
    content[(1 << 20)..(1 << 20) + 4096].fill(0xa5);
    std::fs::write(&src, &content).unwrap();
    ok(&dir, &["import", src.to_str().unwrap(), "v"]);
    let out = ok(&dir, &["scrub"]);
    assert!(out.contains("0 errors"), "{out}");
    let seg = dir.join("segments/seg-00000001.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    for pat in [0x5au8, 0xa5] {
        let pos = bytes
            .windows(64)
            .position(|w| w.iter().all(|&b| b == pat))
            .unwrap()
            + 7;
        bytes[pos] ^= 0x01;
    }
    std::fs::write(&seg, &bytes).unwrap();
    let o = blockd(&dir, &["scrub", "--rate", "1G"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("2 errors"), "{out}");
    assert!(
        out.contains("offset 0:") && out.contains(&format!("offset {}:", 1 << 20)),
        "{out}"
    );
}

#[test]
fn scrub_and_check_find_a_damaged_map_node() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let src = d.path().join("src.raw");
    std::fs::write(&src, vec![0x33u8; 1 << 20]).unwrap();
    ok(&dir, &["import", src.to_str().unwrap(), "v"]);
    let seg = dir.join("segments/seg-00000001.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    // The last map node written: dense ("NODE"), runs ("NODR", as a
    // sequentially written leaf is) or packed ("NODP"); byte 20 lies in
    // the body of each.
    let node = bytes
        .windows(4)
        .rposition(|w| w == b"NODE" || w == b"NODR" || w == b"NODP")
        .unwrap();
    bytes[node + 20] ^= 0x10;
    std::fs::write(&seg, &bytes).unwrap();
    let o = blockd(&dir, &["scrub"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("map node") && out.contains("(map)"), "{out}");
    let o = blockd(&dir, &["check"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn gc_frees_dead_segments_and_gives_spares_back() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let src = d.path().join("src.raw");
    // 100 MiB of incompressible-ish data per import: several 64 MiB segments.
    let content: Vec<u8> = (0..100u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&src, &content).unwrap();
    for round in 0..4 {
        ok(
            &dir,
            &["import", src.to_str().unwrap(), &format!("v{round}")],
        );
        if round < 3 {
            ok(&dir, &["volume", "delete", &format!("v{round}")]);
        }
    }
    let out = ok(&dir, &["gc"]);
    assert!(out.contains("released"), "{out}");
    let spare = dir.join("spare");
    let left = spare.read_dir().map(|rd| rd.count()).unwrap_or(0);
    assert_eq!(left, 0, "gc left spare segment files: {out}");
    let stats: serde_json::Value = serde_json::from_str(&ok(&dir, &["stats", "--json"])).unwrap();
    assert_eq!(stats["spare_bytes"].as_u64(), Some(0));
    let disk = stats["disk_bytes"].as_u64().unwrap();
    assert!(disk < 200 << 20, "gc left {disk} bytes of segments: {out}");
    let back = d.path().join("back.raw");
    ok(&dir, &["export", "v3", back.to_str().unwrap()]);
    assert!(std::fs::read(&back).unwrap() == content);
    assert!(ok(&dir, &["check"]).contains("0 corruption"));
}

#[test]
fn memory_bound_flags_are_validated_and_applied() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    // Accepted with units, on every command (global flags).
    ok(
        &dir,
        &[
            "--cache-size",
            "64M",
            "--dirty-limit",
            "8MiB",
            "volume",
            "create",
            "v",
            "--size",
            "4M",
        ],
    );
    assert!(ok(&dir, &["volume", "list", "--cache-size", "1G"]).contains('v'));
    let before = snapshot_of_store(&dir);
    fails(&dir, &["--cache-size", "lots", "volume", "list"], 2, "lots");
    fails(
        &dir,
        &["--cache-size", "10X", "volume", "list"],
        2,
        "unknown unit",
    );
    fails(
        &dir,
        &["--cache-size", "0", "volume", "list"],
        2,
        "--cache-size must be between",
    );
    fails(
        &dir,
        &["--cache-size", "2T", "stats"],
        2,
        "--cache-size must be between",
    );
    fails(
        &dir,
        &["--dirty-limit", "512K", "check"],
        2,
        "--dirty-limit must be between",
    );
    fails(
        &dir,
        &["--dirty-limit", "17G", "gc"],
        2,
        "--dirty-limit must be between",
    );
    // The environment works too, and is validated the same way.
    let o = Command::new(env!("CARGO_BIN_EXE_blockd"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["volume", "list"])
        .env("BLOCKD_DIRTY_LIMIT", "1K")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--dirty-limit must be between"));
    assert!(
        snapshot_of_store(&dir) == before,
        "bad flags changed the store"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_blockd"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["volume", "list"])
        .env("BLOCKD_CACHE_SIZE", "32M")
        .env("BLOCKD_DIRTY_LIMIT", "4M")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn deleted_data_is_freed_and_checks_clean() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let src = d.path().join("src.raw");
    let content: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&src, &content).unwrap();
    ok(&dir, &["import", src.to_str().unwrap(), "v"]);
    ok(&dir, &["snapshot", "create", "v", "s"]);
    ok(&dir, &["import", src.to_str().unwrap(), "w"]);
    ok(&dir, &["volume", "delete", "v"]);
    ok(&dir, &["snapshot", "delete", "s"]);
    let out = ok(&dir, &["gc"]);
    assert!(out.contains("released"), "{out}");
    let stats: serde_json::Value = serde_json::from_str(&ok(&dir, &["stats", "--json"])).unwrap();
    assert_eq!(stats["pending_free_refs"].as_u64(), Some(0), "{stats}");
    assert_eq!(stats["allocated_bytes"].as_u64(), Some(8 << 20), "{stats}");
    assert!(ok(&dir, &["check"]).contains("0 corruption, 0 leaks"));
}
