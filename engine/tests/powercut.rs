//! Simulated power cuts. A seeded workload (writes, FUA writes, trims,
//! zeroing, flushes, snapshots, snapshot deletes, checkpoints, space
//! reclaim) runs on a store whose every file write, sync, creation and
//! removal is recorded (feature `fault-injection`). From the recording we
//! build crash images: at a cut point, each file holds everything synced
//! before the cut plus a random subset, in random order, of the later
//! writes, each torn at 4 KiB sector granularity. Each image must open, and:
//! every block flushed before the cut reads back exactly or as a later
//! version of itself, never another block's data or garbage; snapshots
//! acknowledged before the cut are intact; `check` finds no corruption.
//!
//! Images per run: 1,000 by default (`BLOCKD_POWERCUT_IMAGES` to change;
//! the soak script runs 100,000 or more). Debugging aids:
//! `BLOCKD_POWERCUT_SEED_BASE=K` starts at workload seed K (soak shards),
//! `BLOCKD_POWERCUT_CUT=N` builds only cut N, `BLOCKD_POWERCUT_KEEP=1`
//! leaves it in /tmp/powercut-image and prints the last recorded ops,
//! `BLOCKD_POWERCUT_CHECK_EACH=1` scrubs the live store after every step.
//! `BLOCKD_POWERCUT_BACKGROUND=1` runs housekeeping's reclaim on its own
//! thread, as `blockd serve` does (the recording then interleaves its I/O
//! with the workload's, so images are no longer reproducible by seed).

mod powercut_model;

