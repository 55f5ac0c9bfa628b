#!/usr/bin/env bash
# Sequential 1 MiB writes and reads against the disk itself, in one run
# (issue 14, item 5): the raw disk (fio, libaio, O_DIRECT, on a file in the
# same filesystem as the stores), blockd (`blockd serve`, release build),
# qemu-nbd on a qcow2 file and nbdkit memory, the last three through fio's
# nbd engine over Unix sockets. Each write row flushes every FLUSH_EVERY
# writes (fio --fsync: fsync for the disk file, NBD_CMD_FLUSH over NBD), the
# same for every target, so durability is part of every write figure.
#
# Rows run in ROUNDS rounds; each round gives every target a fresh store or
# file (filled by one sequential pass, so reads read data), and the order of
# the targets rotates from round to round (a noisy machine then does not
# always hurt the same one). Prints MB/s min/median/max per target and row,
# and the ratio to the raw disk of the same round, min/median/max.
#
#   benches/seq-vs-disk.sh                 # ROUNDS=3 RUNTIME=5 SIZE_MB=1024
#   ROUNDS=5 FLUSH_EVERY=16 benches/seq-vs-disk.sh
#   TARGETS="disk blockd" benches/seq-vs-disk.sh
#   TARGETS="disk blockd blockd-buffered" ...  # also blockd with
#                                  # --direct-log false (page cache only)
#   BLOCKD=/path/to/blockd benches/seq-vs-disk.sh   # another build
#   BLOCKD_BASE=/path/to/old/blockd TARGETS="disk blockd blockd-base" ...
#                                  # also another build, side by side
#
# Needs fio, qemu-img, qemu-nbd, nbdkit and python3. Files go under
# BENCH_DIR (default target/): that filesystem is the one measured.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
RUNTIME=${RUNTIME:-5}
SIZE_MB=${SIZE_MB:-1024}
FLUSH_EVERY=${FLUSH_EVERY:-16}
QD=${QD:-16}
TARGETS=${TARGETS:-"disk blockd qcow2 memory"}
BASE=${BENCH_DIR:-$PWD/target}
mkdir -p "$BASE"
W=$(mktemp -d "$BASE/seq-vs-disk.XXXXXX")
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT

for tool in fio qemu-nbd qemu-img nbdkit python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ -z "${BLOCKD:-}" ]; then
  cargo build --release --bin blockd >&2
  BLOCKD=$PWD/target/release/blockd
fi

# label rw jobs
ROWS=(
  "seq-write-1M-1j write 1"
  "seq-write-1M-4j write 4"
  "seq-read-1M-1j read 1"
  "seq-read-1M-4j read 4"
)
RESULTS=$W/results.tsv
: > "$RESULTS"

wait_sock() {
  for _ in $(seq 1 600); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "socket $1 never appeared" >&2
  exit 1
}

bw_of() { # fio json on stdin -> bytes/s of the side that moved data
  python3 -c '
import json, sys
t = sys.stdin.read()
j = json.loads(t[t.find("{"):])
job = j["jobs"][0]
side = job["read"] if job["read"]["io_bytes"] > 0 else job["write"]
print(side["bw_bytes"])
'
}

# fio arguments reaching one target: the disk file directly, or NBD.
target_args() { # target
  case $1 in
    disk) echo "--ioengine=libaio --direct=1 --filename=$W/disk.raw" ;;
    *) echo "--ioengine=nbd --uri=nbd+unix:///v?socket=$W/$1.sock" ;;
  esac
}

fio_run() { # target rw jobs [extra...]
  local t=$1 rw=$2 jobs=$3
  shift 3
  local size=$((SIZE_MB / jobs))
  # shellcheck disable=SC2046
  fio --name=seq $(target_args "$t") --rw="$rw" --bs=1M --iodepth="$QD" \
    --numjobs="$jobs" --size="${size}M" --offset_increment="${size}M" \
    --group_reporting --output-format=json "$@"
}

