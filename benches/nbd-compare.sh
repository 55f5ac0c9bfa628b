#!/usr/bin/env bash
# Compares blockd's NBD server with qemu-nbd (qcow2, and raw, on the same
# filesystem) and nbdkit's memory plugin, in one run, with fio's nbd engine
# over Unix sockets. Prints one table with ratios (blockd / other).
#
#   benches/nbd-compare.sh            # RUNTIME=5 s per row, 1 GiB targets
#   RUNTIME=10 SIZE_MB=2048 BENCH_DIR=/somewhere benches/nbd-compare.sh
#   BLOCKD_BASE=/tmp/blockd-old benches/nbd-compare.sh  # also an older build
#   SERVERS="blockd blockd-base" benches/nbd-compare.sh # only these servers
#   REPEAT=3 benches/nbd-compare.sh   # each row 3 times, the median kept
#                                     # (single 5 s rows spread +-15% here)
#   TLS=1 benches/nbd-compare.sh      # every server behind STARTTLS (X.509,
#                                     # certificates made with openssl)
#
# Needs qemu-utils, nbdkit and fio (scripts/test.sh installs them). Each
# server runs alone; every target is first filled with a sequential write
# so that reads read data, not holes.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNTIME=${RUNTIME:-5}
REPEAT=${REPEAT:-1}
TLS=${TLS:-0}
SIZE_MB=${SIZE_MB:-1024}
BASE=${BENCH_DIR:-$PWD/target}
mkdir -p "$BASE"
W=$(mktemp -d "$BASE/nbd-bench.XXXXXX")
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

for tool in fio qemu-nbd qemu-img nbdkit python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
cargo build --release --bin blockd >&2
BLOCKD=$PWD/target/release/blockd

# With TLS=1: one directory of X.509 material all servers and libnbd read
# (ca-cert.pem, server-cert.pem, server-key.pem: the names qemu-nbd,
# nbdkit and libnbd look for).
PKI=$W/pki
BLOCKD_TLS=()
QEMU_TLS=()
NBDKIT_TLS=()
if [ "$TLS" = 1 ]; then
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout ca-key.pem -out ca-cert.pem -days 2 -subj "/CN=bench CA" \
      -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server-key.pem -out server.csr -subj /CN=localhost 2>/dev/null
    printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' > ext.cnf
    openssl x509 -req -in server.csr -CA ca-cert.pem -CAkey ca-key.pem \
      -CAcreateserial -out server-cert.pem -days 2 -extfile ext.cnf 2>/dev/null
  )
  BLOCKD_TLS=(--nbd-tls-cert "$PKI/server-cert.pem" --nbd-tls-key "$PKI/server-key.pem")
  QEMU_TLS=(--object "tls-creds-x509,id=tls0,endpoint=server,verify-peer=off,dir=$PKI" --tls-creds tls0)
  NBDKIT_TLS=(--tls=require "--tls-certificates=$PKI")
  # fio may not name local files in the URI: libnbd finds the CA in
  # $HOME/.pki/libnbd instead.
  mkdir -p "$W/home/.pki/libnbd"
  cp "$PKI/ca-cert.pem" "$W/home/.pki/libnbd/"
  export HOME=$W/home
fi

# name rw bs depth jobs
ROWS=(
  "seq-write-1M-qd16 write 1M 16 1"
  "seq-read-1M-qd16 read 1M 16 1"
  "rand-write-4k-qd32 randwrite 4k 32 1"
  "rand-read-4k-qd32 randread 4k 32 1"
  "seq-write-1M-qd16-4j write 1M 16 4"
  "seq-read-1M-qd16-4j read 1M 16 4"
  "rand-write-4k-qd32-4j randwrite 4k 32 4"
  "rand-read-4k-qd32-4j randread 4k 32 4"
)
RESULTS=$W/results.tsv
: > "$RESULTS"

wait_sock() {
  for _ in $(seq 1 600); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "socket $1 never appeared" >&2; exit 1
}

fio_run() { # uri rw bs depth jobs [extra...]
  local uri=$1 rw=$2 bs=$3 qd=$4 jobs=$5; shift 5
  local size=$((SIZE_MB / jobs))
  fio --name=bench --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" \
    --iodepth="$qd" --numjobs="$jobs" --size="${size}M" --offset_increment="${size}M" \
    --group_reporting --output-format=json "$@"
}

