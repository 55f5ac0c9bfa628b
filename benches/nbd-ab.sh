#!/usr/bin/env bash
# A/B of blockd builds over NBD: for each round, each binary in turn gets a
# fresh store with a 1 GiB volume, filled by one sequential pass, then one
# 5 s fio run (nbd engine, Unix socket); prints bandwidth, IOPS and
# completion-latency percentiles per run. Alternating fresh stores is what
# makes small differences visible on a noisy machine.
#
# PREWRITE_IOS=N: after the fill, the same N random 4 KiB writes in every
# run (fixed seed, ending with a flush), then SETTLE seconds (default 4)
# of quiet, so that each build reads the same written state and none is
# still finishing its writes' deferred work during the row.
# CPU=1: also prints the server's CPU time per request over the row
# (`perf stat` task-clock of the server process / requests done), which
# varies far less than IOPS when other work shares the machine, and its
# context switches per request (hand-offs between threads).
#
#   benches/nbd-ab.sh ROUNDS RW BS DEPTH JOBS BINARY...
#   benches/nbd-ab.sh 3 write 1M 16 4 /tmp/blockd-old target/release/blockd
#
# Stores go under BENCH_DIR (default target/). Needs fio and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 6 ] || { sed -n 2,11p "$0" >&2; exit 2; }
ROUNDS=$1 RW=$2 BS=$3 QD=$4 JOBS=$5
shift 5
BASE=${BENCH_DIR:-$PWD/target}
mkdir -p "$BASE"
for r in $(seq 1 "$ROUNDS"); do
  for b in "$@"; do
    d=$(mktemp -d "$BASE/nbd-ab.XXXXXX")
    "$b" --data-dir "$d/d" volume create v --size 1024M >/dev/null
    BLOCKD_LOG=warn "$b" --data-dir "$d/d" serve --api-listen "" --nbd-listen "" --nbd-socket "$d/s.sock" &
    pid=$!
    for _ in $(seq 1 200); do [ -S "$d/s.sock" ] && break; sleep 0.05; done
    uri="nbd+unix:///v?socket=$d/s.sock"
    fio --name=fill --ioengine=nbd --uri="$uri" --rw=write --bs=1M --iodepth=16 \
      --size=1024M --output-format=terse >/dev/null
    if [ -n "${PREWRITE_IOS:-}" ]; then
      fio --name=prewrite --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=32 \
        --size=1024M --number_ios="$PREWRITE_IOS" --randrepeat=1 --norandommap \
        --end_fsync=1 --output-format=terse >/dev/null
      sleep "${SETTLE:-4}"
    fi
    cpu=""
    if [ -n "${CPU:-}" ]; then
      perf stat -x, -e task-clock,context-switches -p "$pid" -o "$d/cpu.txt" -- sleep 5.5 &
      cpu=$!
    fi
    size=$((1024 / JOBS))
    fio --name=ab --ioengine=nbd --uri="$uri" --rw="$RW" --bs="$BS" --iodepth="$QD" \
      --numjobs="$JOBS" --size="${size}M" --offset_increment="${size}M" --group_reporting \
      --time_based --runtime=5 --output-format=json | python3 -c '
import json, sys
t = sys.stdin.read()
j = json.loads(t[t.find("{"):])["jobs"][0]
s = j["read"] if j["read"]["io_bytes"] > 0 else j["write"]
p = s["clat_ns"]["percentile"]
ms = lambda k: p[k] / 1e6
print("%.0f MB/s %.0f IOPS p50 %.1f ms p99 %.1f ms p99.9 %.1f ms max %.1f ms %d" % (
    s["bw_bytes"] / 1e6, s["iops"], ms("50.000000"), ms("99.000000"), ms("99.900000"),
    s["clat_ns"]["max"] / 1e6, s["total_ios"]))
' > "$d/row.txt"
    read -r -a row < "$d/row.txt"
    line="${row[*]:0:16}"
    if [ -n "$cpu" ]; then
      wait "$cpu"
      ms=$(grep task-clock "$d/cpu.txt" | cut -d, -f1)
      cs=$(grep context-switches "$d/cpu.txt" | cut -d, -f1)
      line="$line cpu $(python3 -c "print('%.1f us/request %.1f cs/request' % ($ms * 1000 / ${row[16]}, $cs / ${row[16]}))")"
    fi
    echo "$b round $r: $line"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$d"
  done
done
