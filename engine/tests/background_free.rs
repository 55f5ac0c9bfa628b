//! Deferred freeing (`free.rs`): a delete, revert or trim answers at once
//! and the object leaves the listing at once, while its space comes back in
//! bounded steps; a crash in the middle of freeing resumes where it left
//! off (never freeing twice, never leaking), `check` counts the queued
//! references, and the free thread keeps dirty metadata under its bound.

mod small;

use blockd_engine::{ObjectId, Store, StoreOptions, GATHER_STEP_REFS, SWEEP_STEP_REFS};
use small::{block, opts, BS};
use std::time::Duration;

/// A volume of `n` blocks, all written, with a snapshot of that content
/// and then every block overwritten: the snapshot shares nothing.
fn diverged(s: &Store, n: u64) -> (ObjectId, ObjectId) {
    diverged_in(s, n, |_| (0..n).collect())
}

/// [`diverged`], each pass writing the blocks in the order `order(pass)`
/// gives (pass 0 before the snapshot, 1 after it).
fn diverged_in(s: &Store, n: u64, order: impl Fn(u64) -> Vec<u64>) -> (ObjectId, ObjectId) {
    let v = s.create_volume(Some("v"), n * BS, false).unwrap().id;
    write_blocks(s, v, order(0), 1);
    let snap = s.snapshot(v, Some("snap")).unwrap().id;
    write_blocks(s, v, order(1), 2);
    (v, snap)
}

/// Writes every block on its own (a one-block extent each, so that the
/// map holds one reference per block and freeing takes many steps).
fn write_all(s: &Store, v: ObjectId, n: u64, tag: u64) {
    write_blocks(s, v, 0..n, tag);
}

/// Writes blocks `blocks` one by one, in that order.
fn write_blocks(s: &Store, v: ObjectId, blocks: impl IntoIterator<Item = u64>, tag: u64) {
    for b in blocks {
        s.write(v, b * BS, &block(tag, b), false).unwrap();
    }
}

fn verify(s: &Store, v: ObjectId, n: u64, tag: u64) {
    let mut buf = vec![0u8; BS as usize];
    for b in 0..n {
        s.read(v, b * BS, &mut buf).unwrap();
        assert!(buf == block(tag, b), "block {b}");
    }
}

fn clean(s: &Store, what: &str) {
    let r = s.check(false).unwrap();
    assert!(r.is_clean(), "{what}: {r:?}");
}

fn live(s: &Store) -> u64 {
    s.stats().unwrap().live_bytes
}

#[test]
fn delete_answers_at_once_and_space_returns_in_steps() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    s.hold_frees(true);
    let n = 4000;
    let (v, snap) = diverged(&s, n);
    let before = live(&s);
    s.delete(snap).unwrap();
    // Gone from the listing at once; its space is still held by the queue.
    assert!(s.list().iter().all(|o| o.id != snap));
    assert!(s.get(snap).is_err());
    assert_eq!(s.pending_free_refs(), 1);
    assert_eq!(live(&s), before);
    clean(&s, "queued");
    // Each step takes at most GATHER_STEP_REFS references (gathering) or
    // SWEEP_STEP_REFS (releasing), and the store's live bytes only go
    // down.
    let mut last = live(&s);
    let mut steps = 0;
    loop {
        let k = s.free_step().unwrap();
        if k == 0 {
            break;
        }
        assert!(k <= GATHER_STEP_REFS.max(SWEEP_STEP_REFS));
        steps += 1;
        let now = live(&s);
        assert!(now <= last);
        last = now;
        if steps == 3 {
            clean(&s, "mid-way");
        }
    }
    assert!(
        steps >= (n / u64::from(SWEEP_STEP_REFS)) as usize,
        "{steps}"
    );
    assert_eq!(s.pending_free_refs(), 0);
    // About half the data went (the snapshot's copy of every block).
    assert!(last < before * 6 / 10, "{last} of {before}");
    clean(&s, "freed");
    verify(&s, v, n, 2);
    s.close().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(s.pending_free_refs(), 0);
    clean(&s, "reopened");
    verify(&s, v, n, 2);
}

