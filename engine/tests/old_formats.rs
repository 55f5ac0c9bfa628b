//! Stores of an older on-disk format are refused, untouched, with an error
//! that names their version and says how to move their volumes: format
//! version 4 renumbered map nodes into their own id region and changed the
//! chunk-table leaves, and this build does not migrate versions 1 to 3.
//! The version 1 store of `fixtures/engine-v1-store` (see its README) and
//! a current store marked version 3 are both tried.

use blockd_engine::decode::{Superblock, FORMAT_VERSION};
use blockd_engine::{ErrorKind, Store, StoreOptions};
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

/// Opening the store in `dir` fails with `Unsupported`, naming `version`
/// and the way out, and changes nothing on disk.
fn refused(dir: &Path, version: u32) {
    let before = snapshot(dir);
    let e = Store::open(dir, opts())
        .err()
        .expect("an old store must be refused");
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    let m = e.to_string();
    for want in [
        format!("format version {version};"),
        format!("reads version {FORMAT_VERSION} only"),
        "blockd export".to_string(),
        "blockd import".to_string(),
    ] {
        assert!(m.contains(&want), "{m:?} lacks {want:?}");
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
    refused(dir.path(), 1);
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
fn version_3_store_is_refused_and_current_one_opens() {
    assert_eq!(FORMAT_VERSION, 4);
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
    assert_eq!(versions(dir.path()), [4, 4]);
    let kept = std::fs::read(dir.path().join("superblock")).unwrap();
    mark_version(dir.path(), 3);
    refused(dir.path(), 3);
    // The same store as version 4 opens and reads back.
    std::fs::write(dir.path().join("superblock"), kept).unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let mut got = vec![0u8; BS as usize];
    s.read(v, 0, &mut got).unwrap();
    assert!(got.iter().all(|&x| x == 7));
}
