#!/usr/bin/env bash
# Runs the runbooks of deploy/README.md on a real cluster: three canond
# processes in network namespaces (deploy/netns/up.sh), driven with the
# canon CLI from a client namespace. Checks after each step that the cluster
# serves, that the processes it ran are still there and that it is caught
# up; at the end, that nothing of it is left (namespaces, bridge, processes).
#   1. first start, `canon run --wait`, a node killed: the cluster serves;
#   2. rolling upgrade: each node in turn stopped (SIGTERM, timed against
#      the systemd unit's TimeoutStopSec), started, caught up;
#   3. a member's disk wiped: remove refused at three members; a new node
#      joins, the wiped member is removed, then rejoins empty (the same id);
#   4. scaling down: the extra node removed, and it exits by itself;
#   5. backup and restore: a cold copy of every data dir, the cluster torn
#      down, a new cluster started on the copies.
# Needs root and the debug build of canond and canon (NETNS_BIN to use
# others). About a minute.
set -euo pipefail
TEST_NAME=runbooks
# shellcheck source-path=SCRIPTDIR source=testing.sh
source "$(dirname "$0")/testing.sh"

node() { "$here/node.sh" "$dir" "$@"; }
listed() { "$repo/deploy/wait-caught-up.py" 60 --listed "$1" -- "$here/canon.sh" "$dir"; }
serves() {
  canon status x >/dev/null || fail "process x is gone ($1)"
  canon status >/dev/null || fail "status refused ($1)"
}
stop_limit_s="$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$repo/deploy/systemd/canond.service")"
[ -n "$stop_limit_s" ] || fail "no TimeoutStopSec=Ns in canond.service"

step "1. first start: three nodes, one bootstraps"
"$here/up.sh" 3 --dir "$dir" >/dev/null
caught_up 3
grep -q '^CANON_CLOUD=sim$' "$dir/node-1/canond.env" || fail "the nodes do not run --cloud sim"
canon run "$repo/examples/VPC-sam.lw" -a x --wait >/dev/null
serves "after run"
node kill 1
canon run "$repo/examples/VPC-sam.lw" -a y --wait >/dev/null || fail "run with node 1 killed"
serves "node 1 killed"
node start 1
caught_up 3

step "2. rolling upgrade, one node at a time"
for id in 1 2 3; do
  began=$SECONDS
  node stop "$id"
  took=$((SECONDS - began))
  [ "$took" -lt "$stop_limit_s" ] || fail "node $id took ${took}s to drain, TimeoutStopSec is ${stop_limit_s}s"
  serves "node $id stopped"
  node start "$id"
  caught_up 3
done
serves "after the rolling upgrade"

step "3. replacing a member whose disk was wiped"
node kill 2
node wipe 2
if canon cluster remove 2 -y 2>/dev/null; then
  fail "removing a member of three was accepted"
fi
node join 4 1
listed 4
canon cluster remove 2 -y >/dev/null
caught_up 3
node join 2 1
caught_up 4
serves "after the replacement"

step "4. scaling down: remove the member first"
canon cluster remove 4 -y >/dev/null
for _ in $(seq 100); do
  grep -q "was removed from the cluster; stopped" "$dir/node-4/canond.log" && break
  sleep 0.1
done
grep -q "was removed from the cluster; stopped" "$dir/node-4/canond.log" || fail "node 4 did not stop after its removal"
node stop 4
caught_up 3
serves "after scaling down"

step "5. backup (cold copy of every data dir) and restore onto a new cluster"
backup="$work/backup"
for id in 1 2 3; do
  node stop "$id"
  mkdir -p "$backup/node-$id"
  cp -a "$dir/node-$id/data" "$backup/node-$id/"
done
"$here/down.sh" "$dir"
ip netns list | grep -q "canon-$(cat "$dir/tag")-" && fail "down.sh left namespaces"
dir="$work/restored"
"$here/up.sh" 3 --dir "$dir" --data-from "$backup" >/dev/null
caught_up 3
serves "after the restore"
canon status y >/dev/null || fail "process y was not restored"

step "teardown"
tag="$(cat "$dir/tag")"
pids="$(for id in 1 2 3; do cat "$dir/node-$id/pid"; done)"
"$here/down.sh" "$dir"
if ip netns list | grep -q "canon-$tag-"; then
  fail "namespaces left: $(ip netns list | grep "canon-$tag-")"
fi
for pid in $pids; do
  if kill -0 "$pid" 2>/dev/null; then
    fail "canond $pid still runs"
  fi
done
step "PASS"
echo "runbooks: 5 passed, 0 failed"
