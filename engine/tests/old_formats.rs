//! Stores of an older on-disk format. A cleanly closed version 3 store
//! (`fixtures/engine-v3-store`, see its README) is migrated on open: its
//! metadata is rewritten in the current version (chunk-table leaves of
//! 16-byte entries, map nodes renumbered into their own id region),
//! everything reads back, check and scrub find nothing, and a migration
//! cut short before its superblock is written is redone on the next open.
//! A version 3 store with operations to replay, and version 1 and 2 stores
//! (`fixtures/engine-v1-store`), are refused, untouched, with an error
//! naming their version and what to do. A version 4 store
//! (`fixtures/engine-v4-store`: dense map nodes, a log to replay) opens as
//! it is, and its nodes are written as runs from then on; so do version 5
//! and 6 stores (`fixtures/engine-v5-store`, `fixtures/engine-v6-store`),
//! whose nodes are written packed when that is smallest (format version 7),
//! and version 7 stores (`fixtures/engine-v7-store`), whose large writes
//! are then aligned extent Write records (format version 8).

mod small;

use blockd_engine::decode::{Superblock, FORMAT_VERSION};
use blockd_engine::{ErrorKind, ObjectId, ObjectKind, Store, StoreOptions};
use std::path::Path;

const BS: u64 = 4096;

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        create: false,
        ..Default::default()
    }
}

/// Versions of the valid superblock slots, newest first (a slot of another
/// version is read as raw bytes: decoding refuses it).
fn versions(dir: &Path) -> Vec<u32> {
    let b = std::fs::read(dir.join("superblock")).unwrap();
    let mut v: Vec<(u64, u32)> = b
        .chunks(4096)
        .filter(|s| s[..8] == *b"BLKDSUPR")
        .map(|s| {
            (
                u64::from_le_bytes(s[16..24].try_into().unwrap()),
                u32::from_le_bytes(s[8..12].try_into().unwrap()),
            )
        })
        .collect();
    v.sort();
    v.into_iter().rev().map(|(_, v)| v).collect()
}

