//! Process crashes: `kill -9` of a process running a workload on a store,
//! then recovery and verification.
//!
//! The test binary re-executes itself (`child_entry`, an ignored test that
//! does nothing unless `BLOCKD_CRASH_CHILD` is set). The child opens the
//! store and runs a seeded workload: writes of tagged 4 KiB blocks (each
//! block names its volume, block index and operation number and carries a
//! crc, so any block's provenance can be verified), FUA writes, trims,
//! write_zeroes, flushes, creates, snapshots, clones, deletes, checkpoints
//! and reclaims. Before each operation it prints `CRASH OP n ...` on stdout,
//! and after each operation that makes everything before it durable (flush,
//! FUA, catalogue operations, checkpoint, reclaim) `CRASH ACK n ...`.
//!
//! The parent kills the child with SIGKILL after a random 2-300 ms, then
//! (usually) opens the store and checks: every block reads back its latest
//! content acknowledged durable or some content written later, never
//! another block's data or garbage; snapshots and clones acknowledged
//! before the kill hold exactly their contents at creation (or later
//! writes, for clones); acknowledged deletes stay deleted; `check(false)`
//! finds no corruption (leaks are allowed). A store lives through up to
//! four crashes; sometimes the next child opens it without a verification
//! in between, so a crash can hit recovery itself.
//!
//! 40 crashes by default (`BLOCKD_CRASH_ITERS` to change);
//! `BLOCKD_CRASH_SEED` fixes the seed.

use blockd_engine::{ErrorKind, ObjectId, ObjectKind, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BS: u64 = 4096;
const ENV: &str = "BLOCKD_CRASH_CHILD";
const MAX_OBJECTS: usize = 12;

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        dirty_limit_bytes: 128 << 10,
        checkpoint_log_bytes: 4 << 20,
        // Kills land between a checkpoint's slices too.
        checkpoint_slice_pages: 8,
        ..Default::default()
    }
}

// ---- tagged blocks ----

/// The block that operation `seq` writes at `block` of volume `vol`:
/// "CRSH", the volume id, the block index, the operation number, a crc of
/// the rest, then filler derived from all of them.
fn content(vol: ObjectId, block: u64, seq: u64) -> Vec<u8> {
    let mut b = vec![0u8; BS as usize];
    b[..4].copy_from_slice(b"CRSH");
    b[4..20].copy_from_slice(&vol.to_bytes());
    b[20..28].copy_from_slice(&block.to_le_bytes());
    b[28..36].copy_from_slice(&seq.to_le_bytes());
    let mut x = u64::from_le_bytes(vol.to_bytes()[..8].try_into().unwrap())
        ^ block.wrapping_mul(0x2545_f491_4f6c_dd1d)
        ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        | 1;
    for c in b[40..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes());
    }
    let crc = block_crc(&b);
    b[36..40].copy_from_slice(&crc.to_le_bytes());
    b
}

fn block_crc(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..36]);
    h.update(&b[40..]);
    h.finalize()
}

/// What a block holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value {
    Zero,
    /// Written by operation `seq` to volume `vol` (at the block it is read from).
    Tag {
        vol: ObjectId,
        seq: u64,
    },
}

/// Decodes a block read at `block`; an error describes anything that is
/// not zeroes or a valid tagged block for that index.
fn decode(block: u64, b: &[u8]) -> Result<Value, String> {
    if b.iter().all(|&x| x == 0) {
        return Ok(Value::Zero);
    }
    if &b[..4] != b"CRSH" {
        return Err("garbage (no tag)".into());
    }
    if block_crc(b) != u32::from_le_bytes(b[36..40].try_into().unwrap()) {
        return Err("garbage (tag crc mismatch)".into());
    }
    let vol = ObjectId::from_bytes(b[4..20].try_into().unwrap());
    let at = u64::from_le_bytes(b[20..28].try_into().unwrap());
    let seq = u64::from_le_bytes(b[28..36].try_into().unwrap());
    if at != block {
        return Err(format!(
            "block {at} of volume {vol} (op {seq}): another block's data"
        ));
    }
    if b != content(vol, block, seq).as_slice() {
        return Err("garbage (tag valid, filler wrong)".into());
    }
    Ok(Value::Tag { vol, seq })
}

// ---- the child ----

/// One line to the parent, written whole and flushed.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("CRASH {line}\n").as_bytes()).unwrap();
    out.flush().unwrap();
}

