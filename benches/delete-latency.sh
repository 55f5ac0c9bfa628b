#!/usr/bin/env bash
# Delete latency under load: a store with a volume `v` of N GiB and a
# snapshot `s` of it that shares nothing (v written, snapshotted, then
# written over again), and a 1 GiB volume `w`. While fio reads `w` at
# random, 4 KiB at depth 1 over NBD, `blockd snapshot delete s` runs
# through the admin socket of `blockd serve`. Prints the time the command
# took to answer, the time until the server logged that the pending frees
# were done (polled every 10 ms), the read latency p50/p99/max during the
# run, and the server's peak RSS from just before the delete.
#
#   benches/delete-latency.sh SIZE_GIB [BLOCKD]
#   benches/delete-latency.sh 4 target/debug/blockd
#
# FILL=random writes `v` (both times) with 4 KiB random writes at depth 32
# instead of 1 MiB sequential ones: every block is then its own extent,
# the most references a snapshot of that size can hold (sequential 1 MiB
# writes make extents of 32 blocks).
#
# COMPRESS=1 makes `v` a compressed volume and its fills 90 % compressible
# (fio's buffer_compress_percentage, refilled per write): the same number
# of one-block extents and references, stored in about a sixth of the
# space, so the 16 GiB random case fits a small disk.
#
# READ_S: seconds of reads, from 2 s before the delete (default 4 + N/2);
# the time until the frees are done is polled past them, up to FREE_WAIT s
# (default 300), and printed as "not done in time" beyond.
#
# METRICS=1 also serves /metrics on loopback and prints, from just before
# the delete to the end of the frees, the store-lock holds by holder (count,
# seconds, longest bucket), metadata pages read and where, checkpoints, and
# table leaves written in slices; then the store-lock holds of 20 ms or
# more the server logged (during the whole run). Needs curl.
#
# Stores go under BENCH_DIR (default target/). Needs fio and python3. The
# server gets BLOCKD_CACHE_SIZE and BLOCKD_DIRTY_LIMIT from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n 2,34p "$0" >&2; exit 2; }
N=$1
B=${2:-target/release/blockd}
BASE=${BENCH_DIR:-$PWD/target}
mkdir -p "$BASE"
d=$(mktemp -d "$BASE/delete-latency.XXXXXX")
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$d"' EXIT
"$B" --data-dir "$d/d" volume create v --size "${N}G" ${COMPRESS:+--compress} >/dev/null
"$B" --data-dir "$d/d" volume create w --size 1G >/dev/null
metrics=()
if [ -n "${METRICS:-}" ]; then
  mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  metrics=(--metrics-listen "127.0.0.1:$mport")
fi
BLOCKD_LOG=info "$B" --data-dir "$d/d" serve --api-listen "" --nbd-listen "" \
  --nbd-socket "$d/s.sock" "${metrics[@]}" 2>"$d/serve.log" &
pid=$!
for _ in $(seq 1 200); do [ -S "$d/s.sock" ] && break; sleep 0.05; done
FILL=${FILL:-seq}
squeeze=()
[ -n "${COMPRESS:-}" ] && squeeze=(--buffer_compress_percentage=90 --buffer_compress_chunk=4k --refill_buffers)
fill() { # volume size [fio options: 1 MiB sequential by default]
  local v=$1 size=$2
  shift 2
  fio --name=fill --ioengine=nbd --uri="nbd+unix:///$v?socket=$d/s.sock" --rw=write \
    --bs=1M --iodepth=16 --size="$size" --end_fsync=1 --output-format=terse "$@" >/dev/null
}
fill_v() {
  case $FILL in
    random) fill v "${N}G" --rw=randwrite --bs=4k --iodepth=32 "${squeeze[@]}" ;;
    *) fill v "${N}G" "${squeeze[@]}" ;;
  esac
}
fill w 1G
fill_v
"$B" --data-dir "$d/d" snapshot create v s >/dev/null
fill_v
sleep 2 # let housekeeping settle
READ_S=${READ_S:-$((4 + N / 2))}
fio --name=reads --ioengine=nbd --uri="nbd+unix:///w?socket=$d/s.sock" --rw=randread \
  --bs=4k --iodepth=1 --size=1G --time_based --runtime="$READ_S" \
  --output-format=json >"$d/fio.json" &