measure() { # server-name socket
  local name=$1 uri="nbd+unix:///v?socket=$2"
  [ "$TLS" = 1 ] && uri="nbds+unix:///v?socket=$2"
  echo "== $name: filling" >&2
  fio_run "$uri" write 1M 16 1 >/dev/null
  for row in "${ROWS[@]}"; do
    set -- $row
    local label=$1
    local vals=() out
    for _ in $(seq 1 "$REPEAT"); do
      out=$(fio_run "$uri" "$2" "$3" "$4" "$5" --time_based --runtime="$RUNTIME")
      vals+=("$(printf '%s' "$out" | python3 -c '
import json, sys
t = sys.stdin.read()
j = json.loads(t[t.find("{"):])
job = j["jobs"][0]
side = job["read"] if job["read"]["io_bytes"] > 0 else job["write"]
print(side["bw_bytes"], side["iops"])
')")
    done
    # The median of the repeats (by bandwidth for sequential rows, else IOPS).
    local value
    value=$(printf '%s\n' "${vals[@]}" | python3 -c '
import sys
v = [l.split() for l in sys.stdin if l.strip()]
k = 0 if sys.argv[1].startswith("seq") else 1
v.sort(key=lambda x: float(x[k]))
print(" ".join(v[len(v) // 2]))
' "$label")
    echo "   $label: $value" >&2
    printf '%s\t%s\t%s\n' "$name" "$label" "$value" >> "$RESULTS"
  done
}

stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

want() { [ -z "${SERVERS:-}" ] || [[ " $SERVERS " == *" $1 "* ]]; }

run_blockd() { # name binary
  "$2" --data-dir "$W/$1" volume create v --size "${SIZE_MB}M" >/dev/null
  BLOCKD_LOG=warn "$2" --data-dir "$W/$1" serve --api-listen "" --nbd-listen "" --nbd-socket "$W/$1.sock" "${BLOCKD_TLS[@]}" &
  PID=$!
  wait_sock "$W/$1.sock"
  measure "$1" "$W/$1.sock"
  stop
  rm -rf "${W:?}/$1"
}

# blockd (and, with BLOCKD_BASE, an older build for before/after)
want blockd && run_blockd blockd "$BLOCKD"
[ -n "${BLOCKD_BASE:-}" ] && want blockd-base && run_blockd blockd-base "$BLOCKD_BASE"

# qemu-nbd, qcow2
if want qemu-nbd-qcow2; then
qemu-img create -q -f qcow2 "$W/q.qcow2" "${SIZE_MB}M"
qemu-nbd -t -f qcow2 -x v -e 16 "${QEMU_TLS[@]}" -k "$W/qcow2.sock" "$W/q.qcow2" &
PID=$!
wait_sock "$W/qcow2.sock"
measure qemu-nbd-qcow2 "$W/qcow2.sock"
stop
rm -f "$W/q.qcow2"
fi

# qemu-nbd, raw
if want qemu-nbd-raw; then
truncate -s "${SIZE_MB}M" "$W/r.raw"
qemu-nbd -t -f raw -x v -e 16 "${QEMU_TLS[@]}" -k "$W/raw.sock" "$W/r.raw" &
PID=$!
wait_sock "$W/raw.sock"
measure qemu-nbd-raw "$W/raw.sock"
stop
rm -f "$W/r.raw"
fi

# nbdkit memory
if want nbdkit-memory; then
nbdkit -f "${NBDKIT_TLS[@]}" -U "$W/mem.sock" memory "${SIZE_MB}M" &
PID=$!
wait_sock "$W/mem.sock"
measure nbdkit-memory "$W/mem.sock"
stop
fi

echo
echo "$(date -u +%Y-%m-%d) nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\" runtime=${RUNTIME}s size=${SIZE_MB}MiB repeat=${REPEAT} tls=${TLS}"
python3 - "$RESULTS" <<'EOF'
import sys, collections
res = collections.defaultdict(dict)
order = []
for line in open(sys.argv[1]):
    server, row, bw, iops = line.split()
    res[row][server] = (float(bw), float(iops))
    if row not in order:
        order.append(row)
servers = ["blockd", "qemu-nbd-qcow2", "qemu-nbd-raw", "nbdkit-memory"]
if any("blockd-base" in r for r in res.values()):
    servers.insert(1, "blockd-base")
def fmt(row, v):
    return f"{v[0] / 1e6:.0f} MB/s" if row.startswith("seq") else f"{v[1] / 1e3:.1f}k IOPS"
def val(row, v):
    return v[0] if row.startswith("seq") else v[1]
short = {"blockd-base": "base", "qemu-nbd-qcow2": "qcow2", "qemu-nbd-raw": "raw", "nbdkit-memory": "memory"}
print("| row | " + " | ".join(servers) + " | " + " | ".join(f"blockd/{short[s]}" for s in servers[1:]) + " |")
print("|---" * (2 * len(servers)) + "|")
for row in order:
    r = res[row]
    cells = [fmt(row, r[s]) if s in r else "-" for s in servers]
    b = val(row, r["blockd"]) if "blockd" in r else None
    ratios = [f"{b / val(row, r[s]):.2f}x" if b and s in r and val(row, r[s]) > 0 else "-" for s in servers[1:]]
    print(f"| {row} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
EOF
