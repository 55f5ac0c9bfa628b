//! Sliced checkpoints under racing client I/O, then crashes.
//!
//! A checkpoint writes the dirty map nodes in slices, each in its own short
//! hold of the store lock, and client I/O runs between slices
//! (`StoreOptions::checkpoint_slice_pages`, docs/design.md "Commit
//! protocol"). Here the slices hold 4 nodes, and a test hook
//! (`Store::on_checkpoint_slice`) runs client operations between them, on
//! the checkpointing thread, so that the races are exact and reproducible:
//! overwrites of blocks whose leaves an earlier slice already wrote (they
//! must be dirty again and reach the final hold), writes to leaves not yet
//! written (changed after the snapshot: skipped, written later), new
//! leaves, zeroing and trims, FUA writes, flushes, snapshots (shared nodes
//! then shadowed) and snapshot deletes (nodes freed while in the snapshot).
//!
//! Every file operation is recorded; crash images are cut from the
//! recording, half of them inside checkpoints, each either a power cut (a
//! random, reordered, torn subset of the unsynced writes lands) or a
//! killed process (every write lands). Each image must open; every block
//! flushed before the cut reads back exactly or as a later write of
//! itself; snapshots acknowledged before the cut hold their contents;
//! `check` finds no corruption. The live store, closed and reopened, holds
//! exactly the last write of every block.
//!
//! 300 images by default (`BLOCKD_SLICED_IMAGES` to change);
//! `BLOCKD_SLICED_SEED` picks the first workload seed.

mod powercut_model;

use blockd_engine::{IoOp, ObjectId, Store, StoreOptions};
use powercut_model::{check_block, content, decode, durable_at, read_tree, Disk, BS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Map leaves per volume (510 blocks each): the volume is 256 MiB, depth 2.
const LEAVES: u64 = 128;
const BLOCKS: u64 = LEAVES * 510;
const SLICE: usize = 4;

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        // Checkpoints only when the test asks (a hook may not take the
        // checkpoint lock; the pending-free bound stays far away too).
        dirty_limit_bytes: 64 << 20,
        checkpoint_slice_pages: SLICE,
        // A reclaim a write calls for runs on its own thread; the
        // workload waits for it after each step, so the recording stays
        // reproducible, and a write inside the hook never waits for the
        // checkpoint lock its own thread holds.
        background_reclaim: true,
        ..Default::default()
    }
}

struct Snap {
    name: String,
    vol: u8,
    blocks: BTreeMap<u64, u64>,
    acked: usize,
    deleting: Option<usize>,
    deleted: Option<usize>,
}

/// What the workload did, by recording index.
struct Model {
    ops: Vec<IoOp>,
    rng: StdRng,
    vols: [ObjectId; 2],
    seq: u64,
    /// Per (vol, block): (recording index when the write started, seq; 0 zeroes).
    history: HashMap<(u8, u64), Vec<(usize, u64)>>,
    cur: [BTreeMap<u64, u64>; 2],
    /// Recording indices at which every earlier write was durable.
    acks: Vec<usize>,
    snaps: Vec<Snap>,
    /// (start, end) recording indices of each checkpoint.
    checkpoints: Vec<(usize, usize)>,
    hook_calls: usize,
    hook_ops: usize,
}

impl Model {
    /// Moves the recording so far into `ops`; returns its length.
    fn mark(&mut self, s: &Store) -> usize {
        self.ops.extend(s.record_io(true));
        self.ops.len()
    }

    fn block(&mut self) -> u64 {
        let leaf = self.rng.gen_range(0..LEAVES);
        leaf * 510 + self.rng.gen_range(0..510)
    }

    fn write(&mut self, s: &Store, v: u8, b: u64, n: u64, fua: bool) {
        let at = self.mark(s);
        let n = n.min(BLOCKS - b);
        let mut buf = Vec::with_capacity(n as usize * BS);
        for i in 0..n {
            self.seq += 1;
            buf.extend_from_slice(&content(v, b + i, self.seq));
            self.cur[v as usize].insert(b + i, self.seq);
            self.history
                .entry((v, b + i))
                .or_default()
                .push((at, self.seq));
        }
        s.write(self.vols[v as usize], b * BS as u64, &buf, fua)
            .unwrap();
        if fua {
            let a = self.mark(s);
            self.acks.push(a);
        }
    }

