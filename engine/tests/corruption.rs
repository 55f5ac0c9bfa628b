//! Damaged files: bytes flipped in a closed store's data payloads, map node
//! records, chunk-table pages, the checkpoint blob and the superblock.
//!
//! A read that touches damaged data or metadata must fail with
//! `ErrorKind::Corrupt` naming the object and the offset read, never return
//! wrong bytes; reads of undamaged blocks still succeed; `check(false)`
//! reports the corruption. A damaged newest superblock slot falls back to
//! the older slot with nothing lost. A damaged checkpoint blob makes the
//! store refuse to open (or, if it recovers, it must read correctly).
//!
//! Record layout (engine/src/format/): a 32-byte header (magic, kind at
//! byte 4, seq at 8, body length at 16, body crc at 20, covered length at
//! 24, header crc at 28), then the body. Map node bodies hold their level at
//! byte 4 and their own id at 8; chunk-table pages their level at 4 and
//! index at 8. Each chunk-table page's crc is held by its parent (interior
//! entries: loc u64, crc u32, 0 u32) and the root's by the superblock.

use blockd_engine::decode::{write_payloads, RecordHeader, RecordKind, Superblock};
use blockd_engine::{ErrorKind, ObjectId, Store};
mod small;
use small::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const HEADER: usize = 32;
const SLOT: usize = 4096;

/// Compressible but distinct per block.
fn text_block(b: u64) -> Vec<u8> {
    let line = format!("compressible block {b:08} of the compressed volume. ");
    line.as_bytes()
        .iter()
        .copied()
        .cycle()
        .take(BS as usize)
        .collect()
}

/// A closed store: volume `v` (1024 blocks, uncompressed, three map
/// levels' worth of nodes), compressed volume `c` (64 blocks), snapshot `s`
/// of `v` taken halfway.
struct Fixture {
    dir: tempfile::TempDir,
    objects: Vec<(ObjectId, Vec<u8>)>,
}

fn fixture(reclaim: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let v = s.create_volume(Some("v"), 1024 * BS, false).unwrap().id;
    let c = s.create_volume(Some("c"), 64 * BS, true).unwrap().id;
    let mut ev = vec![0u8; (1024 * BS) as usize];
    for b in 0..1024 {
        ev[(b * BS) as usize..((b + 1) * BS) as usize].copy_from_slice(&block(1, b));
    }
    s.write(v, 0, &ev, false).unwrap();
    if reclaim {
        // Overwrite most of it so that whole segments die, and clean them.
        for b in 0..900 {
            ev[(b * BS) as usize..((b + 1) * BS) as usize].copy_from_slice(&block(2, b));
        }
        s.write(v, 0, &ev[..(900 * BS) as usize], false).unwrap();
        s.reclaim(0.5).unwrap();
        // (Housekeeping may have cleaned them already.)
        let first = dir.path().join("segments/seg-00000001.log");
        assert!(!first.exists(), "reclaim deleted the first segment");
    }
    let snap = s.snapshot(v, Some("s")).unwrap().id;
    let es = ev.clone();
    // Every third block rewritten alone: more than 254 runs, so `v`'s
    // leaves are written packed (dense before format version 7) while the
    // snapshot's stay runs.
    for b in (0..1024).step_by(3) {
        ev[(b * BS) as usize..((b + 1) * BS) as usize].copy_from_slice(&block(3, b));
        s.write(v, b * BS, &block(3, b), false).unwrap();
    }
    let mut ec = Vec::new();
    for b in 0..64 {
        ec.extend_from_slice(&text_block(b));
    }
    s.write(c, 0, &ec, true).unwrap();
    s.close().unwrap();
    Fixture {
        dir,
        objects: vec![(v, ev), (snap, es), (c, ec)],
    }
}

