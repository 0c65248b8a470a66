#!/usr/bin/env bash
# node.sh DIR COMMAND ID [ARG]: one node of the netns cluster in DIR.
#   start ID            start its canond (from DIR/node-ID/canond.env)
#   stop ID             SIGTERM: canond drains and exits (SIGKILL after 30 s)
#   kill ID             SIGKILL
#   restart ID [KEY=VALUE...]
#                       stop, then start (with KEY=VALUE added to its
#                       environment for this start only: a drill's
#                       LD_PRELOAD and FAKETIME)
#   wipe ID             delete its data dir (the node must be stopped)
#   join ID THROUGH     (re)start ID with CANON_JOIN=THROUGH's address and a
#                       one-time join token for ID (`canon cluster join-token`,
#                       run as the admin): a new node (its namespace made if
#                       missing) or a wiped one
# Each rewrites DIR/inventory.toml.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -ge 3 ] || die "usage: node.sh DIR start|stop|kill|restart|wipe|join ID [THROUGH]"
dir="$(cd "$1" && pwd)"
cmd="$2"
id="$3"
[[ "$id" =~ ^[1-9][0-9]?$ ]] || die "bad node id $id"
shift 3
[ -f "$dir/tag" ] || die "$dir holds no netns cluster"
need_tools

case "$cmd" in
  start)
    alive "$dir" "$id" && die "node $id is running (pid $(pid_of "$dir" "$id"))"
    start_node "$dir" "$id"
    ;;
  stop) stop_node "$dir" "$id" && write_inventory "$dir" ;;
  kill) kill_node "$dir" "$id" && write_inventory "$dir" ;;
  restart)
    for kv in "$@"; do
      [[ "$kv" =~ ^[A-Z_][A-Z0-9_]*= ]] || die "restart takes KEY=VALUE words, not $kv"
    done
    stop_node "$dir" "$id"
    start_node "$dir" "$id" "$@"
    ;;
  wipe)
    alive "$dir" "$id" && die "node $id is running: stop it first"
    rm -rf "$dir/node-$id/data"
    ;;
  join)
    [ $# -eq 1 ] || die "usage: node.sh DIR join ID THROUGH"
    alive "$dir" "$id" && die "node $id is running: stop it first"
    if ! grep -qx "$(ns_node "$dir" "$id")" "$dir/namespaces"; then
      plug "$dir" "$(ns_node "$dir" "$id")" "$(host_of "$dir" "$id")" "n$id"
    fi
    token="$("$(dirname "$0")/canon.sh" "$dir" cluster join-token --node "$id" --ttl 10m 2>/dev/null)" ||
      die "no join token for node $id (is the cluster up?)"
    write_env "$dir" "$id" "join:$(addr_of "$dir" "$1")" "$token"
    write_client_toml "$dir"
    start_node "$dir" "$id"
    ;;
  *) die "unknown command $cmd" ;;
esac
