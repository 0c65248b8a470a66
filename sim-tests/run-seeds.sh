#!/usr/bin/env bash
# Runs many simulation seeds and prints a summary line per cluster size:
#   sim-tests/run-seeds.sh [SEEDS] [START]   (default 10000 from 1)
# A failing seed stops the run and prints the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-10000}
start=${2:-1}
for nodes in 3 5; do
  SIM_NODES=$nodes SIM_SEEDS=$seeds SIM_START=$start \
    cargo test -q --release -p sim-tests --test seeds -- --nocapture --test-threads 1 \
    seeds_keep_every_invariant 2>&1 | grep -E '^\{|broke|replay' || true
done