impl Fixture {
    /// A fresh copy of the store to damage.
    fn copy(&self) -> tempfile::TempDir {
        let to = tempfile::tempdir().unwrap();
        copy_tree(self.dir.path(), to.path());
        to
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// One record in a segment file.
#[derive(Clone, Debug)]
struct Rec {
    file: PathBuf,
    offset: u64,
    kind: String,
    seq: u64,
    body: Vec<u8>,
}

fn records(dir: &Path) -> Vec<Rec> {
    let mut out = Vec::new();
    for f in segment_files(dir) {
        let bytes = std::fs::read(&f).unwrap();
        let mut off = 0usize;
        while off + HEADER <= bytes.len() {
            let Some(h) = RecordHeader::decode(&bytes[off..off + HEADER]) else {
                break;
            };
            let end = off + HEADER + h.body_len as usize;
            out.push(Rec {
                file: f.clone(),
                offset: off as u64,
                kind: format!("{:?}", h.kind),
                seq: h.seq,
                body: bytes[off + HEADER..end].to_vec(),
            });
            off = end;
        }
    }
    out
}

/// The newest record of `kind` for each key (nodes: id; pages: level and
/// index): what the last checkpoint points at.
fn newest(recs: &[Rec], kind: &str) -> HashMap<(u8, u64), Rec> {
    let mut m: HashMap<(u8, u64), Rec> = HashMap::new();
    for r in recs.iter().filter(|r| r.kind == kind) {
        let key = (
            r.body[4],
            u64::from_le_bytes(r.body[8..16].try_into().unwrap()),
        );
        if m.get(&key).is_none_or(|o| o.seq < r.seq) {
            m.insert(key, r.clone());
        }
    }
    m
}

/// XORs one byte of `file` at `at`.
fn flip(file: &Path, at: u64, mask: u8) {
    let mut b = std::fs::read(file).unwrap();
    b[at as usize] ^= mask;
    std::fs::write(file, b).unwrap();
}

/// Rewrites a record's body byte and its header crc, as a misdirected or
/// silently damaged page would look: the record itself is valid.
fn flip_resealed(r: &Rec, body_at: usize, mask: u8) {
    let mut bytes = std::fs::read(&r.file).unwrap();
    let at = r.offset as usize;
    let h = RecordHeader::decode(&bytes[at..at + HEADER]).unwrap();
    let mut body = r.body.clone();
    body[body_at] ^= mask;
    let hdr = RecordHeader::encode(h.kind, h.seq, &body);
    bytes[at..at + HEADER].copy_from_slice(&hdr);
    bytes[at + HEADER..at + HEADER + body.len()].copy_from_slice(&body);
    std::fs::write(&r.file, bytes).unwrap();
}

/// Reads every block of every object one by one: each read returns the
/// right bytes or a Corrupt error naming the object and offset. Returns how
/// many reads failed.
fn read_all(s: &Store, fx: &Fixture, what: &str) -> usize {
    let mut bad = 0;
    let mut buf = vec![0u8; BS as usize];
    for (id, want) in &fx.objects {
        for b in 0..want.len() as u64 / BS {
            match s.read(*id, b * BS, &mut buf) {
                Ok(()) => assert!(
                    buf == want[(b * BS) as usize..((b + 1) * BS) as usize],
                    "{what}: object {id} block {b} read wrong data"
                ),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Corrupt, "{what}: {e}");
                    let msg = e.to_string();
                    assert!(
                        msg.contains(&id.to_string()),
                        "{what}: no object in '{msg}'"
                    );
                    assert!(
                        msg.contains(&format!("offset {}", b * BS)),
                        "{what}: no offset {} in '{msg}'",
                        b * BS
                    );
                    bad += 1;
                }
            }
        }
        // A whole-object read fails too when any block does.
        let mut all = vec![0u8; want.len()];
        if s.read(*id, 0, &mut all).is_ok() {
            assert!(all == *want, "{what}: object {id} read whole: wrong data");
        }
    }
    bad
}

