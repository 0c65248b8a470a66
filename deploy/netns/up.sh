#!/usr/bin/env bash
# up.sh N [--dir DIR] [--net A.B.C] [--data-from BACKUP] [--cloud sim|moto]
#
# A cluster of N canond processes, each in its own network namespace as if
# on its own host: one bridge (in a namespace of its own), one veth pair per
# namespace, addresses A.B.C.(10+ID)/24 (default 198.18.0, the range set
# aside for network tests) that exist only inside those namespaces, and a
# client namespace at A.B.C.2 to run `canon` in (deploy/netns/canon.sh).
# Each canond runs from an env file made from deploy/systemd/canond.env.example,
# the configuration the systemd unit reads, with --cloud sim (each node a
# simulated cloud of its own) or, with --cloud moto, on one moto EC2
# emulator started in the client namespace (MOTO_SERVER, else the repo's
# .venv, else PATH), shared by every node as a real cloud is.
#
# --data-from BACKUP starts each node on a copy of BACKUP/node-ID/data (a
# cold copy of a whole cluster: deploy/README.md, "Backup and restore").
# With N below 9, node 9 is a spare: its namespace and address are made,
# it does not run (drill replace-member borrows it).
# Prints DIR; writes DIR/client.toml and DIR/inventory.toml. Needs root.
# deploy/netns/down.sh DIR undoes everything.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { die "usage: up.sh N [--dir DIR] [--net A.B.C] [--data-from BACKUP] [--cloud sim|moto]"; }

[ $# -ge 1 ] || usage
n="$1"
shift
[[ "$n" =~ ^[1-9][0-9]?$ ]] || usage
dir="" net="198.18.0" backup="" cloud=sim
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2" && shift 2 ;;
    --cloud) cloud="$2" && shift 2 ;;
    --net) net="$2" && shift 2 ;;
    --data-from) backup="$2" && shift 2 ;;
    *) usage ;;
  esac
done
[[ "$net" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--net wants three octets, like 198.18.0"
[[ "$cloud" =~ ^(sim|moto)$ ]] || die "--cloud is sim or moto, not $cloud"
need_tools
bin="$(bin_dir)"
if [ -z "$dir" ]; then
  dir="$(mktemp -d /tmp/canon-netns.XXXXXX)"
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
[ ! -e "$dir/namespaces" ] || die "$dir already holds a cluster (down.sh it first)"

od -An -N3 -tx1 /dev/urandom | tr -d ' \n' >"$dir/tag"
echo "$net" >"$dir/net"
# The spare (no member; a drill's replacement borrows it): id 9 when free.
# Its namespace is made here, in the root namespaces: one made later from
# inside the client namespace (where drills run) would not be seen outside.
if [ "$n" -lt 9 ]; then echo 9 >"$dir/spare"; fi
: >"$dir/namespaces"

sw="$(ns_switch "$dir")"
ip netns add "$sw"
echo "$sw" >>"$dir/namespaces"
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
plug "$dir" "$(ns_client "$dir")" "$(client_host_of "$dir")" c
echo "$cloud" >"$dir/cloud"
if [ "$cloud" = moto ]; then start_moto "$dir"; fi

"$bin/canon" keygen -o "$dir/admin.key" >"$dir/admin.pub"
peers=""
for ((id = 1; id <= n; id++)); do
  peers="$peers$id=$(addr_of "$dir" "$id"),"
done
echo "${peers%,}" >"$dir/peers"

for ((id = 1; id <= n; id++)); do
  plug "$dir" "$(ns_node "$dir" "$id")" "$(host_of "$dir" "$id")" "n$id"
  if [ "$id" -eq 1 ]; then mode=bootstrap; else mode=member; fi
  write_env "$dir" "$id" "$mode"
  if [ -n "$backup" ]; then
    [ -d "$backup/node-$id/data" ] || die "no $backup/node-$id/data to restore"
    cp -a "$backup/node-$id/data" "$dir/node-$id/data"
  fi
done
if [ -f "$dir/spare" ]; then
  plug "$dir" "$(ns_node "$dir" 9)" "$(host_of "$dir" 9)" n9
fi
write_client_toml "$dir"
for ((id = 1; id <= n; id++)); do
  start_node "$dir" "$id"
done
echo "$dir"
