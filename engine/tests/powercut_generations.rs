//! Multi-generation power cuts: one store lives through a chain of crashes.
//! In half the generations frees are deferred: deletes and whole-subtree
//! trims only queue references, and bounded free steps run at random
//! points, so cuts fall in the middle of freeing and the pending-free queue
//! crosses crashes and generations.
//! Each generation opens the previous generation's crash image with I/O
//! recording on (so recovery's own replay, tail truncation, removal of
//! later segments and post-replay checkpoint are recorded), checks what
//! recovery found, runs a further seeded workload (writes, FUA writes,
//! trims, write-zeroes, flushes, snapshots and deletes of snapshots of any
//! generation, checkpoints, full and light reclaim, unaligned writes whose
//! partial blocks go through read-modify-write) and ends either with
//! the process simply stopping or with `Store::close` (waiting for reclaim,
//! reclaiming when garbage is high, final checkpoint), recorded too. The
//! next image applies a cut of that recording to the previous image's disk:
//!
//! * a power cut keeps what was synced before the cut plus a random,
//!   reordered, 4 KiB-torn half of the later writes;
//! * a kill -9 keeps every write before the cut visible (and sometimes a
//!   prefix of the write at the cut, a short write), but what was not
//!   synced stays volatile (page cache): a later power cut may still lose
//!   it, so a store that treats what it merely read as durable is caught;
//! * a cut may fall inside recovery, inside close's checkpoint or reclaim,
//!   or after a clean close (then the next generation reopens a cleanly
//!   closed store).
//!
//! A third of the chains crash only by kill -9 and close, as a server that
//! is killed, restarted and stopped does. Odd-numbered chains first write
//! the blocks below the tested ones in a scattered order, so the first
//! leaf, which holds tested blocks too, is a packed node in every
//! checkpoint (format version 7). Per chain the dirty limit (small:
//! frequent checkpoints; large: long replays over many segments) and the
//! number of spare segments vary; the volumes have two-level maps.
//!
//! Expectations carry over generations: a block must read as its latest
//! durable version or a version written after it, never an older one nor
//! another block's data; what the open of generation k read becomes
//! durable once that open returned (recovery checkpoints what it replayed)
//! — a cut inside the open leaves the previous expectations in force. A
//! flush, FUA write, snapshot, delete, explicit checkpoint or completed
//! close makes everything before it durable. Snapshots acknowledged stay,
//! with their content; deleted ones stay deleted; `check` finds no
//! corruption. Each generation also verifies a few side images (other cuts
//! of its recording) that are not continued.
//!
//! Images per run: 600 by default (`BLOCKD_POWERCUT_GEN_IMAGES` to change;
//! `scripts/soak-powercut-generations.sh` runs 100,000 in shards).
//! `BLOCKD_POWERCUT_GEN_SEED_BASE=K` starts at chain seed K,
//! `BLOCKD_POWERCUT_GEN_CHAIN=K` runs chain K only,
//! `BLOCKD_POWERCUT_GEN_TRACE=1` prints each generation's cut and mode,
//! `BLOCKD_POWERCUT_GEN_MAX=N` makes chains of 3 to N generations (6),
//! `BLOCKD_POWERCUT_GEN_KEEP=DIR` copies each chain image there before
//! it is opened (the last one is left for inspection on a failure).
//! `BLOCKD_POWERCUT_BACKGROUND=1` runs housekeeping's reclaim on its own
//! thread, as `blockd serve` does (chains are then not reproducible).

mod powercut_model;

