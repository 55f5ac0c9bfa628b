//! The `remote` durability mode and lease fencing on object_store's
//! in-memory backend (the same against radosgw, through NBD and a killed
//! server: tests/object_store_remote.rs):
//!
//! 1. A flush returns once the bucket holds the log up to it, as tail
//!    objects, without a checkpoint (an hour's interval): a restore of
//!    the bucket, taken while the writer still runs and never closed,
//!    reads every flushed block, across sealed segments.
//! 2. Fencing: the restore took a newer lease, so the first writer's next
//!    flush fails and its writes are refused; the restored store writes
//!    and flushes on; a third restore sees all of the second writer's
//!    flushed writes and none of the first's after the fence.
//! 3. An unreachable bucket: a flush fails (an error, not an
//!    acknowledgement) after the flush timeout.
//! 4. Concurrent flushes share tail uploads, and all are in a restore.

mod common;
use blockd_tier as tier;
use common::{pattern, read_all};
use engine::{Store, StoreOptions};
use std::sync::Arc;
use std::time::Duration;
use tier::{restore, restore_lazy, Durability, Remote, Uploader, UploaderOptions};

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        ..Default::default()
    }
}

fn remote_opts() -> UploaderOptions {
    UploaderOptions {
        checkpoint_interval: Duration::from_secs(3600),
        durability: Durability::Remote,
        flush_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

fn reopen(dir: &std::path::Path, source: Option<Arc<tier::RemoteSource>>) -> Store {
    Store::open(
        dir,
        StoreOptions {
            create: false,
            segment_source: source.map(|s| s as Arc<dyn engine::tiering::SegmentSource>),
            ..opts()
        },
    )
    .unwrap()
}

#[test]
fn remote_flushes_tails_and_fencing() {
    let mem: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let remote = Remote::new(mem, "p");
    let t = tempfile::tempdir().unwrap();
    let a = Store::open(t.path().join("a"), opts()).unwrap();
    let size = 3 << 20;
    let vol = a.create_volume(Some("v"), size, false).unwrap().id;
    let ua = Uploader::start(&a, remote.clone(), remote_opts()).unwrap();
    let st = ua.stats();
    assert_eq!((st.lease, st.generations_committed), (1, 1), "{st:?}");
    // Writes spanning several 1 MiB segments, each flushed.
    let mut want = vec![0u8; size as usize];
    for i in 0..12u64 {
        let d = pattern(256 << 10, 100 + i);
        let off = (i % 12) * (256 << 10);
        a.write(vol, off, &d, false).unwrap();
        a.flush().unwrap();
        want[off as usize..off as usize + d.len()].copy_from_slice(&d);
    }
    // A FUA write is a flush too.
    let d = pattern(4096, 7);
    a.write(vol, 4096, &d, true).unwrap();
    want[4096..8192].copy_from_slice(&d);
    let st = ua.stats();
    assert_eq!(st.generations_committed, 1, "no checkpoint did it: {st:?}");
    assert!(st.tail_objects >= 13 && st.tail_bytes >= 3 << 20, "{st:?}");
    assert!(st.remote_flushes >= 13, "{st:?}");
    assert_eq!(st.unuploaded_log_bytes, 0, "{st:?}");
    // Unflushed writes show as log not yet in the bucket.
    a.write(vol, 0, &pattern(65536, 8), false).unwrap();
    // (once the log's writer thread has put it in its segment file)
    let waited = std::time::Instant::now();
    while ua.stats().unuploaded_log_bytes < 65536 && waited.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(ua.stats().unuploaded_log_bytes >= 65536, "{:?}", ua.stats());

    // Restore while A runs (A is never closed: as if it were killed):
    // the restore takes lease 2, fencing A; it has every flushed block.
    let bdir = t.path().join("b");
    let r = restore_lazy(&remote, &bdir).unwrap();
    assert_eq!((r.from_lease, r.lease), (1, 2));
    assert!(r.tails >= 13 && r.tail_bytes >= 3 << 20, "{r:?}");
    let src = tier::RemoteSource::new(remote.clone(), 8 << 20).unwrap();
    src.load_newest().unwrap();
    let b = reopen(&bdir, Some(src.clone()));
    let got = read_all(&b, vol, size as usize);
    // Block 0's last write was not flushed: either version may be there.
    assert_eq!(got[65536..], want[65536..]);

    // A is fenced: its next flush fails, and so do its writes after it.
    let e = a.flush().unwrap_err();
    assert!(e.to_string().contains("fenced by lease 2"), "{e}");
    assert!(a.write(vol, 0, &pattern(4096, 9), false).is_err());
    let st = ua.stats();
    assert_eq!(st.fenced_by, 2, "{st:?}");
    assert!(st.remote_flush_failures >= 1, "{st:?}");

    // B serves on under lease 3 and writes.
    let ub = Uploader::start(
        &b,
        remote.clone(),
        UploaderOptions {
            source: Some(src),
            ..remote_opts()
        },
    )
    .unwrap();
    assert_eq!(ub.stats().lease, 3);
    let d = pattern(1 << 20, 11);
    b.write(vol, 1 << 20, &d, false).unwrap();
    b.flush().unwrap();
    let mut want_b = got.clone();
    want_b[1 << 20..2 << 20].copy_from_slice(&d);
    // A third copy (full) sees B's flushed writes.
    let cdir = t.path().join("c");
    let r = restore(&remote, &cdir, 2).unwrap();
    assert_eq!(r.from_lease, 3, "{r:?}");
    let c = reopen(&cdir, None);
    assert_eq!(read_all(&c, vol, size as usize), want_b);
    assert!(c.check(false).unwrap().corruption.is_empty());
    drop(c);
    drop(ua);
    drop(ub);
}

#[test]
fn unreachable_bucket_fails_the_flush() {
    let t = tempfile::tempdir().unwrap();
    let bucket = t.path().join("bucket");
    let remote = Remote::from_url(&format!("file://{}", bucket.display())).unwrap();
    let a = Store::open(t.path().join("a"), opts()).unwrap();
    let vol = a.create_volume(Some("v"), 1 << 20, false).unwrap().id;
    let ua = Uploader::start(
        &a,
        remote,
        UploaderOptions {
            flush_timeout: Duration::from_millis(700),
            ..remote_opts()
        },
    )
    .unwrap();
    a.write(vol, 0, &pattern(4096, 1), false).unwrap();
    a.flush().unwrap();
    // The bucket goes away (its directory can no longer be written).
    let tails = bucket.join("tails");
    std::fs::remove_dir_all(&tails).unwrap();
    std::fs::write(&tails, b"not a directory").unwrap();
    a.write(vol, 4096, &pattern(4096, 2), false).unwrap();
    let started = std::time::Instant::now();
    let e = a.flush().unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert!(
        e.to_string().contains("did not reach the object store"),
        "{e}"
    );
    let st = ua.stats();
    assert!(st.errors >= 1 && st.remote_flush_failures == 1, "{st:?}");
    // The store itself is fine: reads and local writes go on, and once the
    // bucket is back the next flush gets there.
    std::fs::remove_file(&tails).unwrap();
    a.flush().unwrap();
    assert!(ua.stats().remote_flushes >= 2);
}

#[test]
fn concurrent_flushes_share_uploads() {
    let t = tempfile::tempdir().unwrap();
    let bucket = t.path().join("bucket");
    let remote = Remote::from_url(&format!("file://{}", bucket.display())).unwrap();
    let a = Store::open(t.path().join("a"), opts()).unwrap();
    let vol = a.create_volume(Some("v"), 4 << 20, false).unwrap().id;
    let ua = Uploader::start(&a, remote.clone(), remote_opts()).unwrap();
    let (threads, each) = (8u64, 20u64);
    std::thread::scope(|s| {
        for th in 0..threads {
            let a = &a;
            s.spawn(move || {
                for i in 0..each {
                    let off = (th * each + i) * 4096;
                    a.write(vol, off, &pattern(4096, off), false).unwrap();
                    a.flush().unwrap();
                }
            });
        }
    });
    let st = ua.stats();
    assert_eq!(
        st.remote_flushes + st.remote_flush_failures,
        threads * each,
        "{st:?}"
    );
    assert_eq!(st.remote_flush_failures, 0, "{st:?}");
    // Flushes waiting together were answered by one round (one object
    // per round here: everything stays in one segment).
    assert!(st.tail_objects < threads * each, "{st:?}");
    eprintln!(
        "{} flushes from {threads} threads took {} tail uploads",
        threads * each,
        st.tail_objects
    );
    // Every flushed block is in a restore.
    let dst = t.path().join("copy");
    restore(&remote, &dst, 2).unwrap();
    let c = reopen(&dst, None);
    for off in (0..threads * each * 4096).step_by(4096) {
        let mut b = vec![0u8; 4096];
        c.read(vol, off, &mut b).unwrap();
        assert_eq!(b, pattern(4096, off), "block at {off}");
    }
}
