#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60), after
# building the seed corpora: NBD client streams recorded from real clients
# (qemu-io, nbdinfo, nbdcopy, nbdsh) through a recording proxy, records and
# metadata pages cut from a real store, and REST requests of every dialect.
# Seeds go to fuzz/seeds/<target>/ (committed; REFRESH_SEEDS=1 rebuilds them); what libFuzzer finds
# beyond them to fuzz/corpus/<target>/ (not committed). Prints, per target, the executions libFuzzer ran and whether it found a
# crash (inputs land in fuzz/artifacts/<target>/).
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(nbd_stream engine_record engine_metadata api_request)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz needs nightly flags (-Zsanitizer); the stable toolchain accepts
# them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# Seeds are committed; REFRESH_SEEDS=1 (or a missing directory) rebuilds them.
if [ "${REFRESH_SEEDS:-0}" = 1 ] || [ ! -d fuzz/seeds/engine_record ]; then
  (cd fuzz && cargo run --quiet --bin seeds)
fi
if [ "${REFRESH_SEEDS:-0}" = 1 ] || [ ! -d fuzz/seeds/nbd_stream ]; then
# NBD seeds from real clients, through a recording proxy.
cargo build --quiet --workspace --all-targets
blockd=target/debug/blockd
$blockd --data-dir "$work/data" volume create v --size 64M >/dev/null
$blockd --data-dir "$work/data" snapshot create v s >/dev/null
$blockd --data-dir "$work/data" serve --nbd-listen "" --api-listen "" \
  --nbd-socket "$work/nbd.sock" 2>"$work/serve.log" &
python3 scripts/nbd-record.py "$work/rec.sock" "$work/nbd.sock" fuzz/seeds/nbd_stream &
for _ in $(seq 100); do [ -S "$work/rec.sock" ] && [ -S "$work/nbd.sock" ] && break; sleep 0.1; done
uri="nbd+unix:///v?socket=$work/rec.sock"
nbdinfo --list "nbd+unix://?socket=$work/rec.sock" >/dev/null
nbdinfo --map "$uri" >/dev/null
nbdinfo "nbd+unix:///s?socket=$work/rec.sock" >/dev/null
qemu-io -f raw -c "write -P 0x5a 0 8k" -c "write -z 64k 64k" -c "discard 128k 64k" \
  -c "read -P 0x5a 0 8k" -c flush -c "aio_write -P 1 256k 4k" \
  -c aio_flush "$uri" >/dev/null
qemu-img info "$uri" >/dev/null
nbdcopy "$uri" null: 2>/dev/null || nbdcopy "$uri" "$work/out.raw"
/usr/bin/python3 - "$work/rec.sock" <<'PY' >/dev/null
import nbd, sys
h = nbd.NBD()
h.set_strict_mode(0)
h.add_meta_context("base:allocation")
h.connect_uri("nbd+unix:///v?socket=" + sys.argv[1])
h.pwrite(b"x" * 512, 4096 * 3)
h.zero(4096, 8192, nbd.CMD_FLAG_NO_HOLE)
h.trim(4096, 0)
h.cache(4096, 0)
h.block_status(1 << 20, 0, lambda *a: 0)
h.pread(4096, 1 << 20, nbd.CMD_FLAG_DF)
h.flush()
h.shutdown()
PY
sleep 0.5
kill %1 %2 2>/dev/null || true
wait 2>/dev/null || true
fi

echo "target executions crashes" >"$work/summary"
for t in "${TARGETS[@]}"; do
  log="$work/$t.log"
  mkdir -p "fuzz/corpus/$t"
  # Danube imports run on background threads that outlive the input:
  # LeakSanitizer would report their memory, so leaks are not checked there.
  extra=()
  [ "$t" = api_request ] && extra=(-detect_leaks=0)
  set +e
  cargo fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- -max_total_time="$SECS" \
    -rss_limit_mb=4096 -max_len=1048576 -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
  status=$?
  runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -1)
  crashes=$(ls "fuzz/artifacts/$t" 2>/dev/null | grep -c -E '^(crash|oom|leak|timeout)-')
  set -e
  echo "$t ${runs:-?} $crashes" >>"$work/summary"
  [ $status -eq 0 ] || { echo "== $t failed (exit $status):"; tail -40 "$log"; }
done
column -t "$work/summary"
