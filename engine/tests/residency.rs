//! Segments given up to an object store (`residency.rs`): sealed segments
//! evicted to sparse files are read back through a `SegmentSource` (here
//! a map of copies taken before eviction), byte-exact, before and after
//! reopening; without a source the read fails naming the segment; a
//! source returning damaged bytes is an error, never silent data; the
//! active segment is never evicted; a committed generation says how much
//! of the log it covers.

use blockd_engine::tiering::SegmentSource;
use blockd_engine::{SegmentNo, Store, StoreOptions, WHOLE};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Copies {
    segs: Mutex<HashMap<SegmentNo, Vec<u8>>>,
    reads: AtomicU64,
    damage: AtomicBool,
}

impl SegmentSource for Copies {
    fn read_at(&self, no: SegmentNo, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let segs = self.segs.lock().unwrap();
        let data = segs
            .get(&no)
            .ok_or_else(|| std::io::Error::other(format!("no copy of segment {}", no.0)))?;
        let at = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - at);
        buf[..n].copy_from_slice(&data[at..at + n]);
        if self.damage.load(Ordering::Relaxed) && n > 0 {
            buf[0] ^= 0x5a;
        }
        Ok(n)
    }
}

fn opts(source: Option<Arc<Copies>>) -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        create: true,
        segment_source: source.map(|s| s as Arc<dyn SegmentSource>),
        ..Default::default()
    }
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

/// Copies every sealed segment into the source and evicts it; returns
/// bytes freed.
fn evict_sealed(s: &Store, dir: &std::path::Path, copies: &Copies) -> u64 {
    let mut freed = 0;
    for r in s.segment_residency() {
        if r.active || r.remote_below == WHOLE {
            continue;
        }
        let bytes = std::fs::read(blockd_engine::tiering::segment_file(dir, r.no)).unwrap();
        copies.segs.lock().unwrap().insert(r.no, bytes);
        freed += s.evict_segment(r.no).unwrap();
    }
    freed
}

#[test]
fn evicted_segments_read_back_through_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let copies = Arc::new(Copies::default());
    let data = pattern(7, 6 << 20);
    let (vol, snap);
    {
        let s = Store::open(dir.path(), opts(Some(copies.clone()))).unwrap();
        vol = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
        s.write(vol, 0, &data, true).unwrap();
        snap = s.snapshot(vol, Some("s")).unwrap().id;
        s.write(vol, 0, &pattern(9, 4096), true).unwrap();
        s.checkpoint().unwrap();
        let before: u64 = s.segment_residency().iter().map(|r| r.allocated).sum();
        let freed = evict_sealed(&s, dir.path(), &copies);
        assert!(freed >= 4 << 20, "freed only {freed} bytes");
        let after: u64 = s.segment_residency().iter().map(|r| r.allocated).sum();
        assert!(after + (4 << 20) <= before, "{before} -> {after}");
        let active = s
            .segment_residency()
            .into_iter()
            .find(|r| r.active)
            .unwrap();
        assert!(
            s.evict_segment(active.no).is_err(),
            "active segment evicted"
        );
        let mut got = vec![0u8; data.len()];
        s.read(snap, 0, &mut got).unwrap();
        assert!(got == data, "snapshot read through the source");
        assert!(copies.reads.load(Ordering::Relaxed) > 0);
        s.close().unwrap();
    }
    // Without a source, reads of evicted bytes fail, naming the segment.
    let msg = match Store::open(dir.path(), opts(None)) {
        Err(e) => chain(&e),
        Ok(s) => {
            let mut got = vec![0u8; 1 << 20];
            chain(&s.read(snap, 0, &mut got).unwrap_err())
        }
    };
    assert!(
        msg.contains("is in the object store") && msg.contains("segment"),
        "{msg}"
    );
    // Reopened with the source: everything reads back.
    let s = Store::open(dir.path(), opts(Some(copies.clone()))).unwrap();
    let mut got = vec![0u8; data.len()];
    s.read(snap, 0, &mut got).unwrap();
    assert!(got == data, "snapshot after reopen");
    let mut expect = data.clone();
    expect[..4096].copy_from_slice(&pattern(9, 4096));
    s.read(vol, 0, &mut got).unwrap();
    assert!(got == expect, "volume after reopen");
    assert!(s
        .segment_residency()
        .iter()
        .any(|r| r.remote_below == WHOLE));
    // Damaged remote bytes are an error.
    copies.damage.store(true, Ordering::Relaxed);
    let s2 = s.clone();
    drop(s);
    drop(s2);
    let s = Store::open(dir.path(), opts(Some(copies.clone())));
    if let Ok(s) = s {
        let e = s.read(snap, 0, &mut got).unwrap_err();
        let msg = chain(&e);
        assert!(msg.contains("segment") || msg.contains("checksum"), "{msg}");
    }
}

