//! `blockd` on a store whose log (since the last checkpoint) holds a
//! damaged record: commands refuse to open it, naming the record's segment
//! and offset; `check` lists the object and blocks the damage affects
//! without changing anything; `check --repair` salvages every intact
//! record after it, says what was lost, and the store opens again. A
//! damaged last record is a torn tail: the store opens, earlier data
//! intact. The stores are built with the engine and dropped without
//! `close` (a crash), so the writes live only in the log.

mod common;
use common::{blockd_output, pattern};
use engine::decode::{write_payloads, RecordHeader, RecordKind, HEADER_LEN};
use engine::{ObjectId, Store, StoreOptions};
use std::path::Path;

const BS: usize = 4096;

fn run(dir: &Path, args: &[&str], code: i32) -> (String, String) {
    let o = blockd_output(dir, args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(code),
        "blockd {args:?}: stdout {out} stderr {err}"
    );
    (out, err)
}

/// (offset, seq, payload offsets) of each Write record in segment 1.
fn writes(dir: &Path) -> Vec<(u64, u64, Vec<u64>)> {
    let bytes = std::fs::read(dir.join("segments/seg-00000001.log")).unwrap();
    let mut out = Vec::new();
    let mut off = 0usize;
    while let Some(h) = bytes
        .get(off..off + HEADER_LEN)
        .and_then(RecordHeader::decode)
    {
        let end = off + HEADER_LEN + h.body_len as usize;
        if matches!(h.kind, RecordKind::Write | RecordKind::WriteExtents) {
            let (_, _, at) = write_payloads(h.kind, &bytes[off + HEADER_LEN..end]).unwrap();
            out.push((
                off as u64,
                h.seq,
                at.iter()
                    .flatten()
                    .map(|&(p, _)| (off + HEADER_LEN + p) as u64)
                    .collect(),
            ));
        }
        off = end;
    }
    out
}

/// A crashed store: volume "v" (64 blocks) with six flushed writes of four
/// blocks (write i: blocks 4i..4i+4).
fn crashed(dir: &Path) -> ObjectId {
    let opts = StoreOptions {
        segment_size: 1 << 20,
        ..Default::default()
    };
    let s = Store::open(dir, opts).unwrap();
    let v = s
        .create_volume(Some("v"), 64 * BS as u64, false)
        .unwrap()
        .id;
    for i in 0..6u64 {
        let data: Vec<u8> = (4 * i..4 * i + 4)
            .flat_map(|b| pattern(BS, (i + 1) << 32 | b))
            .collect();
        s.write(v, 4 * i * BS as u64, &data, false).unwrap();
        s.flush().unwrap();
    }
    drop(s);
    v
}

fn flip(dir: &Path, at: u64) {
    let f = dir.join("segments/seg-00000001.log");
    let mut b = std::fs::read(&f).unwrap();
    b[at as usize] ^= 0x40;
    std::fs::write(&f, b).unwrap();
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for sub in ["superblock", "segments/seg-00000001.log"] {
        v.push((sub.to_string(), std::fs::read(dir.join(sub)).unwrap()));
    }
    v
}

/// Exports "v" and checks each block: `lost` blocks read as zeroes, the
/// others hold their write (blocks past 24 were never written).
fn export_matches(dir: &Path, lost: &[u64]) {
    let out = dir.join("v.raw");
    run(dir, &["export", "v", out.to_str().unwrap()], 0);
    let got = std::fs::read(&out).unwrap();
    for b in 0..64u64 {
        let blk = &got[b as usize * BS..(b as usize + 1) * BS];
        if b >= 24 || lost.contains(&b) {
            assert!(blk.iter().all(|&x| x == 0), "block {b} should read zeroes");
        } else {
            assert!(
                blk == pattern(BS, (b / 4 + 1) << 32 | b),
                "block {b} lost its data"
            );
        }
    }
}

#[test]
fn damaged_mid_log_record_is_reported_and_salvaged() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let v = crashed(dir);
    let w = writes(dir);
    assert_eq!(w.len(), 6);
    let (off, seq, ref payloads) = w[2];
    // Block 2 of write 2: volume block 10.
    flip(dir, payloads[2] + 11);
    let before = files(dir);
    let here = format!("log record {seq} at segment 1 offset {off}");

    // Any command that opens the store refuses, naming the record.
    let (_, err) = run(dir, &["stats"], 2);
    assert!(err.contains(&here), "{err}");

    // check lists the damage and changes nothing.
    let (out, _) = run(dir, &["check"], 1);
    assert!(out.contains(&here), "{out}");
    let lost = format!("lost: record {seq} at segment 1 offset {off}: object {v} (v) blocks 10:");
    assert!(out.contains(&lost), "{out}");
    assert!(out.contains("check --repair"), "{out}");
    assert_eq!(files(dir), before, "check changed the store");

    // check --repair salvages the rest and reports the loss once.
    let (out, _) = run(dir, &["check", "--repair"], 1);
    assert!(out.contains(&lost), "{out}");
    assert_eq!(out.matches("lost:").count(), 1, "{out}");

    // The store opens again; everything but block 10 survived.
    run(dir, &["check"], 0);
    export_matches(dir, &[10]);
}

#[test]
fn damaged_last_record_is_a_torn_tail() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    crashed(dir);
    let w = writes(dir);
    let (off, _, _) = w[5];
    flip(dir, off + 9);
    let (out, _) = run(dir, &["check"], 0);
    assert!(!out.contains("lost:"), "{out}");
    // The last write (blocks 20..24) was torn; the rest is intact.
    export_matches(dir, &[20, 21, 22, 23]);
}
