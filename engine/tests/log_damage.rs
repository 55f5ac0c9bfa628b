//! Damaged records in the replayable log (since the last checkpoint). A
//! flushed write must never vanish silently: a damaged record that a later
//! record shows had been synced stops the open with a `Corrupt` error
//! naming its segment, offset and sequence number, and nothing is
//! truncated; `Store::survey_log` lists the affected object and blocks;
//! `Store::open_salvaging` keeps every intact record after the damage. A
//! damaged *last* record, with nothing after it, cannot be told from a torn
//! write: it is dropped as a torn tail and everything before it is intact.
//!
//! Each store is "crashed" by dropping it without `close` (no checkpoint),
//! so the writes live only in the log. Record layout: 32-byte header
//! (magic, kind at 4, claim at 5..8, seq at 8, body length at 16, body crc
//! at 20, covered length at 24, header crc at 28); an extent Write body
//! holds the object id (16), first block (u64), n blocks (u32), n extents
//! (u32), the block kinds, the extent descriptors (the part the header's
//! crc covers), then per extent its block crcs and payloads.

use blockd_engine::decode::{write_payloads, RecordHeader, RecordKind, HEADER_LEN};
use blockd_engine::{ErrorKind, ObjectId, Store, StoreOptions};
mod small;
use small::*;
use std::path::{Path, PathBuf};

const BS: usize = 4096;

/// A Write record found in a segment file.
#[derive(Debug, Clone)]
struct WriteRec {
    file: PathBuf,
    seg: u32,
    offset: u64,
    seq: u64,
    /// Offsets of the payloads within the file.
    payloads: Vec<u64>,
}

fn write_records(dir: &Path) -> Vec<WriteRec> {
    let mut out = Vec::new();
    for f in segment_files(dir) {
        let seg: u32 = f.file_name().unwrap().to_str().unwrap()[4..12]
            .parse()
            .unwrap();
        let bytes = std::fs::read(&f).unwrap();
        for (off, h) in records(&bytes) {
            let end = off + HEADER_LEN + h.body_len as usize;
            if matches!(h.kind, RecordKind::Write | RecordKind::WriteExtents) {
                let (_, _, at) = write_payloads(h.kind, &bytes[off + HEADER_LEN..end]).unwrap();
                out.push(WriteRec {
                    file: f.clone(),
                    seg,
                    offset: off as u64,
                    seq: h.seq,
                    payloads: at
                        .iter()
                        .flatten()
                        .map(|&(p, _)| (off + HEADER_LEN + p) as u64)
                        .collect(),
                });
            }
        }
    }
    out
}

fn flip(file: &Path, at: u64) {
    let mut b = std::fs::read(file).unwrap();
    b[at as usize] ^= 0x40;
    std::fs::write(file, b).unwrap();
}

/// A crashed store holding volume "v" of 1024 blocks written in `batches`
/// flushed writes of 4 blocks each (write `i` covers blocks 4i..4i+4 with
/// tag i+1). Returns the directory, the volume and its Write records.
fn crashed_store(batches: u64, opts: StoreOptions) -> (tempfile::TempDir, ObjectId, Vec<WriteRec>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts).unwrap();
    let v = s
        .create_volume(Some("v"), 1024 * BS as u64, false)
        .unwrap()
        .id;
    for i in 0..batches {
        let mut data = Vec::new();
        for b in 4 * i..4 * i + 4 {
            data.extend(block(i + 1, b));
        }
        s.write(v, 4 * i * BS as u64, &data, false).unwrap();
        s.flush().unwrap();
    }
    drop(s);
    let recs = write_records(dir.path());
    assert_eq!(recs.len() as u64, batches, "one Write record per batch");
    (dir, v, recs)
}

/// Checks that every block of the volume holds what `n` writes put there,
/// except the blocks `lost`, which read as zeroes (never written before).
fn verify(s: &Store, v: ObjectId, n: u64, lost: (u64, u64), what: &str) {
    let mut buf = vec![0u8; BS];
    for b in 0..1024 {
        s.read(v, b * BS as u64, &mut buf).unwrap();
        let want = if b >= 4 * n || (lost.0..lost.1).contains(&b) {
            vec![0u8; BS]
        } else {
            block(b / 4 + 1, b)
        };
        assert!(buf == want, "{what}: block {b} is wrong");
    }
}

/// Opening fails naming the damaged record, and changes nothing on disk.
fn expect_refused(dir: &Path, rec: &WriteRec) -> String {
    let before = std::fs::read(&rec.file).unwrap();
    let n_files = std::fs::read_dir(dir.join("segments")).unwrap().count();
    let e = match Store::open(dir, opts()) {
        Ok(_) => panic!("a damaged synced record in the middle of the log was accepted"),
        Err(e) => e,
    };
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    let msg = e.to_string();
    let want = format!(
        "log record {} at segment {} offset {}",
        rec.seq, rec.seg, rec.offset
    );
    assert!(msg.contains(&want), "'{msg}' lacks '{want}'");
    assert_eq!(
        std::fs::read(&rec.file).unwrap(),
        before,
        "nothing truncated"
    );
    assert_eq!(
        std::fs::read_dir(dir.join("segments")).unwrap().count(),
        n_files,
        "no segment deleted"
    );
    msg
}

