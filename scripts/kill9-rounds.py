#!/usr/bin/env python3
"""Rounds of kill -9 against `blockd serve`, driven by libnbd as a user would.

Each round starts `blockd serve` (default listeners, plus the Unix socket)
on one data directory, writes 4 KiB tagged blocks (index, write number,
crc) to 2,048 hot blocks of a 64 MiB volume in bursts of 1 to 32 distinct
blocks (5% with FUA), each burst followed by FLUSH, until a timer kills the
server with SIGKILL 0.3 to 1.5 s after it started; then restarts it, reads
every hot block back and checks it holds its last acknowledged version or
one written later (never an older one), and stops it with SIGTERM.

With KILL9_RUN_BLOCKS=N (N > 1) each write is instead a run of N
consecutive tagged blocks at a random block of the whole volume (N=256:
1 MiB writes, which the engine appends partly with O_DIRECT), and every
block of the volume is checked.

usage: scripts/kill9-rounds.py SEED ROUNDS [BLOCKD]   (needs python3-libnbd;
BLOCKD defaults to target/debug/blockd). Exits 1 at the first violation.
"""
import os, random, shutil, signal, struct, subprocess, sys, tempfile, threading, time, zlib
import nbd

BS, BLOCKS, HOT = 4096, 16384, 2048
RUN = int(os.environ.get("KILL9_RUN_BLOCKS", "1"))


def block(b, v):
    body = struct.pack("<QQ", b, v) + bytes([(b * 7 + v) & 255]) * (BS - 20)
    return body + struct.pack("<I", zlib.crc32(body))


def main():
    seed, rounds = int(sys.argv[1]), int(sys.argv[2])
    binary = sys.argv[3] if len(sys.argv) > 3 else "target/debug/blockd"
    rng = random.Random(seed)
    d = tempfile.mkdtemp(prefix="kill9-rounds-")
    subprocess.check_call([binary, "--data-dir", d, "volume", "create", "v", "--size", "64M"],
                          stdout=subprocess.DEVNULL)
    hot = rng.sample(range(BLOCKS), HOT) if RUN == 1 else list(range(BLOCKS))
    exp = {}  # block -> (durable version, versions written since)
    seq = 1

    def start():
        sock = os.path.join(d, "nbd.sock")
        p = subprocess.Popen([binary, "--data-dir", d, "serve"], stderr=subprocess.DEVNULL)
        for _ in range(1000):
            if os.path.exists(sock):
                try:
                    h = nbd.NBD()
                    h.set_export_name("v")
                    h.connect_unix(sock)
                    return p, h
                except nbd.Error:
                    pass
            time.sleep(0.02)
        raise SystemExit("blockd serve did not start")

    writes = 0
    for r in range(rounds):
        p, h = start()
        threading.Timer(rng.uniform(0.3, 1.5), p.kill).start()
        try:
            while True:
                burst = []
                if RUN == 1:
                    starts = rng.sample(hot, rng.randint(1, 32))
                else:
                    starts = [rng.randrange(BLOCKS - RUN + 1) for _ in range(rng.randint(1, 4))]
                for s0 in starts:
                    run = []
                    for b in range(s0, s0 + RUN):
                        du, later = exp.get(b, (0, []))
                        exp[b] = (du, later + [seq])
                        run.append((b, seq))
                        seq += 1
                    burst.append(run)
                for run in burst:
                    fua = rng.random() < 0.05
                    data = b"".join(block(b, v) for b, v in run)
                    h.pwrite(data, run[0][0] * BS, nbd.CMD_FLAG_FUA if fua else 0)
                    writes += 1
                    if fua:
                        for b, v in run:
                            exp[b] = (v, [])
                burst = [x for run in burst for x in run]
                h.flush()
                for b, v in burst:
                    exp[b] = (v, [])
        except nbd.Error:
            pass
        p.wait()
        p, h = start()
        bad = 0
        cache = {}
        for b in hot:
            if RUN == 1:
                got = h.pread(BS, b * BS)
            else:
                c0 = b // 256
                if c0 not in cache:
                    cache.clear()
                    cache[c0] = h.pread(256 * BS, c0 * 256 * BS)
                got = cache[c0][(b % 256) * BS:(b % 256 + 1) * BS]
            du, later = exp.get(b, (0, []))
            if got == bytes(BS):
                v = 0
            else:
                bb, v = struct.unpack("<QQ", got[:16])
                if bb != b or got != block(b, v):
                    print(f"round {r}: block {b} holds data that is no version of it")
                    bad += 1
                    continue
            if v != du and v not in later:
                print(f"round {r}: block {b} holds version {v}; durable {du}, later {later}")
                bad += 1
            exp[b] = (v, [])
        h.shutdown()
        p.send_signal(signal.SIGTERM)
        p.wait()
        if bad:
            print(f"seed {seed}: {bad} violations in round {r}; store kept in {d}")
            sys.exit(1)
    shutil.rmtree(d)
    print(f"seed {seed}: {rounds} rounds, {writes} writes, 0 violations")


if __name__ == "__main__":
    main()
