#!/usr/bin/env bash
# Runs `canon drill` on a real cluster: three canond processes in network
# namespaces (deploy/netns/up.sh) driving one moto EC2 emulator, the drills
# run from the client namespace.
#   1. `drill list`, and dry runs that change nothing (no packet filter, no
#      process restarted, the spare never started);
#   2. the whole catalogue (`drill suite`), every fault on real processes,
#      real packet filters, a real wiped data dir, a real skewed clock
#      (libfaketime) and a real full disk (a tmpfs): each passes its
#      steady-state hypothesis (the drift each injects while its fault is
#      on, a deleted VPC, is healed; no resource exists twice; no cloud
#      mutation came from a node deposed from every group), and
#      afterwards no filter is left, every node
#      runs (none under libfaketime, none on a tmpfs), the replaced member
#      joined afresh, the spare is gone, the full disk was named in its
#      node's log and the cluster is caught up with its three members;
#   3. `drill abort` from another shell stops a long partition: healed at
#      once, the aborted drill reports failure;
#   4. drills are kept apart: one started at once after another is refused;
#   5. a clock skewed past the signed-envelope freshness window (5 min)
#      fails, naming the check, and is healed.
# Needs root, iptables, libfaketime, moto (the repo's .venv, as scripts/test
# makes it, or MOTO_SERVER) and the debug build of canond and canon
# (NETNS_BIN to use others). About six minutes.
set -euo pipefail
TEST_NAME=drills
# shellcheck source-path=SCRIPTDIR source=testing.sh
source "$(dirname "$0")/testing.sh"

command -v iptables >/dev/null || fail "iptables is not installed (apt-get install iptables)"
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || [ -n "${CANON_LIBFAKETIME:-}" ] ||
  fail "libfaketime is not installed (apt-get install libfaketime)"
inv="$dir/inventory.toml"
pids() { cat "$dir"/node-[1-3]/pid; }
# Whether node ID's canond runs with libfaketime preloaded.
skewed() { tr '\0' '\n' <"/proc/$(cat "$dir/node-$1/pid")/environ" | grep -q '^FAKETIME='; }
# Drill rules left in any node's namespace.
rules_left() {
  local ns
  grep -E '^canon-.*-n[0-9]+$' "$dir/namespaces" | while read -r ns; do
    ip netns exec "$ns" iptables -S | grep -c canon-drill || true
  done | awk '{ s += $1 } END { print s + 0 }'
}