#[test]
fn background_thread_frees_deletes_reverts_and_trims() {
    let dir = tempfile::tempdir().unwrap();
    let o = || StoreOptions {
        background_free: true,
        background_reclaim: true,
        ..opts()
    };
    let s = Store::open(dir.path(), o()).unwrap();
    let n = 3000;
    let (v, snap) = diverged(&s, n);
    let before = live(&s);
    s.delete(snap).unwrap();
    assert!(s.list().iter().all(|o| o.id != snap));
    assert!(s.wait_free(Duration::from_secs(2)).unwrap());
    assert!(live(&s) < before * 6 / 10);
    clean(&s, "after delete");
    verify(&s, v, n, 2);
    // Revert away from a diverged map: the volume's own map is queued.
    let snap = s.snapshot(v, Some("s2")).unwrap().id;
    write_all(&s, v, n, 3);
    s.revert(v, snap).unwrap();
    verify(&s, v, n, 2);
    assert!(s.wait_free(Duration::from_secs(2)).unwrap());
    clean(&s, "after revert");
    // A trim of the whole volume drops whole subtrees onto the queue.
    s.delete(snap).unwrap();
    s.trim(v, 0, n * BS, false).unwrap();
    let mut buf = vec![1u8; BS as usize];
    s.read(v, 17 * BS, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    assert!(s.wait_free(Duration::from_secs(2)).unwrap());
    clean(&s, "after trim");
    assert_eq!(s.stats().unwrap().allocated_bytes, 0);
    s.close().unwrap();
    let s = Store::open(dir.path(), o()).unwrap();
    clean(&s, "reopened");
}

/// Drops the store without closing it: its files hold exactly what a
/// process killed with SIGKILL at this point leaves (the page cache).
fn crash(s: Store) {
    drop(s);
}

#[test]
fn crash_mid_free_resumes_without_double_free_or_leak() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    s.hold_frees(true);
    let n = 5000;
    let (v, snap) = diverged(&s, n);
    let full = live(&s);
    s.delete(snap).unwrap();
    for _ in 0..3 {
        assert!(s.free_step().unwrap() > 0);
    }
    // A checkpoint in the middle: the queue goes into its blob.
    s.checkpoint().unwrap();
    for _ in 0..4 {
        assert!(s.free_step().unwrap() > 0);
    }
    let alloc = |s: &Store| s.stats().unwrap().allocated_bytes;
    let (queued, at) = (s.pending_free_refs(), alloc(&s));
    crash(s);
    // Replay redoes the four steps after the checkpoint, exactly.
    let s = Store::open(dir.path(), opts()).unwrap();
    s.hold_frees(true);
    assert_eq!((s.pending_free_refs(), alloc(&s)), (queued, at));
    clean(&s, "after the first crash");
    for _ in 0..5 {
        assert!(s.free_step().unwrap() > 0);
    }
    crash(s);
    let s = Store::open(dir.path(), opts()).unwrap();
    clean(&s, "after the second crash");
    assert!(s.pending_free_refs() > 0);
    assert!(s.free_pending().unwrap() > 0);
    assert_eq!(s.pending_free_refs(), 0);
    clean(&s, "freed after two crashes");
    verify(&s, v, n, 2);
    let left = live(&s);
    assert!(left < full * 6 / 10, "{left} of {full}");
    // Exactly the volume's own blocks are left: nothing freed twice (a
    // chunk freed twice would have failed the step), nothing leaked.
    assert_eq!(s.stats().unwrap().allocated_bytes, n * BS);
}

#[test]
fn free_thread_keeps_dirty_metadata_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 2 << 20;
    let o = || StoreOptions {
        segment_size: 16 << 20,
        dirty_limit_bytes: limit,
        background_free: true,
        ..opts()
    };
    let s = Store::open(dir.path(), o()).unwrap();
    let n = 32768; // 128 MiB: about 260 chunk-table leaves per copy
    let (_, snap) = diverged(&s, n);
    s.checkpoint().unwrap();
    s.delete(snap).unwrap();
    let mut peak = 0;
    while s.pending_free_refs() > 0 {
        peak = peak.max(s.stats().unwrap().dirty_bytes);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(s.wait_free(Duration::from_secs(2)).unwrap());
    // The bound, plus what one step can dirty past it: at most one table
    // leaf (4 KiB) per reference a sweep step releases, and a few nodes.
    let step = u64::from(SWEEP_STEP_REFS) * (4 << 10) + (64 << 10);
    assert!(peak <= limit + step, "peak dirty {peak}");
    clean(&s, "freed");
}