/// An error and its sources, as the CLI prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[test]
fn a_full_cache_refuses_writes_that_need_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts(None)).unwrap();
    let vol = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
    s.write(vol, 0, &pattern(1, 64 << 10), true).unwrap();
    s.set_cache_full(true);
    // Writes within the active segment go on; the one that needs the next
    // segment is refused with NoSpace, and nothing is lost.
    let data = pattern(3, 4 << 20);
    let mut refused = None;
    for (i, c) in data.chunks(64 << 10).enumerate() {
        if let Err(e) = s.write(vol, (i * (64 << 10)) as u64, c, false) {
            refused = Some((i, e));
            break;
        }
    }
    let (at, e) = refused.expect("a write past the active segment is refused");
    assert_eq!(e.kind(), blockd_engine::ErrorKind::NoSpace, "{e}");
    assert!(e.to_string().contains("--cache-dir-size"), "{e}");
    s.set_cache_full(false);
    for (i, c) in data.chunks(64 << 10).enumerate().skip(at) {
        s.write(vol, (i * (64 << 10)) as u64, c, false).unwrap();
    }
    let mut got = vec![0u8; data.len()];
    s.read(vol, 0, &mut got).unwrap();
    assert!(got == data);
}

/// Records what each committed generation's observer call says.
#[derive(Default)]
struct Seen(Mutex<Vec<(u64, u64)>>);

impl blockd_engine::tiering::CommitObserver for Seen {
    fn committed(&self, c: blockd_engine::tiering::Committed) {
        self.0.lock().unwrap().push((c.generation, c.log_bytes));
    }
}

/// A generation's `log_bytes` is the log counter at its replay point: an
/// idle store reads the same after the checkpoint (its own pages and blob
/// count as covered), and any record appended since makes the counter
/// differ: how the tier's ticker tells that the bucket lacks something
/// (records appended while a checkpoint runs land after its replay point,
/// so they count too).
#[test]
fn committed_generations_say_how_much_log_they_cover() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("d");
    let s = Store::open(&dir, opts(None)).unwrap();
    let vol = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
    let seen = Arc::new(Seen::default());
    s.set_commit_observer(Some(seen.clone()));
    s.write(vol, 0, &pattern(1, 256 << 10), false).unwrap();
    s.checkpoint().unwrap();
    let (g1, covered) = *seen.0.lock().unwrap().last().unwrap();
    assert_eq!(covered, s.op_stats().log_bytes, "idle after the checkpoint");
    s.write(vol, 4096, &pattern(2, 4096), false).unwrap();
    assert!(s.op_stats().log_bytes > covered);
    s.checkpoint().unwrap();
    let (g2, covered2) = *seen.0.lock().unwrap().last().unwrap();
    assert!(g2 > g1 && covered2 > covered);
    assert_eq!(covered2, s.op_stats().log_bytes);
    s.set_commit_observer(None);
    s.close().unwrap();
}

/// The object store away: reclaim cannot read an evicted segment. That
/// stops the reclaim pass with an error, but the store does not fail-stop
/// (nothing was appended), and a write the full cache refuses still gets
/// NoSpace (the reclaim it tries first fails), not an I/O error; once the
/// store is back, reclaim and writes work and nothing was lost.
#[test]
fn an_unreadable_evicted_segment_stops_reclaim_not_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let copies = Arc::new(Copies::default());
    let s = Store::open(dir.path(), opts(Some(copies.clone()))).unwrap();
    let vol = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
    let mut data = pattern(1, 4 << 20);
    s.write(vol, 0, &data, true).unwrap();
    // Half of a segment's data dead: a candidate that must be read.
    let over = pattern(2, (5 << 20) / 2);
    s.write(vol, 0, &over, true).unwrap();
    data[..over.len()].copy_from_slice(&over);
    s.checkpoint().unwrap();
    assert!(evict_sealed(&s, dir.path(), &copies) > 0);
    let saved = std::mem::take(&mut *copies.segs.lock().unwrap());

    let e = s.reclaim_some(0.9, 8).unwrap_err();
    assert!(e.to_string().contains("no copy of segment"), "{e}");
    s.write(vol, 0, &data[..64 << 10], true).unwrap();
    s.set_cache_full(true);
    let refused = (0..64u64)
        .find_map(|i| {
            let off = (i * (64 << 10)) % (4 << 20);
            let c = &data[off as usize..(off + (64 << 10)) as usize];
            s.write(vol, off, c, false).err()
        })
        .expect("a write past the active segment is refused");
    assert_eq!(
        refused.kind(),
        blockd_engine::ErrorKind::NoSpace,
        "{refused}"
    );

    *copies.segs.lock().unwrap() = saved;
    s.set_cache_full(false);
    s.reclaim_some(0.9, 8).unwrap();
    s.write(vol, 0, &data[..64 << 10], true).unwrap();
    let mut got = vec![0u8; data.len()];
    s.read(vol, 0, &mut got).unwrap();
    assert!(got == data);
}
