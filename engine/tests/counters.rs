//! Counters that must never wrap (docs/design.md, "Counters and their
//! limits"): each test moves one counter near its limit with the test hook
//! `Store::set_counters`, runs client operations until the store refuses one
//! with `ErrorKind::Exhausted` naming the counter, and shows the refusal is
//! clean: the store is not fail-stopped, the refused operation left nothing
//! behind, what may still run (reads, deletes, checkpoints, close) does,
//! and the store reopens with every acknowledged write intact.

use blockd_engine::{CounterOverride, Error, ErrorKind, ObjectId, Store};
mod small;
use small::*;
use std::path::Path;

/// The headroom `stats` reports for counter `name`: (value, limit, remaining).
fn counter(s: &Store, name: &str) -> (u64, u64, u64) {
    let c = s
        .stats()
        .unwrap()
        .counters
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no counter {name}"));
    (c.value, c.limit, c.remaining)
}

fn assert_exhausted(e: &Error, what: &str) {
    assert_eq!(e.kind(), ErrorKind::Exhausted, "{e}");
    assert!(e.to_string().contains(what), "'{e}' does not name {what}");
}

/// A volume of `blocks` blocks with block `b` holding `block(1, b)`.
fn setup(dir: &Path, blocks: u64) -> (Store, ObjectId, Vec<u8>) {
    let s = Store::open(dir, opts()).unwrap();
    let v = s.create_volume(Some("v"), blocks * BS, false).unwrap().id;
    let mut want = vec![0u8; (blocks * BS) as usize];
    for b in 0..4 {
        want[(b * BS) as usize..((b + 1) * BS) as usize].copy_from_slice(&block(1, b));
    }
    s.write(v, 0, &want[..(4 * BS) as usize], false).unwrap();
    (s, v, want)
}

/// Writes block after block (block `i % blocks`, each flushed, with
/// `between` after each) until one is refused; returns the refusal.
fn write_until_refused(
    s: &Store,
    v: ObjectId,
    want: &mut [u8],
    max: u64,
    between: impl Fn(&Store),
) -> Error {
    let blocks = want.len() as u64 / BS;
    for i in 0..max {
        let b = i % blocks;
        let data = block(100 + i, b);
        match s.write(v, b * BS, &data, true) {
            Ok(()) => want[(b * BS) as usize..((b + 1) * BS) as usize].copy_from_slice(&data),
            Err(e) => {
                assert!(!s.is_failed(), "refusal fail-stopped the store: {e}");
                // Nothing of the refused write landed.
                let mut got = vec![0u8; BS as usize];
                s.read(v, b * BS, &mut got).unwrap();
                assert!(got == want[(b * BS) as usize..((b + 1) * BS) as usize]);
                return e;
            }
        }
        between(s);
    }
    panic!("no write refused in {max} tries");
}

fn read_back(s: &Store, v: ObjectId, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    s.read(v, 0, &mut got).unwrap();
    assert!(got == want, "volume does not read back");
}

