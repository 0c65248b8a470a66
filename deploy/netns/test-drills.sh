#!/usr/bin/env bash
# Runs `canon drill` on a real cluster: three canond processes in network
# namespaces (deploy/netns/up.sh), the drills run from the client namespace.
#   1. `drill list`, and a dry run that changes nothing (no packet filter);
#   2. the whole catalogue (`drill suite`), every fault on real processes
#      and real packet filters: each passes its steady-state hypothesis, and
#      afterwards no filter is left, every node runs and the cluster is
#      caught up;
#   3. `drill abort` from another shell stops a long partition: healed at
#      once, the aborted drill reports failure;
#   4. drills are kept apart: one started at once after another is refused.
# Needs root, iptables and the debug build of canond and canon (NETNS_BIN
# to use others). About four minutes.
set -euo pipefail
TEST_NAME=drills
# shellcheck source-path=SCRIPTDIR source=testing.sh
source "$(dirname "$0")/testing.sh"

command -v iptables >/dev/null || fail "iptables is not installed (apt-get install iptables)"
inv="$dir/inventory.toml"
# Drill rules left in any node's namespace.
rules_left() {
  local ns
  grep -E '^canon-.*-n[0-9]+$' "$dir/namespaces" | while read -r ns; do
    ip netns exec "$ns" iptables -S | grep -c canon-drill || true
  done | awk '{ s += $1 } END { print s + 0 }'
}

step "1. list, and a dry run that changes nothing"
"$here/up.sh" 3 --dir "$dir" --net 198.18.5 >/dev/null
caught_up 3
[ "$(canon drill list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 11 ] ||
  fail "drill list does not show the 11 faults"
canon drill run --inventory "$inv" --fault partition-one --dry-run | grep -q "iptables -w -I INPUT" ||
  fail "the dry run does not show the rules it would add"
[ "$(rules_left)" -eq 0 ] || fail "the dry run added rules"

step "2. the catalogue"
canon drill suite --inventory "$inv" --duration 3s --steady 2s --json >"$work/suite.json" ||
  fail "the suite broke the steady state: $(python3 -c 'import json,sys; [print(r["plan"]["fault"], r["violations"]) for r in json.load(open(sys.argv[1])) if not r["passed"]]' "$work/suite.json" 2>/dev/null)"
python3 - "$work/suite.json" <<'PY' || fail "the suite's report is not what it should be"
import json, sys
reports = json.load(open(sys.argv[1]))
faults = [r["plan"]["fault"] for r in reports]
assert len(faults) == 11, faults
for r in reports:
    assert r["passed"] and not r["lost"], r
    assert r["baseline"]["commands"] > 0 and r["after"]["commands"] > 0, r
    assert r["converged_after_ms"] is not None, r
    if r["plan"]["fault"] in ("kill-leader", "kill-meta-leader", "pause-leader", "partition-one"):
        assert r["plan"]["targets"], r
PY
[ "$(rules_left)" -eq 0 ] || fail "the suite left packet filters behind"
for id in 1 2 3; do
  kill -0 "$(cat "$dir/node-$id/pid")" 2>/dev/null || fail "node $id does not run after the suite"
done
caught_up 3

step "3. abort from another shell"
sleep 6
canon drill run --inventory "$inv" --fault partition-one --duration 120s --steady 1s >"$work/aborted.txt" 2>&1 &
drill=$!
for _ in $(seq 100); do
  [ "$(rules_left)" -gt 0 ] && break
  sleep 0.2
done
[ "$(rules_left)" -gt 0 ] || fail "the partition never went in"
began=$SECONDS
canon drill abort --inventory "$inv" | grep -q "stopped and healed" || fail "abort did not stop the drill"
if wait "$drill"; then
  fail "an aborted drill reported success"
fi
[ $((SECONDS - began)) -lt 60 ] || fail "abort took $((SECONDS - began))s"
grep -q "aborted" "$work/aborted.txt" || fail "the aborted drill does not say so: $(cat "$work/aborted.txt")"
[ "$(rules_left)" -eq 0 ] || fail "abort left packet filters behind"
caught_up 3

step "4. drills are kept apart"
if canon drill run --inventory "$inv" --fault none 2>"$work/refused.txt"; then
  fail "a drill right after another was not refused"
fi
grep -q "apart" "$work/refused.txt" || fail "the refusal does not say why: $(cat "$work/refused.txt")"

step "PASS"
echo "drills: 4 passed, 0 failed"