/// The damaged write `k` of `n`: `check` (survey) and salvage report it
/// (the blocks `lost`), the salvaged store holds every other write, and it
/// opens normally afterwards.
fn expect_salvaged(dir: &Path, v: ObjectId, k: u64, n: u64, lost: (u64, u64)) {
    let survey = Store::survey_log(dir).unwrap();
    assert_eq!(survey.len(), 1, "{survey:?}");
    let l = &survey[0];
    assert_eq!(l.object, Some(v), "{l}");
    assert_eq!(l.name.as_deref(), Some("v"), "{l}");
    assert_eq!(l.blocks, vec![lost], "{l}");
    // The survey changed nothing: a normal open still refuses.
    assert!(Store::open(dir, opts()).is_err());
    let (s, salvaged) = Store::open_salvaging(dir, opts()).unwrap();
    assert_eq!(salvaged, survey);
    let what = format!("write {k} damaged");
    verify(&s, v, n, lost, &what);
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{r:?}");
    drop(s);
    let s = Store::open(dir, opts()).expect("the salvaged store opens normally");
    verify(&s, v, n, lost, &what);
    s.close().unwrap();
}

#[test]
fn flipped_payload_mid_log_refuses_then_salvages_exact_block() {
    let (dir, v, recs) = crashed_store(6, opts());
    let r = &recs[2];
    // Block 2 of write 2 (volume block 10).
    flip(&r.file, r.payloads[2] + 100);
    expect_refused(dir.path(), r);
    expect_salvaged(dir.path(), v, 2, 6, (10, 11));
}

#[test]
fn flipped_header_mid_log_refuses_then_salvages_the_record() {
    let (dir, v, recs) = crashed_store(6, opts());
    let r = &recs[3];
    // The sequence number: the header crc fails, the body still verifies.
    flip(&r.file, r.offset + 9);
    let msg = expect_refused(dir.path(), r);
    assert!(msg.contains("header"), "{msg}");
    expect_salvaged(dir.path(), v, 3, 6, (12, 16));
}

#[test]
fn flipped_entry_mid_log_refuses_then_salvages_the_record() {
    let (dir, v, recs) = crashed_store(6, opts());
    let r = &recs[1];
    // Entry 0's crc field: the body crc fails, the header is sound.
    flip(&r.file, r.offset + (HEADER_LEN + 32 + 8) as u64);
    expect_refused(dir.path(), r);
    expect_salvaged(dir.path(), v, 1, 6, (4, 8));
}

#[test]
fn flipped_last_record_is_a_torn_tail() {
    for at in ["payload", "header"] {
        let (dir, v, recs) = crashed_store(6, opts());
        let r = recs.last().unwrap();
        match at {
            "payload" => flip(&r.file, r.payloads[0] + 7),
            _ => flip(&r.file, r.offset + 9),
        }
        let s = Store::open(dir.path(), opts()).unwrap_or_else(|e| panic!("{at}: {e}"));
        verify(&s, v, 6, (20, 24), at);
        assert!(s.check(false).unwrap().is_clean());
        s.close().unwrap();
    }
}

#[test]
fn flipped_record_in_a_sealed_segment_refuses_then_salvages() {
    // 16 KiB records in 1 MiB segments: 150 writes span three segments.
    let (dir, v, recs) = crashed_store(150, opts());
    let last_seg = recs.last().unwrap().seg;
    assert!(last_seg >= 3, "writes span several segments");
    // The sixth write of a sealed segment.
    let (k, r) = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.seg == last_seg - 1)
        .nth(5)
        .map(|(k, r)| (k as u64, r.clone()))
        .unwrap();
    flip(&r.file, r.offset + 9);
    expect_refused(dir.path(), &r);
    expect_salvaged(dir.path(), v, k, 150, (4 * k, 4 * k + 4));
    // The damaged record stays in its segment, before the replay point:
    // cleaning that segment must move the live data after it too.
    let s = Store::open(dir.path(), opts()).unwrap();
    let rep = s.reclaim(1.0).unwrap();
    assert!(rep.segments_freed >= 2, "{rep:?}");
    assert!(!r.file.exists(), "the damaged segment was cleaned");
    verify(&s, v, 150, (4 * k, 4 * k + 4), "after reclaim");
    assert!(s.check(false).unwrap().is_clean());
    s.close().unwrap();
}

#[test]
fn flipped_seal_record_refuses_then_salvages_the_next_segment() {
    let (dir, v, recs) = crashed_store(150, opts());
    // The seal ends segment 1 right after its last Write record.
    let last1 = recs.iter().rfind(|r| r.seg == 1).unwrap().clone();
    let bytes = std::fs::read(&last1.file).unwrap();
    let h = RecordHeader::decode(&bytes[last1.offset as usize..][..HEADER_LEN]).unwrap();
    let seal = last1.offset + (HEADER_LEN as u64) + u64::from(h.body_len);
    let sh = RecordHeader::decode(&bytes[seal as usize..][..HEADER_LEN]).unwrap();
    assert_eq!(sh.kind, RecordKind::Seal);
    flip(&last1.file, seal + 9);
    let e = match Store::open(dir.path(), opts()) {
        Ok(_) => panic!("a damaged seal was taken for the end of the log"),
        Err(e) => e,
    };
    assert!(
        e.to_string()
            .contains(&format!("segment 1 offset {seal} is damaged")),
        "{e}"
    );
    let (s, lost) = Store::open_salvaging(dir.path(), opts()).unwrap();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(
        lost[0].blocks.is_empty() && lost[0].object.is_none(),
        "{lost:?}"
    );
    verify(&s, v, 150, (0, 0), "seal damaged");
    s.close().unwrap();
}