/// Opens a damaged copy and expects reads to detect the damage and check
/// to report it.
fn expect_detected(fx: &Fixture, dir: &Path, what: &str) {
    let s = Store::open(dir, opts()).unwrap_or_else(|e| panic!("{what}: open: {e}"));
    let bad = read_all(&s, fx, what);
    assert!(bad > 0, "{what}: no read noticed the damage");
    let r = s.check(false).unwrap();
    assert!(
        !r.corruption.is_empty(),
        "{what}: check found nothing: {r:?}"
    );
    // Still no wrong data after check.
    assert_eq!(read_all(&s, fx, what), bad, "{what}: after check");
}

#[test]
fn undamaged_fixture_is_clean() {
    for reclaim in [false, true] {
        let fx = fixture(reclaim);
        let s = Store::open(fx.dir.path(), opts()).unwrap();
        assert_eq!(read_all(&s, &fx, "undamaged"), 0);
        let r = s.check(false).unwrap();
        assert!(r.is_clean(), "{r:?}");
    }
}

#[test]
fn data_payloads() {
    let fx = fixture(false);
    let recs = records(fx.dir.path());
    for (obj, blk, resealed) in [(0usize, 700u64, false), (0, 7, true), (2, 9, false)] {
        let (id, _) = fx.objects[obj];
        // The live payload of `blk` is in the newest Write record covering it.
        let (r, off) = recs
            .iter()
            .filter_map(|r| {
                let kind = match r.kind.as_str() {
                    "Write" => RecordKind::Write,
                    "WriteExtents" => RecordKind::WriteExtents,
                    _ => return None,
                };
                let (object, first, at) = write_payloads(kind, &r.body).unwrap();
                let i = blk.checked_sub(first)? as usize;
                let (o, _) = (*at.get(i)?)?;
                (ObjectId::from_bytes(object) == id).then(|| (r, o + 17))
            })
            .max_by_key(|(r, _)| r.seq)
            .expect("a write of the block");
        let dir = fx.copy();
        let file = dir
            .path()
            .join("segments")
            .join(r.file.file_name().unwrap());
        let what = format!("payload of object {id} block {blk} (resealed {resealed})");
        if resealed {
            let r = Rec { file, ..r.clone() };
            flip_resealed(&r, off, 0x40);
        } else {
            flip(&file, r.offset + (HEADER + off) as u64, 0x40);
        }
        let s = Store::open(dir.path(), opts()).unwrap();
        let mut buf = vec![0u8; BS as usize];
        let e = s.read(id, blk * BS, &mut buf).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{what}: {e}");
        // Unaligned reads and read-modify-write touching it fail too.
        let e = s.read(id, blk * BS + 100, &mut buf[..10]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{what}: unaligned: {e}");
        if obj != 1 {
            let e = s.write(id, blk * BS + 5, b"x", false).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{what}: partial write: {e}");
        }
        drop(s);
        expect_detected(&fx, dir.path(), &what);
    }
}

#[test]
fn map_nodes() {
    let fx = fixture(false);
    let recs = records(fx.dir.path());
    let nodes = newest(&recs, "Node");
    let mut picks: Vec<&Rec> = Vec::new();
    for level in [0u8, 1] {
        let mut at: Vec<&Rec> = nodes.values().filter(|r| r.body[4] == level).collect();
        at.sort_by_key(|r| r.seq);
        picks.extend(at.first());
        picks.extend(at.last());
    }
    assert!(picks.len() >= 3, "fixture has nodes at two levels");
    // Nodes are written as runs (format version 5) or packed (format
    // version 7; the fixture's scattered leaves, dense before): a leaf of
    // each kind is damaged too, at offsets inside the shortest runs body
    // (24 + 16 bytes).
    for magic in [b"NODR", b"NODP"] {
        let mut leaves: Vec<&Rec> = nodes
            .values()
            .filter(|r| r.body[4] == 0 && &r.body[..4] == magic)
            .collect();
        leaves.sort_by_key(|r| r.seq);
        let leaf = leaves.first();
        assert!(leaf.is_some(), "no {magic:?} leaf in the fixture");
        picks.extend(leaf);
    }
    for r in picks {
        let id = u64::from_le_bytes(r.body[8..16].try_into().unwrap());
        let level = r.body[4];
        for (how, body_at) in [("raw", 16 + 8 * 2 + 1), ("resealed", 16 + 8 * 2), ("id", 9)] {
            let dir = fx.copy();
            let file = dir
                .path()
                .join("segments")
                .join(r.file.file_name().unwrap());
            let what = format!("map node {id} (level {level}) {how}");
            if how == "raw" {
                flip(&file, r.offset + (HEADER + body_at) as u64, 0x01);
            } else {
                flip_resealed(&Rec { file, ..r.clone() }, body_at, 0x01);
            }
            expect_detected(&fx, dir.path(), &what);
        }
    }
}

#[test]
fn chunk_table_pages() {
    let fx = fixture(false);
    let recs = records(fx.dir.path());
    let pages = newest(&recs, "CtPage");
    let mut keys: Vec<(u8, u64)> = pages.keys().copied().collect();
    keys.sort();
    // Leaves holding data entries (low, middle, high), and each interior
    // level up to the root.
    let leaves: Vec<(u8, u64)> = keys.iter().copied().filter(|k| k.0 == 0).collect();
    let mut picks = vec![
        leaves[0],
        leaves[leaves.len() / 2],
        leaves[leaves.len() - 1],
    ];
    picks.extend(keys.iter().copied().filter(|k| k.0 > 0));
    for key in picks {
        let r = &pages[&key];
        // Raw flips anywhere in the page, and a valid-looking page whose
        // first entry's location moved (a misdirected chunk pointer).
        for (how, body_at) in [("raw-header", 8usize), ("raw-entry", 16 + 32 * 5 + 2)] {
            let dir = fx.copy();
            let file = dir
                .path()
                .join("segments")
                .join(r.file.file_name().unwrap());
            flip(&file, r.offset + (HEADER + body_at) as u64, 0x10);
            expect_detected(&fx, dir.path(), &format!("chunk-table page {key:?} {how}"));
        }
        if key.0 == 0 {
            let dir = fx.copy();
            let file = dir
                .path()
                .join("segments")
                .join(r.file.file_name().unwrap());
            let r = Rec { file, ..r.clone() };
            // Entry layout: loc u64, refcount, crc, stored_len, flags.
            let live = (0..127)
                .find(|i| r.body[16 + 32 * i + 8..16 + 32 * i + 12] != [0; 4])
                .expect("a live entry");
            flip_resealed(&r, 16 + 32 * live + 1, 0x10);
            expect_detected(
                &fx,
                dir.path(),
                &format!("chunk-table page {key:?} misdirected"),
            );
        }
    }
}

/// The superblock slots: (generation, slot index) of the valid ones.
fn slots(dir: &Path) -> Vec<(u64, usize)> {
    let b = std::fs::read(dir.join("superblock")).unwrap();
    (0..2)
        .filter_map(|i| {
            Superblock::decode(&b[i * SLOT..(i + 1) * SLOT])
                .unwrap()
                .map(|s| (s.generation, i))
        })
        .collect()
}

fn newest_super(dir: &Path) -> (Superblock, usize) {
    let b = std::fs::read(dir.join("superblock")).unwrap();
    let (_, i) = *slots(dir).iter().max().unwrap();
    (
        Superblock::decode(&b[i * SLOT..(i + 1) * SLOT])
            .unwrap()
            .unwrap(),
        i,
    )
}

#[test]
fn checkpoint_blob() {
    let fx = fixture(false);
    let (sb, _) = newest_super(fx.dir.path());
    for at in [HEADER as u64 + 3, HEADER as u64 + 40, 10] {
        let dir = fx.copy();
        let seg = sb.blob.0 >> 32;
        let file = dir.path().join(format!("segments/seg-{seg:08}.log"));
        flip(&file, (sb.blob.0 & 0xffff_ffff) + at, 0x04);
        match Store::open(dir.path(), opts()) {
            Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt, "blob byte {at}: {e}"),
            // Recovering (say from the older checkpoint) is fine, but then
            // everything must read back exactly.
            Ok(s) => {
                assert_eq!(read_all(&s, &fx, "blob damaged"), 0);
                let r = s.check(false).unwrap();
                assert!(r.corruption.is_empty(), "{r:?}");
            }
        }
    }
}

