//! Large writes whose log records go partly through `O_DIRECT`
//! (`log_direct.rs`), mixed with small buffered ones: every write reads
//! back at once and after reopening (replay, then a clean close), readers
//! running beside the writer never see a stale or torn block (reads verify
//! each block's crc), and the same workload with direct writes turned off
//! leaves the same volume.

use blockd_engine::{ObjectId, Store, StoreOptions};
use std::sync::atomic::{AtomicBool, Ordering};

const BS: usize = 4096;
const VOL: usize = 24 << 20;

fn opts(direct: bool) -> StoreOptions {
    StoreOptions {
        // Small segments: records straddle rolls and spares get reused.
        segment_size: 4 << 20,
        spare_segments: 4,
        dirty_limit_bytes: 2 << 20,
        direct_log_writes: direct,
        ..Default::default()
    }
}

/// Block `b`'s content for write generation `g`: tagged so that any read
/// can tell whose bytes it got.
fn block(b: usize, g: u64) -> Vec<u8> {
    let mut v = vec![0u8; BS];
    v[..8].copy_from_slice(&(b as u64).to_le_bytes());
    v[8..16].copy_from_slice(&g.to_le_bytes());
    let mut x = (b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ g;
    for c in v[16..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
    v
}

/// True when `v` is some generation of block `b`, or zeroes.
fn valid(b: usize, v: &[u8]) -> bool {
    if v.iter().all(|&x| x == 0) {
        return true;
    }
    let g = u64::from_le_bytes(v[8..16].try_into().unwrap());
    v == block(b, g).as_slice()
}

/// Writes a deterministic mix of large (68 KiB to 3 MiB, at block and
/// sub-block offsets) and small writes, checking each by reading it back,
/// with flushes now and then; returns the expected volume content. With
/// `whole`, only whole blocks are written (each block then always holds
/// one generation).
fn workload(s: &Store, vol: ObjectId, rounds: u64, whole: bool) -> Vec<u8> {
    let mut expect = vec![0u8; VOL];
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for g in 1..=rounds {
        let r = next();
        let (mut off, mut len) = if r % 3 == 0 {
            // small, maybe unaligned
            let off = (next() % (VOL as u64 - 9000)) as usize;
            (off, 1 + (next() % 8192) as usize)
        } else {
            let len = (68 << 10) + (next() % (3 << 20)) as usize;
            let mut off = (next() % (VOL - len) as u64) as usize;
            if r % 5 != 0 {
                off -= off % BS;
            }
            (off, len)
        };
        if whole {
            off -= off % BS;
            len = len.div_ceil(BS) * BS;
            off = off.min(VOL - len);
        }
        // Whole tagged blocks cut to [off, off+len).
        let first = off / BS;
        let last = (off + len - 1) / BS;
        let mut data = Vec::with_capacity((last - first + 1) * BS);
        for b in first..=last {
            data.extend_from_slice(&block(b, g));
        }
        let data = &data[off - first * BS..off - first * BS + len];
        s.write(vol, off as u64, data, r % 7 == 0).unwrap();
        expect[off..off + len].copy_from_slice(data);
        // Read the write back, and a little around it.
        let lo = off.saturating_sub(5000);
        let hi = (off + len + 5000).min(VOL);
        let mut got = vec![0u8; hi - lo];
        s.read(vol, lo as u64, &mut got).unwrap();
        assert!(got == expect[lo..hi], "write {g} ({off}+{len}) reads back");
        if g % 11 == 0 {
            s.flush().unwrap();
        }
    }
    expect
}

fn read_all(s: &Store, vol: ObjectId) -> Vec<u8> {
    let mut got = vec![0u8; VOL];
    s.read(vol, 0, &mut got).unwrap();
    got
}

#[test]
fn large_direct_writes_read_back_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (vol, expect);
    {
        let s = Store::open(dir.path(), opts(true)).unwrap();
        vol = s.create_volume(Some("v"), VOL as u64, false).unwrap().id;
        expect = workload(&s, vol, 120, false);
        s.flush().unwrap();
        // Dropped without close: reopening replays the log.
    }
    let s = Store::open(dir.path(), opts(true)).unwrap();
    assert!(read_all(&s, vol) == expect, "volume after replay");
    s.close().unwrap();
    let s = Store::open(dir.path(), opts(true)).unwrap();
    assert!(read_all(&s, vol) == expect, "volume after a clean close");
    assert!(
        s.check(false).unwrap().is_clean(),
        "check after the workload"
    );

    // The same workload through the page cache alone leaves the same bytes.
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = Store::open(dir2.path(), opts(false)).unwrap();
    let vol2 = s2.create_volume(Some("v"), VOL as u64, false).unwrap().id;
    let expect2 = workload(&s2, vol2, 120, false);
    assert!(expect2 == expect);
    assert!(read_all(&s2, vol2) == expect, "buffered-only store");
}

#[test]
fn readers_beside_large_writes_see_whole_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts(true)).unwrap();
    let vol = s.create_volume(Some("v"), VOL as u64, false).unwrap().id;
    let done = AtomicBool::new(false);
    let reads = std::thread::scope(|sc| {
        let readers: Vec<_> = (0..2u64)
            .map(|k| {
                let (s, done) = (&s, &done);
                sc.spawn(move || {
                    let mut n = 0u64;
                    let mut x = 0x1234_5678 + k;
                    let mut buf = vec![0u8; 256 << 10];
                    while !done.load(Ordering::Relaxed) {
                        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        let b = (x >> 20) as usize % (VOL / BS - buf.len() / BS);
                        s.read(vol, (b * BS) as u64, &mut buf).unwrap();
                        for (i, blk) in buf.chunks(BS).enumerate() {
                            assert!(valid(b + i, blk), "block {} read torn or stale", b + i);
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let expect = workload(&s, vol, 150, true);
        done.store(true, Ordering::Relaxed);
        let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(read_all(&s, vol) == expect);
        reads
    });
    assert!(reads > 0, "the readers ran");
}