/// The workload: runs until killed (or for at most 30 s).
fn child(spec: &str) {
    let mut parts = spec.split(';');
    let seed: u64 = parts.next().unwrap().parse().unwrap();
    let dir = parts.next().unwrap().to_string();
    let mut op: u64 = parts.next().unwrap().parse().unwrap();
    let known: Vec<ObjectId> = parts
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let s = Store::open(&dir, opts()).unwrap();
    // Objects the parent does not know (made by an unacknowledged operation
    // before the last crash) go first.
    for info in s.list() {
        if !known.contains(&info.id) {
            s.delete(info.id).unwrap();
        }
    }
    let mut objs: Vec<(ObjectId, ObjectKind, u64)> = s
        .list()
        .into_iter()
        .map(|i| (i.id, i.kind, i.size))
        .collect();
    // Bounded in time in case the parent never kills us.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        op += 1;
        let vols: Vec<(ObjectId, u64)> = objs
            .iter()
            .filter(|o| o.1 == ObjectKind::Volume)
            .map(|o| (o.0, o.2))
            .collect();
        let roll = rng.gen_range(0..100);
        if vols.is_empty() || (roll < 2 && vols.len() < 4 && objs.len() < MAX_OBJECTS) {
            let size = rng.gen_range(1..=3u64) << 20;
            say(format!("OP {op} N"));
            let id = s.create_volume(None, size, rng.gen_bool(0.2)).unwrap().id;
            say(format!("ACK {op} {id} {size}"));
            objs.push((id, ObjectKind::Volume, size));
            continue;
        }
        let (vol, size) = vols[rng.gen_range(0..vols.len())];
        let blocks = size / BS;
        let count = match rng.gen_range(0..100) {
            0..70 => rng.gen_range(1..=4),
            70..95 => rng.gen_range(1..=32),
            _ => rng.gen_range(100..=300),
        }
        .min(blocks);
        let first = rng.gen_range(0..=blocks - count);
        let fua = rng.gen_bool(0.1);
        match roll {
            2..50 => {
                say(format!("OP {op} W {vol} {first} {count}"));
                let mut data = Vec::with_capacity((count * BS) as usize);
                for b in first..first + count {
                    data.extend_from_slice(&content(vol, b, op));
                }
                // Handed over whole (aligned extent Write records from
                // 64 KiB on).
                let mut owned = s.aligned_buf(data.len());
                owned.copy_from_slice(&data);
                s.write_owned(vol, first * BS, owned, fua).unwrap();
                if fua {
                    say(format!("ACK {op}"));
                }
            }
            50..62 => {
                say(format!("OP {op} Z {vol} {first} {count}"));
                let (off, len) = (first * BS, count * BS);
                match rng.gen_range(0..3) {
                    0 => s.trim(vol, off, len, fua).unwrap(),
                    k => s.write_zeroes(vol, off, len, k == 1, fua).unwrap(),
                }
                if fua {
                    say(format!("ACK {op}"));
                }
            }
            62..76 => {
                say(format!("OP {op} F"));
                s.flush().unwrap();
                say(format!("ACK {op}"));
            }
            76..84 if objs.len() < MAX_OBJECTS => {
                let clone = roll >= 81;
                let src = if clone {
                    objs[rng.gen_range(0..objs.len())].0
                } else {
                    vol
                };
                let kind = if clone { "C" } else { "S" };
                say(format!("OP {op} {kind} {src}"));
                let info = if clone {
                    s.clone_volume(src, None).unwrap()
                } else {
                    s.snapshot(src, None).unwrap()
                };
                say(format!("ACK {op} {} {}", info.id, info.size));
                objs.push((info.id, info.kind, info.size));
            }
            84..90 if objs.len() > 3 => {
                // Snapshots mostly; never the last volume.
                let pick = objs[rng.gen_range(0..objs.len())];
                if pick.1 == ObjectKind::Volume && (vols.len() == 1 || rng.gen_bool(0.5)) {
                    continue;
                }
                say(format!("OP {op} D {}", pick.0));
                s.delete(pick.0).unwrap();
                say(format!("ACK {op}"));
                objs.retain(|o| o.0 != pick.0);
            }
            90..95 => {
                say(format!("OP {op} K"));
                s.checkpoint().unwrap();
                say(format!("ACK {op}"));
            }
            95..100 => {
                say(format!("OP {op} R"));
                s.reclaim(0.5).unwrap();
                say(format!("ACK {op}"));
            }
            _ => {}
        }
    }
}

#[test]
#[ignore = "run by the crash test in a child process"]
fn child_entry() {
    if let Ok(spec) = std::env::var(ENV) {
        child(&spec);
    }
}

// ---- the parent's model ----

