//! Multi-block extents (format version 6, docs/design.md "Extents"): a
//! write of contiguous data blocks is stored as extents of up to 32 blocks,
//! each with one id, one chunk-table entry and one refcount counting the
//! map leaves that name it. These tests read blocks inside extents, follow
//! refcounts through snapshots, partial overwrites and deletes (each step
//! recounted by `check` against the table), watch space come back only
//! when no leaf names an extent any more, and damage one block of an
//! extent in the log to see a salvaging open lose that block alone.

use blockd_engine::decode::{write_payloads, RecordKind, HEADER_LEN};
use blockd_engine::{ErrorKind, ObjectId, Store, StoreOptions};
mod small;
use small::*;
use std::path::Path;

/// Options with 64 MiB segments: a Write record holds up to 256 blocks.
fn big() -> StoreOptions {
    StoreOptions {
        segment_size: 64 << 20,
        create: true,
        ..Default::default()
    }
}

fn data_ids(s: &Store) -> u64 {
    let st = s.stats().unwrap();
    st.counters
        .iter()
        .find(|c| c.name == "data_ids")
        .unwrap()
        .value
}

fn clean(s: &Store, what: &str) {
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{what}: {r:?}");
}

fn blocks(tag: u64, range: std::ops::Range<u64>) -> Vec<u8> {
    range.flat_map(|b| block(tag, b)).collect()
}

/// Reads the whole volume and compares it with `model` (per block: the
/// tag written there, 0 for never written).
fn verify(s: &Store, v: ObjectId, model: &[u64], what: &str) {
    let mut got = vec![0u8; model.len() * BS as usize];
    s.read(v, 0, &mut got).unwrap();
    for (b, &t) in model.iter().enumerate() {
        let want = if t == 0 {
            vec![0u8; BS as usize]
        } else {
            block(t, b as u64)
        };
        let at = b * BS as usize..(b + 1) * BS as usize;
        assert!(got[at] == want[..], "{what}: block {b}");
    }
}

fn write(s: &Store, v: ObjectId, model: &mut [u64], tag: u64, range: std::ops::Range<u64>) {
    s.write(v, range.start * BS, &blocks(tag, range.clone()), false)
        .unwrap();
    model[range.start as usize..range.end as usize].fill(tag);
}

#[test]
fn a_1_mib_write_makes_8_extents_and_reads_inside_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), big()).unwrap();
    let v = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
    let mut model = vec![0u64; 2048];
    let before = data_ids(&s);
    write(&s, v, &mut model, 1, 0..256);
    assert_eq!(data_ids(&s), before + 8, "256 blocks: 8 extents of 32");
    // Zero blocks are in no extent: 40 data blocks around 8 zero ones
    // are cut at the zeros (16 + 24 blocks: two extents).
    let mut data = blocks(2, 300..348);
    data[16 * BS as usize..24 * BS as usize].fill(0);
    let before = data_ids(&s);
    s.write(v, 300 * BS, &data, false).unwrap();
    assert_eq!(data_ids(&s), before + 2);
    model[300..348].fill(2);
    let mut got = vec![0u8; BS as usize];
    s.read(v, 316 * BS, &mut got).unwrap();
    assert!(got.iter().all(|&x| x == 0));
    // A block in the middle of an extent, alone; bytes across two blocks
    // of one extent; a range across two extents.
    s.read(v, 17 * BS, &mut got).unwrap();
    assert!(got == block(1, 17));
    let mut two = vec![0u8; 100];
    s.read(v, 18 * BS - 50, &mut two).unwrap();
    assert!(two[..50] == block(1, 17)[4046..] && two[50..] == block(1, 18)[..50]);
    let mut span = vec![0u8; 6 * BS as usize];
    s.read(v, 29 * BS, &mut span).unwrap();
    assert!(span == blocks(1, 29..35));
    // A sub-block write inside an extent: read-modify-write of that block
    // into a new one-block extent; its neighbours still read from the old.
    s.write(v, 40 * BS + 7, b"abc", false).unwrap();
    let mut b40 = block(1, 40);
    b40[7..10].copy_from_slice(b"abc");
    s.read(v, 39 * BS, &mut span[..3 * BS as usize]).unwrap();
    assert!(span[..BS as usize] == block(1, 39)[..]);
    assert!(span[BS as usize..2 * BS as usize] == b40[..]);
    assert!(span[2 * BS as usize..3 * BS as usize] == block(1, 41)[..]);
    clean(&s, "written");
    s.close().unwrap();
    let s = Store::open(dir.path(), big()).unwrap();
    let mut got = vec![0u8; BS as usize];
    s.read(v, 40 * BS, &mut got).unwrap();
    assert!(got == b40);
    let mut m = model.clone();
    m[316..324].fill(0);
    let mut all = vec![0u8; 2048 * BS as usize];
    s.read(v, 0, &mut all).unwrap();
    for b in (0..2048).filter(|&b| b != 40) {
        let want = if m[b] == 0 {
            vec![0u8; BS as usize]
        } else {
            block(m[b], b as u64)
        };
        assert!(
            all[b * BS as usize..(b + 1) * BS as usize] == want[..],
            "block {b}"
        );
    }
    clean(&s, "reopened");
    assert!(s.scrub(None).unwrap().errors.is_empty());
}

