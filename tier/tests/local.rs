//! The tier end to end on object_store's local-file and in-memory
//! backends (the real S3 test, against Ceph's radosgw, is
//! tests/object_store.rs): a store with several sealed segments, a
//! snapshot and the cleaner at work is uploaded generation by generation,
//! restored into an empty directory, and every byte of every object reads
//! back; restore refuses a non-empty directory and an empty bucket; a
//! second store cannot upload into the first one's prefix; a writer whose
//! lease was taken by a restored copy is refused, unless told to take
//! over.

mod common;
use blockd_tier as tier;
use common::{pattern, read_all};
use engine::{Store, StoreOptions};
use std::time::Duration;
use tier::{restore, Remote, Uploader, UploaderOptions};

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        ..Default::default()
    }
}

#[test]
fn upload_then_restore_local_files() {
    let t = tempfile::tempdir().unwrap();
    let bucket = t.path().join("bucket");
    let url = format!("file://{}", bucket.display());
    let src = t.path().join("src");
    let size = 8 << 20;
    let store = Store::open(&src, opts()).unwrap();
    let mut up = Uploader::start(
        &store,
        Remote::from_url(&url).unwrap(),
        UploaderOptions {
            checkpoint_interval: Duration::from_millis(50),
            concurrency: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let vol = store.create_volume(Some("vol"), size, false).unwrap().id;
    let first = pattern(size as usize, 1);
    for (i, c) in first.chunks(256 << 10).enumerate() {
        store
            .write(vol, (i * (256 << 10)) as u64, c, false)
            .unwrap();
    }
    store.flush().unwrap();
    let snap = store.snapshot(vol, Some("snap")).unwrap().id;
    // Overwrite half: the snapshot keeps the first version.
    let second = pattern(size as usize / 2, 2);
    store.write(vol, 0, &second, true).unwrap();
    let mut want_vol = first.clone();
    want_vol[..second.len()].copy_from_slice(&second);
    // A clean pass moves live data and retires segments meanwhile.
    store.reclaim(0.9).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    up.detach();
    store.close().unwrap();
    let stats = up.finish(Duration::from_secs(60)).unwrap();
    assert!(stats.remote_generation >= 3, "{stats:?}");
    assert_eq!(stats.remote_generation, stats.local_generation);
    assert_eq!(stats.pending_bytes, 0);
    assert!(stats.uploaded_bytes > size, "{stats:?}");

    // Restore into a fresh directory and read everything back.
    let dst = t.path().join("dst");
    let r = restore(&Remote::from_url(&url).unwrap(), &dst, 3).unwrap();
    assert_eq!(r.generation, stats.remote_generation);
    let s2 = Store::open(
        &dst,
        StoreOptions {
            create: false,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(read_all(&s2, vol, size as usize), want_vol);
    assert_eq!(read_all(&s2, snap, size as usize), first);
    let report = s2.check(false).unwrap();
    assert!(report.corruption.is_empty(), "{:?}", report.corruption);
    // The restored store writes on.
    s2.write(vol, 0, &pattern(4096, 3), true).unwrap();
    s2.close().unwrap();

    // A non-empty directory is refused; so is an empty bucket.
    let e = restore(&Remote::from_url(&url).unwrap(), &dst, 1).unwrap_err();
    assert!(matches!(e, tier::Error::Refused(_)), "{e}");
    let empty = format!("file://{}", t.path().join("nothing").display());
    let e = restore(&Remote::from_url(&empty).unwrap(), &t.path().join("d3"), 1).unwrap_err();
    assert!(e.to_string().contains("no committed generation"), "{e}");

    // Another store may not upload into this prefix.
    let other = Store::open(t.path().join("other"), opts()).unwrap();
    let e = Uploader::start(
        &other,
        Remote::from_url(&url).unwrap(),
        UploaderOptions::default(),
    )
    .err()
    .expect("another store's prefix is refused");
    assert!(matches!(e, tier::Error::Bucket(_)), "{e}");
}

#[test]
fn in_memory_backend_and_create_only_commit_points() {
    let mem: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::memory::InMemory::new());
    let remote = Remote::new(mem, "p");
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("s"), opts()).unwrap();
    let vol = store.create_volume(Some("v"), 1 << 20, false).unwrap().id;
    store.write(vol, 0, &pattern(1 << 20, 9), true).unwrap();
    let mut up = Uploader::start(&store, remote.clone(), UploaderOptions::default()).unwrap();
    up.detach();
    store.close().unwrap();
    let s = up.finish(Duration::from_secs(30)).unwrap();
    assert!(s.generations_committed >= 1);
    // The same store, reopened from its local disk, goes on under a new
    // lease; a copy of it restored from the bucket takes a lease of its
    // own first, so the original, reopened after that, is refused (another
    // writer holds the store) and the copy serves on.
    let a = Store::open(t.path().join("s"), opts()).unwrap();
    let mut ua = Uploader::start(&a, remote.clone(), UploaderOptions::default()).unwrap();
    assert_eq!(ua.stats().lease, 2);
    ua.detach();
    a.close().unwrap();
    ua.finish(Duration::from_secs(30)).unwrap();
    let dst = t.path().join("copy");
    let r = restore(&remote, &dst, 2).unwrap();
    assert_eq!((r.from_lease, r.lease), (2, 3));
    let a = Store::open(t.path().join("s"), opts()).unwrap();
    let e = Uploader::start(&a, remote.clone(), UploaderOptions::default())
        .err()
        .expect("a stale writer is refused");
    assert!(matches!(e, tier::Error::Refused(_)), "{e}");
    assert!(e.to_string().contains("--take-over"), "{e}");
    a.close().unwrap();
    let b = Store::open(&dst, opts()).unwrap();
    let mut ub = Uploader::start(&b, remote.clone(), UploaderOptions::default()).unwrap();
    assert_eq!(ub.stats().lease, 4);
    ub.detach();
    b.close().unwrap();
    ub.finish(Duration::from_secs(30)).unwrap();
    // Told to take over, the original goes on under lease 5, and its
    // state is what a restore now gives (its segment objects, not the
    // copy's: it trusts none of the copy's).
    let a = Store::open(t.path().join("s"), opts()).unwrap();
    a.write(vol, 0, &pattern(4096, 10), false).unwrap();
    let mut ua = Uploader::start(
        &a,
        remote.clone(),
        UploaderOptions {
            take_over: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ua.stats().lease, 5);
    ua.detach();
    a.close().unwrap();
    ua.finish(Duration::from_secs(30)).unwrap();
    let r = restore(&remote, &t.path().join("after"), 2).unwrap();
    assert_eq!(r.from_lease, 5);
    let s = Store::open(
        t.path().join("after"),
        StoreOptions {
            create: false,
            ..opts()
        },
    )
    .unwrap();
    let mut want = pattern(1 << 20, 9);
    want[..4096].copy_from_slice(&pattern(4096, 10));
    assert_eq!(read_all(&s, vol, 1 << 20), want);
}