step "1. list, and a dry run that changes nothing"
"$here/up.sh" 3 --dir "$dir" --net 198.18.5 --cloud moto >/dev/null
caught_up 3
[ "$(canon drill list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 16 ] ||
  fail "drill list does not show the 16 faults"
canon drill list >"$work/list.txt"
for fault in replace-member clock-skew disk-full delay-peers loss-peers; do
  grep -q "^$fault " "$work/list.txt" || fail "drill list does not show $fault"
done
canon drill run --inventory "$inv" --fault partition-one --dry-run | grep -q "iptables -w -I INPUT" ||
  fail "the dry run does not show the rules it would add"
[ "$(rules_left)" -eq 0 ] || fail "the dry run added rules"
before="$(pids)"
canon drill run --inventory "$inv" --fault replace-member --target node=1 --dry-run >"$work/replace.txt"
for want in "wipe node 1's data dir" "spare node 9 joins through" "canon cluster remove 1 -y" "join 1 2" "remove spare node 9"; do
  grep -qF "$want" "$work/replace.txt" || fail "the replace-member dry run does not show '$want': $(cat "$work/replace.txt")"
done
canon drill run --inventory "$inv" --fault clock-skew --skew -45s --dry-run >"$work/skew.txt"
grep -q "LD_PRELOAD=.*libfaketime.so.1 FAKETIME=-45" "$work/skew.txt" ||
  fail "the clock-skew dry run does not show its libfaketime restart: $(cat "$work/skew.txt")"
canon drill run --inventory "$inv" --fault disk-full --target node=3 --dry-run >"$work/full.txt"
for want in "mount -t tmpfs" "fill node 3's tmpfs" "names the full disk" "umount"; do
  grep -qF "$want" "$work/full.txt" || fail "the disk-full dry run does not show '$want': $(cat "$work/full.txt")"
done
[ "$(pids)" = "$before" ] || fail "a dry run restarted a node"
if ls -d "$dir"/node-*/data.* 2>/dev/null; then fail "a dry run moved a data dir"; fi
[ ! -e "$dir/node-9" ] || fail "a dry run started the spare"

step "2. the catalogue"
canon drill suite --inventory "$inv" --duration 3s --steady 2s --json >"$work/suite.json" ||
  fail "the suite broke the steady state: $(python3 -c '
import json, sys, time
for r in json.load(open(sys.argv[1])):
    if not r["passed"]:
        # The seed is the drill'"'"'s start (Unix seconds): where to look in the logs.
        print(r["plan"]["fault"], r["violations"], "targets", r["plan"].get("targets"),
              "began", time.strftime("%H:%M:%S", time.gmtime(r["seed"])), "UTC",
              "injected +%sms healed +%sms" % (r.get("injected_at_ms"), r.get("healed_at_ms")),
              "leaders", [(c["at_ms"], c["group"], c["leader"], c["term"]) for c in r.get("leader_changes", [])][-12:])
' "$work/suite.json" 2>/dev/null)"
python3 - "$work/suite.json" >"$work/replaced" <<'PY' || fail "the suite's report is not what it should be"
import json, sys
reports = json.load(open(sys.argv[1]))
faults = [r["plan"]["fault"] for r in reports]
assert len(faults) == 16, faults
for r in reports:
    assert r["passed"] and not r["lost"], r
    # The drift (its VPC deleted while the fault was on) healed, nothing doubled.
    assert r["cloud"]["rebuilt"] and r["cloud"]["rebuilt"] != r["cloud"]["deleted"], r["cloud"]
    assert not r["cloud"]["duplicated"], r["cloud"]
    # Every cloud mutation came from a node that led a group then.
    assert not r["cloud"]["fencing"]["deposed"], r["cloud"]["fencing"]
    assert r["baseline"]["commands"] > 0 and r["after"]["commands"] > 0, r
    assert r["converged_after_ms"] is not None, r
    if r["plan"]["fault"] in ("kill-leader", "kill-meta-leader", "pause-leader", "partition-one",
                              "replace-member", "clock-skew", "disk-full"):
        assert r["plan"]["targets"], r
# The check judged calls: each drill's rebuilt VPC at least was a node's mutation.
judged = sum(r["cloud"]["fencing"]["mutations"] - r["cloud"]["fencing"]["unjudged"] for r in reports)
assert judged > 0, [r["cloud"]["fencing"] for r in reports]
replaced = [r for r in reports if r["plan"]["fault"] == "replace-member"][0]
heal = [s["what"] for s in replaced["plan"]["undo"]]
assert any("joins afresh" in w for w in heal) and any("caught-up voter" in w for w in heal), heal
skew = [r for r in reports if r["plan"]["fault"] == "clock-skew"][0]
assert "FAKETIME=+90" in skew["plan"]["inject"][0]["command"], skew["plan"]
assert any("signed read" in s["what"] for s in skew["plan"]["inject"]), skew["plan"]
full = [r for r in reports if r["plan"]["fault"] == "disk-full"][0]
assert any("names the full disk" in s["what"] for s in full["plan"]["undo"]), full["plan"]
for name, says in (("delay-peers", "delayed 200 ms"), ("loss-peers", "20% lost")):
    link = [r for r in reports if r["plan"]["fault"] == name][0]
    assert says in link["plan"]["inject"][0]["what"], link["plan"]
    assert link["plan"]["inject"][1]["builtin"]["link_fault"]["on"], link["plan"]
    assert link["plan"]["targets"], link["plan"]
print(replaced["plan"]["targets"][0][0], full["plan"]["targets"][0][0], full["drill"])
PY
[ "$(rules_left)" -eq 0 ] || fail "the suite left packet filters behind"
read -r replaced filled full_drill <"$work/replaced"
for id in 1 2 3; do
  kill -0 "$(cat "$dir/node-$id/pid")" 2>/dev/null || fail "node $id does not run after the suite"
  if skewed "$id"; then fail "node $id still runs under libfaketime after the suite"; fi
  if grep -q canon-drill "/proc/$(cat "$dir/node-$id/pid")/mountinfo"; then
    fail "node $id still sees a drill's tmpfs after the suite"
  fi
done
# Into a file first: under pipefail, `sed | grep -q` fails whenever grep
# stops at an early match while sed still has more than a pipe's worth of
# log to write (SIGPIPE), which made this check flaky on long logs.
sed -n "/canon-drill-$full_drill/,\$p" "$dir/node-$filled/canond.log" >"$work/after-full.log"
grep -q "No space left on device" "$work/after-full.log" ||
  fail "node $filled's log does not name its full disk"
if ls -d "$dir"/node-*/data.* 2>/dev/null; then fail "the suite left a data dir aside"; fi
if ls "$dir"/node-*/data/drill-link-fault.* 2>/dev/null; then fail "the suite left a link fault on"; fi
[ "$(cat "$dir"/node-[1-3]/canond.log | grep -c "drill link fault on")" -ge 2 ] ||
  fail "the link faults were never applied"
[ "$(cat "$dir"/node-[1-3]/canond.log | grep -c "drill link fault off")" -ge 2 ] ||
  fail "the link faults were never cleared"
grep -q "node $replaced joined" "$dir/node-$replaced/canond.log" ||
  fail "node $replaced (replaced) never joined afresh"
grep -q '^CANON_JOIN=' "$dir/node-$replaced/canond.env" || fail "node $replaced did not rejoin with CANON_JOIN"
if kill -0 "$(cat "$dir/node-9/pid")" 2>/dev/null; then fail "the spare still runs after the suite"; fi
[ ! -e "$dir/node-9/data" ] || fail "the spare's data dir was left behind"
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

step "5. a clock skewed past the freshness window fails, naming the check"
sleep 6
if canon drill run --inventory "$inv" --fault clock-skew --target node=2 --skew +10m --duration 1s --steady 1s >"$work/skew10m.txt" 2>&1; then
  fail "a node 10 minutes ahead passed: $(cat "$work/skew10m.txt")"
fi
grep -q "node 2 (skewed) takes a signed read itself: node 2 refused it: .*check the clock" "$work/skew10m.txt" ||
  fail "the failure does not name the check: $(cat "$work/skew10m.txt")"
if skewed 2; then fail "node 2 still runs under libfaketime after the failed drill"; fi
caught_up 3

step "PASS"
echo "drills: 5 passed, 0 failed"
