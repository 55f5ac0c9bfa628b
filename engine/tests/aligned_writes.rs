//! Aligned extent Write records (format version 8, docs/design.md
//! "Aligned extent writes"): a large aligned write handed over in an
//! owned buffer (`Store::write_owned`) is stored with its payloads at
//! 4 KiB-aligned file offsets, located through the `gap` of each extent's
//! entry. These tests check the records on disk, then read the blocks
//! back through snapshots, clones, overwrites, a kill and replay, the
//! cleaner's moves, `check` and `scrub`, and damage one block to see a
//! salvaging open lose that block alone.

use blockd_engine::decode::{write_payloads, RecordKind, HEADER_LEN};
use blockd_engine::{AlignedBuf, ErrorKind, ObjectId, Store, StoreOptions};
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

fn blocks(tag: u64, range: std::ops::Range<u64>) -> Vec<u8> {
    range.flat_map(|b| block(tag, b)).collect()
}

/// Writes `range` under `tag` through an owned aligned buffer.
fn write_owned(s: &Store, v: ObjectId, model: &mut [u64], tag: u64, range: std::ops::Range<u64>) {
    let data = blocks(tag, range.clone());
    let mut buf = s.aligned_buf(data.len());
    assert_eq!(buf.as_ptr() as usize % 4096, 0);
    buf.copy_from_slice(&data);
    s.write_owned(v, range.start * BS, buf, false).unwrap();
    model[range.start as usize..range.end as usize].fill(tag);
}

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

fn clean(s: &Store, what: &str) {
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{what}: {r:?}");
}

/// The Write records of `dir`'s log of `kind`: (segment file, record
/// offset, per block the payload's offset in the file).
fn writes_of(dir: &Path, kind: RecordKind) -> Vec<(std::path::PathBuf, u64, Vec<Option<u64>>)> {
    let mut out = Vec::new();
    for f in segment_files(dir) {
        let bytes = std::fs::read(&f).unwrap();
        for (off, h) in records(&bytes) {
            let end = off + HEADER_LEN + h.body_len as usize;
            if h.kind == kind {
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

#[test]
fn owned_writes_land_aligned_and_read_back_through_snapshots_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), big()).unwrap();
    let v = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
    let mut model = vec![0u64; 2048];
    // 1 MiB at block 0, then 600 KiB at block 301 (an unaligned place in
    // the log after the first record).
    write_owned(&s, v, &mut model, 1, 0..256);
    write_owned(&s, v, &mut model, 2, 301..451);
    // Small and unaligned owned writes take the ordinary path.
    let mut b = s.aligned_buf(4096);
    b.copy_from_slice(&block(3, 600));
    s.write_owned(v, 600 * BS, b, false).unwrap();
    model[600] = 3;
    s.flush().unwrap();
    let aligned = writes_of(dir.path(), RecordKind::WriteAligned);
    assert_eq!(aligned.len(), 2, "two aligned records");
    for (_, _, at) in &aligned {
        for p in at {
            let p = p.expect("every block is data");
            assert_eq!(p % 4096, 0, "payload at {p} is not 4 KiB-aligned");
        }
    }
    assert_eq!(aligned[0].2.len(), 256);
    assert_eq!(aligned[1].2.len(), 150);
    assert_eq!(writes_of(dir.path(), RecordKind::WriteExtents).len(), 1);
    verify(&s, v, &model, "written");
    // Reads inside one extent, across two, across two records.
    let mut span = vec![0u8; 6 * BS as usize];
    s.read(v, 29 * BS, &mut span).unwrap();
    assert!(span == blocks(1, 29..35));
    let mut two = vec![0u8; 100];
    s.read(v, 18 * BS - 50, &mut two).unwrap();
    assert!(two[..50] == block(1, 17)[4046..] && two[50..] == block(1, 18)[..50]);
    clean(&s, "written");
    // A snapshot, then the volume overwritten in part (owned and not),
    // and a clone of the snapshot overwritten too.
    let snap = s.snapshot(v, Some("s")).unwrap().id;
    let snap_model = model.clone();
    write_owned(&s, v, &mut model, 4, 16..48);
    s.write(v, 40 * BS + 7, b"abc", false).unwrap();
    let c = s.clone_volume(snap, Some("c")).unwrap().id;
    let mut clone_model = snap_model.clone();
    write_owned(&s, c, &mut clone_model, 5, 320..420);
    verify(&s, snap, &snap_model, "snapshot");
    verify(&s, c, &clone_model, "clone");
    let mut b40 = block(4, 40);
    b40[7..10].copy_from_slice(b"abc");
    let mut got = vec![0u8; BS as usize];
    s.read(v, 40 * BS, &mut got).unwrap();
    assert!(got == b40);
    clean(&s, "overwritten");
    s.flush().unwrap();
    // Killed: the log since the open's checkpoint is replayed.
    drop(s);
    let s = Store::open(dir.path(), big()).unwrap();
    verify(&s, snap, &snap_model, "snapshot replayed");
    verify(&s, c, &clone_model, "clone replayed");
    s.read(v, 40 * BS, &mut got).unwrap();
    assert!(got == b40, "block 40 replayed");
    model[40] = 0;
    let mut all = vec![0u8; 2048 * BS as usize];
    s.read(v, 0, &mut all).unwrap();
    for b in (0..2048).filter(|&b| b != 40) {
        let want = if model[b] == 0 {
            vec![0u8; BS as usize]
        } else {
            block(model[b], b as u64)
        };
        assert!(
            all[b * BS as usize..(b + 1) * BS as usize] == want[..],
            "block {b}"
        );
    }
    clean(&s, "replayed");
    assert!(s.scrub(None).unwrap().errors.is_empty());
    // Everything deleted or trimmed: the space comes back.
    s.delete(c).unwrap();
    s.delete(snap).unwrap();
    s.trim(v, 0, 8 << 20, false).unwrap();
    assert_eq!(s.stats().unwrap().allocated_bytes, 0);
    clean(&s, "trimmed");
    s.close().unwrap();
}

/// A record's worth holding an all-zero block is written the ordinary way
/// (zero blocks are stored as no data); the pieces around it stay aligned.
#[test]
fn owned_writes_with_zero_blocks_keep_them_unstored() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), big()).unwrap();
    let v = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
    // Two records' worth (256 blocks each): a zero block in the second.
    let mut data = blocks(7, 0..512);
    data[300 * BS as usize..301 * BS as usize].fill(0);
    let mut buf = s.aligned_buf(data.len());
    buf.copy_from_slice(&data);
    s.write_owned(v, 0, buf, true).unwrap();
    assert_eq!(writes_of(dir.path(), RecordKind::WriteAligned).len(), 1);
    assert_eq!(writes_of(dir.path(), RecordKind::WriteExtents).len(), 1);
    let mut got = vec![0u8; data.len()];
    s.read(v, 0, &mut got).unwrap();
    assert!(got == data);
    assert_eq!(s.stats().unwrap().allocated_bytes, 511 * BS);
    clean(&s, "written");
}

