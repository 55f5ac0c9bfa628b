//! Concurrency: many threads doing verified I/O on several volumes while
//! others take, read and delete snapshots and clones, and a housekeeping
//! thread flushes, checkpoints and reclaims.
//!
//! Each writer owns a region of a volume and writes it whole, one
//! generation at a time, with a single call (so each generation is one log
//! record, applied atomically). Most regions have unaligned byte bounds, so
//! neighbouring writers read-modify-write the same boundary blocks at the
//! same time; the rest are block-aligned and every fifth generation is a
//! trim or write_zeroes instead. Before each write a writer publishes the
//! generation it starts, after it the one it completed.
//!
//! A snapshot (or clone) taken while writers run must hold, per region, one
//! whole generation, no older than the region's last completed generation
//! before the snapshot call and no newer than its last started one after
//! the call. Live reads obey the same rule, and a writer re-reading its own
//! region sees exactly what it wrote. Afterwards every volume holds each
//! region's last generation, surviving snapshots still hold what they held,
//! `check(false)` is clean, and all of that again after a reopen.

use blockd_engine::{ObjectId, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BS: u64 = 4096;
const VOLUMES: usize = 3;
/// Unaligned regions per volume, then aligned ones.
const UNALIGNED: usize = 3;
const ALIGNED: usize = 1;
const REGIONS: usize = UNALIGNED + ALIGNED;
/// Unaligned regions start at byte 1000 and are 40 blocks and 1234 bytes
/// long, so adjacent ones share a block.
const UREGION: u64 = 40 * BS + 1234;
const UBASE: u64 = 1000;
/// Aligned regions: 32 blocks each, after the unaligned ones.
const AREGION: u64 = 32 * BS;
const ABASE: u64 = 256 * BS;
const VOL_SIZE: u64 = 4 << 20;

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        cache_bytes: 0,
        dirty_limit_bytes: 256 << 10,
        checkpoint_log_bytes: 4 << 20,
        // Small slices: writers race checkpoints between their slices.
        checkpoint_slice_pages: 4,
        ..Default::default()
    }
}

fn run_for() -> Duration {
    let ms = std::env::var("BLOCKD_CONCURRENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    Duration::from_millis(ms)
}

/// Byte range of region `r`.
fn region(r: usize) -> (u64, u64) {
    if r < UNALIGNED {
        (UBASE + r as u64 * UREGION, UREGION)
    } else {
        (ABASE + (r - UNALIGNED) as u64 * AREGION, AREGION)
    }
}

/// Generation `g` of region `r` of volume `v`; all zeroes for the aligned
/// regions' trim generations.
fn content(v: usize, r: usize, g: u64) -> Vec<u8> {
    let len = region(r).1 as usize;
    if is_zero_gen(r, g) {
        return vec![0; len];
    }
    let mut b = Vec::with_capacity(len + 8);
    b.extend_from_slice(b"GEN!");
    b.extend_from_slice(&((v * REGIONS + r) as u32).to_le_bytes());
    b.extend_from_slice(&g.to_le_bytes());
    let mut x = ((v * REGIONS + r) as u64) << 40 ^ g.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while b.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.extend_from_slice(&x.to_le_bytes());
    }
    b.truncate(len);
    b
}

fn is_zero_gen(r: usize, g: u64) -> bool {
    r >= UNALIGNED && g > 0 && g.is_multiple_of(5)
}

/// Which generation a region's bytes are (`u64::MAX` for all zeroes in an
/// aligned region, which may be unwritten or a zero generation), `None`
/// when they are not one whole generation.
fn generation(v: usize, r: usize, b: &[u8]) -> Option<u64> {
    if b.iter().all(|&x| x == 0) {
        return Some(if r >= UNALIGNED { u64::MAX } else { 0 });
    }
    let g = u64::from_le_bytes(b[8..16].try_into().unwrap());
    (b == content(v, r, g).as_slice()).then_some(g)
}

/// True when generation `g` (as [`generation`] reports it) of region `r`
/// may be seen between generations `lo` and `hi`.
fn accepts(r: usize, g: u64, lo: u64, hi: u64) -> bool {
    if g == u64::MAX {
        // All zeroes in an aligned region: unwritten or a zero generation
        // (or, for kept images, recorded as such).
        lo == u64::MAX || (lo..=hi).any(|x| x == 0 || is_zero_gen(r, x))
    } else {
        (lo..=hi).contains(&g)
    }
}

