//! Many generations of one store through the real server: `blockd serve`
//! is killed with SIGKILL at random points while NBD clients write and
//! flush, restarted on the same data directory, every hot block is read
//! back and checked against what was acknowledged, and the cycle repeats
//! (sometimes with a clean stop, a kill during recovery, or a kill during
//! the clean stop). A flushed write must never come back as an older
//! version, and no block may hold data that was never written to it.
//!
//! CI runs a short version; `scripts/soak-generations.sh N` the long one
//! (`BLOCKD_GENERATIONS`, `BLOCKD_GEN_SEED`).

mod common;
use common::run as run_cmd;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BS: usize = 4096;
const VOLUME_BLOCKS: u64 = 16384; // 64 MiB
const HOT_BLOCKS: usize = 2048;
const WRITERS: usize = 2;
/// Hot blocks come in aligned runs of this many (64 KiB), each run owned
/// by one writer: about one request in eight writes a whole run at once,
/// which the server stores as an aligned extent Write (record kind 12,
/// payloads written from the client's buffer), so kills land in those too.
const RUN: u64 = 16;

/// The content of block `block` at write `version`: a header naming both,
/// then bytes derived from them (so any other block's or version's data is
/// told apart, and a torn block fails the comparison).
fn block_data(block: u64, version: u64) -> Vec<u8> {
    let mut b = pattern(BS, block.wrapping_mul(1_000_003) ^ version);
    b[..8].copy_from_slice(&block.to_le_bytes());
    b[8..16].copy_from_slice(&version.to_le_bytes());
    b
}

/// What a block may hold after a crash: its last durable version (0 for
/// never written: zeroes) or any version written after it.
#[derive(Clone, Default, Debug)]
struct Expect {
    durable: u64,
    later: Vec<u64>,
}

/// A client connection after GO, with errors returned (the server may die
/// under it at any moment).
struct Client {
    s: UnixStream,
}

impl Client {
    fn open(sock: &Path) -> Client {
        let mut r = Raw::connect(sock);
        r.go("v", false);
        Client { s: r.s }
    }

    fn send(
        &mut self,
        cmd: u16,
        flags: u16,
        cookie: u64,
        offset: u64,
        len: u32,
        data: &[u8],
    ) -> io::Result<()> {
        let mut b = Vec::with_capacity(28 + data.len());
        push_request(&mut b, cmd, flags, cookie, offset, len, data);
        self.s.write_all(&b)
    }

    /// One simple reply: (cookie, error), reading `buf.len()` bytes of data
    /// into `buf` when the error is 0.
    fn reply(&mut self, buf: &mut [u8]) -> io::Result<(u64, u32)> {
        let mut h = [0u8; 16];
        self.s.read_exact(&mut h)?;
        if u32::from_be_bytes(h[..4].try_into().unwrap()) != SIMPLE_MAGIC {
            return Err(io::Error::other("bad reply magic"));
        }
        let err = u32::from_be_bytes(h[4..8].try_into().unwrap());
        let cookie = u64::from_be_bytes(h[8..16].try_into().unwrap());
        if err == 0 {
            self.s.read_exact(buf)?;
        }
        Ok((cookie, err))
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.send(CMD_READ, 0, 7, offset, buf.len() as u32, &[])?;
        match self.reply(buf)? {
            (7, 0) => Ok(()),
            r => Err(io::Error::other(format!("read at {offset}: {r:?}"))),
        }
    }
}