/// Every file of the store in `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["", "segments"] {
        let mut names: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && !p.ends_with("lock"))
            .collect();
        names.sort();
        for p in names {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

/// Opening the store in `dir` fails with `Unsupported`, with a message
/// holding each of `says`, and changes nothing on disk.
fn refused(dir: &Path, says: &[&str]) {
    let before = snapshot(dir);
    let e = Store::open(dir, opts())
        .err()
        .expect("an old store must be refused");
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    let m = e.to_string();
    for want in says {
        assert!(m.contains(want), "{m:?} lacks {want:?}");
    }
    assert!(
        snapshot(dir) == before,
        "refusing the store changed its files"
    );
}

#[test]
fn version_1_store_is_refused() {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/engine-v1-store");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("segments")).unwrap();
    for f in ["superblock", "segments/seg-00000001.log"] {
        std::fs::copy(from.join(f), dir.path().join(f)).unwrap();
    }
    assert_eq!(versions(dir.path()), [1, 1]);
    refused(
        dir.path(),
        &[
            "format version 1;",
            "a blockd of format version 3",
            "close it",
        ],
    );
}

/// Rewrites every valid superblock slot of the store in `dir` as `version`.
fn mark_version(dir: &Path, version: u32) {
    let p = dir.join("superblock");
    let mut b = std::fs::read(&p).unwrap();
    for slot in b.chunks_mut(4096) {
        if Superblock::decode(slot).unwrap().is_none() {
            continue;
        }
        slot[8..12].copy_from_slice(&version.to_le_bytes());
        let c = crc32fast::hash(&slot[..124]);
        slot[124..128].copy_from_slice(&c.to_le_bytes());
    }
    std::fs::write(&p, &b).unwrap();
}

/// Block `b` of generation `g` of the version `v` fixture: the text its
/// README says was written there, repeated over the block.
fn fixture_text(v: u32, g: u64, b: u64) -> Vec<u8> {
    format!("v{v} fixture block {b:06} generation {g} ")
        .bytes()
        .cycle()
        .take(BS as usize)
        .collect()
}

/// What block `b` of the fixture's object `name` holds (`clean`: as step
/// 3 of its README left it; else also step 4's write).
fn expected_block(name: &str, b: u64, clean: bool) -> Vec<u8> {
    let fill = |x: u8| vec![x; BS as usize];
    match (name, b) {
        ("v", 0..10) if !clean => fill(0x77),
        ("v", 0..300) | ("s", 0..600) => fixture_text(3, 1, b),
        ("v", 300..1100) => fill(0xa2),
        ("p", 8..10) => fill(0x11),
        ("p", 0..16) => fixture_text(3, 5, b),
        ("z", 0..64) => fill(0x5a),
        _ => fill(0),
    }
}

/// The fixture, as it is or truncated at its replay point (`clean`).
fn v3_fixture(clean: bool) -> tempfile::TempDir {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/engine-v3-store");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("segments")).unwrap();
    for f in ["superblock", "segments/seg-00000001.log"] {
        std::fs::copy(from.join(f), dir.path().join(f)).unwrap();
    }
    if clean {
        // The newest slot's replay point: segment 1, offset 449949.
        let sb = std::fs::read(dir.path().join("superblock")).unwrap();
        let replay = u64::from_le_bytes(sb[40..48].try_into().unwrap());
        assert_eq!(replay, (1 << 32) | 449_949);
        let seg = dir.path().join("segments/seg-00000001.log");
        let f = std::fs::OpenOptions::new().write(true).open(seg).unwrap();
        f.set_len(449_949).unwrap();
    }
    dir
}

fn verify_v3(s: &Store, clean: bool, what: &str) {
    let objects = [
        ("v", ObjectKind::Volume, 2048),
        ("s", ObjectKind::Snapshot, 2048),
        ("p", ObjectKind::Volume, 64),
        ("z", ObjectKind::Volume, 256),
    ];
    verify(s, &objects, |name, b| expected_block(name, b, clean), what);
}

/// Reads every block of `objects` (name, kind, blocks) back against
/// `expected`, then checks and scrubs the store.
fn verify(
    s: &Store,
    objects: &[(&str, ObjectKind, u64)],
    expected: impl Fn(&str, u64) -> Vec<u8>,
    what: &str,
) {
    for &(name, kind, blocks) in objects {
        let id = s.resolve(name, Some(kind)).unwrap();
        let mut got = vec![0u8; (blocks * BS) as usize];
        s.read(id, 0, &mut got).unwrap();
        for b in 0..blocks {
            let at = (b * BS) as usize..((b + 1) * BS) as usize;
            assert!(
                got[at] == expected(name, b)[..],
                "{what}: {name} block {b} reads back wrong"
            );
        }
    }
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{what}: {r:?}");
    let r = s.scrub(None).unwrap();
    assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
}

#[test]
fn version_3_store_is_migrated() {
    let dir = v3_fixture(true);
    assert_eq!(versions(dir.path()), [3, 3]);
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(versions(dir.path()), [FORMAT_VERSION, 3]);
    verify_v3(&s, true, "migrated");
    // Metadata now costs version 4's price: the data ids are dense
    // (the nodes sit in their own region).
    let st = s.stats().unwrap();
    assert_eq!(st.allocated_bytes, (600 + 800 + 16 + 64) * BS);
    assert!(st.data_stored_bytes < st.allocated_bytes / 4, "{st:?}");
    // It goes on as a version 4 store: writes, a snapshot of the shared
    // map, a delete, and new ids past every old one.
    let v = s.resolve("v", Some(ObjectKind::Volume)).unwrap();
    let snap = s.resolve("s", Some(ObjectKind::Snapshot)).unwrap();
    s.write(v, 1250 * BS, &fixture_text(3, 9, 1250), true)
        .unwrap();
    let s2 = s.snapshot(v, Some("s2")).unwrap().id;
    s.write(v, 1250 * BS, &vec![0u8; BS as usize], true)
        .unwrap();
    s.delete(snap).unwrap();
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{r:?}");
    s.close().unwrap();
    assert_eq!(versions(dir.path()), [FORMAT_VERSION, FORMAT_VERSION]);
    let s = Store::open(dir.path(), opts()).unwrap();
    let mut got = vec![0u8; BS as usize];
    s.read(s2, 1250 * BS, &mut got).unwrap();
    assert!(got == fixture_text(3, 9, 1250));
    s.read(v, 1250 * BS, &mut got).unwrap();
    assert!(got.iter().all(|&x| x == 0));
    s.read(v, 5 * BS, &mut got).unwrap();
    assert!(got == fixture_text(3, 1, 5));
    assert!(s.resolve("s", Some(ObjectKind::Snapshot)).is_err());
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{r:?}");
}

#[test]
fn interrupted_v3_migration_is_redone() {
    let dir = v3_fixture(true);
    let v3_super = std::fs::read(dir.path().join("superblock")).unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    drop(s); // killed right after the migration's checkpoint
             // As if the power failed before the version 4 superblock was written:
             // the migration's node and table pages and its blob lie past the
             // version 3 replay point, where they hold no operations.
    std::fs::write(dir.path().join("superblock"), &v3_super).unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(versions(dir.path())[0], FORMAT_VERSION);
    verify_v3(&s, true, "migrated again");
}

#[test]
fn unclean_version_3_store_is_refused() {
    let dir = v3_fixture(false);
    refused(
        dir.path(),
        &["format version 3", "not closed cleanly", "1 operations"],
    );
}

#[test]
fn version_2_store_is_refused_and_current_one_opens() {
    assert_eq!(FORMAT_VERSION, 8);
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(
        dir.path(),
        StoreOptions {
            create: true,
            ..opts()
        },
    )
    .unwrap();
    let v = s.create_volume(Some("v"), 64 * BS, false).unwrap().id;
    s.write(v, 0, &[7u8; BS as usize], true).unwrap();
    s.close().unwrap();
    assert_eq!(versions(dir.path()), [8, 8]);
    let kept = std::fs::read(dir.path().join("superblock")).unwrap();
    // A newer version is refused as a version 7 build refuses this one.
    mark_version(dir.path(), 9);
    refused(dir.path(), &["format version 9", "newer blockd"]);
    std::fs::write(dir.path().join("superblock"), &kept).unwrap();
    mark_version(dir.path(), 2);
    refused(
        dir.path(),
        &["format version 2;", "a blockd of format version 3"],
    );
    // The same store as version 8 opens and reads back.
    std::fs::write(dir.path().join("superblock"), kept).unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let mut got = vec![0u8; BS as usize];
    s.read(v, 0, &mut got).unwrap();
    assert!(got.iter().all(|&x| x == 7));
}

/// What block `b` of the version 4 fixture's object `name` holds (its
/// README): steps 1 to 4, the last one (`v` blocks 0..10) replayed.
fn expected_v4(name: &str, b: u64) -> Vec<u8> {
    let fill = |x: u8| vec![x; BS as usize];
    match (name, b) {
        ("v", 0..10) => fill(0x77),
        ("v", 300..400) => fill(0xa2),
        ("v", 0..700) | ("s", 0..700) => fixture_text(4, 1, b),
        ("p", 0..64) => fixture_text(4, 5, b),
        ("r", _) if b.is_multiple_of(3) => fill(0x5a),
        _ => fill(0),
    }
}

fn verify_v4(s: &Store, what: &str) {
    let objects = [
        ("v", ObjectKind::Volume, 1024),
        ("s", ObjectKind::Snapshot, 1024),
        ("p", ObjectKind::Volume, 64),
        ("r", ObjectKind::Volume, 256),
    ];
    verify(s, &objects, expected_v4, what);
}

/// A copy of `fixtures/NAME` (a store of one segment).
fn fixture_copy(name: &str) -> tempfile::TempDir {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("segments")).unwrap();
    for f in ["superblock", "segments/seg-00000001.log"] {
        std::fs::copy(from.join(f), dir.path().join(f)).unwrap();
    }
    dir
}