/// Refcounts follow (leaf, extent) pairs: an extent across a leaf boundary
/// has two references; a snapshot shares the leaves (no increment), a
/// write shadowing a leaf increments each distinct extent in it once; a
/// partial overwrite keeps the extent (and all its blocks) live; only when
/// no leaf names it is its space given back. `check` recounts every step.
#[test]
fn refcounts_across_snapshot_partial_overwrite_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), big()).unwrap();
    let v = s.create_volume(Some("v"), 4 << 20, false).unwrap().id;
    let mut model = vec![0u64; 1024];
    let alloc = |s: &Store| s.stats().unwrap().allocated_bytes / BS;
    // Blocks 500..564: extents 500..532 (leaves 0 and 1) and 532..564.
    let unique = |s: &Store, id| s.object_stats(id).unwrap().unique_bytes / BS;
    write(&s, v, &mut model, 1, 500..564);
    assert_eq!(alloc(&s), 64);
    // Both references to the straddling extent are the volume's own.
    assert_eq!(unique(&s, v), 64);
    clean(&s, "written");
    let snap = s.snapshot(v, Some("s")).unwrap().id;
    let snap_model = model.clone();
    assert_eq!((unique(&s, v), unique(&s, snap)), (0, 0));
    clean(&s, "snapshot");
    // One block of the first extent, in leaf 0: the leaf is shadowed.
    write(&s, v, &mut model, 2, 505..506);
    clean(&s, "partial overwrite after snapshot");
    // The first extent's blocks in leaf 1, all overwritten in the volume.
    write(&s, v, &mut model, 3, 510..532);
    assert_eq!(alloc(&s), 64 + 1 + 22);
    // The volume's new blocks are its own; the snapshot owns nothing
    // alone: the first extent is still named by the volume's leaf 0.
    assert_eq!((unique(&s, v), unique(&s, snap)), (23, 0));
    clean(&s, "leaf 1 rewritten");
    verify(&s, snap, &snap_model, "snapshot");
    verify(&s, v, &model, "volume");
    // Deleting the snapshot frees nothing of the first extent: the
    // volume's leaf 0 still maps 9 of its blocks, so all 32 stay.
    s.delete(snap).unwrap();
    assert_eq!(alloc(&s), 64 + 1 + 22);
    clean(&s, "snapshot deleted");
    // Its last blocks overwritten (with the one-block extent at 505): it
    // goes, 32 blocks, and so does the one-block extent.
    write(&s, v, &mut model, 4, 500..510);
    assert_eq!(alloc(&s), 32 + 22 + 10);
    clean(&s, "first extent released");
    // A clone shares everything; a trim of part of an extent in the clone
    // keeps it; the clone's delete leaves the volume whole.
    let snap = s.snapshot(v, Some("s2")).unwrap().id;
    let c = s.clone_volume(snap, Some("c")).unwrap().id;
    s.trim(c, 540 * BS, 4 * BS, false).unwrap();
    clean(&s, "clone trimmed");
    s.delete(c).unwrap();
    s.delete(snap).unwrap();
    assert_eq!(alloc(&s), 32 + 22 + 10);
    clean(&s, "clone deleted");
    s.close().unwrap();
    let s = Store::open(dir.path(), big()).unwrap();
    verify(&s, v, &model, "reopened");
    clean(&s, "reopened");
    // The whole volume trimmed: every extent goes.
    s.trim(v, 0, 4 << 20, false).unwrap();
    assert_eq!(alloc(&s), 0);
    clean(&s, "trimmed");
}

