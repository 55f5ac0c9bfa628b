//! The next segment file is made ready outside the store lock
//! (`engine/src/log/ready.rs`): once the active segment is half full, a
//! file under the next number exists (new, or a renamed spare holding
//! stale records), and the roll seals into it. A crash image taken while
//! such a file lies past the log's tail recovers every flushed write and
//! removes the file; the live store rolls into it and reopens intact.

use blockd_engine::{Store, StoreOptions};
use std::path::Path;

const MIB: u64 = 1 << 20;

fn opts(spares: usize) -> StoreOptions {
    StoreOptions {
        segment_size: MIB,
        spare_segments: spares,
        ..Default::default()
    }
}

fn pattern(seed: u8, len: u64) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

/// The segment numbers in the store's `segments/` directory.
fn segs(dir: &Path) -> Vec<u32> {
    let mut v: Vec<u32> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.strip_prefix("seg-")?.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    v.sort();
    v
}

/// A copy of every file of the store as it is now: what a power cut
/// leaves once everything acknowledged as flushed is on disk.
fn image(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            image(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Opens `dir` and checks that volume `v` reads `want` from 0 and the
/// store checks clean.
fn recovers(dir: &Path, spares: usize, v: blockd_engine::ObjectId, want: &[u8]) {
    let s = Store::open(dir, opts(spares)).unwrap();
    let mut got = vec![0u8; want.len()];
    s.read(v, 0, &mut got).unwrap();
    assert!(got == want, "flushed data lost");
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{r:?}");
    s.close().unwrap();
}

/// Writes `data` at 0 of `v` in 64 KiB flushed pieces until the active
/// segment is past half full and the next segment file is ready; returns
/// the highest segment number before and after, and the bytes written.
fn fill_to_ready(
    s: &Store,
    dir: &Path,
    v: blockd_engine::ObjectId,
    data: &[u8],
) -> (u32, u32, usize) {
    let before = *segs(dir).last().unwrap();
    let mut done = 0;
    for piece in data.chunks(64 << 10) {
        s.write(v, done as u64, piece, true).unwrap();
        done += piece.len();
        let now = *segs(dir).last().unwrap();
        if now > before + 1 || (now == before + 1 && done > 800 << 10) {
            return (before, now, done);
        }
    }
    (before, *segs(dir).last().unwrap(), done)
}

#[test]
fn a_new_next_segment_is_ready_before_the_roll_and_crash_images_recover() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("live");
    let s = Store::open(&live, opts(0)).unwrap();
    let v = s.create_volume(None, 8 * MIB, false).unwrap().id;
    let mut want = pattern(1, 8 * MIB);
    // Past half of segment 1: segment 2 exists before anything rolls.
    s.write(v, 0, &want[..(640 << 10)], true).unwrap();
    assert_eq!(segs(&live), vec![1, 2], "no next segment made ready");
    assert_eq!(s.stats().unwrap().segments, 1);
    let img = d.path().join("img1");
    image(&live, &img);
    let mut prefix = want.clone();
    prefix[(640 << 10)..].fill(0);
    recovers(&img, 0, v, &prefix);
    // Recovery ended the log in segment 1 and removed the file past it.
    assert_eq!(segs(&img), vec![1]);
    // Rolling seals into the ready file, and the next one is made.
    s.write(v, 640 << 10, &want[(640 << 10)..(2 * MIB as usize)], true)
        .unwrap();
    assert!(s.stats().unwrap().segments >= 2);
    assert!(segs(&live).len() >= 3, "{:?}", segs(&live));
    let img = d.path().join("img2");
    image(&live, &img);
    prefix[..(2 * MIB as usize)].copy_from_slice(&want[..(2 * MIB as usize)]);
    recovers(&img, 0, v, &prefix);
    // The rest, then a crash (no close) and a reopen of the live store.
    s.write(v, 2 * MIB, &want[(2 * MIB as usize)..], true)
        .unwrap();
    drop(s);
    recovers(&live, 0, v, &want);
    // Once more after the reopen: writes go on into new ready files.
    let s = Store::open(&live, opts(0)).unwrap();
    want = pattern(7, 8 * MIB);
    s.write(v, 0, &want, true).unwrap();
    s.close().unwrap();
    recovers(&live, 0, v, &want);
}

#[test]
fn a_spare_made_ready_with_stale_records_is_never_replayed() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("live");
    let s = Store::open(&live, opts(8)).unwrap();
    let v = s.create_volume(None, 4 * MIB, false).unwrap().id;
    for round in 0..6u8 {
        s.write(v, 0, &pattern(round, 4 * MIB), false).unwrap();
    }
    s.reclaim(0.5).unwrap();
    let spare = s.stats().unwrap().spare_bytes;
    assert!(spare > 0, "no segment kept for reuse");
    // New data in flushed pieces: the next segment, a renamed spare full
    // of stale records, is made ready while the active one fills.
    let want = pattern(40, 4 * MIB);
    let (before, after, done) = fill_to_ready(&s, &live, v, &want);
    assert!(
        after > before,
        "no next segment made ready: {:?}",
        segs(&live)
    );
    assert!(
        s.stats().unwrap().spare_bytes < spare,
        "the ready segment was not a spare"
    );
    let img = d.path().join("img");
    image(&live, &img);
    // The image holds what was flushed: every piece written so far.
    let s2 = Store::open(&img, opts(8)).unwrap();
    let mut got = vec![0u8; done];
    s2.read(v, 0, &mut got).unwrap();
    assert!(got[..] == want[..done], "flushed pieces lost");
    assert!(s2.check(false).unwrap().is_clean());
    s2.close().unwrap();
    // The live store writes on through the ready spare and reopens.
    s.write(v, 0, &want, true).unwrap();
    drop(s);
    recovers(&live, 8, v, &want);
}