    /// One random client operation (`in_hook`: between two slices).
    fn step(&mut self, s: &Store, in_hook: bool) {
        let v = self.rng.gen_range(0..2u8);
        match self.rng.gen_range(0..100) {
            // Scattered single blocks: a leaf each.
            0..=44 => {
                let b = self.block();
                let fua = self.rng.gen_bool(0.1);
                self.write(s, v, b, 1, fua);
            }
            // Over a block already written (its leaf maybe written by an
            // earlier slice of this checkpoint).
            45..=64 => {
                let known: Vec<u64> = self.cur[v as usize].keys().copied().collect();
                if known.is_empty() {
                    return;
                }
                let b = known[self.rng.gen_range(0..known.len())];
                let n = self.rng.gen_range(1..=8);
                self.write(s, v, b, n, false);
            }
            65..=72 => {
                let at = self.mark(s);
                let b = self.block();
                let n = self.rng.gen_range(1..=24u64).min(BLOCKS - b);
                for i in 0..n {
                    self.cur[v as usize].insert(b + i, 0);
                    self.history.entry((v, b + i)).or_default().push((at, 0));
                }
                let (off, len) = (b * BS as u64, n * BS as u64);
                if self.rng.gen_bool(0.5) {
                    s.trim(self.vols[v as usize], off, len, false).unwrap();
                } else {
                    s.write_zeroes(self.vols[v as usize], off, len, false, false)
                        .unwrap();
                }
            }
            73..=86 => {
                s.flush().unwrap();
                let a = self.mark(s);
                self.acks.push(a);
            }
            87..=93 => {
                let name = format!("s{}-{}", self.seq, self.snaps.len());
                s.snapshot(self.vols[v as usize], Some(&name)).unwrap();
                let acked = self.mark(s);
                self.acks.push(acked);
                self.snaps.push(Snap {
                    name,
                    vol: v,
                    blocks: self.cur[v as usize].clone(),
                    acked,
                    deleting: None,
                    deleted: None,
                });
            }
            _ => {
                let live: Vec<usize> = (0..self.snaps.len())
                    .filter(|&i| self.snaps[i].deleting.is_none())
                    .collect();
                if live.len() < 2 {
                    return;
                }
                let i = live[self.rng.gen_range(0..live.len())];
                let start = self.mark(s);
                let id = s.resolve(&self.snaps[i].name, None).unwrap();
                s.delete(id).unwrap();
                self.snaps[i].deleting = Some(start);
                self.snaps[i].deleted = Some(self.mark(s));
            }
        }
        if in_hook {
            self.hook_ops += 1;
        }
    }
}

struct Run {
    base: BTreeMap<String, Vec<u8>>,
    m: Model,
}

