#!/usr/bin/env bash
# Long simulated power-cut run: builds and verifies IMAGES crash images
# (default 100,000) from recorded seeded workloads, split over JOBS shards
# (default: the number of CPUs), each on its own range of workload seeds.
# See engine/tests/powercut.rs for what each image must satisfy.
#
# usage: scripts/soak-powercut.sh [IMAGES] [JOBS]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-100000}
JOBS=${2:-$(nproc)}
PER=$(( (IMAGES + JOBS - 1) / JOBS ))
SEEDS=$(( PER / 250 > 0 ? PER / 250 : 1 ))
cargo test -p blockd-engine --test powercut --no-run
pids=()
for j in $(seq 0 $((JOBS - 1))); do
  BLOCKD_POWERCUT_IMAGES=$PER BLOCKD_POWERCUT_SEED_BASE=$((j * SEEDS)) \
    cargo test -q -p blockd-engine --test powercut -- --nocapture >"${TMPDIR:-/tmp}/powercut-shard-$j.log" 2>&1 &
  pids+=($!)
done
status=0
for j in "${!pids[@]}"; do
  if wait "${pids[$j]}"; then
    grep -h "crash images verified" "${TMPDIR:-/tmp}/powercut-shard-$j.log"
  else
    status=1
    echo "shard $j FAILED:"; tail -30 "${TMPDIR:-/tmp}/powercut-shard-$j.log"
  fi
done
exit $status