/// One writer's loop: bursts of 1 to 32 writes to distinct blocks of its
/// own (5% with FUA; about one in eight a whole aligned run of `RUN`
/// blocks in one request), then FLUSH, until the connection breaks or
/// `stop`.
/// Updates `exp` as replies arrive; returns the number of acknowledged
/// writes.
fn writer(
    sock: &Path,
    blocks: &[u64],
    exp: &mut HashMap<u64, Expect>,
    next_version: &AtomicU64,
    stop: &AtomicBool,
    seed: u64,
    pace: Duration,
) -> u64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut c = Client::open(sock);
    let mut acked = 0u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(pace);
        let n = rng.gen_range(1..=32usize);
        // Each request: its first block, one version per block, FUA.
        let mut burst: Vec<(u64, Vec<u64>, bool)> = Vec::with_capacity(n);
        let mut taken: Vec<u64> = Vec::new();
        while burst.len() < n {
            let b = blocks[rng.gen_range(0..blocks.len())];
            let (first, count) = if rng.gen_bool(0.125) {
                (b - b % RUN, RUN)
            } else {
                (b, 1)
            };
            if (first..first + count).any(|x| taken.contains(&x)) {
                continue;
            }
            taken.extend(first..first + count);
            let vs = (0..count)
                .map(|_| next_version.fetch_add(1, Ordering::Relaxed))
                .collect();
            burst.push((first, vs, rng.gen_bool(0.05)));
        }
        // Record every version before sending: a request sent may land
        // even if its reply never arrives.
        for (first, vs, _) in &burst {
            for (b, &v) in (*first..).zip(vs) {
                exp.entry(b).or_default().later.push(v);
            }
        }
        let mut buf = Vec::with_capacity(taken.len() * BS + n * 28);
        for (i, (first, vs, fua)) in burst.iter().enumerate() {
            let flags = if *fua { FLAG_FUA } else { 0 };
            let data: Vec<u8> = (*first..)
                .zip(vs)
                .flat_map(|(b, &v)| block_data(b, v))
                .collect();
            push_request(
                &mut buf,
                CMD_WRITE,
                flags,
                i as u64,
                first * BS as u64,
                data.len() as u32,
                &data,
            );
        }
        if c.s.write_all(&buf).is_err() {
            return acked;
        }
        for _ in 0..n {
            match c.reply(&mut []) {
                Ok((cookie, 0)) => {
                    let (first, vs, fua) = &burst[cookie as usize];
                    acked += vs.len() as u64;
                    if vs.len() > 1 {
                        RUNS_ACKED.fetch_add(1, Ordering::Relaxed);
                    }
                    if *fua {
                        // Durable now; nothing later was sent for these blocks.
                        for (b, &v) in (*first..).zip(vs) {
                            let e = exp.get_mut(&b).unwrap();
                            e.durable = v;
                            e.later.retain(|&x| x > v);
                        }
                    }
                }
                Ok((cookie, err)) => panic!("write {cookie} failed with error {err}"),
                Err(_) => return acked,
            }
        }
        if c.send(CMD_FLUSH, 0, 1 << 40, 0, 0, &[]).is_err() {
            return acked;
        }
        match c.reply(&mut []) {
            Ok((_, 0)) => {
                for (first, vs, _) in &burst {
                    for (b, &v) in (*first..).zip(vs) {
                        let e = exp.get_mut(&b).unwrap();
                        e.durable = v;
                        e.later.retain(|&x| x > v);
                    }
                }
            }
            Ok((_, err)) => panic!("flush failed with error {err}"),
            Err(_) => return acked,
        }
    }
    acked
}

/// Reads every hot block and checks it against `exp`; afterwards the block's
/// version read is its durable one (recovery checkpointed it). Returns the
/// list of violations.
fn verify(sock: &Path, exp: &mut HashMap<u64, Expect>, gen: u64) -> Vec<String> {
    let mut c = Client::open(sock);
    let mut bad = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let per = (buf.len() / BS) as u64;
    for chunk in 0..VOLUME_BLOCKS / per {
        c.read(chunk * per * BS as u64, &mut buf)
            .expect("read back");
        for i in 0..per {
            let b = chunk * per + i;
            let got = &buf[i as usize * BS..(i as usize + 1) * BS];
            let Some(e) = exp.get_mut(&b) else {
                if got.iter().any(|&x| x != 0) {
                    bad.push(format!(
                        "gen {gen}: block {b} was never written but holds data"
                    ));
                }
                continue;
            };
            let found = if got.iter().all(|&x| x == 0) {
                Some(0)
            } else {
                let blk = u64::from_le_bytes(got[..8].try_into().unwrap());
                let v = u64::from_le_bytes(got[8..16].try_into().unwrap());
                (blk == b && got == block_data(b, v).as_slice()).then_some(v)
            };
            match found {
                Some(v) if v == e.durable || e.later.contains(&v) => {
                    e.durable = v;
                    e.later.clear();
                }
                Some(v) => bad.push(format!(
                    "gen {gen}: block {b} holds version {v}; durable was {}, later {:?}",
                    e.durable, e.later
                )),
                None => bad.push(format!(
                    "gen {gen}: block {b} holds data that is no version of it (header block {}, version {})",
                    u64::from_le_bytes(got[..8].try_into().unwrap()),
                    u64::from_le_bytes(got[8..16].try_into().unwrap())
                )),
            }
        }
    }
    bad
}

/// Spawns `blockd serve` without waiting for it (to kill it during
/// recovery).
fn spawn_serve(dir: &Path) -> std::process::Child {
    serve_command(dir, &["--nbd-listen", ""])
        .env("BLOCKD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn blockd serve")
}

/// Offline checks run.
static CHECKS: AtomicU64 = AtomicU64::new(0);
/// Whole-run writes acknowledged (`writer`).
static RUNS_ACKED: AtomicU64 = AtomicU64::new(0);

/// Sometimes, after a clean stop, runs the offline `blockd check` on the
/// store (another open and close of it): no corruption may be found.
fn offline_check(dir: &Path, rng: &mut StdRng, bad: &mut Vec<String>, gen: u64) {
    if !rng.gen_bool(0.3) {
        return;
    }
    CHECKS.fetch_add(1, Ordering::Relaxed);
    let o = run_cmd(bin(), &["--data-dir", dir.to_str().unwrap(), "check"]);
    let out = String::from_utf8_lossy(&o.stdout);
    if !out.contains(" 0 corruption") {
        bad.push(format!("gen {gen}: blockd check found corruption:\n{out}"));
    }
}

