//! The log's write queue (`log_queue.rs`): appends only queue their
//! records under the state lock; the bytes reach the segment files in log
//! order from outside it.
//!
//! * Concurrent writers on several volumes, each flushing now and then,
//!   while another thread checkpoints in a loop: every read matches a
//!   model, before and after reopening.
//! * A read of data whose record is still queued (the log writer held in
//!   a hook) waits for it and returns the new bytes; the write itself
//!   returned without waiting for the device; a flush waits too.
//! * A device write failing while records are queued fail-stops the store:
//!   the flush covering them fails, later writes are refused, and reopening
//!   finds every acknowledged flush.
//! * A checkpoint runs while writes continue and holds the state lock only
//!   briefly.

use blockd_engine::{ErrorKind, FaultPoint, ObjectId, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const EIO: i32 = 5;

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 4 << 20,
        dirty_limit_bytes: 1 << 20,
        checkpoint_log_bytes: 16 << 20,
        ..Default::default()
    }
}

fn fill(seed: u64, len: usize) -> Vec<u8> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..len).map(|_| r.gen()).collect()
}

fn read(s: &Store, v: ObjectId, off: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    s.read(v, off, &mut b).unwrap();
    b
}

/// A held log writer: the hook blocks every batch until released.
struct Gate {
    held: Mutex<bool>,
    cv: std::sync::Condvar,
    entered: AtomicU64,
}

impl Gate {
    fn install(s: &Store) -> Arc<Gate> {
        let g = Arc::new(Gate {
            held: Mutex::new(true),
            cv: std::sync::Condvar::new(),
            entered: AtomicU64::new(0),
        });
        let g2 = g.clone();
        s.on_log_write(Some(Arc::new(move || {
            g2.entered.fetch_add(1, Ordering::SeqCst);
            let mut h = g2.held.lock().unwrap();
            while *h {
                h = g2.cv.wait(h).unwrap();
            }
        })));
        g
    }

    fn release(&self) {
        *self.held.lock().unwrap() = false;
        self.cv.notify_all();
    }
}

#[test]
fn concurrent_writers_flushes_and_checkpoints_match_a_model() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path(), opts()).unwrap();
    const VOLS: usize = 3;
    const VOL: u64 = 8 << 20;
    let vols: Vec<ObjectId> = (0..VOLS)
        .map(|i| {
            s.create_volume(Some(&format!("v{i}")), VOL, false)
                .unwrap()
                .id
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let ckpts = Arc::new(AtomicU64::new(0));
    let housekeeper = {
        let (s, stop, ckpts) = (s.clone(), stop.clone(), ckpts.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                s.checkpoint().unwrap();
                ckpts.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // Two writers per volume, on disjoint halves; each keeps its model.
    let writers: Vec<_> = (0..VOLS * 2)
        .map(|w| {
            let s = s.clone();
            let v = vols[w / 2];
            let base = (w % 2) as u64 * (VOL / 2);
            std::thread::spawn(move || {
                let mut model = vec![0u8; (VOL / 2) as usize];
                let mut r = StdRng::seed_from_u64(w as u64);
                for i in 0..150u64 {
                    let len = *[4096usize, 5000, 65536, 1 << 20]
                        .get(r.gen_range(0..4))
                        .unwrap();
                    let off = r.gen_range(0..(VOL / 2) - len as u64);
                    let data = fill(w as u64 * 1000 + i, len);
                    s.write(v, base + off, &data, i % 37 == 0).unwrap();
                    model[off as usize..off as usize + len].copy_from_slice(&data);
                    if i % 10 == 0 {
                        s.flush().unwrap();
                    }
                    if i % 7 == 0 {
                        // A read right after the write: possibly still queued.
                        let back = read(&s, v, base + off, len);
                        assert!(back == data, "writer {w} write {i}: read-back differs");
                    }
                }
                s.flush().unwrap();
                (v, base, model)
            })
        })
        .collect();
    let models: Vec<(ObjectId, u64, Vec<u8>)> =
        writers.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    housekeeper.join().unwrap();
    assert!(ckpts.load(Ordering::Relaxed) > 0, "checkpoints ran");
    for (v, base, m) in &models {
        assert!(read(&s, *v, *base, m.len()) == *m, "live store differs");
    }
    drop(s);
    let s = Store::open(d.path(), opts()).unwrap();
    for (v, base, m) in &models {
        assert!(read(&s, *v, *base, m.len()) == *m, "reopened store differs");
    }
    assert!(s.check(false).unwrap().is_clean());
}

#[test]
fn a_read_of_queued_data_waits_for_it_and_a_flush_too() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path(), opts()).unwrap();
    let v = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
    let old = fill(1, 1 << 20);
    s.write(v, 0, &old, true).unwrap();
    let gate = Gate::install(&s);
    let new = fill(2, 1 << 20);
    // The write returns with its record queued: the writer is held.
    s.write(v, 0, &new, false).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (s, done) = (s.clone(), done.clone());
        std::thread::spawn(move || {
            let b = read(&s, v, 0, 1 << 20);
            done.store(true, Ordering::SeqCst);
            b
        })
    };
    let flusher = {
        let s = s.clone();
        std::thread::spawn(move || s.flush())
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(gate.entered.load(Ordering::SeqCst) >= 1, "a batch is held");
    assert!(
        !done.load(Ordering::SeqCst),
        "the read waited for the queued record"
    );
    assert!(!flusher.is_finished(), "the flush waited for the record");
    gate.release();
    assert!(
        reader.join().unwrap() == new,
        "the read returned the new data"
    );
    flusher.join().unwrap().unwrap();
    s.on_log_write(None);
    drop(s);
    let s = Store::open(d.path(), opts()).unwrap();
    assert!(read(&s, v, 0, 1 << 20) == new);
}

#[test]
fn a_failed_log_write_with_records_queued_fail_stops() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path(), opts()).unwrap();
    let v = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
    let acked = fill(3, 256 << 10);
    s.write(v, 0, &acked, true).unwrap();
    let gate = Gate::install(&s);
    s.inject_fault(FaultPoint::LogWrite, EIO, 0);
    // Several writes queue behind the held writer.
    for i in 0..4u64 {
        s.write(
            v,
            (1 << 20) + i * (256 << 10),
            &fill(10 + i, 256 << 10),
            false,
        )
        .unwrap();
    }
    let flusher = {
        let s = s.clone();
        std::thread::spawn(move || s.flush())
    };
    std::thread::sleep(Duration::from_millis(100));
    gate.release();
    let e = flusher.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(s.is_failed(), "the store fail-stopped");
    let e = s.write(v, 0, &fill(4, 4096), false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailStopped);
    assert_eq!(s.flush().unwrap_err().kind(), ErrorKind::FailStopped);
    assert!(read(&s, v, 0, 256 << 10) == acked, "flushed data reads");
    s.on_log_write(None);
    drop(s);
    let s = Store::open(d.path(), opts()).unwrap();
    assert!(
        read(&s, v, 0, 256 << 10) == acked,
        "acknowledged flush survives"
    );
    let r = s.check(false).unwrap();
    assert!(r.corruption.is_empty(), "{r:?}");
    s.write(v, 1 << 20, &fill(5, 4096), true).unwrap();
}