/// A copy of `fixtures/engine-v4-store`.
fn v4_fixture() -> tempfile::TempDir {
    fixture_copy("engine-v4-store")
}

#[test]
fn version_4_open_cut_before_its_superblock_is_redone() {
    let dir = v4_fixture();
    let v4_super = std::fs::read(dir.path().join("superblock")).unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    drop(s); // killed right after the open's checkpoint
             // As if the power failed before the new superblock was written:
             // the pages the open wrote lie past the version 4 replay
             // point, where they hold no operations, and the Write record is
             // replayed again.
    std::fs::write(dir.path().join("superblock"), &v4_super).unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(versions(dir.path()), [FORMAT_VERSION, 4]);
    verify_v4(&s, "opened again");
}

#[test]
fn version_4_store_opens_as_it_is() {
    let dir = v4_fixture();
    assert_eq!(versions(dir.path()), [4, 4]);
    // Its log holds a Write after the replay point: the open replays it
    // (records are as in version 4) and checkpoints in the current version, which
    // rewrites only the nodes the replay dirtied.
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(versions(dir.path()), [FORMAT_VERSION, 4]);
    verify_v4(&s, "opened");
    let before = s.stats().unwrap();
    // It goes on in the current version: a sequential rewrite of `v` (its
    // leaves become runs), a snapshot, a delete, a scattered write.
    let v = s.resolve("v", Some(ObjectKind::Volume)).unwrap();
    let r = s.resolve("r", Some(ObjectKind::Volume)).unwrap();
    let data: Vec<u8> = (600..1024).flat_map(|b| fixture_text(4, 7, b)).collect();
    s.write(v, 600 * BS, &data, true).unwrap();
    let s2 = s.snapshot(v, Some("s2")).unwrap().id;
    s.write(r, BS, &vec![9u8; BS as usize], true).unwrap();
    let snap = s.resolve("s", Some(ObjectKind::Snapshot)).unwrap();
    s.delete(snap).unwrap();
    assert!(s.check(false).unwrap().is_clean());
    s.close().unwrap();
    assert_eq!(versions(dir.path()), [FORMAT_VERSION, FORMAT_VERSION]);
    let s = Store::open(dir.path(), opts()).unwrap();
    let mut got = vec![0u8; data.len()];
    s.read(s2, 600 * BS, &mut got).unwrap();
    assert!(got == data, "the rewrite reads back through the snapshot");
    let mut got = vec![0u8; BS as usize];
    s.read(r, BS, &mut got).unwrap();
    assert!(got.iter().all(|&x| x == 9));
    s.read(v, 5 * BS, &mut got).unwrap();
    assert!(got == vec![0x77; BS as usize]);
    assert!(s.check(false).unwrap().is_clean());
    assert!(s.scrub(None).unwrap().errors.is_empty());
    // Live metadata shrank although more was written: `s` went, and the
    // nodes written since are runs.
    let after = s.stats().unwrap();
    assert!(
        after.metadata_bytes < before.metadata_bytes,
        "{} then {}",
        before.metadata_bytes,
        after.metadata_bytes
    );
}