use blockd_engine::{IoOp, ObjectId, Store, StoreOptions};
use powercut_model::{content, decode, describe_ops, opts, read_tree, Disk, BLOCKS, BS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::Path;

/// The volumes hold `VOL_BLOCKS` blocks (a two-level map: 510 blocks per
/// leaf node); the tested blocks are `OFF..OFF + BLOCKS`, across a leaf
/// boundary, so interior nodes are shadowed and whole-leaf trims replace
/// a subtree by a special value.
const VOL_BLOCKS: u64 = 1100;
const OFF: u64 = 300;

/// Byte offset of tested block `b`.
fn byte_off(b: u64) -> u64 {
    (OFF + b) * BS as u64
}

/// What one block may read: `floor` (its latest durable version) or one
/// of `later` (written after it, not yet durable).
#[derive(Clone, Debug)]
struct BlockExp {
    floor: u64,
    later: Vec<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Presence {
    Must,
    May,
    MustNot,
}

#[derive(Clone, Debug)]
struct SnapExp {
    name: String,
    vol: u8,
    /// The seq each block held when the snapshot was taken.
    blocks: Vec<u64>,
    presence: Presence,
}

/// What an image must satisfy.
#[derive(Clone)]
struct Expect {
    blocks: [Vec<BlockExp>; 2],
    snaps: Vec<SnapExp>,
}

/// What the open of an image found: each block's seq, and which of the
/// expected snapshots exist.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Observed {
    blocks: [Vec<u64>; 2],
    snaps: Vec<bool>,
}

/// A snapshot taken during a generation.
struct NewSnap {
    name: String,
    vol: u8,
    blocks: Vec<u64>,
    /// Recording index when the call started / returned.
    started: usize,
    acked: usize,
}

/// One generation's recording and what its workload did.
struct Gen {
    ops: Vec<IoOp>,
    /// Operations recovery (the open) made: a cut below this lands in it.
    recovered: usize,
    /// Per (vol, block): (recording index when the write started, seq).
    history: HashMap<(u8, u64), Vec<(usize, u64)>>,
    /// Recording indices at which every earlier write was durable.
    acks: Vec<usize>,
    snaps: Vec<NewSnap>,
    /// (snapshot name, index the delete started, index it returned).
    deletes: Vec<(String, usize, usize)>,
    /// Index at which `close` started, if the generation closed.
    close_at: Option<usize>,
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The expectations for a cut at `cut` of `gen`'s recording, of which the
/// first `seen` operations may show (see [`crash`]), given those the
/// generation's starting image was verified against (`prev`) and what its
/// open found (`obs`).
fn expect_at(prev: &Expect, obs: &Observed, gen: &Gen, cut: usize, seen: usize) -> Expect {
    if cut < gen.recovered {
        // Recovery was cut short: what it read is not known durable.
        return prev.clone();
    }
    let durable_at = gen
        .acks
        .iter()
        .copied()
        .filter(|&a| a <= cut)
        .max()
        .unwrap_or(0);
    let mut blocks: [Vec<BlockExp>; 2] = [Vec::new(), Vec::new()];
    for v in 0..2u8 {
        for b in 0..BLOCKS {
            let hist = gen
                .history
                .get(&(v, b))
                .map(|h| h.as_slice())
                .unwrap_or(&[]);
            let floor = hist
                .iter()
                .filter(|h| h.0 < durable_at)
                .map(|h| h.1)
                .next_back()
                .unwrap_or(obs.blocks[v as usize][b as usize]);
            let later = hist
                .iter()
                .filter(|h| h.0 >= durable_at && h.0 < seen)
                .map(|h| h.1)
                .collect();
            blocks[v as usize].push(BlockExp { floor, later });
        }
    }
    let mut snaps: Vec<SnapExp> = prev
        .snaps
        .iter()
        .zip(&obs.snaps)
        .map(|(s, &found)| SnapExp {
            presence: if found {
                Presence::Must
            } else {
                Presence::MustNot
            },
            ..s.clone()
        })
        .collect();
    for s in &gen.snaps {
        let presence = if s.acked <= cut {
            Presence::Must
        } else if s.started < seen {
            Presence::May
        } else {
            Presence::MustNot
        };
        snaps.push(SnapExp {
            name: s.name.clone(),
            vol: s.vol,
            blocks: s.blocks.clone(),
            presence,
        });
    }
    for (name, started, done) in &gen.deletes {
        let s = snaps.iter_mut().find(|s| &s.name == name).unwrap();
        if *done <= cut {
            s.presence = Presence::MustNot;
        } else if *started < seen && s.presence == Presence::Must {
            s.presence = Presence::May;
        }
    }
    Expect { blocks, snaps }
}

/// Checks an opened image against `exp`; returns what it holds.
fn verify(s: &Store, vols: &[ObjectId; 2], exp: &Expect, check: bool, ctx: &str) -> Observed {
    let mut buf = vec![0u8; BLOCKS as usize * BS];
    let mut blocks: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for v in 0..2u8 {
        s.read(vols[v as usize], byte_off(0), &mut buf)
            .unwrap_or_else(|e| panic!("{ctx}: read: {e}"));
        for b in 0..BLOCKS {
            let got =
                decode(v, b, &buf[b as usize * BS..(b as usize + 1) * BS]).unwrap_or_else(|| {
                    panic!("{ctx}: vol {v} block {b} holds foreign or garbage data")
                });
            let e = &exp.blocks[v as usize][b as usize];
            assert!(
                got == e.floor || e.later.contains(&got),
                "{ctx}: vol {v} block {b} reads seq {got}; durable {}, later {:?}",
                e.floor,
                e.later
            );
            blocks[v as usize].push(got);
        }
    }
    let mut snaps = Vec::new();
    for sn in &exp.snaps {
        match s.resolve(&sn.name, None) {
            Ok(id) => {
                assert!(
                    sn.presence != Presence::MustNot,
                    "{ctx}: deleted (or never acknowledged) snapshot {} is there",
                    sn.name
                );
                s.read(id, byte_off(0), &mut buf)
                    .unwrap_or_else(|e| panic!("{ctx}: snapshot {}: {e}", sn.name));
                for b in 0..BLOCKS {
                    let got = decode(sn.vol, b, &buf[b as usize * BS..(b as usize + 1) * BS]);
                    assert_eq!(
                        got,
                        Some(sn.blocks[b as usize]),
                        "{ctx}: snapshot {} block {b}",
                        sn.name
                    );
                }
                snaps.push(true);
            }
            Err(_) => {
                assert!(
                    sn.presence != Presence::Must,
                    "{ctx}: acknowledged snapshot {} lost",
                    sn.name
                );
                snaps.push(false);
            }
        }
    }
    if check {
        let r = s.check(false).unwrap();
        assert!(r.corruption.is_empty(), "{ctx}: {:?}", r.corruption);
    }
    Observed { blocks, snaps }
}

/// Runs one generation's workload on `s` (opened with recording on), from
/// the state `obs` that its open found.
#[allow(clippy::too_many_arguments)]
fn workload(
    s: Store,
    vols: &[ObjectId; 2],
    exp: &Expect,
    obs: &Observed,
    gen_no: usize,
    steps: usize,
    close: bool,
    seq: &mut u64,
    rng: &mut StdRng,
) -> Gen {
    let mut ops = s.record_io(true);
    let recovered = ops.len();
    // Half the generations free in the background's way: deletes and
    // trims only queue their references, and bounded free steps run at
    // random points in between (and in later generations), so cuts fall
    // in the middle of freeing and the queue crosses crashes.
    let deferred = rng.gen_bool(0.5);
    s.hold_frees(deferred);
    // Sweeps of the sorted data references start early in half of those
    // (else once the queue is empty), so cuts also fall between gathers
    // and sweeps of one free.
    s.set_free_sort_refs(if rng.gen_bool(0.5) {
        rng.gen_range(1..=200)
    } else {
        0
    });
    let mut history: HashMap<(u8, u64), Vec<(usize, u64)>> = HashMap::new();
    let mut cur = obs.blocks.clone();
    let mut acks = Vec::new();
    let mut snaps: Vec<NewSnap> = Vec::new();
    let mut deletes = Vec::new();
    // Snapshots the live store holds, by name.
    let mut live: Vec<String> = exp
        .snaps
        .iter()
        .zip(&obs.snaps)
        .filter(|(_, &found)| found)
        .map(|(s, _)| s.name.clone())
        .collect();
    let sync = |s: &Store, ops: &mut Vec<IoOp>| {
        ops.extend(s.record_io(true));
        ops.len()
    };
    for step in 0..steps {
        let v = rng.gen_range(0..2u8);
        let vol = vols[v as usize];
        let start = sync(&s, &mut ops);
        match rng.gen_range(0..100) {
            // Unaligned: the partial blocks at both ends get their current
            // bytes again (read-modify-write makes new chunks of the same
            // version), the whole blocks between new versions.
            0..=6 if BLOCKS > 2 => {
                let b = rng.gen_range(0..BLOCKS - 2);
                let n = rng.gen_range(1..=8u64).min(BLOCKS - b - 2);
                let head = rng.gen_range(1..BS);
                let tail = rng.gen_range(1..BS);
                let now = |blk: u64, cur: &[Vec<u64>; 2]| match cur[v as usize][blk as usize] {
                    0 => vec![0u8; BS],
                    q => content(v, blk, q),
                };
                let mut buf = now(b, &cur)[head..].to_vec();
                history
                    .entry((v, b))
                    .or_default()
                    .push((start, cur[v as usize][b as usize]));
                for i in 1..=n {
                    *seq += 1;
                    buf.extend_from_slice(&content(v, b + i, *seq));
                    cur[v as usize][(b + i) as usize] = *seq;
                    history.entry((v, b + i)).or_default().push((start, *seq));
                }
                let last = b + n + 1;
                buf.extend_from_slice(&now(last, &cur)[..tail]);
                history
                    .entry((v, last))
                    .or_default()
                    .push((start, cur[v as usize][last as usize]));
                let fua = rng.gen_bool(0.1);
                s.write(vol, byte_off(b) + head as u64, &buf, fua).unwrap();
                if fua {
                    acks.push(sync(&s, &mut ops));
                }
            }
            0..=54 => {
                let b = rng.gen_range(0..BLOCKS);
                let n = rng.gen_range(1..=16u64).min(BLOCKS - b);
                let mut buf = Vec::with_capacity(n as usize * BS);
                for i in 0..n {
                    *seq += 1;
                    buf.extend_from_slice(&content(v, b + i, *seq));
                    cur[v as usize][(b + i) as usize] = *seq;
                    history.entry((v, b + i)).or_default().push((start, *seq));
                }
                let fua = rng.gen_bool(0.1);
                // Handed over whole: 16 blocks (64 KiB) at a block
                // boundary make an aligned extent Write record (kind 12).
                s.write_owned(vol, byte_off(b), owned(&s, &buf), fua)
                    .unwrap();
                if fua {
                    acks.push(sync(&s, &mut ops));
                }
            }
            55..=64 => {
                // Now and then the whole volume, which replaces whole
                // leaves (and the tested range) by one special value.
                let whole = rng.gen_bool(0.1);
                let (b, n) = if whole {
                    (0, BLOCKS)
                } else {
                    let b = rng.gen_range(0..BLOCKS);
                    (b, rng.gen_range(1..=64u64).min(BLOCKS - b))
                };
                for i in 0..n {
                    cur[v as usize][(b + i) as usize] = 0;
                    history.entry((v, b + i)).or_default().push((start, 0));
                }
                let (off, len) = if whole {
                    (0, VOL_BLOCKS * BS as u64)
                } else {
                    (byte_off(b), n * BS as u64)
                };
                if rng.gen_bool(0.5) {
                    s.trim(vol, off, len, false).unwrap();
                } else {
                    s.write_zeroes(vol, off, len, false, false).unwrap();
                }
            }
            65..=77 => {
                s.flush().unwrap();
                acks.push(sync(&s, &mut ops));
            }
            78..=83 => {
                let name = format!("g{gen_no}s{step}");
                s.snapshot(vol, Some(&name)).unwrap();
                let acked = sync(&s, &mut ops);
                acks.push(acked);
                snaps.push(NewSnap {
                    name: name.clone(),
                    vol: v,
                    blocks: cur[v as usize].clone(),
                    started: start,
                    acked,
                });
                live.push(name);
            }
            84..=89 => {
                if !live.is_empty() {
                    let name = live.remove(rng.gen_range(0..live.len()));
                    let id = s.resolve(&name, None).unwrap();
                    s.delete(id).unwrap();
                    let done = sync(&s, &mut ops);
                    acks.push(done);
                    deletes.push((name, start, done));
                }
            }
            90..=94 => {
                s.checkpoint().unwrap();
                acks.push(sync(&s, &mut ops));
            }
            // Full reclaim (moves live data), or housekeeping's light one.
            _ if step % 2 == 0 => {
                s.reclaim(0.6).unwrap();
                acks.push(sync(&s, &mut ops));
            }
            // Housekeeping's light reclaim, after rewriting the volume
            // twice has left the first rewrite's segments without live data.
            _ => {
                rewrite(&s, vol, v, 2, seq, &mut cur, &mut history, &mut ops);
                s.checkpoint().unwrap();
                s.drop_empty_segments().unwrap();
                acks.push(sync(&s, &mut ops));
            }
        }
        if deferred && rng.gen_bool(0.3) {
            for _ in 0..rng.gen_range(1..=3) {
                s.free_step().unwrap();
            }
        }
    }
    let mut close_at = None;
    if close {
        // Often garbage first, so that close reclaims before its checkpoint.
        if rng.gen_bool(0.5) {
            let v = rng.gen_range(0..2u8);
            rewrite(
                &s,
                vols[v as usize],
                v,
                3,
                seq,
                &mut cur,
                &mut history,
                &mut ops,
            );
        }
        close_at = Some(sync(&s, &mut ops));
        let keep = s.clone();
        s.close().unwrap();
        ops.extend(keep.record_io(false));
        acks.push(ops.len());
    } else {
        // A background reclaim pass still running belongs to the
        // recording too (the cut decides how much of it happened).
        s.wait_reclaim();
        ops.extend(s.record_io(false));
    }
    Gen {
        ops,
        recovered,
        history,
        acks,
        snaps,
        deletes,
        close_at,
    }
}

/// Rewrites every tested block of volume `v` `times` times, 16 blocks a
/// write (no flush): the earlier rewrites' segments become garbage.
#[allow(clippy::too_many_arguments)]
fn rewrite(
    s: &Store,
    vol: ObjectId,
    v: u8,
    times: usize,
    seq: &mut u64,
    cur: &mut [Vec<u64>; 2],
    history: &mut HashMap<(u8, u64), Vec<(usize, u64)>>,
    ops: &mut Vec<IoOp>,
) {
    for _ in 0..times {
        for b0 in (0..BLOCKS).step_by(16) {
            ops.extend(s.record_io(true));
            let at = ops.len();
            let mut buf = Vec::with_capacity(16 * BS);
            for b in b0..b0 + 16 {
                *seq += 1;
                buf.extend_from_slice(&content(v, b, *seq));
                cur[v as usize][b as usize] = *seq;
                history.entry((v, b)).or_default().push((at, *seq));
            }
            s.write_owned(vol, byte_off(b0), owned(s, &buf), false)
                .unwrap();
        }
    }
}

/// `data` in an aligned buffer for `Store::write_owned`.
fn owned(s: &Store, data: &[u8]) -> blockd_engine::AlignedBuf {
    let mut b = s.aligned_buf(data.len());
    b.copy_from_slice(data);
    b
}

/// A cut point in `gen`'s recording: often inside recovery or close.
fn pick_cut(gen: &Gen, rng: &mut StdRng) -> usize {
    let len = gen.ops.len();
    let r = rng.gen_range(0..100);
    if let Some(c) = gen.close_at {
        match r {
            0..=39 => return len,
            40..=64 => return rng.gen_range(c..=len),
            _ => {}
        }
    }
    if gen.recovered > 0 && r >= 80 {
        return rng.gen_range(0..gen.recovered);
    }
    rng.gen_range(0..=len)
}

/// How an image is made from a cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crash {
    /// Power cut: unsynced writes partly lost, reordered, torn.
    Power,
    /// kill -9: every write visible, the unsynced ones still volatile.
    Kill,
}

/// The disk after `gen`'s recording up to `cut` and a crash of `kind`,
/// and how many of the recording's operations may show in it: `cut`, or
/// `cut + 1` when a kill left a prefix of operation `cut` (a short write).
/// Such a prefix is not always torn: where the bytes it did not write
/// already held the same values (zeroes of a recycled segment under a
/// record ending in zeroes, say), the file holds the whole record, which
/// recovery rightly applies, so the step that issued it may show.
fn crash(disk: &Disk, gen: &Gen, cut: usize, kind: Crash, rng: &mut StdRng) -> (Disk, usize) {
    let mut d = disk.clone();
    d.replay(&gen.ops[..cut]);
    let mut seen = cut;
    match (kind, gen.ops.get(cut)) {
        (Crash::Power, _) => d.power_cut(rng),
        // A kill during a write may leave a prefix of it (a short write).
        (Crash::Kill, Some(IoOp::Write { file, offset, data }))
            if data.len() > 1 && rng.gen_bool(0.3) =>
        {
            let n = rng.gen_range(1..data.len());
            d.pending.push((file.clone(), *offset, data[..n].to_vec()));
            seen = cut + 1;
        }
        (Crash::Kill, _) => {}
    }
    (d, seen)
}

/// Opens `dir` (unrecorded) and verifies it fully, `check` included.
fn verify_image(
    dir: &Path,
    o: &StoreOptions,
    vols: &[ObjectId; 2],
    exp: &Expect,
    ctx: &str,
) -> Observed {
    let s =
        Store::open(dir, o.clone()).unwrap_or_else(|e| panic!("{ctx}: image does not open: {e}"));
    verify(&s, vols, exp, true, ctx)
}

/// Runs one chain of generations; returns how many images it verified.
/// True when some file of the image holds a packed map node record (its
/// magic; the chains' data blocks never hold those bytes).
fn holds_packed_node(files: &std::collections::BTreeMap<String, Vec<u8>>) -> bool {
    files.values().any(|b| b.windows(4).any(|w| w == b"NODP"))
}

/// Runs chain `seed`; with `packed`, the blocks below the tested ones are
/// first written one at a time in a scattered order, so the first leaf
/// (which holds tested blocks too) names unrelated ids and every
/// checkpoint writes it packed (format version 7).
fn chain(seed: u64, scratch: &Path, side: usize, trace: bool, packed: bool) -> usize {
    let mut rng = StdRng::seed_from_u64(0x6E4E_0000 + seed);
    let gens = rng.gen_range(3..=env("BLOCKD_POWERCUT_GEN_MAX").unwrap_or(6usize).max(3));
    // A third of the chains crash only by kill -9 or close (as a server
    // killed and restarted is), the others by power cuts too; options
    // vary: a large dirty limit makes checkpoints rare (long replays over
    // many segments), few spares make retired segments go.
    let kill_only = rng.gen_bool(1.0 / 3.0);
    let o = StoreOptions {
        dirty_limit_bytes: if rng.gen_bool(0.5) {
            256 << 10
        } else {
            8 << 20
        },
        spare_segments: [0, 1, 4, 16][rng.gen_range(0..4)],
        ..opts()
    };
    let root = scratch.join(format!("chain-{seed}"));
    let base_dir = root.join("base");
    let vols = {
        let s = Store::open(&base_dir, o.clone()).unwrap();
        let a = s
            .create_volume(Some("a"), VOL_BLOCKS * BS as u64, false)
            .unwrap()
            .id;
        let b = s
            .create_volume(Some("b"), VOL_BLOCKS * BS as u64, true)
            .unwrap()
            .id;
        if packed {
            for v in [a, b] {
                for i in 0..OFF {
                    let blk = (i * 7) % OFF;
                    let fill = [(blk % 251) as u8 + 1; BS];
                    s.write(v, blk * BS as u64, &fill, false).unwrap();
                }
            }
        }
        s.close().unwrap();
        [a, b]
    };
    let mut disk = Disk::clean(read_tree(&base_dir));
    if packed {
        assert!(
            holds_packed_node(&read_tree(&base_dir)),
            "chain {seed}: the scattered blocks left no packed leaf"
        );
    }
    let zero = BlockExp {
        floor: 0,
        later: Vec::new(),
    };
    let mut exp = Expect {
        blocks: [
            vec![zero.clone(); BLOCKS as usize],
            vec![zero; BLOCKS as usize],
        ],
        snaps: Vec::new(),
    };
    let mut seq = 0u64;
    let mut verified = 0;
    let keep: Option<String> = env("BLOCKD_POWERCUT_GEN_KEEP");
    for g in 0..=gens {
        let ctx = format!("chain {seed} generation {g}");
        let dir = root.join(format!("gen-{g}"));
        disk.write_to(&dir);
        if let Some(k) = &keep {
            let k = Path::new(k);
            let _ = std::fs::remove_dir_all(k);
            disk.write_to(k);
        }
        // The full check, on a copy: `check` checkpoints, which would
        // change what the chain goes on with.
        let obs = if g == 0 {
            None
        } else {
            let copy = root.join(format!("gen-{g}-check"));
            disk.write_to(&copy);
            let o = verify_image(&copy, &o, &vols, &exp, &ctx);
            std::fs::remove_dir_all(&copy).unwrap();
            verified += 1;
            Some(o)
        };
        let s = Store::open_recording(&dir, o.clone())
            .unwrap_or_else(|e| panic!("{ctx}: image does not open: {e}"));
        let obs_now = verify(&s, &vols, &exp, false, &ctx);
        if let Some(first) = obs {
            assert_eq!(first, obs_now, "{ctx}: two opens of one image differ");
        }
        if g == gens {
            drop(s);
            break;
        }
        let steps = rng.gen_range(40..=120);
        let close = rng.gen_bool(0.4);
        let gen = workload(
            s, &vols, &exp, &obs_now, g, steps, close, &mut seq, &mut rng,
        );
        std::fs::remove_dir_all(&dir).unwrap();
        if trace {
            let mut files: Vec<&str> = disk.pending.iter().map(|p| p.0.as_str()).collect();
            files.dedup();
            eprintln!(
                "chain {seed} generation {g}: volatile writes at its start in {files:?}; recovery:"
            );
            eprint!("{}", describe_ops(&gen.ops, 0, gen.recovered));
        }
        for i in 0..side {
            let cut = pick_cut(&gen, &mut rng);
            let kind = if rng.gen_bool(0.75) {
                Crash::Power
            } else {
                Crash::Kill
            };
            let side_ctx = format!("{ctx} side image {i} ({kind:?} at op {cut})");
            let (d, seen) = crash(&disk, &gen, cut, kind, &mut rng);
            let sdir = root.join(format!("side-{g}-{i}"));
            d.write_to(&sdir);
            verify_image(
                &sdir,
                &o,
                &vols,
                &expect_at(&exp, &obs_now, &gen, cut, seen),
                &side_ctx,
            );
            std::fs::remove_dir_all(&sdir).unwrap();
            verified += 1;
        }
        let cut = pick_cut(&gen, &mut rng);
        let kind =
            if kill_only || cut == gen.ops.len() && gen.close_at.is_some() || rng.gen_bool(0.5) {
                Crash::Kill
            } else {
                Crash::Power
            };
        if trace {
            eprintln!(
                "chain {seed} generation {g} (kill only {kill_only}, dirty limit {}, spares {}): {steps} steps, {} ops (recovery {}, close at {:?}), {kind:?} at op {cut}",
                o.dirty_limit_bytes,
                o.spare_segments,
                gen.ops.len(),
                gen.recovered,
                gen.close_at,
            );
            eprint!(
                "{}",
                describe_ops(
                    &gen.ops,
                    cut.saturating_sub(8),
                    (cut + 2).min(gen.ops.len())
                )
            );
        }
        let seen;
        (disk, seen) = crash(&disk, &gen, cut, kind, &mut rng);
        exp = expect_at(&exp, &obs_now, &gen, cut, seen);
    }
    std::fs::remove_dir_all(&root).unwrap();
    verified
}

#[test]
fn power_cut_generations_recover() {
    let images: usize = env("BLOCKD_POWERCUT_GEN_IMAGES").unwrap_or(600);
    let base: u64 = env("BLOCKD_POWERCUT_GEN_SEED_BASE").unwrap_or(0);
    let only: Option<u64> = env("BLOCKD_POWERCUT_GEN_CHAIN");
    let trace = std::env::var_os("BLOCKD_POWERCUT_GEN_TRACE").is_some();
    let side = 2;
    let scratch = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .unwrap();
    let t0 = std::time::Instant::now();
    let mut verified = 0;
    let mut chains = 0;
    let mut seed = only.unwrap_or(base);
    while verified < images {
        // Odd chains run over a packed first leaf (see `chain`).
        verified += chain(seed, scratch.path(), side, trace, seed % 2 == 1);
        chains += 1;
        seed += 1;
        if only.is_some() {
            break;
        }
        if chains % 20 == 0 {
            eprintln!(
                "power cut generations: chain {}, {verified} images verified so far, {:.0} s",
                seed - 1,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "power cut generations: {verified} images verified in {chains} chains (seeds {}..{seed}), {:.0} s",
        only.unwrap_or(base),
        t0.elapsed().as_secs_f64()
    );
}

/// Chains that long runs failed on, rerun in every test run. 2300591
/// (format version 4): generation 3 is killed during the append of a Zero
/// record at the start of a recycled segment file, leaving a prefix of it;
/// the bytes it did not write were zeroes over zeroes, so the file held
/// the whole record and recovery applied it. The test expected the trim
/// absent (it counted only operations before the cut) and reported a lost
/// write; now a kill's short write lets its step show (`crash`).
const REGRESSION_CHAINS: &[u64] = &[2_300_591];

#[test]
fn power_cut_generations_regressions() {
    let scratch = tempfile::tempdir().unwrap();
    for &seed in REGRESSION_CHAINS {
        assert!(chain(seed, scratch.path(), 2, false, false) > 0);
    }
}

/// The reduced form of chain 3's failure: a process killed after the log
/// rolled past the replay point leaves the replayed records in several
/// segments, unsynced. The open that replays them must sync every one of
/// them before its checkpoint commits (it used to sync only the active
/// segment, so a power cut after the restart lost data the committed
/// checkpoint named).
#[test]
fn recovery_syncs_every_segment_it_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), opts()).unwrap();
    let vol = s.create_volume(None, BLOCKS * BS as u64, false).unwrap().id;
    s.checkpoint().unwrap();
    s.record_io(true);
    // 2.5 MiB over the same 16 blocks: the log rolls twice, little
    // metadata gets dirty (no checkpoint), nothing is synced.
    for i in 0..40u64 {
        let buf: Vec<u8> = (0..16)
            .flat_map(|b| content(0, b, i * 16 + b + 1))
            .collect();
        s.write(vol, 0, &buf, false).unwrap();
    }
    let ops = s.record_io(false);
    drop(s); // kill -9: no close
    let mut written: Vec<&str> = ops
        .iter()
        .filter_map(|op| match op {
            IoOp::Write { file, .. } => Some(file.as_str()),
            _ => None,
        })
        .collect();
    written.dedup();
    assert!(written.len() >= 2, "the log did not roll: {written:?}");
    assert!(
        !ops.iter().any(|op| matches!(op, IoOp::Sync { .. })),
        "the writes were synced before the kill"
    );
    let s = Store::open_recording(dir.path(), opts()).unwrap();
    let recovery = s.record_io(false);
    let synced_before_commit: Vec<&str> = recovery
        .iter()
        .take_while(|op| !matches!(op, IoOp::Write { file, .. } if file == "superblock"))
        .filter_map(|op| match op {
            IoOp::Sync { file } => Some(file.as_str()),
            _ => None,
        })
        .collect();
    for f in &written {
        assert!(
            synced_before_commit.contains(f),
            "recovery committed its checkpoint without syncing {f}:\n{}",
            describe_ops(&recovery, 0, recovery.len())
        );
    }
}