/// A checkpoint run by another thread (the cleaner's, retiring segments
/// the frees emptied) is not raced by free steps: each step dirties table
/// leaves all over the table, so its slices would never catch up and its
/// final hold would write them all with the lock held. At most the one
/// step already waiting for the state lock when the checkpoint began
/// slips in.
#[test]
fn free_steps_wait_for_another_threads_checkpoint() {
    // Whether this thread's checkpoints are sliced while frees run is up
    // to the scheduler: three stores at least, more until one was.
    let mut sliced = 0;
    for tried in 1..=10 {
        sliced += checkpoints_racing_frees();
        if sliced >= 3 || (tried >= 3 && sliced > 0) {
            return;
        }
    }
    panic!("no checkpoint of this thread was sliced while frees ran");
}

/// Deletes a diverged snapshot and checkpoints from this thread until the
/// frees are done, checking that no free step ran between two slices of
/// one checkpoint; returns how many checkpoints had slices to write.
fn checkpoints_racing_frees() -> usize {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(
        dir.path(),
        StoreOptions {
            background_free: true,
            checkpoint_slice_pages: 2,
            // The free thread checkpoints after every step: the frees
            // last long enough to race this thread's checkpoints.
            dirty_limit_bytes: 64 << 10,
            ..opts()
        },
    )
    .unwrap();
    let (_, snap) = diverged(&s, 16384);
    s.checkpoint().unwrap();
    let me = std::thread::current().id();
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (hook_seen, hook_store) = (seen.clone(), s.clone());
    s.on_checkpoint_slice(Some(Arc::new(move || {
        if std::thread::current().id() == me {
            let pending = hook_store.pending_free_refs();
            hook_seen.lock().unwrap().push(pending);
            // Room for a racing step to run, were it allowed.
            std::thread::sleep(Duration::from_micros(300));
        }
    })));
    s.delete(snap).unwrap();
    let mut sliced = 0;
    while s.pending_free_refs() > 0 {
        seen.lock().unwrap().clear();
        s.checkpoint().unwrap();
        let v = seen.lock().unwrap().clone();
        let changes = v.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(
            changes <= 1,
            "free steps ran between the slices of another thread's checkpoint: {v:?}"
        );
        sliced += usize::from(v.len() >= 3 && v[0] > 0);
    }
    s.on_checkpoint_slice(None);
    assert!(s.wait_free(Duration::from_secs(2)).unwrap());
    clean(&s, "freed");
    sliced
}

/// While the free thread runs, the cleaner's thread only queues the
/// segments the frees empty, with no checkpoint of its own (each would
/// write the table leaves the frees dirtied, and its pages filled the
/// segments that started the next pass); the free thread's checkpoints
/// retire them, and a full pass runs once the frees are done.
#[test]
fn cleaner_only_queues_empty_segments_while_frees_run() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(
        dir.path(),
        StoreOptions {
            background_free: true,
            background_reclaim: true,
            // The free thread checkpoints after every step: its pages roll
            // segments, which is what starts the cleaner's passes.
            dirty_limit_bytes: 64 << 10,
            ..opts()
        },
    )
    .unwrap();
    let n = 8000;
    let (v, snap) = diverged(&s, n);
    s.checkpoint().unwrap();
    s.wait_reclaim();
    let before = s.stats().unwrap().segments;
    let racing = Arc::new(AtomicU64::new(0));
    let (seen, hook_store) = (racing.clone(), s.clone());
    s.on_checkpoint_slice(Some(Arc::new(move || {
        if std::thread::current().name() == Some("blockd-reclaim")
            && hook_store.pending_free_refs() > 0
        {
            seen.fetch_add(1, Ordering::Relaxed);
        }
    })));
    s.delete(snap).unwrap();
    assert!(s.wait_free(Duration::from_secs(10)).unwrap());
    // The pass after the frees retires what they emptied.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut after = s.stats().unwrap().segments;
    while after * 10 > before * 7 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        s.wait_reclaim();
        after = s.stats().unwrap().segments;
    }
    s.on_checkpoint_slice(None);
    assert_eq!(
        racing.load(Ordering::Relaxed),
        0,
        "the cleaner's thread checkpointed while frees ran"
    );
    assert!(after * 10 <= before * 7, "segments {before} -> {after}");
    verify(&s, v, n, 2);
    clean(&s, "freed and reclaimed");
}

