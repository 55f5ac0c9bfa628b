#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the real clients the tests
# drive (qemu-img/qemu-io, nbdinfo/nbdcopy/nbdsh, nbdkit, fio, fuse3,
# e2fsprogs, openssl for test certificates, a one-node Ceph with radosgw
# for the object-storage tier) when missing, and the OpenStack
# clients (python-openstackclient, cinderclient, openstacksdk) and Tempest
# into a virtual environment, then builds and runs the whole workspace's
# tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v nbdinfo >/dev/null || need+=(libnbd-bin)
python3 -c 'import nbd' 2>/dev/null || /usr/bin/python3 -c 'import nbd' 2>/dev/null || need+=(python3-libnbd)
command -v nbdkit >/dev/null || need+=(nbdkit)
command -v fio >/dev/null || need+=(fio)
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v openssl >/dev/null || need+=(openssl)
# A one-node Ceph with the RADOS Gateway for tests/object_store.rs and
# tests/object_store_faults.rs (scripts/ceph.sh).
for b in ceph-mon ceph-mgr ceph-osd radosgw; do
  command -v "$b" >/dev/null || need+=("$b")
done
command -v ceph >/dev/null || need+=(ceph-common)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The real OpenStack clients for tests/openstack_cli.rs and Tempest for
# tests/tempest.rs (scripts/tempest.sh), pinned, in one virtual environment
# under target/ (made once; a venv without tempest gets it added).
venv=target/openstack-venv
if [ ! -x "$venv/bin/openstack" ] || [ ! -x "$venv/bin/tempest" ]; then
  echo "installing the OpenStack clients and Tempest into $venv"
  mkdir -p target
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    'python-openstackclient==7.4.0' 'python-cinderclient==9.7.0' 'openstacksdk==4.4.0' \
    'tempest==47.0.0'
fi
BLOCKD_OPENSTACK_VENV="$(cd "$venv" && pwd)"
export BLOCKD_OPENSTACK_VENV

# Benches must build; they run with `cargo bench`, not here.
cargo build --workspace --all-targets
log=$(mktemp)
set +e
cargo test --workspace -- --test-threads="${TEST_THREADS:-2}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole workspace.
awk '/^test result:/ {p += $4; f += $6} END {printf "%d passed, %d failed\n", p, f}' "$log"
rm -f "$log"
exit "$status"