/// Published progress of one region's writer.
#[derive(Default)]
struct Progress {
    started: AtomicU64,
    completed: AtomicU64,
}

struct Shared {
    store: Store,
    vols: Vec<ObjectId>,
    progress: Vec<Vec<Progress>>,
    stop: AtomicBool,
}

impl Shared {
    fn completed(&self, v: usize) -> Vec<u64> {
        self.progress[v]
            .iter()
            .map(|p| p.completed.load(Ordering::Acquire))
            .collect()
    }
    fn started(&self, v: usize) -> Vec<u64> {
        self.progress[v]
            .iter()
            .map(|p| p.started.load(Ordering::Acquire))
            .collect()
    }

    /// Checks that `obj` (a point-in-time image of volume `v`) holds for
    /// each region one whole generation in `lo[r]..=hi[r]`; returns them.
    fn check_image(&self, v: usize, obj: ObjectId, lo: &[u64], hi: &[u64], what: &str) -> Vec<u64> {
        let mut out = Vec::new();
        for r in 0..REGIONS {
            let (off, len) = region(r);
            let mut b = vec![0u8; len as usize];
            self.store
                .read(obj, off, &mut b)
                .unwrap_or_else(|e| panic!("{what}: read region {r}: {e}"));
            let g = generation(v, r, &b)
                .unwrap_or_else(|| panic!("{what}: volume {v} region {r} is torn"));
            assert!(
                accepts(r, g, lo[r], hi[r]),
                "{what}: volume {v} region {r} holds generation {g}, not in {}..={}",
                lo[r],
                hi[r]
            );
            out.push(g);
        }
        out
    }
}

fn writer(sh: &Shared, v: usize, r: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (off, len) = region(r);
    let p = &sh.progress[v][r];
    let id = sh.vols[v];
    let mut g = 0;
    while !sh.stop.load(Ordering::Acquire) {
        g += 1;
        p.started.store(g, Ordering::Release);
        let fua = rng.gen_bool(0.05);
        if is_zero_gen(r, g) {
            match g % 3 {
                0 => sh.store.trim(id, off, len, fua),
                k => sh.store.write_zeroes(id, off, len, k == 1, fua),
            }
        } else {
            sh.store.write(id, off, &content(v, r, g), fua)
        }
        .unwrap_or_else(|e| panic!("volume {v} region {r} generation {g}: {e}"));
        p.completed.store(g, Ordering::Release);
        if rng.gen_bool(0.3) {
            let mut b = vec![0u8; len as usize];
            sh.store.read(id, off, &mut b).unwrap();
            assert!(
                b == content(v, r, g),
                "volume {v} region {r}: re-read of generation {g} differs"
            );
        }
    }
}

/// A snapshot or clone kept for the final check.
struct Kept {
    v: usize,
    id: ObjectId,
    gens: Vec<u64>,
}

fn snapshotter(sh: &Shared, seed: u64, kept: &Mutex<Vec<Kept>>) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut live: Vec<Kept> = Vec::new();
    let mut taken = 0;
    while !sh.stop.load(Ordering::Acquire) {
        let v = rng.gen_range(0..VOLUMES);
        let lo = sh.completed(v);
        let clone = rng.gen_bool(0.3);
        let info = if clone {
            sh.store.clone_volume(sh.vols[v], None)
        } else {
            sh.store.snapshot(sh.vols[v], None)
        }
        .unwrap();
        let hi = sh.started(v);
        taken += 1;
        let what = format!("{} {} of volume {v}", info.kind, info.id);
        let gens = sh.check_image(v, info.id, &lo, &hi, &what);
        if clone && rng.gen_bool(0.5) {
            // A clone is writable and independent of its source.
            let (off, len) = region(0);
            let data = vec![0xa5u8; len as usize];
            sh.store.write(info.id, off, &data, false).unwrap();
            let mut b = vec![0u8; len as usize];
            sh.store.read(info.id, off, &mut b).unwrap();
            assert!(b == data, "{what}: clone write");
            sh.store.delete(info.id).unwrap();
            continue;
        }
        live.push(Kept {
            v,
            id: info.id,
            gens,
        });
        // Re-verify an older one, then delete some while writers run.
        let k = &live[rng.gen_range(0..live.len())];
        let what = format!("kept image {} of volume {}", k.id, k.v);
        assert_eq!(sh.check_image(k.v, k.id, &k.gens, &k.gens, &what), k.gens);
        while live.len() > 4 {
            let k = live.remove(rng.gen_range(0..live.len()));
            sh.store.delete(k.id).unwrap();
        }
    }
    kept.lock().unwrap().extend(live);
    taken
}

