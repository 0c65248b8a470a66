#!/usr/bin/env bash
# Runs many simulation seeds and prints one JSON summary per cluster size:
# seeds run, faults injected by kind, violations (with the failing seeds)
# and the slowest convergence after the faults ended.
#   sim-tests/run-seeds.sh [SEEDS] [START]   (default 10000 from 1)
# Each cluster size's whole output is kept in a log file, named when the
# run starts. A run that fails says why (the violations, else the panic or
# the end of its log) and prints the command that replays one failing seed.
# SIM_BUDGET_SECS=S stops starting new seeds after S seconds per cluster size.
# SIM_PROFILE=dev uses the debug build (default release).
# SIM_LOG_DIR=DIR keeps the logs there (default target/sim-seeds).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-10000}
start=${2:-1}
profile=(--release)
if [[ ${SIM_PROFILE:-release} == dev ]]; then profile=(); fi
logs=${SIM_LOG_DIR:-target/sim-seeds}
mkdir -p "$logs"

# The command that replays seed $1 on $2 nodes.
replay() {
  echo "replay: SIM_START=$1 SIM_SEEDS=1 SIM_NODES=$2 cargo test ${profile[*]} -p sim-tests --test seeds -- --nocapture"
}

# Says why the run of $1 nodes logged in $2 failed with exit status $3.
explain() {
  local nodes=$1 log=$2 rc=$3 seed
  echo "the $nodes-node run failed (exit $rc); its whole output: $log"
  if grep -q 'broke invariants:' "$log"; then
    # Each failing seed's violations and replay command, as the test printed them.
    awk '/broke invariants:/ {on = 1} on {print} /^replay:/ {on = 0}' "$log"
    return
  fi
  # No seed reported a violation: the run itself died (a build error, an
  # abort, a kill, a timeout). Show how it ended and which seed was running.
  grep -E "panicked at|^error|fatal|SIGKILL|signal|overflow" "$log" | head -n 20 || true
  echo "--- the end of $log:"
  tail -n 20 "$log"
  seed=$(grep -oE "^seed [0-9]+ on $nodes nodes: running" "$log" | tail -n 1 | awk '{print $2}')
  if [[ -n $seed ]]; then
    echo "seed $seed was running when it ended"
    replay "$seed" "$nodes"
  fi
}

cargo test -q "${profile[@]}" -p sim-tests --test seeds --no-run
# Both cluster sizes side by side.
declare -A pids logfile
for nodes in 3 5; do
  logfile[$nodes]="$logs/$nodes-nodes-from-$start-x$seeds.log"
  echo "the $nodes-node run logs to ${logfile[$nodes]}"
  SIM_NODES=$nodes SIM_SEEDS=$seeds SIM_START=$start SIM_KEEP_GOING=1 \
    cargo test -q "${profile[@]}" -p sim-tests --test seeds -- --nocapture --test-threads 1 \
    seeds_keep_every_invariant >"${logfile[$nodes]}" 2>&1 &
  pids[$nodes]=$!
done
status=0
for nodes in 3 5; do
  rc=0
  wait "${pids[$nodes]}" || rc=$?
  summary=$(grep -E '^\{' "${logfile[$nodes]}" || true)
  if [[ -n $summary ]]; then echo "$summary"; fi
  if ((rc != 0)) || [[ -z $summary ]]; then
    status=1
    explain "$nodes" "${logfile[$nodes]}" "$rc"
  fi
done
exit $status
