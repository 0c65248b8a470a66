#!/usr/bin/env bash
# Runs many simulation seeds (release build) and prints one JSON summary per
# cluster size: seeds run, faults injected by kind, violations (with the
# failing seeds; each failure also prints the command that replays it) and
# the slowest convergence after the faults ended.
#   sim-tests/run-seeds.sh [SEEDS] [START]   (default 10000 from 1)
# SIM_BUDGET_SECS=S stops starting new seeds after S seconds per cluster size.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-10000}
start=${2:-1}
# Builds once, then runs both cluster sizes side by side.
cargo test -q --release -p sim-tests --test seeds --no-run
pids=()
for nodes in 3 5; do
  SIM_NODES=$nodes SIM_SEEDS=$seeds SIM_START=$start SIM_KEEP_GOING=1 \
    cargo test -q --release -p sim-tests --test seeds -- --nocapture --test-threads 1 \
    seeds_keep_every_invariant 2>&1 | grep -E '^\{|broke|replay' &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
