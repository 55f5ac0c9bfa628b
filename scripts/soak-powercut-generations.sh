#!/usr/bin/env bash
# Long multi-generation power-cut run: verifies IMAGES crash images (default
# 100,000) from chains of crash / recover / write / close generations on one
# store, split over JOBS shards (default: the number of CPUs), shard j
# starting at chain seed BASE + j * 100000 (BASE default 0). See
# engine/tests/powercut_generations.rs for the model and what each image
# must satisfy. A failing shard prints the chain seed and generation; rerun
# it alone with BLOCKD_POWERCUT_GEN_CHAIN=<seed> BLOCKD_POWERCUT_GEN_TRACE=1.
#
# usage: scripts/soak-powercut-generations.sh [IMAGES] [JOBS] [BASE]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-100000}
JOBS=${2:-$(nproc)}
BASE=${3:-0}
PER=$(( (IMAGES + JOBS - 1) / JOBS ))
cargo test -p blockd-engine --features fault-injection --test powercut_generations --no-run
pids=()
for j in $(seq 0 $((JOBS - 1))); do
  BLOCKD_POWERCUT_GEN_IMAGES=$PER BLOCKD_POWERCUT_GEN_SEED_BASE=$((BASE + j * 100000)) \
    cargo test -q -p blockd-engine --features fault-injection --test powercut_generations -- --nocapture \
    >"${TMPDIR:-/tmp}/powercut-generations-shard-$j.log" 2>&1 &
  pids+=($!)
done
status=0
for j in "${!pids[@]}"; do
  if wait "${pids[$j]}"; then
    grep -h "images verified in" "${TMPDIR:-/tmp}/powercut-generations-shard-$j.log"
  else
    status=1
    echo "shard $j FAILED:"; grep -v "^op " "${TMPDIR:-/tmp}/powercut-generations-shard-$j.log" | tail -30
  fi
done
exit $status