#[test]
fn superblock_slots() {
    for reclaim in [false, true] {
        let fx = fixture(reclaim);
        let (_, newest) = newest_super(fx.dir.path());
        assert_eq!(slots(fx.dir.path()).len(), 2, "both slots written");
        // A flip anywhere in the checksummed part of either slot.
        for slot in [newest, 1 - newest] {
            for at in [0usize, 9, 17, 30, 44, 60, 73, 125] {
                let dir = fx.copy();
                flip(
                    &dir.path().join("superblock"),
                    (slot * SLOT + at) as u64,
                    0x20,
                );
                let what = format!("reclaim {reclaim}: slot {slot} byte {at}");
                let s = Store::open(dir.path(), opts())
                    .unwrap_or_else(|e| panic!("{what}: must fall back: {e}"));
                assert_eq!(read_all(&s, &fx, &what), 0, "{what}");
                let r = s.check(false).unwrap();
                assert!(r.is_clean(), "{what}: {r:?}");
                s.close().unwrap();
                // And again after the fallback wrote new checkpoints.
                let s = Store::open(dir.path(), opts()).unwrap();
                assert_eq!(read_all(&s, &fx, &what), 0, "{what}: reopened");
            }
        }
        // Both slots damaged: the store refuses to open.
        let dir = fx.copy();
        flip(&dir.path().join("superblock"), 20, 0x20);
        flip(&dir.path().join("superblock"), (SLOT + 20) as u64, 0x20);
        let e = Store::open(dir.path(), opts()).map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    }
}

