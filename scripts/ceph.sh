#!/usr/bin/env bash
# A one-node Ceph cluster with the RADOS Gateway (S3) on 127.0.0.1, for tests
# of blockd's object-storage tier (tests/object_store.rs).
#
#   scripts/ceph.sh start DIR   monitor, manager, one BlueStore OSD on a sparse
#                               file, and radosgw, all under DIR, no systemd;
#                               writes DIR/env (AWS_ENDPOINT_URL, AWS_REGION,
#                               AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#                               AWS_ALLOW_HTTP, and S3_BUCKET: a bucket it
#                               made, CEPH_BUCKET or "blockd") and prints
#                               the endpoint
#   scripts/ceph.sh stop DIR    stops the daemons it started (by their pid
#                               files) and removes DIR
#
# Settings: /work/shared/reference/ceph.md. Ports: CEPH_MON_PORT (v2; v1 is
# it + 1) and CEPH_RGW_PORT, both picked free when unset; CEPH_OSD_BYTES,
# the OSD's (sparse) block file, default 10 GiB. Needs the Debian
# packages ceph-mon ceph-mgr ceph-osd ceph-common radosgw (scripts/test.sh
# installs them).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop() {
  local d=$1
  [ -d "$d" ] || return 0
  # Reverse order of start: radosgw, osd, mgr, mon.
  for name in rgw osd mgr mon; do
    local pf="$d/run/$name.pid"
    if [ -s "$pf" ]; then
      local pid
      pid=$(cat "$pf")
      if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
  done
  rm -rf "$d"
}

if [ "$cmd" = stop ]; then
  stop "$dir"
  exit 0
fi
if [ "$cmd" != start ]; then
  echo "unknown command: $cmd" >&2
  exit 2
fi

for b in ceph-mon ceph-mgr ceph-osd ceph radosgw radosgw-admin ceph-authtool monmaptool curl python3; do
  command -v "$b" >/dev/null || { echo "missing $b: install ceph-mon ceph-mgr ceph-osd ceph-common radosgw" >&2; exit 3; }
done

started=$(date +%s.%N)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -e "$dir/ceph.conf" ]; then
  echo "$dir already holds a cluster; stop it first" >&2
  exit 2
fi
# A failed start leaves nothing running.
trap 'echo "ceph start failed; logs in $dir/log" >&2; cp -r "$dir/log" "$dir.failed-log" 2>/dev/null || true; stop "$dir"' ERR

mon_port=${CEPH_MON_PORT:-$(free_port)}
mon_v1=$((mon_port + 1))
rgw_port=${CEPH_RGW_PORT:-$(free_port)}
fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
mkdir -p "$dir"/{run,log,mon,mgr,osd,crash}

conf=$dir/ceph.conf
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port,v1:127.0.0.1:$mon_v1
mon initial members = a
public addr = 127.0.0.1
public network = 127.0.0.1/32
cluster network = 127.0.0.1/32
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
mon data avail warn = 2
mon data avail crit = 1
run dir = $dir/run
admin socket = $dir/run/\$cluster-\$name.asok
log file = $dir/log/\$cluster-\$name.log
pid file = $dir/run/\$name.pid
crash dir = $dir/crash
keyring = $dir/keyring.\$name
mon data = $dir/mon/\$cluster-\$id
mgr data = $dir/mgr/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
osd objectstore = bluestore
bluestore block create = true
bluestore block size = ${CEPH_OSD_BYTES:-10737418240}
osd memory target = 1073741824
osd max object name len = 460
osd max object namespace len = 64

[client.rgw.s3]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = 127.0.0.1
log file = $dir/log/rgw.log
pid file = $dir/run/rgw.pid
EOF
export CEPH_CONF=$conf
phase() { echo "$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")s $1" >>"$dir/log/phases"; }
C=(ceph --conf "$conf" --name client.admin --keyring "$dir/keyring.client.admin" --connect-timeout 10)