fn workload(seed: u64, rounds: usize) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let vols = {
        let s = Store::open(dir.path(), opts()).unwrap();
        let a = s
            .create_volume(Some("a"), BLOCKS * BS as u64, false)
            .unwrap();
        let b = s
            .create_volume(Some("b"), BLOCKS * BS as u64, true)
            .unwrap();
        s.close().unwrap();
        [a.id, b.id]
    };
    let base = read_tree(dir.path());
    let s = Store::open(dir.path(), opts()).unwrap();
    assert!(s.record_io(true).is_empty());
    let model = Arc::new(Mutex::new(Model {
        ops: Vec::new(),
        rng: StdRng::seed_from_u64(seed),
        vols,
        seq: 0,
        history: HashMap::new(),
        cur: [BTreeMap::new(), BTreeMap::new()],
        acks: Vec::new(),
        snaps: Vec::new(),
        checkpoints: Vec::new(),
        hook_calls: 0,
        hook_ops: 0,
    }));
    for round in 0..rounds {
        // Dirty a few hundred nodes (a few dozen slices).
        let n = model.lock().unwrap().rng.gen_range(40..160);
        for _ in 0..n {
            model.lock().unwrap().step(&s, false);
            s.wait_reclaim();
        }
        // The checkpoint, with client operations between its slices.
        // Only on this thread: a reclaim thread the hook's writes started
        // may checkpoint before the hook is cleared.
        let (m2, s2, me) = (model.clone(), s.clone(), std::thread::current().id());
        s.on_checkpoint_slice(Some(Arc::new(move || {
            if std::thread::current().id() != me {
                return;
            }
            let mut m = m2.lock().unwrap();
            m.hook_calls += 1;
            let k = m.rng.gen_range(0..=3);
            for _ in 0..k {
                m.step(&s2, true);
            }
        })));
        let start = model.lock().unwrap().mark(&s);
        s.checkpoint()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        s.on_checkpoint_slice(None);
        let mut m = model.lock().unwrap();
        let end = m.mark(&s);
        m.checkpoints.push((start, end));
        drop(m);
        s.wait_reclaim();
    }
    model.lock().unwrap().mark(&s);
    // Chunk-table leaves were written in slices too (with client
    // operations between them), not only in the final holds.
    let sliced = s.op_stats().table_leaves_sliced;
    assert!(sliced >= 8, "seed {seed}: {sliced} table leaves sliced");
    // The live store, closed and reopened: exactly the last writes.
    s.record_io(false);
    s.close().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let m = Arc::try_unwrap(model)
        .ok()
        .expect("the hook is gone")
        .into_inner()
        .unwrap();
    let mut buf = vec![0u8; BS];
    for v in 0..2u8 {
        for (&b, &want) in &m.cur[v as usize] {
            s.read(m.vols[v as usize], b * BS as u64, &mut buf).unwrap();
            assert_eq!(
                decode(v, b, &buf),
                Some(want),
                "seed {seed}: vol {v} block {b}"
            );
        }
    }
    let r = s.check(false).unwrap();
    assert!(r.corruption.is_empty(), "seed {seed}: {:?}", r.corruption);
    drop(s);
    Run { base, m }
}

fn verify(run: &Run, cut: usize, dir: &Path, what: &str) {
    let m = &run.m;
    let s = Store::open(dir, opts())
        .unwrap_or_else(|e| panic!("{what} at {cut}: image does not open: {e}"));
    let durable_at = durable_at(&m.acks, cut);
    let mut buf = vec![0u8; BS];
    for (&(v, b), hist) in &m.history {
        s.read(m.vols[v as usize], b * BS as u64, &mut buf)
            .unwrap_or_else(|e| panic!("{what} at {cut}: read: {e}"));
        let got = decode(v, b, &buf).unwrap_or_else(|| {
            panic!("{what} at {cut}: vol {v} block {b} holds foreign or garbage data")
        });
        if let Err(e) = check_block(hist, durable_at, cut, got) {
            panic!("{what} at {cut}: vol {v} block {b} {e}");
        }
    }
    for sn in &m.snaps {
        let must_exist = sn.acked <= cut && sn.deleting.is_none_or(|d| d >= cut);
        let must_not = sn.deleted.is_some_and(|d| d <= cut);
        match s.resolve(&sn.name, None) {
            Ok(id) => {
                assert!(
                    !must_not,
                    "{what} at {cut}: deleted snapshot {} is back",
                    sn.name
                );
                for (&b, &want) in &sn.blocks {
                    s.read(id, b * BS as u64, &mut buf).unwrap();
                    assert_eq!(
                        decode(sn.vol, b, &buf),
                        Some(want),
                        "{what} at {cut}: snapshot {} block {b}",
                        sn.name
                    );
                }
            }
            Err(_) => assert!(
                !must_exist,
                "{what} at {cut}: acknowledged snapshot {} lost",
                sn.name
            ),
        }
    }
    let r = s.check(false).unwrap();
    assert!(
        r.corruption.is_empty(),
        "{what} at {cut}: {:?}",
        r.corruption
    );
}