fpid=$!
sleep 2
n0=$(grep -c "pending frees done" "$d/serve.log" || true)
# Peak RSS from here on (the fills' buffers do not count).
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
[ -n "${METRICS:-}" ] && curl -sf "http://127.0.0.1:$mport/metrics" >"$d/m0"
t0=$(date +%s.%N)
"$B" --data-dir "$d/d" snapshot delete s >/dev/null
t1=$(date +%s.%N)
# Polled until the free thread logs that it is done (up to FREE_WAIT s,
# default 300), past the end of the reads if need be: the reads cover the
# first READ_S s after the delete, which a large random case outlasts.
for _ in $(seq 1 $((${FREE_WAIT:-300} * 100))); do
  [ "$(grep -c "pending frees done" "$d/serve.log" || true)" -gt "$n0" ] && break
  sleep 0.01
done
t2=$(date +%s.%N)
[ "$(grep -c "pending frees done" "$d/serve.log" || true)" -gt "$n0" ] || t2=nan
[ -n "${METRICS:-}" ] && curl -sf "http://127.0.0.1:$mport/metrics" >"$d/m1"
wait "$fpid"
rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
python3 - "$d/fio.json" "$t0" "$t1" "$t2" "$rss" "$N" "$rss0" "$FILL" "$READ_S" <<'PY'
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.find("{"):])["jobs"][0]["read"]
p = j["clat_ns"]["percentile"]
t0, t1, t2 = map(float, sys.argv[2:5])
freed = "not done in time" if t2 != t2 else "%.2f s" % (t2 - t0)
print("%s GiB snapshot (%s fill): delete answered in %.1f ms, freed after %s; "
      "4 KiB QD1 reads (the first %s s) p50 %.3f ms p99 %.3f ms max %.1f ms (%d IOPS); "
      "RSS %d MiB before, peak %d MiB" % (
    sys.argv[6], sys.argv[8], (t1 - t0) * 1e3, freed, sys.argv[9], p["50.000000"] / 1e6,
    p["99.000000"] / 1e6, j["clat_ns"]["max"] / 1e6, j["iops"], int(sys.argv[7]) // 1024,
    int(sys.argv[5]) // 1024))
PY
grep "pending frees done" "$d/serve.log" | tail -1 || true
[ -n "${METRICS:-}" ] || exit 0
# Store-lock holds of 20 ms or more, as the server logged them (any time).
grep "long store-lock hold\|long checkpoint" "$d/serve.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -20 || true
python3 - "$d/m0" "$d/m1" <<'PY'
import re, sys
def load(f):
    m = {}
    for line in open(f):
        if line.startswith("#") or not line.strip():
            continue
        k, v = line.rsplit(" ", 1)
        m[k] = float(v)
    return m
a, b = load(sys.argv[1]), load(sys.argv[2])
d = {k: v - a.get(k, 0.0) for k, v in b.items()}
for h in ("io", "checkpoint", "reclaim", "free"):
    lab = 'holder="%s"' % h
    n = d.get('blockd_engine_state_lock_hold_seconds_count{%s}' % lab, 0)
    s = d.get('blockd_engine_state_lock_hold_seconds_sum{%s}' % lab, 0)
    buckets = sorted(
        (float(re.search(r'le="([^"]+)"', k).group(1)), v)
        for k, v in d.items()
        if k.startswith("blockd_engine_state_lock_hold_seconds_bucket{") and lab in k)
    hist, prev = [], 0.0
    for le, c in buckets:
        if c > prev:
            hist.append("%d<=%gms" % (c - prev, le * 1e3))
        prev = c
    print("holds %-10s %8d in %7.2f s: %s" % (h, n, s, " ".join(hist)))
for k in sorted(d):
    if d[k] and (k.startswith("blockd_engine_metadata_reads") or k.startswith("blockd_engine_checkpoints")
                 or "table_leaves" in k or k.startswith("blockd_engine_cache_lookups")
                 or k.startswith("blockd_engine_client_metadata") or k.startswith("blockd_engine_fetch_retries")):
        print("%s +%d" % (k, d[k]))
PY
