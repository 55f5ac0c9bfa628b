//! Measures the metadata a volume written at random costs: creates a
//! store in DATA_DIR (which must not exist), a volume of SIZE_MIB MiB, and
//! writes every block of it once, 4 KiB at a time, in a shuffled order
//! (SEED), through the engine; closes, reopens and prints the store's and
//! the volume's live metadata per block (`Store::stats`), and the map
//! node records of the log (every copy written, the live ones and older)
//! by level and encoding.
//!
//!   random_meta DATA_DIR SIZE_MIB [SEED]
//!
//! BENCHMARKS.md, "Metadata of random writes". Build with
//! `cargo build -p blockd-engine --example random_meta` (the dev profile
//! is optimized).

use std::time::Instant;

use blockd_engine::decode::{RecordHeader, RecordKind, HEADER_LEN};
use blockd_engine::{Store, StoreOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: random_meta DATA_DIR SIZE_MIB [SEED]");
        std::process::exit(2);
    }
    let num = |s: &str| -> u64 {
        s.parse().unwrap_or_else(|_| {
            eprintln!("random_meta: not a number: {s}");
            std::process::exit(2)
        })
    };
    let size = num(&args[2]) << 20;
    let seed = args.get(3).map(|s| num(s)).unwrap_or(1);
    if let Err(e) = run(&args[1], size, seed) {
        eprintln!("random_meta: {e}");
        std::process::exit(1);
    }
}

fn run(dir: &str, size: u64, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let opts = StoreOptions {
        create: true,
        ..Default::default()
    };
    let s = Store::open(dir, opts.clone())?;
    let v = s.create_volume(Some("v"), size, false)?.id;
    let blocks = size / 4096;
    let mut order: Vec<u64> = (0..blocks).collect();
    let mut x = seed;
    for i in (1..order.len()).rev() {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        order.swap(i, (z % (i as u64 + 1)) as usize);
    }
    let mut data = vec![0u8; 4096];
    for &b in &order {
        // Distinct, incompressible-looking enough: the block number and a
        // pattern.
        for (k, w) in data.chunks_mut(8).enumerate() {
            w.copy_from_slice(&(b.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ k as u64).to_le_bytes());
        }
        s.write(v, b * 4096, &data, false)?;
    }
    s.close()?;
    let written = t.elapsed();
    let s = Store::open(
        dir,
        StoreOptions {
            create: false,
            ..opts
        },
    )?;
    let st = s.stats()?;
    let vol = st
        .objects
        .iter()
        .find(|o| o.id == Some(v))
        .map_or(0, |o| o.metadata_bytes);
    println!(
        "{} MiB, {blocks} blocks written at random in {:.1} s",
        size >> 20,
        written.as_secs_f64()
    );
    println!(
        "store: metadata {} bytes, {:.2} bytes per block ({:.3} % of the data)",
        st.metadata_bytes,
        st.metadata_bytes_per_block,
        st.metadata_bytes_per_block / 40.96
    );
    println!(
        "volume: metadata {vol} bytes, {:.2} bytes per block",
        vol as f64 / blocks as f64
    );
    s.close()?;
    // Node records in the log, by encoding (older copies included).
    let mut counts = std::collections::BTreeMap::new();
    let mut segs: Vec<_> = std::fs::read_dir(std::path::Path::new(dir).join("segments"))?
        .flatten()
        .map(|e| e.path())
        .collect();
    segs.sort();
    for seg in segs {
        let bytes = std::fs::read(seg)?;
        let mut off = 0;
        while let Some(h) = bytes.get(off..).and_then(RecordHeader::decode) {
            let end = off + HEADER_LEN + h.body_len as usize;
            if end > bytes.len() || h.kind == RecordKind::Seal {
                break;
            }
            if h.kind == RecordKind::Node {
                let body = &bytes[off + HEADER_LEN..end];
                let magic = String::from_utf8_lossy(&body[..4]).into_owned();
                let kind = if body[4] == 0 { "leaves" } else { "interior" };
                let e = counts.entry((kind, magic)).or_insert((0u64, 0u64));
                e.0 += 1;
                e.1 += u64::from(h.body_len);
            }
            off = end;
        }
    }
    for ((kind, magic), (n, bytes)) in counts {
        println!(
            "node records, {kind} {magic}: {n}, {bytes} bytes ({} per record)",
            bytes / n
        );
    }
    Ok(())
}