fn reader(sh: &Shared, seed: u64) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0;
    while !sh.stop.load(Ordering::Acquire) {
        let v = rng.gen_range(0..VOLUMES);
        let r = rng.gen_range(0..REGIONS);
        let lo = sh.completed(v);
        let (off, len) = region(r);
        let mut b = vec![0u8; len as usize];
        sh.store.read(sh.vols[v], off, &mut b).unwrap();
        let hi = sh.started(v);
        let g = generation(v, r, &b)
            .unwrap_or_else(|| panic!("live read of volume {v} region {r} is torn"));
        assert!(
            accepts(r, g, lo[r], hi[r]),
            "live read of volume {v} region {r}: generation {g}, not in {}..={}",
            lo[r],
            hi[r]
        );
        n += 1;
    }
    n
}

fn housekeeper(sh: &Shared, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    while !sh.stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(rng.gen_range(5..40)));
        match rng.gen_range(0..4) {
            0 => {
                sh.store.reclaim(0.5).unwrap();
            }
            1 => sh.store.checkpoint().unwrap(),
            _ => sh.store.flush().unwrap(),
        }
    }
}

/// Every region of every volume holds its last generation; kept images
/// hold what they held.
fn verify_final(sh: &Shared, kept: &[Kept], what: &str) {
    for v in 0..VOLUMES {
        let last = sh.completed(v);
        let what = format!("{what}: volume {v}");
        sh.check_image(v, sh.vols[v], &last, &last, &what);
    }
    for k in kept {
        let what = format!("{what}: kept image {} of volume {}", k.id, k.v);
        sh.check_image(k.v, k.id, &k.gens, &k.gens, &what);
    }
    let r = sh.store.check(false).unwrap();
    assert!(r.is_clean(), "{what}: check: {r:?}");
}

#[test]
fn concurrent_io_snapshots_clones() {
    let seed: u64 = std::env::var("BLOCKD_CONCURRENCY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("concurrency test: seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts()).unwrap();
    let vols = (0..VOLUMES)
        .map(|i| store.create_volume(None, VOL_SIZE, i == 1).unwrap().id)
        .collect();
    let sh = Shared {
        store,
        vols,
        progress: (0..VOLUMES)
            .map(|_| (0..REGIONS).map(|_| Progress::default()).collect())
            .collect(),
        stop: AtomicBool::new(false),
    };
    let kept = Mutex::new(Vec::new());
    let (snaps, reads) = std::thread::scope(|s| {
        for v in 0..VOLUMES {
            for r in 0..REGIONS {
                let sh = &sh;
                s.spawn(move || writer(sh, v, r, seed ^ (v * REGIONS + r) as u64));
            }
        }
        let snap = s.spawn(|| snapshotter(&sh, seed ^ 0x5a5a, &kept));
        let read = s.spawn(|| reader(&sh, seed ^ 0xa5a5));
        let hk = s.spawn(|| housekeeper(&sh, seed ^ 0x1111));
        let start = Instant::now();
        while start.elapsed() < run_for() && !snap.is_finished() && !read.is_finished() {
            std::thread::sleep(Duration::from_millis(20));
        }
        sh.stop.store(true, Ordering::Release);
        hk.join().unwrap();
        (snap.join().unwrap(), read.join().unwrap())
    });
    let gens: u64 = (0..VOLUMES).flat_map(|v| sh.completed(v)).sum();
    eprintln!("concurrency test: {gens} generations written, {snaps} snapshots/clones, {reads} live reads");
    assert!(snaps > 0 && gens > 0);
    let kept = kept.into_inner().unwrap();
    verify_final(&sh, &kept, "after the run");
    let Shared {
        store,
        vols,
        progress,
        ..
    } = sh;
    drop(store);
    let sh = Shared {
        store: Store::open(dir.path(), opts()).unwrap(),
        vols,
        progress,
        stop: AtomicBool::new(true),
    };
    verify_final(&sh, &kept, "after reopen");
}
