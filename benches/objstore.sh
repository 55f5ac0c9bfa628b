#!/usr/bin/env bash
# blockd on an object store next to Ceph's own block device, in one run on
# one one-node Ceph cluster (scripts/ceph.sh: monitor, manager, one
# BlueStore OSD, radosgw), with the same fio jobs (issue #17, item 9):
#
#   s3-cold  a store restored lazily from the bucket (every segment still
#            in the bucket: reads are ranged GETs through radosgw), served
#            with --object-store: the read rows only
#   s3       the same store restored --full (every segment local), served
#            with --object-store (the uploader running, 10 s interval)
#   local    a plain store (no object store), filled the same way
#   rbd      an RBD image of the same size in the same cluster, through
#            fio's rbd engine (librbd)
#
# plus `rados bench -p bench 10 write` on the cluster, blockd's upload
# throughput (the whole filled store, uploaded at stop), and the lazy and
# full restore times of that store. Prints one table with ratios to RBD.
#
#   benches/objstore.sh                     # SIZE_MB=2048, RUNTIME=10 s
#   BLOCKD=/path/to/blockd benches/objstore.sh   # a prebuilt binary
#   SIZE_MB=1024 RUNTIME=15 BENCH_DIR=/somewhere benches/objstore.sh
#
# The cluster's OSD is a 10 GiB sparse file: the store's objects, the RBD
# image and rados bench's objects must fit in it together, so SIZE_MB is
# at most about 3072. Needs the Ceph packages (scripts/test.sh installs
# them) and fio with its nbd and rbd engines (Debian's fio has both).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNTIME=${RUNTIME:-10}
SIZE_MB=${SIZE_MB:-2048}
BASE=${BENCH_DIR:-$PWD/target}
mkdir -p "$BASE"
W=$(mktemp -d "$BASE/objstore-bench.XXXXXX")
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  bash scripts/ceph.sh stop "$W/ceph" || true
  rm -rf "$W"
}
trap cleanup EXIT

for tool in fio rbd rados ceph python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
for engine in nbd rbd; do
  fio --enghelp="$engine" >/dev/null 2>&1 || { echo "fio has no $engine engine" >&2; exit 1; }
done
if [ -z "${BLOCKD:-}" ]; then
  cargo build --release --bin blockd >&2
  BLOCKD=$PWD/target/release/blockd
fi

started=$(date +%s)
echo "== ceph" >&2
bash scripts/ceph.sh start "$W/ceph" >&2
set -a
# shellcheck disable=SC1091
. "$W/ceph/env"
set +a
export CEPH_CONF=$W/ceph/ceph.conf
C=(ceph --conf "$CEPH_CONF" --name client.admin)
URL="s3://$S3_BUCKET/bench"

ROWS=(
  "seq-write-1M-qd16 write 1M 16"
  "seq-read-1M-qd16 read 1M 16"
  "rand-write-4k-qd32 randwrite 4k 32"
  "rand-read-4k-qd32 randread 4k 32"
)
RESULTS=$W/results.tsv
NOTES=$W/notes.txt
: > "$RESULTS"
: > "$NOTES"
note() { echo "$*" | tee -a "$NOTES" >&2; }

wait_sock() {
  for _ in $(seq 1 1200); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "socket $1 never appeared" >&2; exit 1
}

# fio on a target: "nbd SOCKET" or "rbd IMAGE"; then rw bs depth [extra...]
fio_run() {
  local kind=$1 where=$2 rw=$3 bs=$4 qd=$5; shift 5
  local target=()
  if [ "$kind" = nbd ]; then
    target=(--ioengine=nbd --uri="nbd+unix:///v?socket=$where")
  else
    target=(--ioengine=rbd --clientname=admin --pool=rbd --rbdname="$where")
  fi
  fio --name=bench "${target[@]}" --rw="$rw" --bs="$bs" --iodepth="$qd" \
    --size="${SIZE_MB}M" --output-format=json "$@"
}

