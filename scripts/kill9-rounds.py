#!/usr/bin/env python3
"""Rounds of kill -9 against `blockd serve`, driven by libnbd as a user would.

Each round starts `blockd serve` (default listeners, plus the Unix socket)
on one data directory, writes 4 KiB tagged blocks (index, write number,
crc) to 2,048 hot blocks of a 64 MiB volume in bursts of 1 to 32 distinct
blocks (5% with FUA), each burst followed by FLUSH, until a timer kills the
server with SIGKILL 0.3 to 1.5 s after it started; then restarts it, reads
every hot block back and checks it holds its last acknowledged version or
one written later (never an older one), and stops it with SIGTERM.

usage: scripts/kill9-rounds.py SEED ROUNDS [BLOCKD]   (needs python3-libnbd;
BLOCKD defaults to target/debug/blockd). Exits 1 at the first violation.
"""
import os, random, shutil, signal, struct, subprocess, sys, tempfile, threading, time, zlib
import nbd

BS, BLOCKS, HOT = 4096, 16384, 2048


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
    hot = rng.sample(range(BLOCKS), HOT)
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
                for b in rng.sample(hot, rng.randint(1, 32)):
                    du, later = exp.get(b, (0, []))
                    exp[b] = (du, later + [seq])
                    burst.append((b, seq))
                    seq += 1
                for b, v in burst:
                    fua = rng.random() < 0.05
                    h.pwrite(block(b, v), b * BS, nbd.CMD_FLAG_FUA if fua else 0)
                    writes += 1
                    if fua:
                        exp[b] = (v, [])
                h.flush()
                for b, v in burst:
                    exp[b] = (v, [])
        except nbd.Error:
            pass
        p.wait()
        p, h = start()
        bad = 0
        for b in hot:
            got = h.pread(BS, b * BS)
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