use blockd_engine::{IoOp, ObjectId, Store};
use powercut_model::{
    check_block, content, decode, describe_ops, durable_at, opts, read_tree, Disk, BLOCKS, BS,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

struct Snap {
    name: String,
    vol: u8,
    blocks: Vec<u64>,
    /// Recording index once its creation returned (acknowledged).
    acked: usize,
    /// Recording index once its deletion returned, if deleted.
    deleted: Option<usize>,
    /// Recording index when its deletion started: from there on the
    /// (unacknowledged) delete may have happened.
    deleting: Option<usize>,
}

struct Run {
    ops: Vec<IoOp>,
    base: BTreeMap<String, Vec<u8>>,
    /// Per (vol, block): (recording index when the write started, seq).
    history: HashMap<(u8, u64), Vec<(usize, u64)>>,
    /// Recording indices at which every earlier write was durable.
    acks: Vec<usize>,
    snaps: Vec<Snap>,
    vols: [ObjectId; 2],
    /// Segments the light reclaim queued for deletion.
    dropped: usize,
}

fn workload(seed: u64, steps: usize) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let vols = {
        let s = Store::open(dir.path(), opts()).unwrap();
        let a = s
            .create_volume(Some("a"), BLOCKS * BS as u64, false)
            .unwrap()
            .id;
        let b = s
            .create_volume(Some("b"), BLOCKS * BS as u64, true)
            .unwrap()
            .id;
        s.close().unwrap();
        [a, b]
    };
    let base = read_tree(dir.path());
    let s = Store::open(dir.path(), opts()).unwrap();
    let mut ops = s.record_io(true);
    assert!(ops.is_empty());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut history: HashMap<(u8, u64), Vec<(usize, u64)>> = HashMap::new();
    let mut cur: [Vec<u64>; 2] = [vec![0; BLOCKS as usize], vec![0; BLOCKS as usize]];
    let mut acks = Vec::new();
    let mut snaps: Vec<Snap> = Vec::new();
    let mut seq = 0u64;
    let mut dropped = 0;
    let sync = |s: &Store, ops: &mut Vec<IoOp>| {
        ops.extend(s.record_io(true));
        ops.len()
    };
    for step in 0..steps {
        let v = rng.gen_range(0..2u8);
        let start_idx = sync(&s, &mut ops);
        match rng.gen_range(0..100) {
            0..=54 => {
                let b = rng.gen_range(0..BLOCKS);
                let n = rng.gen_range(1..=16u64).min(BLOCKS - b);
                let mut buf = Vec::with_capacity(n as usize * BS);
                for i in 0..n {
                    seq += 1;
                    buf.extend_from_slice(&content(v, b + i, seq));
                    cur[v as usize][(b + i) as usize] = seq;
                    history
                        .entry((v, b + i))
                        .or_default()
                        .push((start_idx, seq));
                }
                let fua = rng.gen_bool(0.1);
                s.write(vols[v as usize], b * BS as u64, &buf, fua).unwrap();
                if fua {
                    acks.push(sync(&s, &mut ops));
                }
            }
            55..=64 => {
                let b = rng.gen_range(0..BLOCKS);
                let n = rng.gen_range(1..=64u64).min(BLOCKS - b);
                for i in 0..n {
                    cur[v as usize][(b + i) as usize] = 0;
                    history.entry((v, b + i)).or_default().push((start_idx, 0));
                }
                if rng.gen_bool(0.5) {
                    s.trim(vols[v as usize], b * BS as u64, n * BS as u64, false)
                        .unwrap();
                } else {
                    s.write_zeroes(vols[v as usize], b * BS as u64, n * BS as u64, false, false)
                        .unwrap();
                }
            }
            65..=79 => {
                s.flush().unwrap();
                acks.push(sync(&s, &mut ops));
            }
            80..=87 => {
                let name = format!("s{step}");
                s.snapshot(vols[v as usize], Some(&name)).unwrap();
                let acked = sync(&s, &mut ops);
                acks.push(acked);
                snaps.push(Snap {
                    name,
                    vol: v,
                    blocks: cur[v as usize].clone(),
                    acked,
                    deleted: None,
                    deleting: None,
                });
            }
            88..=91 => {
                if let Some(i) = (0..snaps.len()).find(|&i| snaps[i].deleted.is_none()) {
                    let id = s.resolve(&snaps[i].name, None).unwrap();
                    s.delete(id).unwrap();
                    snaps[i].deleting = Some(start_idx);
                    snaps[i].deleted = Some(sync(&s, &mut ops));
                }
            }
            92..=95 => s.checkpoint().unwrap(),
            // Full reclaim (moves live data), or housekeeping's light one.
            _ if step % 2 == 0 => {
                s.reclaim(0.6).unwrap();
            }
            // Housekeeping's light reclaim, after rewriting the volume
            // twice has left the first rewrite's segments without live data.
            _ => {
                for _ in 0..2 {
                    for b0 in (0..BLOCKS).step_by(16) {
                        let at = sync(&s, &mut ops);
                        let mut buf = Vec::with_capacity(16 * BS);
                        for b in b0..b0 + 16 {
                            seq += 1;
                            buf.extend_from_slice(&content(v, b, seq));
                            cur[v as usize][b as usize] = seq;
                            history.entry((v, b)).or_default().push((at, seq));
                        }
                        s.write(vols[v as usize], b0 * BS as u64, &buf, false)
                            .unwrap();
                    }
                }
                s.checkpoint().unwrap();
                dropped += s.drop_empty_segments().unwrap();
            }
        }
        if std::env::var_os("BLOCKD_POWERCUT_CHECK_EACH").is_some() {
            let r = s.scrub(None).unwrap();
            assert!(r.errors.is_empty(), "after step {step}: {:?}", r.errors);
        }
    }
    ops.extend(s.record_io(false));
    drop(s);
    Run {
        ops,
        base,
        history,
        acks,
        snaps,
        vols,
        dropped,
    }
}

/// Builds the crash image at `cut` into `dir`.
fn build_image(run: &Run, cut: usize, rng: &mut StdRng, dir: &Path) {
    let mut disk = Disk::clean(run.base.clone());
    disk.replay(&run.ops[..cut]);
    disk.power_cut(rng);
    disk.write_to(dir);
}

