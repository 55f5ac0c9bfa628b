//! Criterion benchmarks of the engine (`cargo bench --bench engine`):
//! snapshot and clone creation on fully mapped volumes of 1 GiB, 64 GiB and
//! 1 TiB logical size; snapshots per second; 4 KiB random writes before and
//! after a snapshot; read latency at snapshot depth 1 and 1000; sequential
//! write and read throughput beside a plain memcpy of the same buffers.
//!
//! Volumes of 64 GiB and 1 TiB are made fully mapped with the engine's
//! `bench-util` helper (every block mapped to one shared chunk through
//! shared nodes, refcounts consistent) because writing 1 TiB here would take
//! hours; the 1 GiB volume is really written. Snapshot and clone never touch
//! per-block state, so the two kinds of volume cost the same to snapshot.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::{ObjectId, Store, StoreOptions};
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const GIB: u64 = 1 << 30;

fn store() -> (tempfile::TempDir, Store) {
    let dir =
        tempfile::tempdir_in(std::env::var("BLOCKD_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .expect("temp dir");
    let s = Store::open(dir.path(), StoreOptions::default()).expect("open");
    (dir, s)
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7) as u8).wrapping_add(seed) | 1)
        .collect()
}

/// A volume of `size` bytes, fully mapped: really written when `write`,
/// otherwise mapped to one shared chunk.
fn mapped_volume(s: &Store, size: u64, write: bool) -> ObjectId {
    let v = s.create_volume(None, size, false).expect("create").id;
    if write {
        let buf = data(1 << 20, 3);
        for off in (0..size).step_by(1 << 20) {
            s.write(v, off, &buf, false).expect("write");
        }
        s.checkpoint().expect("checkpoint");
    } else {
        s.write(v, 0, &data(4096, 1), false).expect("write");
        s.bench_fill_shared(v).expect("fill");
    }
    v
}

/// Times making objects with `make` (from a volume or from a snapshot of
/// it) on volumes of 1 GiB to 1 TiB; what was made is deleted untimed.
fn derive_group(
    c: &mut Criterion,
    group: &str,
    from_snapshot: bool,
    make: fn(&Store, ObjectId) -> ObjectId,
) {
    let mut g = c.benchmark_group(group);
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for (label, size, write) in [
        ("1GiB-written", GIB, true),
        ("1GiB", GIB, false),
        ("64GiB", 64 * GIB, false),
        ("1TiB", 1024 * GIB, false),
    ] {
        let (_d, s) = store();
        let v = mapped_volume(&s, size, write);
        let src = if from_snapshot {
            s.snapshot(v, None).expect("snapshot").id
        } else {
            v
        };
        g.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iters| {
                let mut made = Vec::with_capacity(iters as usize);
                let t = Instant::now();
                for _ in 0..iters {
                    made.push(make(&s, src));
                }
                let el = t.elapsed();
                for id in made {
                    s.delete(id).expect("delete");
                }
                el
            })
        });
    }
    g.finish();
}

fn snapshot_and_clone(c: &mut Criterion) {
    derive_group(c, "snapshot_create", false, |s, v| {
        s.snapshot(v, None).expect("snapshot").id
    });
    derive_group(c, "clone_create", true, |s, snap| {
        s.clone_volume(snap, None).expect("clone").id
    });
}

fn random_writes(c: &mut Criterion) {
    let mut g = c.benchmark_group("randwrite_4k");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    let (_d, s) = store();
    let v = mapped_volume(&s, GIB, true);
    let buf = data(4096, 9);
    let blocks = GIB / 4096;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    g.bench_function("before_snapshot", |b| {
        b.iter(|| {
            s.write(v, rng.gen_range(0..blocks) * 4096, &buf, false)
                .expect("write")
        })
    });
    // After a snapshot: the same workload on the same volume once a
    // snapshot of it exists (writes shadow shared nodes as they first touch
    // them, then run on the volume's own copies).
    let snap = s.snapshot(v, None).expect("snapshot").id;
    g.bench_function("after_snapshot", |b| {
        b.iter(|| {
            s.write(v, rng.gen_range(0..blocks) * 4096, &buf, false)
                .expect("write")
        })
    });
    s.delete(snap).expect("delete");
    // Worst case, reported apart: every write is the first touch of its
    // leaf since a snapshot (a fresh snapshot every 256 writes, spread over
    // distinct leaves), so each one shadows a 510-entry leaf.
    g.bench_function("first_touch_after_snapshot", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let snap = s.snapshot(v, None).expect("snapshot").id;
                let n = (iters - done).min(256);
                let t = Instant::now();
                for k in 0..n {
                    let leaf = (k * 2 + 1) % (blocks / 510);
                    s.write(v, (leaf * 510 + rng.gen_range(0..510)) * 4096, &buf, false)
                        .expect("write");
                }
                total += t.elapsed();
                s.delete(snap).expect("delete");
                s.checkpoint().expect("checkpoint");
                done += n;
            }
            total
        })
    });
    g.finish();
}

fn read_depth(c: &mut Criterion) {
    let mut g = c.benchmark_group("randread_4k_snapshot_depth");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for depth in [1usize, 1000] {
        let (_d, s) = store();
        let size = 256u64 << 20;
        let v = mapped_volume(&s, size, true);
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let buf = data(4096, 5);
        for _ in 0..depth {
            s.snapshot(v, None).expect("snapshot");
            for _ in 0..4 {
                s.write(v, rng.gen_range(0..size / 4096) * 4096, &buf, false)
                    .expect("write");
            }
        }
        s.checkpoint().expect("checkpoint");
        let mut out = vec![0u8; 4096];
        g.bench_function(BenchmarkId::from_parameter(depth), |b| {
            b.iter(|| {
                s.read(v, rng.gen_range(0..size / 4096) * 4096, &mut out)
                    .expect("read")
            })
        });
    }
    g.finish();
}

fn sequential(c: &mut Criterion) {
    let total = 256usize << 20;
    let chunk = 1usize << 20;
    let mut g = c.benchmark_group("sequential_256MiB");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(6))
        .throughput(Throughput::Bytes(total as u64));
    let src = data(total, 11);
    let mut dst = vec![0u8; total];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            for (d, s) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
                d.copy_from_slice(s);
            }
            std::hint::black_box(&dst);
        })
    });
    let (_d, s) = store();
    let v = s
        .create_volume(None, total as u64, false)
        .expect("create")
        .id;
    g.bench_function("engine_write", |b| {
        b.iter(|| {
            for (i, piece) in src.chunks(chunk).enumerate() {
                s.write(v, (i * chunk) as u64, piece, false).expect("write");
            }
            s.flush().expect("flush");
        })
    });
    g.bench_function("engine_read", |b| {
        b.iter(|| {
            for (i, piece) in dst.chunks_mut(chunk).enumerate() {
                s.read(v, (i * chunk) as u64, piece).expect("read");
            }
        })
    });
    g.finish();
    let _ = s.reclaim(0.5);
}

criterion_group!(
    benches,
    snapshot_and_clone,
    random_writes,
    read_depth,
    sequential
);
criterion_main!(benches);
