#!/usr/bin/env bash
# Long multi-generation crash run through the real server: GENERATIONS
# generations (default 2,000) of `blockd serve` on one store per seed, each
# killed with SIGKILL while NBD clients write and flush (sometimes a clean
# stop, a kill during recovery or during the clean stop), every hot block
# verified after each restart. Split into runs of PER generations (default
# 100), one store and seed each, JOBS at a time (default 2).
# See tests/crash_generations.rs for what each generation must satisfy.
#
# usage: scripts/soak-generations.sh [GENERATIONS] [PER] [JOBS] [FIRST_SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
GENERATIONS=${1:-2000}
PER=${2:-100}
JOBS=${3:-2}
FIRST=${4:-1}
RUNS=$(( (GENERATIONS + PER - 1) / PER ))
cargo test --test crash_generations --no-run
log=${TMPDIR:-/tmp}/soak-generations
mkdir -p "$log"
status=0
run() {
  local seed=$1
  if BLOCKD_GENERATIONS=$PER BLOCKD_GEN_SEED=$seed \
      cargo test -q --test crash_generations -- --nocapture >"$log/$seed.log" 2>&1; then
    grep -h "generations," "$log/$seed.log"
  else
    echo "seed $seed FAILED:"; grep -E "gen [0-9]+:|panicked" "$log/$seed.log" | head -20
    return 1
  fi
}
running=0
for r in $(seq 0 $((RUNS - 1))); do
  run $((FIRST + r)) &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