fn verify(run: &Run, cut: usize, dir: &Path) {
    let s =
        Store::open(dir, opts()).unwrap_or_else(|e| panic!("cut {cut}: image does not open: {e}"));
    let durable_at = durable_at(&run.acks, cut);
    let mut buf = vec![0u8; BLOCKS as usize * BS];
    for v in 0..2u8 {
        s.read(run.vols[v as usize], 0, &mut buf)
            .unwrap_or_else(|e| panic!("cut {cut}: read: {e}"));
        for b in 0..BLOCKS {
            let got =
                decode(v, b, &buf[b as usize * BS..(b as usize + 1) * BS]).unwrap_or_else(|| {
                    panic!("cut {cut}: vol {v} block {b} holds foreign or garbage data")
                });
            let hist = run
                .history
                .get(&(v, b))
                .map(|h| h.as_slice())
                .unwrap_or(&[]);
            if let Err(e) = check_block(hist, durable_at, cut, got) {
                panic!("cut {cut}: vol {v} block {b} {e}");
            }
        }
    }
    for sn in &run.snaps {
        let must_exist = sn.acked <= cut && sn.deleting.is_none_or(|d| d >= cut);
        let must_not = sn.deleted.is_some_and(|d| d <= cut);
        match s.resolve(&sn.name, None) {
            Ok(id) => {
                assert!(!must_not, "cut {cut}: deleted snapshot {} is back", sn.name);
                s.read(id, 0, &mut buf).unwrap();
                for b in 0..BLOCKS {
                    let got = decode(sn.vol, b, &buf[b as usize * BS..(b as usize + 1) * BS]);
                    assert_eq!(
                        got,
                        Some(sn.blocks[b as usize]),
                        "cut {cut}: snapshot {} block {b}",
                        sn.name
                    );
                }
            }
            Err(_) => assert!(
                !must_exist,
                "cut {cut}: acknowledged snapshot {} lost",
                sn.name
            ),
        }
    }
    let r = s.check(false).unwrap();
    assert!(r.corruption.is_empty(), "cut {cut}: {:?}", r.corruption);
}

#[test]
fn power_cut_images_recover() {
    let images: usize = std::env::var("BLOCKD_POWERCUT_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let seeds = (images / 250).max(1);
    let per_seed = images.div_ceil(seeds);
    let scratch = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .unwrap();
    let mut verified = 0;
    let mut dropped = 0;
    let only_cut: Option<usize> = std::env::var("BLOCKD_POWERCUT_CUT")
        .ok()
        .and_then(|v| v.parse().ok());
    // Shards of a soak start at different seeds.
    let base: u64 = std::env::var("BLOCKD_POWERCUT_SEED_BASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for seed in base..base + seeds as u64 {
        if seeds > 4 {
            eprintln!("power cut: seed {seed}, {verified} images verified so far");
        }
        let run = workload(0xC0FFEE + seed, 400);
        // The workload must reuse retired segment files, so that crash images
        // hold recycled segments with stale records past their tail.
        let reused = run
            .ops
            .iter()
            .filter(|op| matches!(op, IoOp::Rename { from, .. } if from.starts_with("spare/")))
            .count();
        assert!(reused > 0, "seed {seed}: no spare segment was reused");
        dropped += run.dropped;
        let mut rng = StdRng::seed_from_u64(seed);
        for i in 0..per_seed {
            // Cut points spread over the whole recording, ends included.
            let cut = if i == 0 {
                0
            } else if i == 1 {
                run.ops.len()
            } else {
                rng.gen_range(0..=run.ops.len())
            };
            if only_cut.is_some_and(|c| c != cut) {
                continue;
            }
            if only_cut.is_some() {
                eprintln!("seed {seed} image {i} cut {cut} of {}", run.ops.len());
            }
            let dir = scratch.path().join(format!("img-{seed}-{i}"));
            build_image(&run, cut, &mut rng, &dir);
            if std::env::var_os("BLOCKD_POWERCUT_KEEP").is_some() {
                let keep = std::path::PathBuf::from("/tmp/powercut-image");
                let _ = std::fs::remove_dir_all(&keep);
                build_image(&run, cut, &mut StdRng::seed_from_u64(seed), &keep);
                eprint!(
                    "{}",
                    describe_ops(&run.ops, run.ops.len().saturating_sub(40), run.ops.len())
                );
            }
            verify(&run, cut, &dir);
            std::fs::remove_dir_all(&dir).unwrap();
            verified += 1;
        }
    }
    eprintln!("power cut: {verified} crash images verified");
    // Most workloads leave segments for the light reclaim to drop (it needs
    // a segment without live data, which snapshots may prevent).
    if seeds >= 4 && only_cut.is_none() {
        assert!(dropped > 0, "the light reclaim never dropped a segment");
    }
    assert!(verified >= images);
}