/// The newest slot damaged right after a reclaim deleted segments: the
/// older slot's checkpoint must still be whole (its pages and log may lie
/// in the segments the cleaner emptied).
#[test]
fn superblock_fallback_right_after_reclaim() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let v = s.create_volume(None, 1024 * BS, false).unwrap().id;
    let mut want = vec![0u8; (1024 * BS) as usize];
    let mut round = 0;
    loop {
        round += 1;
        assert!(round < 20, "reclaim never moved anything");
        // Rewrite a different half each round, leaving segments part-dead.
        let lo = if round % 2 == 0 { 0 } else { 512 };
        for b in lo..lo + 512 {
            want[(b * BS) as usize..((b + 1) * BS) as usize].copy_from_slice(&block(round, b));
        }
        s.write(
            v,
            lo * BS,
            &want[(lo * BS) as usize..((lo + 512) * BS) as usize],
            false,
        )
        .unwrap();
        s.write(v, 3 * BS, &block(99, round), false).unwrap();
        want[(3 * BS) as usize..(4 * BS) as usize].copy_from_slice(&block(99, round));
        let r = s.reclaim(0.9).unwrap();
        if r.segments_freed > 0 && r.bytes_moved > 0 {
            break;
        }
    }
    // No close: the reclaim's checkpoint is the newest.
    drop(s);
    let fx = Fixture {
        dir,
        objects: vec![(v, want)],
    };
    let (_, newest) = newest_super(fx.dir.path());
    assert_eq!(slots(fx.dir.path()).len(), 2);
    let copy = fx.copy();
    flip(
        &copy.path().join("superblock"),
        (newest * SLOT + 40) as u64,
        0x20,
    );
    let s = Store::open(copy.path(), opts()).unwrap_or_else(|e| panic!("must fall back: {e}"));
    assert_eq!(read_all(&s, &fx, "fallback after reclaim"), 0);
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{r:?}");
}