# 1. Keys and the monitor map.
ceph-authtool --create-keyring "$dir/keyring.mon.a" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$dir/keyring.client.admin" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$dir/keyring.mon.a" --import-keyring "$dir/keyring.client.admin" >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$mon_port,v1:127.0.0.1:$mon_v1]" --fsid "$fsid" \
  "$dir/monmap" >/dev/null

# 2. Monitor.
ceph-mon --conf "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring.mon.a"
ceph-mon --conf "$conf" -i a --pid-file "$dir/run/mon.pid"
for _ in $(seq 1 100); do
  "${C[@]}" -s >/dev/null 2>&1 && break
  sleep 0.2
done
"${C[@]}" -s >/dev/null
"${C[@]}" config set mon auth_allow_insecure_global_id_reclaim false

phase "mon up"
# 3. Manager.
"${C[@]}" auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
  >"$dir/keyring.mgr.x"
ceph-mgr --conf "$conf" -i x --pid-file "$dir/run/mgr.pid"

# 4. One OSD on BlueStore over a sparse file.
osd_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
osd_id=$("${C[@]}" osd new "$osd_uuid")
mkdir -p "$dir/osd/ceph-$osd_id"
"${C[@]}" auth get-or-create "osd.$osd_id" mon 'allow profile osd' mgr 'allow profile osd' \
  osd 'allow *' >"$dir/keyring.osd.$osd_id"
ceph-osd --conf "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
ceph-osd --conf "$conf" -i "$osd_id" --pid-file "$dir/run/osd.pid" 2>/dev/null
for _ in $(seq 1 150); do
  [ "$("${C[@]}" osd stat -f json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("num_up_osds",0))' 2>/dev/null)" = 1 ] && break
  sleep 0.2
done

phase "osd up"
# 5. Readiness is a real write: radosgw creates its pools and the S3 user
# is written to them (step 6), which needs the OSD to take writes; a
# `ceph pg stat` could be stale right after a pool is created.
# 6. radosgw and an S3 user.
"${C[@]}" auth get-or-create client.rgw.s3 mon 'allow rw' osd 'allow rwx' >"$dir/keyring.client.rgw.s3"
radosgw --conf "$conf" -n client.rgw.s3 --keyring "$dir/keyring.client.rgw.s3"
ok=0
for _ in $(seq 1 300); do
  if [ "$(python3 - "$rgw_port" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=2).status)
except Exception:
    print(0)
PY
)" = 200 ]; then
    ok=1
    break
  fi
  sleep 0.2
done
[ $ok = 1 ] || { echo "radosgw does not answer on 127.0.0.1:$rgw_port" >&2; false; }
phase "radosgw answers"
access=$(python3 -c 'import secrets,string; print("".join(secrets.choice(string.ascii_uppercase+string.digits) for _ in range(20)))')
secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
radosgw-admin --conf "$conf" --name client.admin --keyring "$dir/keyring.client.admin" \
  user create --uid=blockd --display-name=blockd --access-key="$access" --secret-key="$secret" >/dev/null

# The bucket (CEPH_BUCKET, default blockd), with a signed S3 request (the
# radosgw wants the payload hash header, which curl does not add itself).
bucket=${CEPH_BUCKET:-blockd}
code=$(curl -s -o "$dir/log/bucket.out" -w '%{http_code}' -X PUT \
  --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access:$secret" \
  -H "x-amz-content-sha256: $(printf '' | sha256sum | cut -d' ' -f1)" \
  "http://127.0.0.1:$rgw_port/$bucket")
[ "$code" = 200 ] || { echo "creating bucket $bucket: HTTP $code" >&2; false; }

umask 077
cat >"$dir/env" <<EOF
AWS_ENDPOINT_URL=http://127.0.0.1:$rgw_port
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=$access
AWS_SECRET_ACCESS_KEY=$secret
AWS_ALLOW_HTTP=true
S3_BUCKET=$bucket
EOF
trap - ERR
elapsed=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
echo "ceph: radosgw at http://127.0.0.1:$rgw_port (started in ${elapsed}s); credentials in $dir/env"
