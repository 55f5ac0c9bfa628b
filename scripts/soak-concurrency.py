#!/usr/bin/env python3
"""Concurrency soak: 8 NBD clients (fio, verify=crc32c) write and verify
random data on 8 volumes of a real `blockd serve`, while snapshots, clones
and deletes run through the REST API, online scrubs run (SIGUSR1) and the
engine reclaims space on its own. Snapshots are checksummed when taken and
again before they are deleted: they must not change. At the end the server
is stopped and `blockd check` must be clean.

usage: soak-concurrency.py [MINUTES]   (default 10; prints a summary)
Needs target/debug/blockd (`cargo build --workspace --all-targets`), fio,
qemu-io and nbdcopy (scripts/test.sh installs them).
"""
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

MINUTES = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCKD = os.path.join(ROOT, "target", "debug", "blockd")
if not os.path.exists(BLOCKD):
    sys.exit("build first: cargo build --workspace --all-targets")
TOKEN = "soak-token-0123456789abcdef"
CLIENTS = 8
VOL_GB = 1
FIO_SIZE = "192M"

work = tempfile.mkdtemp(prefix="blockd-soak-")
data = os.path.join(work, "data")
sock = os.path.join(work, "nbd.sock")
auth = os.path.join(work, "auth.toml")
with open(auth, "w") as f:
    f.write('[[tenants]]\nid = "demo"\ntoken = "%s"\nuser = "demo"\npassword = "soak-password"\n' % TOKEN)

log = open(os.path.join(work, "serve.log"), "w")
serve = subprocess.Popen(
    [BLOCKD, "--data-dir", data, "serve", "--nbd-listen", "", "--nbd-socket", sock,
     "--api-listen", "127.0.0.1:0", "--auth-file", auth, "--scrub-interval", "0"],
    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ, BLOCKD_LOG="info", NO_COLOR="1"),
    text=True)
base = None
deadline = time.time() + 60
lines = []
while base is None:
    line = serve.stderr.readline()
    if not line:
        sys.exit("serve exited early:\n" + "".join(lines))
    lines.append(line)
    log.write(line)
    if "API listening on http://" in line:
        base = "http://" + line.split("API listening on http://")[1].strip()
    if time.time() > deadline:
        sys.exit("serve did not start")
# Keep draining the server's log.
import threading
threading.Thread(target=lambda: [log.write(l) for l in serve.stderr], daemon=True).start()
while not os.path.exists(sock):
    time.sleep(0.05)