/// What block `b` of the version 5 fixture's object `name` holds (its
/// README), the last write (`v` blocks 20..60) replayed.
fn expected_v5(name: &str, b: u64) -> Vec<u8> {
    let fill = |x: u8| vec![x; BS as usize];
    match (name, b) {
        ("v", 20..60) => fill(0xb3),
        ("v", 300..310) => fill(0xc4),
        ("v", 0..64) | ("s", 0..64) => fixture_text(5, 1, b),
        _ => fill(0),
    }
}

/// Verifies a version 5 or 6 fixture: volume `v` and its snapshot `s`, 512
/// blocks each, against `expected`.
fn verify_v_and_s(s: &Store, expected: fn(&str, u64) -> Vec<u8>, what: &str) {
    let objects = [
        ("v", ObjectKind::Volume, 512),
        ("s", ObjectKind::Snapshot, 512),
    ];
    verify(s, &objects, expected, what);
}

/// Deletes the fixture's snapshot `s`, reclaims, checks, closes (both
/// superblock slots then hold the current version) and opens again.
fn delete_s_and_reopen(s: Store, dir: &Path) -> Store {
    let snap = s.resolve("s", Some(ObjectKind::Snapshot)).unwrap();
    s.delete(snap).unwrap();
    s.reclaim(1.0).unwrap();
    assert!(s.check(false).unwrap().is_clean());
    s.close().unwrap();
    assert_eq!(versions(dir), [FORMAT_VERSION, FORMAT_VERSION]);
    Store::open(dir, opts()).unwrap()
}

/// Snapshots `v` as `s2`, overwrites its block `block` with `byte` (FUA),
/// deletes the fixture's snapshot `s` and reopens (`delete_s_and_reopen`);
/// then `s2` must read as `later` says, `v` too but for the block
/// overwritten, and the store must check and scrub clean.
fn overwrite_after_snapshot(
    s: Store,
    dir: &Path,
    v: ObjectId,
    block: u64,
    byte: u8,
    later: impl Fn(u64) -> Vec<u8>,
) {
    let s2 = s.snapshot(v, Some("s2")).unwrap().id;
    s.write(v, block * BS, &vec![byte; BS as usize], true)
        .unwrap();
    let s = delete_s_and_reopen(s, dir);
    assert_blocks(&s, v, "v", |b| {
        if b == block {
            vec![byte; BS as usize]
        } else {
            later(b)
        }
    });
    assert_blocks(&s, s2, "s2", later);
    assert!(s.check(false).unwrap().is_clean());
    assert!(s.scrub(None).unwrap().errors.is_empty());
}