start() { # target
  case $1 in
    disk)
      fallocate -l "${SIZE_MB}M" "$W/disk.raw"
      ;;
    blockd | blockd-buffered | blockd-base)
      local direct=true bin=$BLOCKD
      [ "$1" = blockd-buffered ] && direct=false
      [ "$1" = blockd-base ] && bin=${BLOCKD_BASE:?set BLOCKD_BASE for blockd-base}
      "$bin" --data-dir "$W/$1" volume create v --size "${SIZE_MB}M" >/dev/null
      BLOCKD_LOG=warn "$bin" --data-dir "$W/$1" --direct-log "$direct" serve --api-listen "" \
        --nbd-listen "" --nbd-socket "$W/$1.sock" &
      PID=$!
      wait_sock "$W/$1.sock"
      ;;
    qcow2)
      qemu-img create -q -f qcow2 "$W/q.qcow2" "${SIZE_MB}M"
      qemu-nbd -t -f qcow2 -x v -e 16 -k "$W/qcow2.sock" "$W/q.qcow2" &
      PID=$!
      wait_sock "$W/qcow2.sock"
      ;;
    memory)
      nbdkit -f -U "$W/memory.sock" memory "${SIZE_MB}M" &
      PID=$!
      wait_sock "$W/memory.sock"
      ;;
  esac
}

stop() { # target
  if [ -n "$PID" ]; then kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; fi
  rm -rf "${W:?}/blockd" "$W/blockd-buffered" "$W/blockd-base" "$W/disk.raw" "$W/q.qcow2" "$W"/*.sock
}

read -r -a TS <<< "$TARGETS"
for r in $(seq 1 "$ROUNDS"); do
  n=${#TS[@]}
  for k in $(seq 0 $((n - 1))); do
    t=${TS[$(((k + r - 1) % n))]}
    start "$t"
    fio_run "$t" write 1 >/dev/null # fill: reads read data
    sync
    for row in "${ROWS[@]}"; do
      set -- $row
      extra=(--time_based --runtime="$RUNTIME")
      [ "$2" = write ] && extra+=(--fsync="$FLUSH_EVERY")
      bw=$(fio_run "$t" "$2" "$3" "${extra[@]}" | bw_of)
      echo "round $r $t $1: $((bw / 1000000)) MB/s" >&2
      printf '%s\t%s\t%s\t%s\n' "$r" "$t" "$1" "$bw" >> "$RESULTS"
    done
    stop "$t"
  done
done

echo
echo "$(date -u '+%Y-%m-%d %H:%M') nproc=$(nproc) fs=$(findmnt -n -o FSTYPE -T "$W") rounds=$ROUNDS runtime=${RUNTIME}s size=${SIZE_MB}MiB qd=$QD flush_every=$FLUSH_EVERY blockd=$("$BLOCKD" --version 2>/dev/null | head -1)"
python3 - "$RESULTS" <<'EOF'
import sys, collections, statistics
bw = collections.defaultdict(dict)  # (target,row) -> round -> bytes/s
rows, targets = [], []
for line in open(sys.argv[1]):
    r, t, row, b = line.split()
    bw[(t, row)][int(r)] = float(b)
    if row not in rows: rows.append(row)
    if t not in targets: targets.append(t)
def mmm(v):
    v = sorted(v)
    return v[0], statistics.median(v), v[-1]
print("| row | target | MB/s min / median / max | vs disk min / median / max |")
print("|---|---|---|---|")
for row in rows:
    for t in targets:
        v = bw.get((t, row))
        if not v: continue
        lo, med, hi = mmm(v.values())
        cell = f"{lo/1e6:.0f} / {med/1e6:.0f} / {hi/1e6:.0f}"
        d = bw.get(("disk", row), {})
        ratios = [v[r] / d[r] for r in v if r in d and d[r] > 0]
        rc = "-" if t == "disk" or not ratios else " / ".join(f"{x:.2f}x" for x in mmm(ratios))
        print(f"| {row} | {t} | {cell} | {rc} |")
print()
print("per round (MB/s):")
for row in rows:
    for t in targets:
        v = bw.get((t, row), {})
        print(f"  {row:18} {t:7} " + " ".join(f"{v[r]/1e6:6.0f}" for r in sorted(v)))
EOF