/// The cleaner moves whole extents (crcs and payloads in one extent Reloc
/// record), including one that a partial overwrite left half dead.
#[test]
fn the_cleaner_moves_whole_extents() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let v = s.create_volume(Some("v"), 4 << 20, false).unwrap().id;
    let mut model = vec![0u64; 1024];
    for t in 1..=3 {
        write(&s, v, &mut model, t, 0..1024);
    }
    // Every other 16 blocks rewritten: each 32-block extent of the last
    // pass stays live, half of it dead.
    for at in (0..1024).step_by(32) {
        write(&s, v, &mut model, 4, at..at + 16);
    }
    let r = s.reclaim(1.0).unwrap();
    assert!(r.segments_freed > 0 && r.bytes_moved > 0, "{r:?}");
    verify(&s, v, &model, "after reclaim");
    clean(&s, "after reclaim");
    s.close().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    verify(&s, v, &model, "reopened");
    clean(&s, "reopened");
    assert!(s.scrub(None).unwrap().errors.is_empty());
}

/// The extent Write records of `dir`'s log: (segment file, record offset,
/// per block the payload's offset in the file).
fn extent_writes(dir: &Path) -> Vec<(std::path::PathBuf, u64, Vec<Option<u64>>)> {
    let mut out = Vec::new();
    for f in segment_files(dir) {
        let bytes = std::fs::read(&f).unwrap();
        for (off, h) in records(&bytes) {
            let end = off + HEADER_LEN + h.body_len as usize;
            if h.kind == RecordKind::WriteExtents {
                let (_, _, at) = write_payloads(h.kind, &bytes[off + HEADER_LEN..end]).unwrap();
                let at = at
                    .iter()
                    .map(|p| p.map(|(o, _)| (off + HEADER_LEN + o) as u64))
                    .collect();
                out.push((f.clone(), off as u64, at));
            }
        }
    }
    out
}

/// A block damaged inside an extent, in a synced record followed by more:
/// the open refuses it (not a torn tail); a salvaging open loses that
/// block alone (it keeps its earlier content) and keeps the extent's other
/// 31 blocks and every later record; `check` is clean afterwards (the
/// damaged block is mapped nowhere).
#[test]
fn a_damaged_block_in_an_extent_loses_only_that_block_on_salvage() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let v = s.create_volume(Some("v"), 1 << 20, false).unwrap().id;
    let mut model = vec![0u64; 256];
    write(&s, v, &mut model, 1, 0..32);
    s.flush().unwrap();
    s.checkpoint().unwrap();
    write(&s, v, &mut model, 2, 0..32);
    s.flush().unwrap();
    write(&s, v, &mut model, 3, 100..104);
    s.flush().unwrap();
    drop(s); // crash: the last two writes live in the log only
    let recs = extent_writes(dir.path());
    let (file, _, at) = recs
        .iter()
        .rev()
        .find(|r| r.2.len() == 32)
        .expect("the second 32-block write")
        .clone();
    let p = at[5].unwrap();
    let mut b = std::fs::read(&file).unwrap();
    b[(p + 100) as usize] ^= 0x40;
    std::fs::write(&file, b).unwrap();
    let e = match Store::open(dir.path(), opts()) {
        Ok(_) => panic!("a damaged synced record was accepted"),
        Err(e) => e,
    };
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    let lost = Store::survey_log(dir.path()).unwrap();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].blocks, vec![(5, 6)], "{lost:?}");
    let (s, lost) = Store::open_salvaging(dir.path(), opts()).unwrap();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].blocks, vec![(5, 6)], "{lost:?}");
    assert!(
        lost[0].what.contains("other 31 blocks were kept"),
        "{lost:?}"
    );
    // Block 5 keeps its earlier content; the rest is the salvaged write.
    model[5] = 1;
    verify(&s, v, &model, "salvaged");
    clean(&s, "salvaged");
    s.close().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    verify(&s, v, &model, "reopened");
    clean(&s, "reopened");
    // The cleaner moves the extent, its damaged (unmapped) block with it.
    write(&s, v, &mut model, 6, 64..256);
    let _ = s.reclaim(1.0).unwrap();
    verify(&s, v, &model, "after reclaim");
    clean(&s, "after reclaim");
}
