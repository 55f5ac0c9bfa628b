#!/usr/bin/env bash
# Random 4 KiB I/O past blockd's metadata cache, side by side with qemu-nbd
# (issue 14, item 4). In one run, each server alone:
#   1. blockd, a SIZE_GB GiB volume that looks filled with 4 KiB random
#      writes: the `bench_fill` example (engine feature `bench-util`) writes
#      a POOL_MB MiB pool of real data, then maps every block to a chunk id
#      of its own, ids scattered over the blocks as random writes scatter
#      them, each id's entry pointing at one of the pool's payloads (see
#      `Store::bench_fill_random`). Map and chunk table are full size
#      (about 24 bytes per block: 0.4 GiB at 64 GiB; printed after the
#      fill from `blockd stats`); the data on disk is
#      only the pool. `blockd serve` then runs with its default cache
#      (256 MiB, or BLOCKD_CACHE_SIZE).
#   2. blockd, the same at SMALL_GB GiB (default 1): the in-cache figure.
#   3. qemu-nbd on a qcow2 file of SIZE_GB GiB made with
#      `qemu-img create -f qcow2 -o preallocation=metadata`: every cluster
#      allocated in L1/L2 tables, in order, the file sparse (reads of
#      never-written clusters read holes of the host file). Not filled by
#      random writes (64 GiB of real writes is too slow and too big here).
# Rows, fio's nbd engine over a Unix socket, 1 job, after RAMP s of
# warm-up: rand-read-4k-qd32 then rand-write-4k-qd32, over the whole
# volume. Prints a table with the ratios the issue asks for:
# blockd@SIZE / qcow2@SIZE (goal >= 1.2) and blockd@SIZE / blockd@SMALL
# (goal >= 0.7).
#
#   benches/past-cache.sh                       # 64 GiB, 20 s rows
#   SIZE_GB=32 RUNTIME=30 benches/past-cache.sh
#   SERVERS="blockd-big qcow2" benches/past-cache.sh  # only these
#
# Parameters (env): SIZE_GB (64), SMALL_GB (1), POOL_MB (1024), RUNTIME
# (20 s per row), RAMP (5 s), QD (32), BENCH_DIR (stores go there; default
# target/), SERVERS (blockd-big blockd-small qcow2), BLOCKD and BENCH_FILL
# (prebuilt binaries; else built in release). Disk: about POOL_MB + 0.45 GiB
# per 64 GiB of volume for blockd, plus whatever the write rows write.
# Needs fio (with the nbd engine), qemu-img, qemu-nbd and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_GB=${SIZE_GB:-64}
SMALL_GB=${SMALL_GB:-1}
POOL_MB=${POOL_MB:-1024}
RUNTIME=${RUNTIME:-20}
RAMP=${RAMP:-5}
QD=${QD:-32}
SERVERS=${SERVERS:-blockd-big blockd-small qcow2}
BASE=${BENCH_DIR:-$PWD/target}
mkdir -p "$BASE"
W=$(mktemp -d "$BASE/past-cache.XXXXXX")
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

for tool in fio qemu-nbd qemu-img python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ -z "${BLOCKD:-}" ]; then
  cargo build --release -p blockd >&2
  BLOCKD=$PWD/target/release/blockd
fi
if [ -z "${BENCH_FILL:-}" ]; then
  cargo build --release -p blockd-engine --example bench_fill --features bench-util >&2
  BENCH_FILL=$PWD/target/release/examples/bench_fill
fi

RESULTS=$W/results.tsv
: > "$RESULTS"

want() { [[ " $SERVERS " == *" $1 "* ]]; }

wait_sock() {
  for _ in $(seq 1 600); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "socket $1 never appeared" >&2; exit 1
}

stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

