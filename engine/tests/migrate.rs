//! Opening a format-version-1 store (`fixtures/engine-v1-store`, see its
//! README) migrates it to the current version: the log since its last
//! checkpoint is replayed through the old chunk table, new interior pages
//! are written and a current superblock commits them. Everything reads
//! back, check and scrub find nothing, and a migration cut short before its
//! superblock is written is redone on the next open. A version 2 store
//! (no pending-free queue) opens, replays its deletes onto the queue and is
//! marked version 3.

use blockd_engine::decode::{Superblock, FORMAT_VERSION};
use blockd_engine::{ObjectKind, Store, StoreOptions};
use std::path::Path;

const BS: u64 = 4096;

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        create: false,
        ..Default::default()
    }
}

fn blk(g: u64, b: u64) -> Vec<u8> {
    format!("v1 fixture block {b:06} generation {g} ")
        .bytes()
        .cycle()
        .take(BS as usize)
        .collect()
}

/// What the fixture's volume and snapshot hold, block by block.
fn expected(snapshot: bool) -> Vec<u8> {
    (0..2048u64)
        .flat_map(|b| {
            let g = if snapshot {
                (b < 600).then_some(1)
            } else {
                match b {
                    0..10 => Some(4),
                    10..300 => Some(1),
                    300..1100 => Some(2),
                    1100..1300 => Some(3),
                    _ => None,
                }
            };
            g.map_or_else(|| vec![0u8; BS as usize], |g| blk(g, b))
        })
        .collect()
}

fn fixture() -> tempfile::TempDir {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/engine-v1-store");
    let to = tempfile::tempdir().unwrap();
    std::fs::create_dir(to.path().join("segments")).unwrap();
    for f in ["superblock", "segments/seg-00000001.log"] {
        std::fs::copy(from.join(f), to.path().join(f)).unwrap();
    }
    to
}

/// Versions of the valid superblock slots, newest first.
fn versions(dir: &Path) -> Vec<u32> {
    let b = std::fs::read(dir.join("superblock")).unwrap();
    let mut v: Vec<(u64, u32)> = b
        .chunks(4096)
        .filter_map(|s| Superblock::decode(s).unwrap())
        .map(|s| (s.generation, s.version))
        .collect();
    v.sort();
    v.into_iter().rev().map(|(_, v)| v).collect()
}

fn verify(s: &Store, what: &str) {
    for (name, snap) in [("v", false), ("s", true)] {
        let kind = if snap {
            ObjectKind::Snapshot
        } else {
            ObjectKind::Volume
        };
        let id = s.resolve(name, Some(kind)).unwrap();
        let mut got = vec![0u8; (2048 * BS) as usize];
        s.read(id, 0, &mut got).unwrap();
        assert!(got == expected(snap), "{what}: {name} reads back wrong");
    }
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{what}: {r:?}");
    let r = s.scrub(None).unwrap();
    assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
}

#[test]
fn version_1_store_is_migrated() {
    let dir = fixture();
    assert_eq!(versions(dir.path()), [1, 1]);
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(versions(dir.path())[0], FORMAT_VERSION);
    verify(&s, "migrated");
    // It goes on as a version 2 store.
    let v = s.resolve("v", Some(ObjectKind::Volume)).unwrap();
    s.write(v, 1250 * BS, &blk(9, 1250), true).unwrap();
    s.write(v, 1250 * BS, &blk(3, 1250), true).unwrap();
    s.close().unwrap();
    assert_eq!(versions(dir.path()), [FORMAT_VERSION, FORMAT_VERSION]);
    let s = Store::open(dir.path(), opts()).unwrap();
    verify(&s, "reopened");
}

#[test]
fn interrupted_migration_is_redone() {
    let dir = fixture();
    let v1_super = std::fs::read(dir.path().join("superblock")).unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    s.close().unwrap();
    // As if the power failed before the first version 2 superblock was
    // written: the migration's pages and checkpoints lie past the version 1
    // replay point, where replay ignores them.
    std::fs::write(dir.path().join("superblock"), &v1_super).unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(versions(dir.path())[0], FORMAT_VERSION);
    verify(&s, "migrated again");
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

#[test]
fn version_2_store_opens_as_version_3() {
    assert_eq!(FORMAT_VERSION, 3);
    let dir = tempfile::tempdir().unwrap();
    let o = || StoreOptions {
        create: true,
        ..opts()
    };
    let s = Store::open(dir.path(), o()).unwrap();
    let v = s.create_volume(Some("v"), 2048 * BS, false).unwrap().id;
    for b in 0..600 {
        s.write(v, b * BS, &blk(1, b), false).unwrap();
    }
    let snap = s.snapshot(v, Some("s")).unwrap().id;
    s.close().unwrap();
    // Version 2 records after the checkpoint: writes and a delete, which a
    // version 2 store freed in one go and this build queues on replay.
    let s = Store::open(dir.path(), o()).unwrap();
    s.hold_frees(true);
    for b in 0..600 {
        s.write(v, b * BS, &blk(2, b), false).unwrap();
    }
    s.delete(snap).unwrap();
    drop(s); // killed: the log since the checkpoint is replayed
    mark_version(dir.path(), 2);
    assert_eq!(versions(dir.path()), [2, 2]);
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(versions(dir.path())[0], 3);
    assert!(s.resolve("s", Some(ObjectKind::Snapshot)).is_err());
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{r:?}");
    s.free_pending().unwrap();
    assert_eq!(s.pending_free_refs(), 0);
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(s.stats().unwrap().allocated_bytes, 600 * BS);
    s.close().unwrap();
    assert_eq!(versions(dir.path()), [3, 3]);
    let s = Store::open(dir.path(), opts()).unwrap();
    let mut got = vec![0u8; BS as usize];
    for b in [0, 299, 599] {
        s.read(v, b * BS, &mut got).unwrap();
        assert!(got == blk(2, b), "block {b}");
    }
}