/// Asserts that the 512 blocks of object `id` (called `name`) read as
/// `want` says.
fn assert_blocks(s: &Store, id: ObjectId, name: &str, want: impl Fn(u64) -> Vec<u8>) {
    let mut got = vec![0u8; (512 * BS) as usize];
    s.read(id, 0, &mut got).unwrap();
    for b in 0..512 {
        let at = (b * BS) as usize..((b + 1) * BS) as usize;
        assert!(got[at] == want(b)[..], "{name} block {b}");
    }
}

/// A copy of `fixtures/engine-v5-store`.
fn v5_fixture() -> tempfile::TempDir {
    fixture_copy("engine-v5-store")
}

/// A version 5 store opens as it is in version 6: its one-block chunks are
/// one-block extents with their crc in the entry, its leaves name them by
/// id, its log (a version 5 Write after the replay point) replays. New
/// writes make multi-block extents beside them, overwriting old chunks in
/// part; a snapshot, a delete and the cleaner go over both kinds.
#[test]
fn version_5_store_opens_as_it_is() {
    let dir = v5_fixture();
    assert_eq!(versions(dir.path()), [5, 5]);
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(versions(dir.path()), [FORMAT_VERSION, 5]);
    verify_v_and_s(&s, expected_v5, "opened");
    let v = s.resolve("v", Some(ObjectKind::Volume)).unwrap();
    // 1 MiB over old chunks (blocks 40..64) and holes.
    let data: Vec<u8> = (40..296).flat_map(|b| fixture_text(5, 7, b)).collect();
    let ids = |s: &Store| {
        let st = s.stats().unwrap();
        st.counters
            .iter()
            .find(|c| c.name == "data_ids")
            .unwrap()
            .value
    };
    let before = ids(&s);
    s.write(v, 40 * BS, &data, true).unwrap();
    // With 1 MiB segments a Write record holds 127 blocks: 127 + 127 + 2
    // blocks, cut into extents of up to 32: 4 + 4 + 1 ids.
    assert_eq!(ids(&s), before + 9);
    let s2 = s.snapshot(v, Some("s2")).unwrap().id;
    // A partial overwrite inside a new extent, and one of an old chunk.
    s.write(v, 45 * BS, &vec![0x11; BS as usize], true).unwrap();
    s.write(v, 10 * BS, &vec![0x12; BS as usize], true).unwrap();
    let s = delete_s_and_reopen(s, dir.path());
    let want = |b: u64| -> Vec<u8> {
        match b {
            10 => vec![0x12; BS as usize],
            45 => vec![0x11; BS as usize],
            40..296 => fixture_text(5, 7, b),
            _ => expected_v5("v", b),
        }
    };
    assert_blocks(&s, v, "v", want);
    assert_blocks(&s, s2, "s2", |b| match b {
        40..296 => fixture_text(5, 7, b),
        _ => expected_v5("v", b),
    });
    assert!(s.check(false).unwrap().is_clean());
    assert!(s.scrub(None).unwrap().errors.is_empty());
}

#[test]
fn version_5_open_cut_before_its_superblock_is_redone() {
    open_cut_is_redone("engine-v5-store", 5, expected_v5);
}

/// Opens a copy of `fixture` (format `version`), puts its old superblock
/// back as a kill right after the open's checkpoint would leave it, and
/// checks that the next open redoes the upgrade with nothing lost.
fn open_cut_is_redone(fixture: &str, version: u32, expected: fn(&str, u64) -> Vec<u8>) {
    let dir = fixture_copy(fixture);
    let old_super = std::fs::read(dir.path().join("superblock")).unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    drop(s); // killed right after the open's checkpoint
    std::fs::write(dir.path().join("superblock"), &old_super).unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(versions(dir.path()), [FORMAT_VERSION, version]);
    verify_v_and_s(&s, expected, "opened again");
}

/// What block `b` of the version 6 fixture's object `name` holds (its
/// README), the last write (`v` blocks 20..60) replayed.
fn expected_v6(name: &str, b: u64) -> Vec<u8> {
    let fill = |x: u8| vec![x; BS as usize];
    match (name, b) {
        ("v", 20..60) => fill(0xb3),
        ("v", 300 | 301 | 302 | 305 | 310 | 333 | 350 | 420) => fill(0xc4),
        ("v", 0..64) | ("s", 0..64) => fixture_text(6, 1, b),
        _ => fill(0),
    }
}

