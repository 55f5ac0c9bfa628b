#!/usr/bin/env bash
# Memory of `blockd serve` while a snapshotted volume is overwritten at
# random (issue 14: "memory stays under the configured cache and dirty
# bounds"). A SIZE volume is written with 4 KiB random writes at depth 32
# over NBD (every block once), snapshotted, and written the same way
# again, so the second fill shadows every map leaf and increments every
# block's extent. Prints the server's peak RSS (VmHWM) after each fill and
# its RSS every 5 s to the timeline file; compare with cache + dirty limit
# + 256 MiB.
#
#   benches/overwrite-rss.sh SIZE [BLOCKD]      # e.g. 16G target/release/blockd
#
# Env: BLOCKD_CACHE_SIZE, BLOCKD_DIRTY_LIMIT (passed to the server),
# BENCH_DIR (default target/; needs about 2 x SIZE of disk). Needs fio.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n 2,15p "$0" >&2; exit 2; }
SIZE=$1
B=${2:-target/release/blockd}
BASE=${BENCH_DIR:-$PWD/target}
mkdir -p "$BASE"
d=$(mktemp -d "$BASE/overwrite-rss.XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$d"' EXIT
"$B" --data-dir "$d/d" volume create v --size "$SIZE" >/dev/null
BLOCKD_LOG=warn "$B" --data-dir "$d/d" serve --api-listen "" --nbd-listen "" \
  --nbd-socket "$d/s.sock" 2>"$d/serve.log" &
pid=$!
for _ in $(seq 1 200); do [ -S "$d/s.sock" ] && break; sleep 0.05; done
hwm() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status"; }
(while kill -0 "$pid" 2>/dev/null; do
  echo "$(date -u +%T) $(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status" 2>/dev/null) MiB"
  sleep 5
done >"$d/rss.log") &
fill() {
  fio --name=fill --ioengine=nbd --uri="nbd+unix:///v?socket=$d/s.sock" --rw=randwrite \
    --bs=4k --iodepth=32 --size="$SIZE" --end_fsync=1 --output-format=terse >/dev/null
}
fill
echo "after the first fill: peak RSS $(hwm) MiB"
"$B" --data-dir "$d/d" snapshot create v s >/dev/null
fill
echo "after the snapshot and the second fill: peak RSS $(hwm) MiB"
echo "RSS timeline (every 5 s):"
cat "$d/rss.log"