def api(method, path, body=None):
    req = urllib.request.Request(base + "/v1.1/demo" + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"X-Auth-Token": TOKEN, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def export_sha(export):
    out = subprocess.run(["nbdcopy", "nbd+unix:///%s?socket=%s" % (export, sock), "-"],
                         stdout=subprocess.PIPE, check=True).stdout
    return hashlib.sha256(out).hexdigest()


vols = []
for i in range(CLIENTS):
    st, v = api("POST", "/os-volumes", {"volume": {"size": VOL_GB, "display_name": "soak%d" % i}})
    assert st == 200, (st, v)
    vols.append(v["volume"]["id"])

runtime = int(MINUTES * 60)
fios = []
for i, vid in enumerate(vols):
    fios.append(subprocess.Popen(
        ["fio", "--name=soak%d" % i, "--ioengine=nbd",
         "--uri=nbd+unix:///%s?socket=%s" % (vid, sock),
         "--rw=randwrite", "--bs=16k", "--size=" + FIO_SIZE, "--iodepth=8",
         "--verify=crc32c", "--verify_backlog=512", "--verify_fatal=1",
         "--time_based", "--runtime=%d" % runtime, "--output-format=json",
         "--randseed=%d" % (1000 + i)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))

rng = random.Random(7)
snaps = {}   # id -> sha at creation
clones = []
counts = {"snapshots": 0, "clones": 0, "deletes": 0, "scrubs": 0, "snapshot_checks": 0}
errors = []
end = time.time() + runtime
while time.time() < end:
    op = rng.random()
    if op < 0.45 or not snaps:
        vid = rng.choice(vols)
        st, s = api("POST", "/os-snapshots", {"snapshot": {"volume_id": vid, "force": True}})
        if st != 200:
            errors.append("snapshot: %s %s" % (st, s))
        else:
            sid = s["snapshot"]["id"]
            snaps[sid] = export_sha(sid)
            counts["snapshots"] += 1
    elif op < 0.65:
        sid = rng.choice(list(snaps))
        st, c = api("POST", "/os-volumes", {"volume": {"snapshot_id": sid}})
        if st != 200:
            errors.append("clone: %s %s" % (st, c))
        else:
            cid = c["volume"]["id"]
            # The clone starts as the snapshot's bytes; write to it.
            subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x%02x 0 1M" % rng.randrange(256),
                            "nbd+unix:///%s?socket=%s" % (cid, sock)], stdout=subprocess.DEVNULL, check=True)
            clones.append(cid)
            counts["clones"] += 1
    elif op < 0.95:
        if len(snaps) > 6:
            sid = rng.choice(list(snaps))
            sha = export_sha(sid)
            counts["snapshot_checks"] += 1
            if sha != snaps[sid]:
                errors.append("snapshot %s changed" % sid)
            st, _ = api("DELETE", "/os-snapshots/" + sid)
            if st != 202:
                errors.append("delete snapshot: %s" % st)
            del snaps[sid]
            counts["deletes"] += 1
        if len(clones) > 4:
            cid = clones.pop(0)
            st, _ = api("DELETE", "/os-volumes/" + cid)
            if st != 202:
                errors.append("delete clone: %s" % st)
            counts["deletes"] += 1
    else:
        serve.send_signal(signal.SIGUSR1)
        counts["scrubs"] += 1
    time.sleep(0.2)

ios = 0
verify_errors = 0
for i, p in enumerate(fios):
    out, err = p.communicate()
    if p.returncode != 0:
        errors.append("fio %d exited %d: %s" % (i, p.returncode, err[-2000:]))
        verify_errors += 1
        continue
    # fio may print notes before its JSON.
    start = out.find("{")
    if start < 0:
        errors.append("fio %d printed no JSON: %s" % (i, (out + err)[-2000:]))
        continue
    job = json.loads(out[start:])["jobs"][0]
    ios += job["write"]["total_ios"] + job["read"]["total_ios"]
    if job.get("error", 0):
        verify_errors += 1
        errors.append("fio %d error %s" % (i, job["error"]))
for sid, sha in snaps.items():
    counts["snapshot_checks"] += 1
    if export_sha(sid) != sha:
        errors.append("snapshot %s changed" % sid)

serve.send_signal(signal.SIGTERM)
rc = serve.wait(timeout=300)
log.flush()
with open(os.path.join(work, "serve.log")) as f:
    reclaims = sum(1 for l in f if "reclaimed segments" in l)
check = subprocess.run([BLOCKD, "--data-dir", data, "check"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
print("minutes: %.1f  clients: %d  fio I/Os (writes + verify reads): %d  fio verification failures: %d"
      % (MINUTES, CLIENTS, ios, verify_errors))
print("snapshots: %(snapshots)d  clones: %(clones)d  deletes: %(deletes)d  online scrubs: %(scrubs)d  "
      "snapshot re-reads equal: %(snapshot_checks)d" % counts + "  reclaim passes: %d" % reclaims)
print("serve exit: %d  check: %s" % (rc, check.stdout.strip().splitlines()[-1] if check.stdout else "?"))
for e in errors:
    print("ERROR:", e)
ok = not errors and rc == 0 and check.returncode == 0
print("RESULT:", "PASS" if ok else "FAIL", "(work dir %s)" % work)
if ok:
    subprocess.run(["rm", "-rf", work])
sys.exit(0 if ok else 1)
