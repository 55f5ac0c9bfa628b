//! The local disk as a bounded cache, deletes in the bucket and the lazy
//! restore, on object_store's local-file backend: a store written well
//! past its cache bound stays within it once uploads catch up (evicted
//! segments read back byte-exact through ranged GETs); the bucket holds
//! only what the newest two commit points name; a lazy restore downloads
//! no segment, and the restored store opens through the bucket and reads
//! every object back.

mod common;
use blockd_tier as tier;
use common::{pattern, read_all};
use engine::{Store, StoreOptions, WHOLE};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tier::{Remote, RemoteSource, Uploader, UploaderOptions};

const SEG: u64 = 1 << 20;

fn opts(source: Option<Arc<RemoteSource>>) -> StoreOptions {
    StoreOptions {
        segment_size: SEG,
        spare_segments: 0,
        segment_source: source.map(|s| s as Arc<dyn engine::tiering::SegmentSource>),
        ..Default::default()
    }
}

/// Waits until the bucket has the newest local generation.
fn caught_up(up: &Uploader) -> tier::TierStats {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = up.stats();
        if s.local_generation > 0 && s.remote_generation == s.local_generation {
            return s;
        }
        assert!(Instant::now() < deadline, "uploads do not catch up: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Keys (relative to the bucket root) of every object under `dir`.
fn bucket_keys(dir: &Path) -> HashSet<String> {
    let mut out = HashSet::new();
    for sub in ["segments", "generations"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                out.insert(format!("{sub}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

#[test]
fn bounded_cache_prune_and_lazy_restore() {
    let t = tempfile::tempdir().unwrap();
    let bucket = t.path().join("bucket");
    let url = format!("file://{}", bucket.display());
    let src = t.path().join("src");
    let bound = 6 * SEG;
    let size = 4 << 20;
    let store = Store::open(&src, opts(None)).unwrap();
    let mut up = Uploader::start(
        &store,
        Remote::from_url(&url).unwrap(),
        UploaderOptions {
            checkpoint_interval: Duration::from_millis(30),
            cache_bound: Some(bound),
            ..Default::default()
        },
    )
    .unwrap();
    let vol = store.create_volume(Some("vol"), size, false).unwrap().id;
    // Written in rounds, each a snapshot: 16 MiB of live data in all, well
    // past the 6 MiB bound; uploads keep up between rounds.
    let mut snaps = Vec::new();
    for round in 0..4u64 {
        let data = pattern(size as usize, round + 1);
        for (i, c) in data.chunks(256 << 10).enumerate() {
            store
                .write(vol, (i * (256 << 10)) as u64, c, false)
                .unwrap();
        }
        store.flush().unwrap();
        snaps.push((store.snapshot(vol, None).unwrap().id, data));
        caught_up(&up);
        store.checkpoint().unwrap();
        caught_up(&up);
    }
    // A pass after the last generation went up.
    store.checkpoint().unwrap();
    let st = caught_up(&up);
    std::thread::sleep(Duration::from_millis(100));
    let st2 = up.stats();
    let usage = tier::cache::dir_usage(&src);
    eprintln!("cache: usage {usage} bound {bound}; {st2:?}");
    assert!(st.evicted_segments > 0, "{st:?}");
    assert!(
        usage <= bound,
        "data dir {usage} bytes over its bound {bound}"
    );
    assert!(!st2.cache_full, "{st2:?}");
    let evicted = store
        .segment_residency()
        .iter()
        .filter(|r| r.remote_below == WHOLE)
        .count();
    assert!(evicted >= 8, "only {evicted} segments evicted");
    // Every snapshot reads back, through ranged GETs for evicted segments.
    let before = up.stats().range_gets;
    for (id, data) in &snaps {
        assert!(
            read_all(&store, *id, size as usize) == *data,
            "snapshot {id}"
        );
    }
    let after = up.stats();
    assert!(after.range_gets > before, "{after:?}");
    eprintln!(
        "ranged GETs: {} for {} bytes, {:.0} us mean",
        after.range_gets,
        after.range_bytes,
        after.range_get_micros as f64 / after.range_gets.max(1) as f64
    );

    // Deletes: delete two snapshots, clean, commit more generations; the
    // bucket then holds only what the newest two commit points name.
    store.delete(snaps[0].0).unwrap();
    store.delete(snaps[1].0).unwrap();
    snaps.drain(..2);
    store.reclaim(0.9).unwrap();
    for _ in 0..3 {
        store.checkpoint().unwrap();
        caught_up(&up);
    }
    let st = up.stats();
    assert!(
        st.deleted_objects > 0 && st.deleted_generations > 0,
        "{st:?}"
    );
    // Pruning runs after each commit point is up, so the newest commit's
    // pruning may still be under way: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let keys = bucket_keys(&bucket);
        let gens: Vec<&String> = keys
            .iter()
            .filter(|k| k.starts_with("generations/"))
            .collect();
        let mut named = HashSet::new();
        for g in &gens {
            let m: tier::Manifest =
                serde_json::from_slice(&std::fs::read(bucket.join(g)).unwrap()).unwrap();
            named.extend(m.segments.into_iter().map(|s| s.key));
        }
        let segs: HashSet<String> = keys
            .iter()
            .filter(|k| k.starts_with("segments/"))
            .cloned()
            .collect();
        if gens.len() == 2 && segs == named {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "bucket objects no kept commit point names: {gens:?} name {named:?}, bucket holds {segs:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    up.detach();
    store.close().unwrap();
    up.finish(Duration::from_secs(60)).unwrap();

    // Lazy restore: no segment downloaded; opens through the bucket.
    let dst = t.path().join("dst");
    let remote = Remote::from_url(&url).unwrap();
    let r = tier::restore_lazy(&remote, &dst).unwrap();
    assert!(r.bytes < 64 << 10, "{r:?}");
    assert!(r.remote_bytes > 8 * SEG, "{r:?}");
    let source = RemoteSource::new(remote.clone(), 8 << 20).unwrap();
    let s2 = Store::open(
        &dst,
        StoreOptions {
            create: false,
            ..opts(Some(source.clone()))
        },
    )
    .unwrap();
    let opened = source.stats();
    eprintln!(
        "lazy restore: {r:?}; open fetched {} bytes in {} GETs",
        opened.range_bytes, opened.range_gets
    );
    assert!(opened.range_bytes < r.remote_bytes / 4, "{opened:?}");
    let mut want = snaps.last().unwrap().1.clone();
    assert!(read_all(&s2, vol, size as usize) == want, "volume");
    for (id, data) in &snaps {
        assert!(read_all(&s2, *id, size as usize) == *data, "snapshot {id}");
    }
    let report = s2.check(false).unwrap();
    assert!(report.corruption.is_empty(), "{:?}", report.corruption);
    // Without the bucket it does not open (or read) silently.
    s2.write(vol, 0, &pattern(4096, 99), true).unwrap();
    want[..4096].copy_from_slice(&pattern(4096, 99));
    s2.close().unwrap();
    let s3 = Store::open(
        &dst,
        StoreOptions {
            create: false,
            ..opts(Some(source))
        },
    )
    .unwrap();
    assert!(
        read_all(&s3, vol, size as usize) == want,
        "volume after reopen"
    );
}
