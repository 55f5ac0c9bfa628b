#!/usr/bin/env bash
# Sequential 1 MiB write and read on one blockd volume, through the FUSE
# export (a file under `blockd mount`, fio psync, 4 jobs and 1 job at
# queue depth 1 each) and through NBD (`blockd serve`, fio's nbd engine over
# the Unix socket, depth 16), in one run, printing a table with FUSE/NBD
# ratios. Usage: benches/fuse-vs-nbd.sh [SIZE_MIB] (default 1024).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
cargo build --release --bin blockd >/dev/null
B=$PWD/target/release/blockd
W=$(mktemp -d "${BLOCKD_BENCH_DIR:-/tmp}/fusebench.XXXX")
trap 'fusermount3 -u "$W/mnt" 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
$B --data-dir "$W/data" volume create v --size "$((SIZE_MIB + 64))M" >/dev/null

bw() { # fio terse v3: field 7 = read KiB/s, field 48 = write KiB/s (per group)
  awk -F';' -v f="$1" '{s+=$f} END {printf "%.0f", s/1024}'
}
run_fuse() { # rw jobs depth-note
  local rw=$1 jobs=$2
  $B --data-dir "$W/data" mount "$W/mnt" 2>/dev/null & local pid=$!
  for _ in $(seq 100); do [ -e "$W/mnt/volumes/v" ] && break; sleep 0.1; done
  local per=$((SIZE_MIB / jobs))
  local out
  out=$(fio --name=f --filename="$W/mnt/volumes/v" --rw="$rw" --bs=1M --size="${per}M" \
        --offset_increment="${per}M" --numjobs="$jobs" --ioengine=psync --end_fsync=1 \
        --group_reporting --output-format=terse)
  kill -TERM $pid; wait $pid || true
  if [ "$rw" = write ]; then echo "$out" | bw 48; else echo "$out" | bw 7; fi
}
run_nbd() {
  local rw=$1 jobs=$2
  $B --data-dir "$W/data" serve --api-listen "" --nbd-listen "" --nbd-socket "$W/nbd.sock" 2>/dev/null & local pid=$!
  for _ in $(seq 100); do [ -S "$W/nbd.sock" ] && break; sleep 0.1; done
  local per=$((SIZE_MIB / jobs))
  local out
  out=$(fio --name=n --ioengine=nbd --uri="nbd+unix:///v?socket=$W/nbd.sock" --rw="$rw" --bs=1M \
        --size="${per}M" --offset_increment="${per}M" --numjobs="$jobs" --iodepth=16 \
        --group_reporting --output-format=terse)
  kill -TERM $pid; wait $pid || true
  if [ "$rw" = write ]; then echo "$out" | bw 48; else echo "$out" | bw 7; fi
}

printf "%-28s %12s %12s %8s\n" "workload (1 MiB blocks)" "FUSE MiB/s" "NBD MiB/s" "FUSE/NBD"
for jobs in 1 4; do
  for rw in write read; do
    f=$(run_fuse $rw $jobs); n=$(run_nbd $rw $jobs)
    printf "%-28s %12s %12s %8s\n" "seq $rw, $jobs job(s)" "$f" "$n" "$(awk -v a="$f" -v b="$n" 'BEGIN{printf "%.2f", a/b}')"
  done
done
