#!/usr/bin/env bash
# Sourced by the netns test scripts (test-runbooks.sh, test-drills.sh):
# their work directory, step and failure lines, and a cleanup that shows
# the nodes' last log lines on failure and tears every cluster down.
# Set TEST_NAME before sourcing; clusters live in $work/*/ (each torn down
# with down.sh at exit, whatever happened).
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "/tmp/canon-$TEST_NAME.XXXXXX")"
dir="$work/cluster"
start=$SECONDS

step() { echo "[ $TEST_NAME ] $* ($((SECONDS - start))s)"; }
fail() {
  echo "[ $TEST_NAME ] FAILED: $*" >&2
  exit 1
}
cleanup() {
  local rc=$? d log
  for d in "$work"/*/; do
    [ -f "$d/namespaces" ] || continue
    if [ "$rc" -ne 0 ]; then
      for log in "$d"node-*/canond.log; do
        # Canon's own warnings and leadership changes say more than the
        # last lines (openraft's per-message retries, every command).
        echo "--- $log (last Canon warnings and leadership changes)" >&2
        grep -E "WARN canon|ERROR|leadership|redialing" "$log" | grep -v "root key used" | tail -n 25 >&2 || true
        echo "--- $log (last lines)" >&2
        tail -n 8 "$log" >&2
      done
    fi
    "$here/down.sh" "$d" || true
  done
  if [ "$rc" -ne 0 ] && [ -n "${NETNS_KEEP_WORK:-}" ]; then
    cp -r "$work" "$NETNS_KEEP_WORK" && echo "[ $TEST_NAME ] kept its work dir in $NETNS_KEEP_WORK" >&2
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

canon() { "$here/canon.sh" "$dir" "$@"; }
caught_up() { "$repo/deploy/wait-caught-up.py" 60 --members "$1" -- "$here/canon.sh" "$dir"; }
