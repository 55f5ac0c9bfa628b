//! `Store::op_stats`: the operation counters move with real work (log
//! appends, cache lookups, checkpoints, reclaim) and count failures: a
//! checkpoint failed by an injected fault counts as a checkpoint error and
//! a fail-stop.

use blockd_engine::{FaultPoint, Store, StoreOptions};

const EIO: i32 = 5;

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        create: true,
        ..Default::default()
    }
}

#[test]
fn counters_follow_work_and_failures() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path(), opts()).unwrap();
    let base = s.op_stats();
    let v = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
    s.write(v, 0, &vec![7u8; 65536], false).unwrap();
    s.checkpoint().unwrap();
    let mut b = vec![0u8; 4096];
    s.read(v, 4096, &mut b).unwrap();
    s.reclaim(0.5).unwrap();
    let st = s.op_stats();
    assert!(st.log_bytes >= base.log_bytes + 65536, "{st:?}");
    // reclaim checkpoints too.
    assert!(st.checkpoints >= base.checkpoints + 2, "{st:?}");
    assert!(st.reclaims > base.reclaims, "{st:?}");
    assert!(st.checkpoint_time > base.checkpoint_time);
    let lookups = |s: &blockd_engine::OpStats| {
        s.node_cache_hits + s.node_cache_misses + s.table_cache_hits + s.table_cache_misses
    };
    assert!(lookups(&st) > lookups(&base), "{st:?}");
    assert_eq!((st.checkpoint_errors, st.fail_stops), (0, 0));

    s.write(v, 0, &vec![8u8; 4096], false).unwrap();
    s.inject_fault(FaultPoint::SuperblockWrite, EIO, 0);
    assert!(s.checkpoint().is_err());
    let after = s.op_stats();
    assert_eq!(after.checkpoint_errors, 1, "{after:?}");
    assert_eq!(after.fail_stops, 1, "{after:?}");
    assert_eq!(after.checkpoints, st.checkpoints + 1);
}