#[test]
fn data_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (s, v, mut want) = setup(dir.path(), 160);
    let (_, limit, _) = counter(&s, "data_ids");
    s.set_counters(CounterOverride {
        next_data: Some(limit - 3),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(counter(&s, "data_ids").2, 3);
    // A write takes one id per extent of up to 32 blocks: 4 blocks take
    // one; 96 blocks would take three, two are left: refused whole.
    let blocks = |n: u64, tag: u64| -> Vec<u8> { (0..n).flat_map(|b| block(tag, b)).collect() };
    let four = blocks(4, 2);
    s.write(v, 8 * BS, &four, false).unwrap();
    want[(8 * BS) as usize..(12 * BS) as usize].copy_from_slice(&four);
    let many = blocks(96, 3);
    let e = s.write(v, 16 * BS, &many, false).unwrap_err();
    assert_exhausted(&e, "data chunk ids");
    assert!(!s.is_failed());
    // The last two ids go to a 64-block write; then one more is refused.
    s.write(v, 16 * BS, &many[..(64 * BS) as usize], false)
        .unwrap();
    want[(16 * BS) as usize..(80 * BS) as usize].copy_from_slice(&many[..(64 * BS) as usize]);
    assert_eq!(counter(&s, "data_ids").2, 0);
    let e = write_until_refused(&s, v, &mut want, 1, |_| {});
    assert_exhausted(&e, "data chunk ids");
    // What needs no data id still works: zeroes, trims, snapshots, deletes.
    s.write(v, 20 * BS, &vec![0u8; BS as usize], false).unwrap();
    want[(20 * BS) as usize..(21 * BS) as usize].fill(0);
    s.trim(v, 30 * BS, 2 * BS, false).unwrap();
    want[(30 * BS) as usize..(32 * BS) as usize].fill(0);
    let snap = s.snapshot(v, Some("s")).unwrap().id;
    s.delete(snap).unwrap();
    read_back(&s, v, &want);
    s.close().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    read_back(&s, v, &want);
    assert_exhausted(
        &s.write(v, 0, &block(9, 0), false).unwrap_err(),
        "data chunk ids",
    );
}

#[test]
fn node_ids() {
    let dir = tempfile::tempdir().unwrap();
    // 4 GiB: a two-level map, so writes far apart need new map nodes.
    let (s, v, _) = setup(dir.path(), 4);
    s.resize(v, 4 << 30).unwrap();
    let (_, limit, _) = counter(&s, "node_ids");
    s.set_counters(CounterOverride {
        next_node: Some(limit - 1),
        ..Default::default()
    })
    .unwrap();
    // One more operation is admitted (it may take the few nodes it needs
    // from the margin); the next is refused.
    let far = 300_000 * BS;
    s.write(v, far, &block(3, 0), false).unwrap();
    let (value, _, remaining) = counter(&s, "node_ids");
    assert!(value > limit - 1 && remaining == 0, "{value}");
    let e = s.write(v, 2 * far, &block(3, 1), false).unwrap_err();
    assert_exhausted(&e, "map node ids");
    assert!(!s.is_failed());
    let e = s.snapshot(v, None).unwrap_err();
    assert_exhausted(&e, "map node ids");
    let mut got = vec![0u8; BS as usize];
    s.read(v, 2 * far, &mut got).unwrap();
    assert!(got.iter().all(|&b| b == 0), "the refused write landed");
    s.close().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    s.read(v, far, &mut got).unwrap();
    assert!(got == block(3, 0));
    s.read(v, 0, &mut got).unwrap();
    assert!(got == block(1, 0));
    assert_exhausted(
        &s.write(v, 2 * far, &block(3, 1), false).unwrap_err(),
        "map node ids",
    );
    // Deleting allocates nothing and still works.
    s.delete(v).unwrap();
}

#[test]
fn record_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (s, v, mut want) = setup(dir.path(), 16);
    let (_, limit, _) = counter(&s, "record_seq");
    s.set_counters(CounterOverride {
        next_seq: Some(limit - 40),
        ..Default::default()
    })
    .unwrap();
    let e = write_until_refused(&s, v, &mut want, 60, |_| {});
    assert_exhausted(&e, "record sequence numbers");
    assert_eq!(counter(&s, "record_seq").2, 0);
    // Checkpoints go on in the margin; the store reopens and replays.
    s.checkpoint().unwrap();
    read_back(&s, v, &want);
    drop(s);
    let s = Store::open(dir.path(), opts()).unwrap();
    read_back(&s, v, &want);
    assert!(s.check(false).unwrap().is_clean());
    assert_exhausted(
        &s.write(v, 0, &block(9, 0), false).unwrap_err(),
        "record sequence",
    );
    s.close().unwrap();
}

#[test]
fn superblock_generations() {
    let dir = tempfile::tempdir().unwrap();
    let (s, v, mut want) = setup(dir.path(), 16);
    let (_, limit, _) = counter(&s, "generation");
    s.set_counters(CounterOverride {
        generation: Some(limit - 6),
        ..Default::default()
    })
    .unwrap();
    let e = write_until_refused(&s, v, &mut want, 20, |s| s.checkpoint().unwrap());
    assert_exhausted(&e, "superblock generations");
    s.close().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let (value, _, remaining) = counter(&s, "generation");
    assert!(value >= limit && remaining == 0, "{value}");
    read_back(&s, v, &want);
    assert!(s.check(false).unwrap().is_clean());
    assert_exhausted(
        &s.write(v, 0, &block(9, 0), false).unwrap_err(),
        "generations",
    );
}

#[test]
fn segment_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (s, v, mut want) = setup(dir.path(), 64);
    let (_, limit, _) = counter(&s, "segment_no");
    s.set_counters(CounterOverride {
        next_segment: Some((limit - 2) as u32),
        ..Default::default()
    })
    .unwrap();
    // 1 MiB segments: a few hundred blocks cross the last admitted ones.
    let e = write_until_refused(&s, v, &mut want, 2000, |_| {});
    assert_exhausted(&e, "segment numbers");
    let (value, _, remaining) = counter(&s, "segment_no");
    assert!(value >= limit && remaining == 0, "{value}");
    read_back(&s, v, &want);
    s.close().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    read_back(&s, v, &want);
    assert!(s.check(false).unwrap().is_clean());
    assert_exhausted(
        &s.write(v, 0, &block(9, 0), false).unwrap_err(),
        "segment numbers",
    );
    s.close().unwrap();
}
