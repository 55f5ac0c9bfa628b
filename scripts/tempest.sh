#!/usr/bin/env bash
# Runs Tempest's volume API tests (tempest.api.volume) against blockd's
# Cinder v3 and minimal Keystone v3: starts `blockd serve` on loopback (a
# free port) with a fresh data directory and fixtures/tempest/auth.toml,
# makes an engine image offline, writes a Tempest workspace from fixtures/tempest/tempest.conf and
# accounts.yaml (pre-provisioned accounts, Cinder only), runs the tests,
# prints the passed / failed / skipped counts and stops the server.
#
# Usage: scripts/tempest.sh [REGEX]   (default '^tempest\.api\.volume')
#
# Environment:
#   BLOCKD_BIN            the blockd binary (default: `cargo build` and
#                         target/debug/blockd, the debug build)
#   BLOCKD_TEMPEST_VENV   a virtual environment with tempest (default:
#                         target/openstack-venv, made by scripts/test.sh)
#   TEMPEST_CONCURRENCY   test workers (default 2; with 2, a class holding several
#                         accounts can rarely starve another of a reader account;
#                         tests/tempest.rs uses 1)
#   TEMPEST_KEEP          when set, the work directory (server log, Tempest
#                         log, stestr results) is kept and named
# Exit status: 0 when no test failed and at least one ran.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

venv=${BLOCKD_TEMPEST_VENV:-target/openstack-venv}
if [ ! -x "$venv/bin/tempest" ]; then
  echo "tempest.sh: no tempest in $venv (scripts/test.sh installs it)" >&2
  exit 2
fi
venv=$(cd "$venv" && pwd)

bin=${BLOCKD_BIN:-}
if [ -z "$bin" ]; then
  cargo build -q --bin blockd
  bin="$root/target/debug/blockd"
fi
regex=${1:-'^tempest\.api\.volume'}
workers=${TEMPEST_CONCURRENCY:-2}

work=$(mktemp -d "${TMPDIR:-/tmp}/blockd-tempest.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [ -n "${TEMPEST_KEEP:-}" ]; then
    echo "tempest.sh: kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# An engine image every tenant sees (made offline, so ownerless), for the
# tests that make volumes from an image through the read-only Glance.
"$bin" --data-dir "$work/data" volume create tempest-base --size 1M >/dev/null
image_ref=$("$bin" --data-dir "$work/data" image create tempest-base tempest-image)

: >"$work/blockd.log"
"$bin" --data-dir "$work/data" serve --nbd-listen "" --nbd-socket "$work/nbd.sock" \
  --api-listen 127.0.0.1:0 --auth-file "$root/fixtures/tempest/auth.toml" \
  >/dev/null 2>"$work/blockd.log" &
pid=$!
addr=""
for _ in $(seq 600); do
  addr=$(sed -n 's/.*API listening on http:\/\/\([0-9.:]*\).*/\1/p' "$work/blockd.log" | head -n1)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/blockd.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "tempest.sh: blockd did not start" >&2; cat "$work/blockd.log" >&2; exit 1; }
echo "tempest.sh: blockd serving http://$addr"

# A Tempest workspace of its own (HOME keeps ~/.tempest out of the user's).
export HOME="$work"
(cd "$work" && "$venv/bin/tempest" init ws >/dev/null)
mkdir -p "$work/locks" "$work/logs"
sed -e "s|@IDENTITY_URI@|http://$addr/identity/v3|" \
  -e "s|@ACCOUNTS_FILE@|$root/fixtures/tempest/accounts.yaml|" \
  -e "s|@LOCK_PATH@|$work/locks|" \
  -e "s|@LOG_DIR@|$work/logs|" \
  -e "s|@IMAGE_REF@|$image_ref|" \
  "$root/fixtures/tempest/tempest.conf" >"$work/ws/etc/tempest.conf"

start=$(date +%s)
set +e
(cd "$work/ws" && PATH="$venv/bin:$PATH" tempest run --regex "$regex" \
  --concurrency "$workers") 2>&1 | tee "$work/run.log"
set -e
secs=$(($(date +%s) - start))

count() { sed -n "s/^ - $1: *\([0-9]*\).*/\1/p" "$work/run.log" | tail -n1; }
passed=$(count Passed)
failed=$(count Failed)
skipped=$(count Skipped)
ran=$(sed -n 's/^Ran: \([0-9]*\) tests.*/\1/p' "$work/run.log" | tail -n1)
echo "tempest.sh: ${ran:-0} tests, ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped in ${secs}s"
if [ -z "$ran" ] || [ "${passed:-0}" = 0 ] || [ "${failed:-0}" != 0 ]; then
  exit 1
fi
