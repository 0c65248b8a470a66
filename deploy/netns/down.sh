#!/usr/bin/env bash
# down.sh DIR [--rm]: stops every canond of the netns cluster in DIR
# (SIGTERM, then SIGKILL), ends anything else still running in its
# namespaces, and deletes every namespace it made (the bridge and veths go
# with them). Keeps DIR (logs, data) unless --rm.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || die "usage: down.sh DIR [--rm]"
dir="$(cd "$1" && pwd)"
[ -f "$dir/namespaces" ] || die "$dir holds no netns cluster"
need_tools

for id in $(node_ids "$dir"); do
  stop_node "$dir" "$id" 10
done
while read -r ns; do
  [ -n "$ns" ] || continue
  if ip netns pids "$ns" >/dev/null 2>&1; then
    for pid in $(ip netns pids "$ns"); do
      kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns del "$ns"
  fi
done <"$dir/namespaces"
rm -f "$dir/namespaces"
for id in $(node_ids "$dir"); do
  rm -f "$dir/node-$id/pid"
done
if [ "${2:-}" = "--rm" ]; then
  rm -rf "$dir"
fi