# Runs the rows whose names match $4 (a regex) on a target; records them
# under the column name $1.
measure() { # column kind where rows-regex
  local name=$1 kind=$2 where=$3 only=$4
  for row in "${ROWS[@]}"; do
    set -- $row
    [[ $1 =~ $only ]] || continue
    local out value
    out=$(fio_run "$kind" "$where" "$2" "$3" "$4" --time_based --runtime="$RUNTIME")
    value=$(printf '%s' "$out" | python3 -c '
import json, sys
t = sys.stdin.read()
j = json.loads(t[t.find("{"):])
job = j["jobs"][0]
side = job["read"] if job["read"]["io_bytes"] > 0 else job["write"]
print(side["bw_bytes"], side["iops"])
')
    echo "   $name $1: $value" >&2
    printf '%s\t%s\t%s\n' "$name" "$1" "$value" >> "$RESULTS"
  done
}

# `blockd serve` on data directory $1 with more arguments; its log in $1.log.
serve() {
  local dir=$1; shift
  BLOCKD_LOG=info "$BLOCKD" --data-dir "$dir" serve --api-listen "" --nbd-listen "" \
    --nbd-socket "$dir.sock" "$@" 2>"$dir.log" &
  PID=$!
  wait_sock "$dir.sock"
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
secs() { python3 -c "import time; print(f'{time.time() - $1:.1f}')"; }
now() { python3 -c 'import time; print(time.time())'; }

# 1. rados bench: what the cluster itself writes (4 MiB objects, 16 in
#    flight), in a pool of its own, cleaned up after.
echo "== rados bench" >&2
"${C[@]}" osd pool create bench 8 >/dev/null 2>&1
rados --conf "$CEPH_CONF" -p bench bench 10 write >"$W/rados.txt" 2>&1
rados_mbs=$(awk -F: '/^Bandwidth \(MB\/sec\)/ {gsub(/ /, "", $2); print $2}' "$W/rados.txt")
note "rados bench -p bench 10 write: ${rados_mbs} MB/s"

# 2. A store filled through NBD, uploaded whole at stop.
echo "== blockd --object-store: fill, upload at stop" >&2
A=$W/a
"$BLOCKD" --data-dir "$A" volume create v --size "${SIZE_MB}M" >/dev/null
serve "$A" --object-store "$URL" --object-store-interval 3600
fio_run nbd "$A.sock" write 1M 16 >/dev/null
t0=$(now)
stop
line=$(grep 'the bucket holds the final generation' "$A.log" || true)
[ -n "$line" ] || { echo "no final upload in $A.log" >&2; tail "$A.log" >&2; exit 1; }
up_bytes=$(printf '%s' "$line" | sed -E 's/.*\(([0-9]+) bytes uploaded.*/\1/')
up_secs=$(printf '%s' "$line" | sed -E 's/.*, ([0-9.]+)s waited at stop.*/\1/')
note "upload at stop: $((up_bytes >> 20)) MiB in ${up_secs}s: $(python3 -c "print(f'{$up_bytes / 1e6 / $up_secs:.0f}')") MB/s (stop took $(secs "$t0")s)"
rm -rf "$A" "$A.log"

# 3. Cold: restored lazily (nothing downloaded), read through the bucket.
echo "== s3-cold: lazy restore" >&2
B=$W/b
t0=$(now)
"$BLOCKD" --data-dir "$B" restore --object-store "$URL" >"$W/lazy.txt"
note "lazy restore of ${SIZE_MB} MiB: $(secs "$t0")s: $(cat "$W/lazy.txt")"
serve "$B" --object-store "$URL" --object-store-interval 10
measure s3-cold nbd "$B.sock" 'read'
stop
rm -rf "$B" "$B.log"

# 4. Warm: restored --full (every segment downloaded), served with the
#    uploader running.
echo "== s3: full restore" >&2
F=$W/f
t0=$(now)
"$BLOCKD" --data-dir "$F" restore --full --object-store "$URL" >"$W/full.txt"
note "full restore of ${SIZE_MB} MiB: $(secs "$t0")s: $(cat "$W/full.txt")"
serve "$F" --object-store "$URL" --object-store-interval 10
measure s3 nbd "$F.sock" '.'
stop
line=$(grep 'the bucket holds the final generation' "$F.log" || true)
note "s3 rows, at stop: $(printf '%s' "$line" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/.*: the bucket/the bucket/')"
rm -rf "$F" "$F.log"

# 5. A plain local store, filled the same way.
echo "== local" >&2
L=$W/l
"$BLOCKD" --data-dir "$L" volume create v --size "${SIZE_MB}M" >/dev/null
serve "$L"
fio_run nbd "$L.sock" write 1M 16 >/dev/null
measure local nbd "$L.sock" '.'
stop
rm -rf "$L" "$L.log"

# 6. RBD: an image of the same size in the same cluster, filled the same
#    way, through librbd.
echo "== rbd" >&2
"${C[@]}" osd pool create rbd 8 >/dev/null 2>&1
rbd --conf "$CEPH_CONF" pool init rbd
rbd --conf "$CEPH_CONF" create --size "$SIZE_MB" rbd/img
fio_run rbd img write 1M 16 >/dev/null
measure rbd rbd img '.'

echo
echo "$(date -u +%Y-%m-%d) nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\" runtime=${RUNTIME}s size=${SIZE_MB}MiB ceph=$(ceph --version | awk '{print $3}') total=$(( $(date +%s) - started ))s"
cat "$NOTES"
echo
python3 - "$RESULTS" <<'EOF'
import sys, collections
res = collections.defaultdict(dict)
order = ["seq-write-1M-qd16", "seq-read-1M-qd16", "rand-write-4k-qd32", "rand-read-4k-qd32"]
for line in open(sys.argv[1]):
    col, row, bw, iops = line.split()
    res[row][col] = (float(bw), float(iops))
cols = ["s3-cold", "s3", "local", "rbd"]
def val(row, v):
    return v[0] / 1e6 if row.startswith("seq") else v[1]
def fmt(row, v):
    return f"{v[0] / 1e6:.0f} MB/s" if row.startswith("seq") else f"{v[1]:.0f} IOPS"
print("| row | " + " | ".join(cols) + " | s3-cold/rbd | s3/rbd | local/rbd |")
print("|---" * (len(cols) + 4) + "|")
for row in order:
    r = res[row]
    cells = [fmt(row, r[c]) if c in r else "-" for c in cols]
    rbd = val(row, r["rbd"]) if "rbd" in r else 0
    ratios = [f"{val(row, r[c]) / rbd:.2f}x" if c in r and rbd > 0 else "-" for c in cols[:3]]
    print(f"| {row} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
EOF