/// A stale copy of a chunk-table page: the page record the last checkpoint
/// names is replaced by an older, self-consistent copy of the same page
/// (right magic, level and index, valid record checksum), as a lost write
/// or a misdirected one would leave it. The older copy leads to the
/// volume's previous map node and data, all still on disk and valid, so
/// only the crc each page's parent (or the superblock) holds for it tells
/// them apart: reads must fail, never return the old data.
#[test]
fn stale_chunk_table_pages() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let v = s.create_volume(Some("v"), 64 * BS, false).unwrap().id;
    let mut old = Vec::new();
    for b in 0..64 {
        old.extend_from_slice(&block(1, b));
    }
    s.write(v, 0, &old, false).unwrap();
    s.close().unwrap();
    // The second checkpoint rewrites the map node (same id, new place) and
    // so its chunk-table leaf and every interior page up to the root.
    let s = Store::open(dir.path(), opts()).unwrap();
    s.write(v, 5 * BS, &block(2, 5), false).unwrap();
    s.close().unwrap();
    let mut new = old.clone();
    new[(5 * BS) as usize..(6 * BS) as usize].copy_from_slice(&block(2, 5));
    let fx = Fixture {
        dir,
        objects: vec![(v, new.clone())],
    };
    let recs = records(fx.dir.path());
    let mut keys: Vec<(u8, u64)> = newest(&recs, "CtPage").into_keys().collect();
    keys.sort();
    let mut tried = 0;
    for key in keys {
        let mut copies: Vec<&Rec> = recs
            .iter()
            .filter(|r| r.kind == "CtPage")
            .filter(|r| {
                (
                    r.body[4],
                    u64::from_le_bytes(r.body[8..16].try_into().unwrap()),
                ) == key
            })
            .collect();
        copies.sort_by_key(|r| r.seq);
        let [.., older, newest] = copies[..] else {
            continue;
        };
        if older.body == newest.body {
            continue;
        }
        tried += 1;
        let what = format!("stale chunk-table page {key:?}");
        let copy = fx.copy();
        // The older body, resealed in place of the newest: a valid record.
        let file = copy
            .path()
            .join("segments")
            .join(newest.file.file_name().unwrap());
        let mut bytes = std::fs::read(&file).unwrap();
        let at = newest.offset as usize;
        let hdr = RecordHeader::encode(
            RecordHeader::decode(&bytes[at..at + HEADER]).unwrap().kind,
            newest.seq,
            &older.body,
        );
        bytes[at..at + HEADER].copy_from_slice(&hdr);
        bytes[at + HEADER..at + HEADER + older.body.len()].copy_from_slice(&older.body);
        std::fs::write(&file, bytes).unwrap();
        let s = match Store::open(copy.path(), opts()) {
            Ok(s) => s,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Corrupt, "{what}: open: {e}");
                continue;
            }
        };
        let mut buf = vec![0u8; BS as usize];
        let e = s
            .read(v, 5 * BS, &mut buf)
            .map(|()| buf == block(1, 5))
            .expect_err(&format!(
                "{what}: the read succeeded (returning the old block?)"
            ));
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{what}: {e}");
        assert!(read_all(&s, &fx, &what) > 0, "{what}");
        let r = s.check(false).unwrap();
        assert!(
            !r.corruption.is_empty(),
            "{what}: check found nothing: {r:?}"
        );
        match s.scrub(None) {
            Ok(r) => assert!(!r.errors.is_empty(), "{what}: scrub found nothing"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{what}: scrub: {e}"),
        }
    }
    // The leaf holding the map node, the interior pages above it, the root.
    assert!(tried >= 6, "only {tried} pages had an older copy");
}
