//! A flush must not return before every record written before it began is
//! on disk, even while a checkpoint (run by housekeeping in another
//! thread) is in the middle of syncing some of the same segments.
//!
//! Writers overwrite a small volume in a store with 1 MiB segments, so
//! segments roll and housekeeping checkpoints often; a flusher thread
//! flushes in a loop, noting the position in the store's I/O recording
//! before and after each flush. Afterwards, for each flush: every segment
//! file written before the flush began must have been synced after its last
//! such write and before the flush returned (or been retired by then).

use blockd_engine::{IoOp, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn flush_waits_for_syncs_in_progress_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(
        dir.path(),
        StoreOptions {
            segment_size: 1 << 20,
            dirty_limit_bytes: 256 << 10,
            ..Default::default()
        },
    )
    .unwrap();
    let v = s.create_volume(None, 4 << 20, false).unwrap().id;
    s.record_io(true);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t);
                let buf = vec![t as u8 + 1; 64 << 10];
                for _ in 0..600 {
                    let off = rng.gen_range(0..64u64) * (64 << 10);
                    s.write(v, off, &buf, false).unwrap();
                }
            })
        })
        .collect();
    let flusher = {
        let s = s.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut marks = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let before = s.io_recorded();
                s.flush().unwrap();
                marks.push((before, s.io_recorded()));
            }
            marks
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    let marks = flusher.join().unwrap();
    let ops = s.record_io(false);
    assert!(marks.len() > 20, "only {} flushes ran", marks.len());
    let checkpoints = ops
        .iter()
        .filter(|op| matches!(op, IoOp::Sync { file } if file == "superblock"))
        .count();
    assert!(checkpoints > 20, "only {checkpoints} checkpoints ran");
    // Per segment file: where it was written, and where it was synced or
    // retired (both in recording order).
    let mut writes: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut covers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            IoOp::Write { file, .. } if file.starts_with("segments/") => {
                writes.entry(file).or_default().push(i)
            }
            IoOp::Sync { file } | IoOp::Remove { file } => covers.entry(file).or_default().push(i),
            IoOp::Rename { from, .. } => covers.entry(from).or_default().push(i),
            _ => {}
        }
    }
    let mut checked = 0;
    for &(before, after) in &marks {
        for (file, ws) in &writes {
            // The last write to the file before the flush began.
            let n = ws.partition_point(|&w| w < before);
            if n == 0 {
                continue;
            }
            let w = ws[n - 1];
            let cs = covers.get(file).map(Vec::as_slice).unwrap_or(&[]);
            let first_cover = cs.get(cs.partition_point(|&c| c <= w));
            assert!(
                first_cover.is_some_and(|&c| c < after),
                "a flush returned (recording position {after}) before {file}, written at \
                 position {w} before the flush began ({before}), was synced"
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
    s.close().unwrap();
}