#[test]
fn a_failed_fsync_with_records_queued_fail_stops() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path(), opts()).unwrap();
    let v = s.create_volume(Some("v"), 8 << 20, false).unwrap().id;
    let acked = fill(6, 64 << 10);
    s.write(v, 0, &acked, true).unwrap();
    s.inject_fault(FaultPoint::Fsync, EIO, 0);
    for i in 0..8u64 {
        s.write(
            v,
            (1 << 20) + i * (64 << 10),
            &fill(20 + i, 64 << 10),
            false,
        )
        .unwrap();
    }
    assert!(s.flush().is_err());
    assert!(s.is_failed());
    assert_eq!(
        s.write(v, 0, &[1u8; 4096], false).unwrap_err().kind(),
        ErrorKind::FailStopped
    );
    drop(s);
    let s = Store::open(d.path(), opts()).unwrap();
    assert!(read(&s, v, 0, 64 << 10) == acked);
    assert!(s.check(false).unwrap().corruption.is_empty());
}

/// A checkpoint of a large dirty set runs while another thread writes:
/// the writes go on during it, and its lock hold stays short.
#[test]
fn writes_continue_while_a_checkpoint_runs() {
    let d = tempfile::tempdir().unwrap();
    let o = StoreOptions {
        dirty_limit_bytes: 1 << 30,
        checkpoint_log_bytes: 1 << 40,
        ..opts()
    };
    let s = Store::open(d.path(), o.clone()).unwrap();
    let v = s.create_volume(Some("v"), 256 << 20, false).unwrap().id;
    // Scattered 4 KiB writes dirty many map and chunk-table pages.
    let mut r = StdRng::seed_from_u64(7);
    for _ in 0..6000 {
        let blk = r.gen_range(0..(256u64 << 20) / 4096);
        s.write(v, blk * 4096, &[blk as u8 | 1; 4096], false)
            .unwrap();
    }
    s.flush().unwrap();
    let start = Arc::new(Barrier::new(2));
    let writer = {
        let (s, start) = (s.clone(), start.clone());
        std::thread::spawn(move || {
            start.wait();
            let t0 = Instant::now();
            let mut n = 0u64;
            let mut longest = Duration::ZERO;
            while t0.elapsed() < Duration::from_millis(400) {
                let t = Instant::now();
                s.write(v, n % 64 * 4096, &[n as u8; 4096], false).unwrap();
                longest = longest.max(t.elapsed());
                n += 1;
            }
            s.flush().unwrap();
            (n, longest)
        })
    };
    start.wait();
    let t0 = Instant::now();
    s.checkpoint().unwrap();
    let ckpt = t0.elapsed();
    let (n, longest) = writer.join().unwrap();
    let st = s.op_stats();
    eprintln!(
        "checkpoint {ckpt:?}, longest hold {:?}; {n} writes, slowest {longest:?}",
        st.longest_checkpoint_hold
    );
    assert!(n > 0);
    drop(s);
    let s = Store::open(d.path(), o).unwrap();
    let mut r = StdRng::seed_from_u64(7);
    let mut want = std::collections::HashMap::new();
    for _ in 0..6000 {
        let blk = r.gen_range(0..(256u64 << 20) / 4096);
        want.insert(blk, blk as u8 | 1);
    }
    for (blk, b) in want {
        if blk < 64 {
            continue;
        }
        assert_eq!(read(&s, v, blk * 4096, 4096), vec![b; 4096]);
    }
    assert!(s.check(false).unwrap().is_clean());
}