measure() { # name socket size_gb
  local name=$1 uri="nbd+unix:///v?socket=$2" size=$3 rw out v
  for rw in randread randwrite; do
    out=$(fio --name=bench --ioengine=nbd --uri="$uri" --rw="$rw" --bs=4k \
      --iodepth="$QD" --numjobs=1 --size="${size}G" --norandommap --randrepeat=0 \
      --time_based --ramp_time="$RAMP" --runtime="$RUNTIME" --output-format=json)
    v=$(printf '%s' "$out" | python3 -c '
import json, sys
t = sys.stdin.read()
j = json.loads(t[t.find("{"):])
job = j["jobs"][0]
side = job["read"] if job["read"]["io_bytes"] > 0 else job["write"]
iops = side["iops"]
p99 = side["clat_ns"]["percentile"]["99.000000"] / 1e3
print(f"{iops:.0f} {p99:.0f}")
')
    echo "   $name $rw: $v (IOPS, p99 us)" >&2
    printf '%s\t%s\t%s\n' "$name" "$rw" "$v" >> "$RESULTS"
  done
}

run_blockd() { # name size_gb
  local d=$W/$1
  echo "== $1: building a ${2} GiB volume filled at random (pool ${POOL_MB} MiB)" >&2
  local t0=$SECONDS
  "$BENCH_FILL" "$d" v "$2" "$POOL_MB" >&2
  echo "   fill took $((SECONDS - t0)) s; store: $(du -sh "$d" | cut -f1)" >&2
  echo "   $("$BLOCKD" --data-dir "$d" stats | grep '^metadata:')" >&2
  BLOCKD_LOG=warn "$BLOCKD" --data-dir "$d" serve --api-listen "" --nbd-listen "" \
    --nbd-socket "$W/$1.sock" &
  PID=$!
  wait_sock "$W/$1.sock"
  measure "$1" "$W/$1.sock" "$2"
  stop
  rm -rf "$d"
}

want blockd-big && run_blockd blockd-big "$SIZE_GB"
want blockd-small && run_blockd blockd-small "$SMALL_GB"

if want qcow2; then
  echo "== qcow2: ${SIZE_GB} GiB, preallocation=metadata" >&2
  qemu-img create -q -f qcow2 -o preallocation=metadata "$W/q.qcow2" "${SIZE_GB}G"
  qemu-nbd -t -f qcow2 -x v -e 16 -k "$W/qcow2.sock" "$W/q.qcow2" &
  PID=$!
  wait_sock "$W/qcow2.sock"
  measure qcow2 "$W/qcow2.sock" "$SIZE_GB"
  stop
  rm -f "$W/q.qcow2"
fi

echo
echo "$(date -u +%Y-%m-%d) nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\" size=${SIZE_GB}GiB small=${SMALL_GB}GiB pool=${POOL_MB}MiB runtime=${RUNTIME}s ramp=${RAMP}s qd=${QD} qemu=\"$(qemu-nbd --version | head -1)\""
python3 - "$RESULTS" "$SIZE_GB" "$SMALL_GB" <<'PY'
import sys
res = {}
for line in open(sys.argv[1]):
    name, rw, iops, p99 = line.split()
    res[(name, rw)] = (float(iops), float(p99))
big, small = sys.argv[2], sys.argv[3]
cols = [("blockd-big", f"blockd {big} GiB"), ("blockd-small", f"blockd {small} GiB"),
        ("qcow2", f"qemu-nbd qcow2 {big} GiB")]
print("| row | " + " | ".join(c[1] for c in cols)
      + f" | blockd {big}G / qcow2 {big}G (>= 1.2) | blockd {big}G / blockd {small}G (>= 0.7) |")
print("|---" * (len(cols) + 3) + "|")
def ratio(a, b):
    return f"{a[0] / b[0]:.2f}x" if a and b and b[0] > 0 else "-"
for rw, label in (("randread", "rand-read-4k"), ("randwrite", "rand-write-4k")):
    cells = []
    for key, _ in cols:
        v = res.get((key, rw))
        cells.append(f"{v[0] / 1e3:.1f}k IOPS (p99 {v[1] / 1e3:.2f} ms)" if v else "-")
    b = res.get(("blockd-big", rw))
    print(f"| {label} | " + " | ".join(cells) + f" | {ratio(b, res.get(('qcow2', rw)))} | {ratio(b, res.get(('blockd-small', rw)))} |")
PY