/// Runs `generations` generations with `seed`; returns
/// (violations, acknowledged writes, kills).
fn run_generations(generations: u64, seed: u64) -> (Vec<String>, u64, u64, &'static str) {
    let (_t, dir) = data_dir();
    let mut rng = StdRng::seed_from_u64(seed);
    // Small segments make rolls, reclaim and spare reuse frequent.
    let seg = ["1M", "4M", "64M"][rng.gen_range(0..3)];
    let size = (VOLUME_BLOCKS * BS as u64).to_string();
    ok(
        bin(),
        &[
            "--data-dir",
            dir.to_str().unwrap(),
            "--segment-size",
            seg,
            "volume",
            "create",
            "v",
            "--size",
            &size,
        ],
    );
    // Hot blocks spread over the volume in aligned runs, split between
    // the writers a run at a time.
    let mut runs: Vec<u64> = Vec::new();
    while runs.len() < HOT_BLOCKS / RUN as usize {
        let r = rng.gen_range(0..VOLUME_BLOCKS / RUN) * RUN;
        if !runs.contains(&r) {
            runs.push(r);
        }
    }
    let mut exp: HashMap<u64, Expect> = HashMap::new();
    let next_version = Arc::new(AtomicU64::new(1));
    let mut bad = Vec::new();
    let mut acked = 0u64;
    let mut kills = 0u64;
    for gen in 0..generations {
        // Sometimes a kill lands during recovery (before the server listens).
        if gen > 0 && rng.gen_bool(0.15) {
            let mut c = spawn_serve(&dir);
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..60)));
            let _ = c.kill();
            let _ = c.wait();
            kills += 1;
        }
        let mut srv = Serve::start(&dir, &[]);
        bad.extend(verify(&srv.socket, &mut exp, gen));
        if !bad.is_empty() {
            eprintln!(
                "server log of the failing generation:\n{}",
                srv.log().join("\n")
            );
            break;
        }
        // How this generation ends.
        let end = rng.gen_range(0..10);
        let end = if end < 4 { 0 } else { end };
        if end == 0 {
            // A clean stop right after recovery, as an operator might.
            assert!(srv.signal("TERM").success(), "clean stop failed");
            offline_check(&dir, &mut rng, &mut bad, gen);
            continue;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for w in 0..WRITERS {
            let blocks: Vec<u64> = runs
                .iter()
                .skip(w)
                .step_by(WRITERS)
                .flat_map(|&r| r..r + RUN)
                .collect();
            let mut mine: HashMap<u64, Expect> = blocks
                .iter()
                .filter_map(|b| exp.remove(b).map(|e| (*b, e)))
                .collect();
            let sock = srv.socket.clone();
            let nv = next_version.clone();
            let st = stop.clone();
            let s = rng.gen();
            let pace = Duration::from_micros([0, 0, 500, 2000, 5000][rng.gen_range(0..5)]);
            handles.push(std::thread::spawn(move || {
                let n = writer(&sock, &blocks, &mut mine, &nv, &st, s, pace);
                (mine, n)
            }));
        }
        let run_for = Duration::from_millis(rng.gen_range(300..1500));
        std::thread::sleep(run_for);
        match end {
            1 | 2 => {
                // Clean stop: writers finish their bursts, then SIGTERM.
                stop.store(true, Ordering::Relaxed);
                for h in handles.drain(..) {
                    let (m, n) = h.join().unwrap();
                    exp.extend(m);
                    acked += n;
                }
                assert!(srv.signal("TERM").success(), "clean stop failed");
                offline_check(&dir, &mut rng, &mut bad, gen);
            }
            3 => {
                // SIGTERM, then SIGKILL while the clean stop runs.
                let pid = srv.pid();
                ok("kill", &["-TERM", &pid.to_string()]);
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..40)));
                srv.kill9();
                kills += 1;
            }
            _ => {
                srv.kill9();
                kills += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            let (m, n) = h.join().unwrap();
            exp.extend(m);
            acked += n;
        }
    }
    (bad, acked, kills, seg)
}

#[test]
fn flushed_writes_survive_many_generations_of_kill_9() {
    let generations: u64 = std::env::var("BLOCKD_GENERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let seed: u64 = std::env::var("BLOCKD_GEN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    let t = Instant::now();
    let (bad, acked, kills, seg) = run_generations(generations, seed);
    eprintln!(
        "seed {seed} ({seg} segments): {generations} generations, {kills} kills, {acked} acknowledged writes ({} of them 64 KiB runs), {} offline checks, {} lost, {:.1} s",
        RUNS_ACKED.load(Ordering::Relaxed),
        CHECKS.load(Ordering::Relaxed),
        bad.len(),
        t.elapsed().as_secs_f64()
    );
    assert!(bad.is_empty(), "seed {seed}: {bad:#?}");
    // Whole-run (64 KiB aligned) writes were among them.
    assert!(
        acked == 0 || RUNS_ACKED.load(Ordering::Relaxed) > 0,
        "seed {seed}: no run write acknowledged"
    );
}
