//! Named fault points (feature `fault-injection`, enabled for tests): an
//! EIO or ENOSPC injected once at each write and sync site fails the
//! operation cleanly; after a failed fsync, a failed checkpoint or reclaim,
//! or an EIO on any log write, the store refuses writes until reopened;
//! ENOSPC on appending client data or a catalogue change is a clean
//! refusal and the store goes on. Reopening loses no acknowledged flush and
//! checks clean.

use blockd_engine::{ErrorKind, FaultPoint, ObjectId, Store, StoreOptions};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        ..Default::default()
    }
}

fn block(tag: u8) -> Vec<u8> {
    vec![tag; 8192]
}

/// A store with one volume holding flushed data at offset 0.
fn setup(dir: &std::path::Path) -> (Store, ObjectId) {
    let s = Store::open(dir, opts()).unwrap();
    let v = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
    s.write(v, 0, &block(1), false).unwrap();
    s.flush().unwrap();
    (s, v)
}

fn read(s: &Store, v: ObjectId, off: u64) -> Vec<u8> {
    let mut b = vec![0u8; 8192];
    s.read(v, off, &mut b).unwrap();
    b
}

/// After a clean ENOSPC refusal: the store goes on, nothing was half-done.
fn after_refusal(dir: &std::path::Path, s: Store, v: ObjectId, point: FaultPoint) {
    s.write(v, 65536, &block(4), true).unwrap();
    assert_eq!(read(&s, v, 0), block(1));
    assert_eq!(read(&s, v, 65536), block(4));
    drop(s);
    let s = Store::open(dir, opts()).unwrap();
    assert_eq!(read(&s, v, 0), block(1), "{point:?}");
    assert_eq!(read(&s, v, 65536), block(4), "{point:?}");
    assert!(s.check(false).unwrap().is_clean(), "{point:?}");
}

/// After the failure: ENOSPC on a client append is a clean refusal;
/// anything else fail-stops: writes refused, reopen finds the flushed data,
/// check clean.
fn after_failure(dir: &std::path::Path, s: Store, v: ObjectId, point: FaultPoint) {
    if !s.is_failed()
        && matches!(
            point,
            FaultPoint::LogAppend | FaultPoint::CatalogAppend | FaultPoint::SegmentSeal
        )
    {
        return after_refusal(dir, s, v, point);
    }
    assert!(s.is_failed(), "{point:?}: the store fail-stops");
    let e = s.write(v, 65536, &block(9), false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailStopped, "{point:?}");
    assert_eq!(s.flush().unwrap_err().kind(), ErrorKind::FailStopped);
    assert_eq!(read(&s, v, 0), block(1), "{point:?}: reads still work");
    drop(s);
    let s = Store::open(dir, opts()).unwrap();
    assert_eq!(
        read(&s, v, 0),
        block(1),
        "{point:?}: acknowledged flush survives"
    );
    let r = s.check(false).unwrap();
    assert!(r.corruption.is_empty(), "{point:?}: {r:?}");
    s.write(v, 65536, &block(3), true).unwrap();
    assert_eq!(read(&s, v, 65536), block(3));
}

#[test]
fn every_fault_point_fails_cleanly_and_fail_stops() {
    for errno in [EIO, ENOSPC] {
        // Client data append.
        let d = tempfile::tempdir().unwrap();
        let (s, v) = setup(d.path());
        s.inject_fault(FaultPoint::LogAppend, errno, 0);
        let e = s.write(v, 4096 * 10, &block(2), false).unwrap_err();
        assert_eq!(
            e.kind(),
            if errno == ENOSPC {
                ErrorKind::NoSpace
            } else {
                ErrorKind::Io
            }
        );
        assert_eq!(
            s.is_failed(),
            errno == EIO,
            "ENOSPC refuses, EIO fail-stops"
        );
        after_failure(d.path(), s, v, FaultPoint::LogAppend);

        // fsync: the flush is not acknowledged.
        let d = tempfile::tempdir().unwrap();
        let (s, v) = setup(d.path());
        s.write(v, 4096 * 10, &block(2), false).unwrap();
        s.inject_fault(FaultPoint::Fsync, errno, 0);
        assert!(s.flush().is_err());
        after_failure(d.path(), s, v, FaultPoint::Fsync);

        // Catalogue append: the snapshot is not created.
        let d = tempfile::tempdir().unwrap();
        let (s, v) = setup(d.path());
        s.inject_fault(FaultPoint::CatalogAppend, errno, 0);
        assert!(s.snapshot(v, Some("s")).is_err());
        assert!(s.list().iter().all(|o| o.name.as_deref() != Some("s")));
        assert_eq!(s.is_failed(), errno == EIO);
        after_failure(d.path(), s, v, FaultPoint::CatalogAppend);

        // Checkpoint page and superblock switch.
        for point in [FaultPoint::CheckpointPage, FaultPoint::SuperblockWrite] {
            let d = tempfile::tempdir().unwrap();
            let (s, v) = setup(d.path());
            s.inject_fault(point, errno, 0);
            assert!(s.checkpoint().is_err(), "{point:?}");
            after_failure(d.path(), s, v, point);
        }

        // Segment seal: writes that fill a 1 MiB segment.
        let d = tempfile::tempdir().unwrap();
        let (s, v) = setup(d.path());
        s.inject_fault(FaultPoint::SegmentSeal, errno, 0);
        let big = vec![7u8; 256 << 10];
        let mut failed = false;
        for i in 0..8u64 {
            if s.write(v, (1 << 20) + i * (256 << 10), &big, false)
                .is_err()
            {
                failed = true;
                break;
            }
        }
        assert!(failed, "the seal fault fired");
        assert_eq!(s.is_failed(), errno == EIO);
        after_failure(d.path(), s, v, FaultPoint::SegmentSeal);

        // Space reclaim moving live data.
        let d = tempfile::tempdir().unwrap();
        let (s, v) = setup(d.path());
        // 3 MiB written, then every other 4 KiB block overwritten: the
        // first segments are left about half live.
        s.write(v, 1 << 20, &vec![5u8; 3 << 20], false).unwrap();
        for i in (0..768u64).step_by(2) {
            s.write(v, (1 << 20) + i * 4096, &[6u8; 4096], false)
                .unwrap();
        }
        s.flush().unwrap();
        s.inject_fault(FaultPoint::ReclaimMove, errno, 0);
        assert!(s.reclaim(0.9).is_err(), "the reclaim fault fired");
        after_failure(d.path(), s, v, FaultPoint::ReclaimMove);
    }
}