/// The cleaner moves aligned extents whole (into extent Reloc records,
/// crcs then payloads); reads, `check` and `scrub` find them there, also
/// after a reopen.
#[test]
fn the_cleaner_moves_aligned_extents() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let v = s.create_volume(Some("v"), 4 << 20, false).unwrap().id;
    let mut model = vec![0u64; 1024];
    for t in 1..=3 {
        for at in (0..1024).step_by(64) {
            write_owned(&s, v, &mut model, t, at..at + 64);
        }
    }
    assert!(writes_of(dir.path(), RecordKind::WriteAligned).len() > 16);
    // Every other 16 blocks rewritten (owned and under 64 KiB: the
    // ordinary path): each aligned extent of the last pass stays live,
    // half of it dead.
    for at in (0..1024).step_by(32) {
        write_owned(&s, v, &mut model, 4, at..at + 16);
    }
    let r = s.reclaim(1.0).unwrap();
    assert!(r.segments_freed > 0 && r.bytes_moved > 0, "{r:?}");
    verify(&s, v, &model, "after reclaim");
    clean(&s, "after reclaim");
    assert!(s.scrub(None).unwrap().errors.is_empty());
    s.close().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    verify(&s, v, &model, "reopened");
    clean(&s, "reopened");
    assert!(s.scrub(None).unwrap().errors.is_empty());
}

/// A block damaged inside an aligned record, synced and followed by
/// more: the open refuses it; a salvaging open loses that block alone
/// (it keeps its earlier content) and keeps the rest; `scrub` then
/// reports the damaged block of the still-live extent, and the cleaner
/// moves the extent with it.
#[test]
fn a_damaged_block_of_an_aligned_write_loses_only_that_block_on_salvage() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let v = s.create_volume(Some("v"), 1 << 20, false).unwrap().id;
    let mut model = vec![0u64; 256];
    write_owned(&s, v, &mut model, 1, 0..32);
    s.flush().unwrap();
    s.checkpoint().unwrap();
    write_owned(&s, v, &mut model, 2, 0..32);
    s.flush().unwrap();
    write_owned(&s, v, &mut model, 3, 100..132);
    s.flush().unwrap();
    drop(s); // crash: the last two writes live in the log only
    let recs = writes_of(dir.path(), RecordKind::WriteAligned);
    assert_eq!(recs.len(), 3, "three aligned writes");
    // The second one (blocks 0..32 again), followed by the third.
    let (file, _, at) = recs[1].clone();
    let p = at[5].unwrap();
    let mut b = std::fs::read(&file).unwrap();
    b[(p + 100) as usize] ^= 0x40;
    std::fs::write(&file, b).unwrap();
    let e = match Store::open(dir.path(), opts()) {
        Ok(_) => panic!("a damaged synced record was accepted"),
        Err(e) => e,
    };
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    let (s, lost) = Store::open_salvaging(dir.path(), opts()).unwrap();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].blocks, vec![(5, 6)], "{lost:?}");
    model[5] = 1;
    verify(&s, v, &model, "salvaged");
    clean(&s, "salvaged");
    let errs = s.scrub(None).unwrap().errors;
    assert_eq!(errs.len(), 1, "{errs:?}");
    s.close().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    verify(&s, v, &model, "reopened");
    write_owned(&s, v, &mut model, 6, 160..256);
    let _ = s.reclaim(1.0).unwrap();
    verify(&s, v, &model, "after reclaim");
    clean(&s, "after reclaim");
}

/// A store written by this build says format version 8; the superblock
/// is what a version 7 build checks to refuse it.
#[test]
fn new_stores_are_version_8() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    s.close().unwrap();
    let sb = std::fs::read(dir.path().join("superblock")).unwrap();
    let v =
        |slot: usize| u32::from_le_bytes(sb[slot * 4096 + 8..slot * 4096 + 12].try_into().unwrap());
    assert!(v(0) == 8 || v(1) == 8, "{} {}", v(0), v(1));
    let _ = AlignedBuf::new(1);
}