/// Map node records in the store's log, by magic: (dense, runs, packed).
fn node_encodings(dir: &Path) -> (usize, usize, usize) {
    use blockd_engine::decode::{RecordKind, HEADER_LEN};
    let mut counts = (0, 0, 0);
    for f in small::segment_files(dir) {
        let bytes = std::fs::read(f).unwrap();
        for (off, h) in small::records(&bytes) {
            if h.kind == RecordKind::Node {
                match &bytes[off + HEADER_LEN..off + HEADER_LEN + 4] {
                    b"NODE" => counts.0 += 1,
                    b"NODR" => counts.1 += 1,
                    b"NODP" => counts.2 += 1,
                    m => panic!("a node record with magic {m:?}"),
                }
            }
        }
    }
    counts
}

/// A version 6 store opens as it is in version 7: its runs nodes and
/// extents stay valid, its log (an extent Write after the replay point)
/// replays. Scattered one-block writes then make a leaf the next
/// checkpoint writes packed; a snapshot, a delete and the cleaner go over
/// old and new nodes alike.
#[test]
fn version_6_store_opens_as_it_is() {
    let dir = fixture_copy("engine-v6-store");
    assert_eq!(versions(dir.path()), [6, 6]);
    assert_eq!(node_encodings(dir.path()), (0, 4, 0));
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(versions(dir.path()), [FORMAT_VERSION, 6]);
    verify_v_and_s(&s, expected_v6, "opened");
    let v = s.resolve("v", Some(ObjectKind::Volume)).unwrap();
    // 200 blocks of `v`'s one leaf, one at a time in scattered order.
    let scattered: Vec<u64> = (0..200).map(|i| (i * 197 + 5) % 512).collect();
    for &b in &scattered {
        s.write(v, b * BS, &fixture_text(6, 8, b), false).unwrap();
    }
    s.checkpoint().unwrap();
    let (_, _, packed) = node_encodings(dir.path());
    assert!(packed >= 1, "no packed node after scattered writes");
    overwrite_after_snapshot(s, dir.path(), v, 7, 0x12, |b| {
        if scattered.contains(&b) {
            fixture_text(6, 8, b)
        } else {
            expected_v6("v", b)
        }
    });
}

#[test]
fn version_6_open_cut_before_its_superblock_is_redone() {
    open_cut_is_redone("engine-v6-store", 6, expected_v6);
}

/// What block `b` of the version 7 fixture's object `name` holds (its
/// README), the last write (`v` blocks 20..60) replayed.
fn expected_v7(name: &str, b: u64) -> Vec<u8> {
    let fill = |x: u8| vec![x; BS as usize];
    match (name, b) {
        ("v", 20..60) => fill(0xb3),
        ("v", 300 | 301 | 302 | 305 | 310 | 333 | 350 | 420) => fill(0xc4),
        ("v", 0..64) | ("s", 0..64) => fixture_text(7, 1, b),
        _ => fill(0),
    }
}

/// A version 7 store opens as it is in version 8: its extents (kind 10
/// records, entries with gap 0) stay valid, its log (an extent Write
/// after the replay point) replays, and the open writes a version 8
/// superblock before anything is appended. Large writes handed over whole
/// then make aligned extent Write records (kind 12) over old extents; a
/// snapshot, a delete and the cleaner go over both layouts.
#[test]
fn version_7_store_opens_as_it_is() {
    use blockd_engine::decode::RecordKind;
    let dir = fixture_copy("engine-v7-store");
    assert_eq!(versions(dir.path()), [7, 7]);
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(versions(dir.path()), [FORMAT_VERSION, 7]);
    verify_v_and_s(&s, expected_v7, "opened");
    let v = s.resolve("v", Some(ObjectKind::Volume)).unwrap();
    // 127 blocks (a record's worth with 1 MiB segments) over old extents
    // (blocks 10..64) and holes, handed over whole.
    let data: Vec<u8> = (10..137).flat_map(|b| fixture_text(7, 9, b)).collect();
    let mut buf = s.aligned_buf(data.len());
    buf.copy_from_slice(&data);
    s.write_owned(v, 10 * BS, buf, true).unwrap();
    let kinds: Vec<RecordKind> = small::segment_files(dir.path())
        .iter()
        .flat_map(|f| small::records(&std::fs::read(f).unwrap()))
        .map(|(_, h)| h.kind)
        .collect();
    assert!(
        kinds.contains(&RecordKind::WriteAligned),
        "no aligned record"
    );
    overwrite_after_snapshot(s, dir.path(), v, 45, 0x11, |b| match b {
        10..137 => fixture_text(7, 9, b),
        _ => expected_v7("v", b),
    });
}

#[test]
fn version_7_open_cut_before_its_superblock_is_redone() {
    open_cut_is_redone("engine-v7-store", 7, expected_v7);
}