/// One block: values it may hold from before this child (`cands`), and
/// the values this child wrote, by operation number.
#[derive(Clone)]
struct Block {
    cands: Vec<Value>,
    hist: Vec<(u64, Value)>,
}

impl Block {
    fn exact(v: Value) -> Block {
        Block {
            cands: vec![v],
            hist: Vec::new(),
        }
    }

    /// What the block may read after a crash, given that every operation
    /// up to `acked` was acknowledged durable.
    fn acceptable(&self, acked: u64) -> Vec<Value> {
        let mut out = match self.hist.iter().rposition(|h| h.0 <= acked) {
            Some(i) => self.hist[i..].iter().map(|h| h.1).collect(),
            None => {
                let mut v = self.cands.clone();
                v.extend(self.hist.iter().map(|h| h.1));
                v
            }
        };
        out.sort_by_key(|v| format!("{v:?}"));
        out.dedup();
        out
    }

    /// What the block holds when an operation completes that made it durable.
    fn now(&self) -> Vec<Value> {
        match self.hist.last() {
            Some(h) => vec![h.1],
            None => self.cands.clone(),
        }
    }
}

struct Obj {
    kind: ObjectKind,
    blocks: Vec<Block>,
}

#[derive(Default)]
struct Model {
    objs: HashMap<ObjectId, Obj>,
    /// Deleted by an acknowledged operation: must not exist.
    gone: Vec<ObjectId>,
    /// The next operation number.
    next_op: u64,
}

impl Model {
    /// Applies the child's output; returns the last acknowledged operation.
    fn apply(&mut self, out: &str) -> u64 {
        let mut acked = 0;
        let mut pending: Option<Vec<String>> = None;
        // Only whole lines count: the child may die mid-line.
        let whole = &out[..out.rfind('\n').map_or(0, |i| i + 1)];
        for line in whole.lines() {
            let Some(rest) = line.strip_prefix("CRASH ") else {
                continue;
            };
            let w: Vec<String> = rest.split(' ').map(str::to_string).collect();
            let n: u64 = w[1].parse().unwrap();
            self.next_op = self.next_op.max(n + 1);
            if w[0] == "OP" {
                self.begin(n, &w[2..]);
                pending = Some(w[2..].to_vec());
            } else {
                let op = pending.take().expect("ACK follows its OP");
                self.ack(n, &op, &w[2..]);
                acked = n;
            }
        }
        acked
    }

    fn begin(&mut self, n: u64, w: &[String]) {
        let id = |i: usize| w[i].parse::<ObjectId>().unwrap();
        let num = |i: usize| w[i].parse::<u64>().unwrap();
        match w[0].as_str() {
            "W" | "Z" => {
                let vol = id(1);
                let o = self.objs.get_mut(&vol).expect("write to a known volume");
                for b in num(2)..num(2) + num(3) {
                    let v = if w[0] == "W" {
                        Value::Tag { vol, seq: n }
                    } else {
                        Value::Zero
                    };
                    o.blocks[b as usize].hist.push((n, v));
                }
            }
            // An unacknowledged delete may or may not have happened: the
            // object leaves the model (the next child deletes it if present).
            "D" => {
                self.objs.remove(&id(1));
            }
            _ => {}
        }
    }

    fn ack(&mut self, _n: u64, op: &[String], w: &[String]) {
        match op[0].as_str() {
            "N" => {
                let size: u64 = w[1].parse().unwrap();
                let obj = Obj {
                    kind: ObjectKind::Volume,
                    blocks: vec![Block::exact(Value::Zero); (size / BS) as usize],
                };
                self.objs.insert(w[0].parse().unwrap(), obj);
            }
            "S" | "C" => {
                let src = &self.objs[&op[1].parse::<ObjectId>().unwrap()];
                let blocks = src
                    .blocks
                    .iter()
                    .map(|b| Block {
                        cands: b.now(),
                        hist: Vec::new(),
                    })
                    .collect();
                let kind = if op[0] == "S" {
                    ObjectKind::Snapshot
                } else {
                    ObjectKind::Volume
                };
                self.objs
                    .insert(w[0].parse().unwrap(), Obj { kind, blocks });
            }
            "D" => self.gone.push(op[1].parse().unwrap()),
            _ => {}
        }
    }

    /// After a crash: what each block may hold becomes its candidates.
    fn collapse(&mut self, acked: u64) {
        for o in self.objs.values_mut() {
            for b in &mut o.blocks {
                *b = Block {
                    cands: b.acceptable(acked),
                    hist: Vec::new(),
                };
            }
        }
    }