/// Blocks `0..n` in a shuffled order (Fisher-Yates, xorshift from `seed`).
fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

/// A volume of `n` blocks written in a shuffled order, snapshotted, then
/// overwritten in another: consecutive chunk ids lie all over each map,
/// as a random fill's do.
fn diverged_at_random(s: &Store, n: u64) -> (ObjectId, ObjectId) {
    // Seeds 7 and 11.
    diverged_in(s, n, |pass| shuffled(n, 7 + 4 * pass))
}

/// Freeing a randomly written snapshot releases its data references in
/// chunk-table order (gathered, then swept), so the checkpoints taken at
/// the dirty limit meanwhile write each table leaf at most about once (a
/// leaf the sweep empties is not written at all). Released in map order,
/// every few references dirtied another leaf somewhere in the table and
/// each checkpoint wrote them all again: 8,501 leaf writes in 306
/// checkpoints here, against 9 in 9.
#[test]
fn sorted_frees_write_each_table_leaf_about_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(
        dir.path(),
        StoreOptions {
            // 16 leaves: the snapshot's entries fill about eight times
            // that.
            dirty_limit_bytes: 64 << 10,
            segment_size: 4 << 20,
            ..opts()
        },
    )
    .unwrap();
    s.hold_frees(true);
    let n = 32768;
    let (v, snap) = diverged_at_random(&s, n);
    s.checkpoint().unwrap();
    let (leaves0, cps0) = (s.op_stats().table_leaves_written, s.op_stats().checkpoints);
    s.delete(snap).unwrap();
    assert_eq!(s.free_pending().unwrap(), n + n.div_ceil(510) + 1);
    s.checkpoint().unwrap();
    let written = s.op_stats().table_leaves_written - leaves0;
    let cps = s.op_stats().checkpoints - cps0;
    assert!(cps >= 4, "the frees crossed the dirty limit {cps} times");
    assert!(
        written <= n / 128,
        "{written} table leaves written over {cps} checkpoints while {n} references were freed"
    );
    clean(&s, "freed");
    verify(&s, v, n, 2);
    assert_eq!(s.stats().unwrap().allocated_bytes, n * BS);
}

/// Kill -9 at many points of one long free, through gather steps, sweeps
/// and checkpoints taken in either: each reopened store has exactly the
/// references the crashed one had pending, checks clean, and in the end
/// holds exactly the volume's blocks.
#[test]
fn crash_generations_through_gathers_and_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    s.hold_frees(true);
    let n = 6000;
    let (v, snap) = diverged_at_random(&s, n);
    s.delete(snap).unwrap();
    let alloc = |s: &Store| s.stats().unwrap().allocated_bytes;
    let mut at = (s.pending_free_refs(), alloc(&s));
    crash(s);
    let mut x = 0x5eed_u64;
    for generation in 0..12 {
        let s = Store::open(dir.path(), opts()).unwrap();
        s.hold_frees(true);
        // Sweeps start every 700 sorted references: several gather-sweep
        // turns in one free of 6,000.
        s.set_free_sort_refs(700);
        assert_eq!(
            (s.pending_free_refs(), alloc(&s)),
            at,
            "generation {generation}"
        );
        clean(&s, &format!("generation {generation}"));
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for i in 0..(1 + x % 5) {
            if s.free_step().unwrap() == 0 {
                break;
            }
            if (generation + i) % 3 == 0 {
                s.checkpoint().unwrap();
            }
        }
        at = (s.pending_free_refs(), alloc(&s));
        crash(s);
    }
    let s = Store::open(dir.path(), opts()).unwrap();
    assert_eq!((s.pending_free_refs(), alloc(&s)), at);
    s.free_pending().unwrap();
    assert_eq!(s.pending_free_refs(), 0);
    clean(&s, "freed after the crashes");
    verify(&s, v, n, 2);
    assert_eq!(alloc(&s), n * BS);
    s.close().unwrap();
}