#[test]
fn sliced_checkpoints_racing_writes_survive_crashes() {
    let images: usize = std::env::var("BLOCKD_SLICED_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let first: u64 = std::env::var("BLOCKD_SLICED_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let seeds = (images / 150).max(1) as u64;
    let per_seed = images.div_ceil(seeds as usize);
    let scratch = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .unwrap();
    let mut verified = 0;
    for seed in first..first + seeds {
        let run = workload(0x511CE + seed, 8);
        let m = &run.m;
        // The hook ran between slices and did client I/O there.
        assert!(
            m.hook_calls >= 8 * 10,
            "seed {seed}: only {} slices",
            m.hook_calls
        );
        assert!(
            m.hook_ops >= m.hook_calls / 2,
            "seed {seed}: {} ops",
            m.hook_ops
        );
        let mut rng = StdRng::seed_from_u64(seed);
        for i in 0..per_seed {
            let cut = match i {
                0 => 0,
                1 => m.ops.len(),
                _ if i % 2 == 0 => {
                    let (a, b) = m.checkpoints[rng.gen_range(0..m.checkpoints.len())];
                    rng.gen_range(a..=b)
                }
                _ => rng.gen_range(0..=m.ops.len()),
            };
            let power = i % 4 < 2;
            let what = if power { "power cut" } else { "kill" };
            let mut disk = Disk::clean(run.base.clone());
            disk.replay(&m.ops[..cut]);
            if power {
                disk.power_cut(&mut rng);
            }
            let dir = scratch.path().join(format!("img-{seed}-{i}"));
            disk.write_to(&dir);
            verify(&run, cut, &dir, &format!("seed {seed} image {i}: {what}"));
            std::fs::remove_dir_all(&dir).unwrap();
            verified += 1;
        }
    }
    eprintln!("sliced checkpoints: {verified} crash images verified");
    assert!(verified >= images);
}

/// Chunk-table leaves written by a checkpoint's slices leave the dirty set
/// for the clean cache; until the final hold, their parents on disk still
/// name the old leaves, and only the parents changed in memory lead to
/// the new ones. Here the cache is far smaller than the leaves sliced, so
/// between slices (the hook) every block read evicts and reloads sliced
/// leaves through those parents: each must come back as written, before
/// and after the checkpoint commits, and after a reopen.
#[test]
fn sliced_leaves_evicted_before_the_final_hold_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let o = || StoreOptions {
        // The smallest cache: 64 clean table pages.
        cache_bytes: 64 << 10,
        ..opts()
    };
    let s = Store::open(dir.path(), o()).unwrap();
    // One extent (one chunk id) per block, ids in order: 30,000 blocks
    // dirty about 118 chunk-table leaves of data ids.
    let n: u64 = 30_000;
    let v = s.create_volume(Some("v"), n * BS as u64, false).unwrap().id;
    s.checkpoint().unwrap();
    for b in 0..n {
        s.write(v, b * BS as u64, &content(0, b, 1), false).unwrap();
    }
    let sliced_before = s.op_stats().table_leaves_sliced;
    let (s2, reads) = (s.clone(), Arc::new(Mutex::new(0u64)));
    let r2 = reads.clone();
    s.on_checkpoint_slice(Some(Arc::new(move || {
        let mut buf = vec![0u8; BS];
        let mut k = r2.lock().unwrap();
        // A spread of blocks each time: their leaves cycle through the
        // cache, sliced ones among them.
        for i in 0..64 {
            let b = (*k * 7919 + i * 467) % n;
            s2.read(v, b * BS as u64, &mut buf).unwrap();
            assert_eq!(decode(0, b, &buf), Some(1), "block {b} between slices");
        }
        *k += 1;
    })));
    s.checkpoint().unwrap();
    s.on_checkpoint_slice(None);
    let sliced = s.op_stats().table_leaves_sliced - sliced_before;
    assert!(sliced >= 100, "{sliced} leaves sliced");
    assert!(
        *reads.lock().unwrap() >= 20,
        "hook ran {} times",
        reads.lock().unwrap()
    );
    let mut buf = vec![0u8; BS];
    for b in 0..n {
        s.read(v, b * BS as u64, &mut buf).unwrap();
        assert_eq!(
            decode(0, b, &buf),
            Some(1),
            "block {b} after the checkpoint"
        );
    }
    let r = s.check(false).unwrap();
    assert!(r.corruption.is_empty(), "{:?}", r.corruption);
    s.close().unwrap();
    let s = Store::open(dir.path(), o()).unwrap();
    for b in 0..n {
        s.read(v, b * BS as u64, &mut buf).unwrap();
        assert_eq!(decode(0, b, &buf), Some(1), "block {b} after reopening");
    }
    let r = s.check(false).unwrap();
    assert!(r.corruption.is_empty(), "{:?}", r.corruption);
}
