//! Builds a store for benches/past-cache.sh: a volume that looks written
//! with 4 KiB random writes over its whole size, without writing it all.
//!
//!   bench_fill DATA_DIR NAME SIZE_GIB POOL_MIB [SEED]
//!
//! Creates the store (when absent) and volume NAME of SIZE_GIB GiB, really
//! writes its first POOL_MIB MiB (distinct, incompressible-looking 4 KiB
//! blocks), then calls `Store::bench_fill_random`: every block gets a
//! chunk id of its own, ids scattered as random writes scatter them, each
//! pointing at one of the pool's payloads. Build with
//! `cargo build --release -p blockd-engine --example bench_fill --features bench-util`.

use std::time::Instant;

use blockd_engine::{Store, StoreOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: bench_fill DATA_DIR NAME SIZE_GIB POOL_MIB [SEED]");
        std::process::exit(2);
    }
    let num = |s: &str| -> u64 {
        s.parse().unwrap_or_else(|_| {
            eprintln!("bench_fill: not a number: {s}");
            std::process::exit(2)
        })
    };
    let (dir, name) = (&args[1], &args[2]);
    let size = num(&args[3]) << 30;
    let pool_bytes = (num(&args[4]) << 20).min(size);
    let seed = args.get(5).map(|s| num(s)).unwrap_or(1);
    if let Err(e) = run(dir, name, size, pool_bytes, seed) {
        eprintln!("bench_fill: {e}");
        std::process::exit(1);
    }
}

fn run(dir: &str, name: &str, size: u64, pool_bytes: u64, seed: u64) -> blockd_engine::Result<()> {
    let t = Instant::now();
    let store = Store::open(dir, StoreOptions::default())?;
    let id = store.create_volume(Some(name), size, false)?.id;
    // The pool: 1 MiB writes of distinct blocks (a per-block counter mixed
    // into every 8 bytes, so that no block is zero or like another).
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < pool_bytes {
        let len = (pool_bytes - off).min(buf.len() as u64) as usize;
        for (i, w) in buf[..len].chunks_exact_mut(8).enumerate() {
            let x = (off / 8 + i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed;
            w.copy_from_slice(&x.to_le_bytes());
        }
        store.write(id, off, &buf[..len], false)?;
        off += len as u64;
    }
    store.flush()?;
    eprintln!(
        "bench_fill: pool of {} MiB written in {:.1} s",
        pool_bytes >> 20,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    store.bench_fill_random(id, pool_bytes / 4096, seed)?;
    eprintln!(
        "bench_fill: {} GiB mapped at random in {:.1} s",
        size >> 30,
        t.elapsed().as_secs_f64()
    );
    store.close()
}