    /// Opens the store and checks it against the model; afterwards the
    /// model holds exactly what was read.
    fn verify(&mut self, dir: &Path, ctx: &str) {
        let s = Store::open(dir, opts()).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
        for &g in &self.gone {
            let e = s.get(g).map(|_| ()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{ctx}: deleted {g} is back");
        }
        let mut buf = vec![0u8; 512 * BS as usize];
        for info in s.list() {
            let Some(o) = self.objs.get_mut(&info.id) else {
                // Made by an unacknowledged operation: it must still read
                // as valid blocks.
                for first in (0..info.size / BS).step_by(512) {
                    let n = (info.size / BS - first).min(512);
                    let b = &mut buf[..(n * BS) as usize];
                    s.read(info.id, first * BS, b)
                        .unwrap_or_else(|e| panic!("{ctx}: read unknown {}: {e}", info.id));
                    for (i, blk) in b.chunks(BS as usize).enumerate() {
                        let at = first + i as u64;
                        if let Err(e) = decode(at, blk) {
                            panic!("{ctx}: unknown object {} block {at}: {e}", info.id);
                        }
                    }
                }
                continue;
            };
            assert_eq!(o.kind, info.kind, "{ctx}: kind of {}", info.id);
            assert_eq!(
                o.blocks.len() as u64,
                info.size / BS,
                "{ctx}: size of {}",
                info.id
            );
            let nblocks = o.blocks.len() as u64;
            for first in (0..nblocks).step_by(512) {
                let n = (nblocks - first).min(512);
                let b = &mut buf[..(n * BS) as usize];
                s.read(info.id, first * BS, b)
                    .unwrap_or_else(|e| panic!("{ctx}: read {} at block {first}: {e}", info.id));
                for (i, blk) in b.chunks(BS as usize).enumerate() {
                    let at = first + i as u64;
                    let ok = &mut o.blocks[at as usize];
                    let got = decode(at, blk).unwrap_or_else(|e| {
                        panic!("{ctx}: {} {} block {at}: {e}", info.kind, info.id)
                    });
                    assert!(
                        ok.cands.contains(&got),
                        "{ctx}: {} {} block {at} reads {got:?}, acceptable: {:?}",
                        info.kind,
                        info.id,
                        ok.cands
                    );
                    *ok = Block::exact(got);
                }
            }
        }
        for id in self.objs.keys() {
            assert!(
                s.get(*id).is_ok(),
                "{ctx}: acknowledged object {id} is missing"
            );
        }
        let r = s.check(false).unwrap();
        assert!(r.corruption.is_empty(), "{ctx}: check: {r:?}");
    }
}

/// Runs one child on `dir` and kills it after `kill_ms`; returns its stdout.
fn run_child(seed: u64, dir: &Path, model: &Model, kill_ms: u64) -> String {
    let known: Vec<String> = model.objs.keys().map(|k| k.to_string()).collect();
    let spec = format!(
        "{seed};{};{};{}",
        dir.display(),
        model.next_op,
        known.join(",")
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--ignored"])
        .env(ENV, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).unwrap();
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        stderr.read_to_end(&mut v).unwrap();
        v
    });
    std::thread::sleep(Duration::from_millis(kill_ms));
    let early = child.try_wait().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let out = String::from_utf8_lossy(&out.join().unwrap()).into_owned();
    let err = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    if let Some(status) = early {
        panic!("child (seed {seed}) exited by itself ({status}) before the kill:\n{err}");
    }
    out
}

#[test]
fn kill_nine() {
    let iters: u64 = std::env::var("BLOCKD_CRASH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let seed: u64 = std::env::var("BLOCKD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test: seed {seed}, {iters} crashes");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut dir = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let mut life = 0;
    let (mut ops, mut acks) = (0usize, 0usize);
    for i in 0..iters {
        let cseed = seed.wrapping_add(i);
        let kill_ms = if rng.gen_bool(0.3) {
            rng.gen_range(2..30)
        } else {
            rng.gen_range(30..300)
        };
        let out = run_child(cseed, dir.path(), &model, kill_ms);
        ops += out.matches("CRASH OP").count();
        acks += out.matches("CRASH ACK").count();
        let acked = model.apply(&out);
        model.collapse(acked);
        life += 1;
        let last = life == 4 || i + 1 == iters;
        if last || rng.gen_bool(0.7) {
            let ctx = format!("crash {i} (child seed {cseed}, killed at {kill_ms} ms)");
            model.verify(dir.path(), &ctx);
        }
        if last {
            dir = tempfile::tempdir().unwrap();
            model = Model::default();
            life = 0;
        }
    }
    eprintln!("crash test: {ops} operations started, {acks} acknowledged");
}
