# shellcheck shell=bash
# Shared by up.sh, node.sh and down.sh: where a netns cluster's pieces live.
#
# A cluster is a directory DIR holding:
#   tag                 the random tag in every namespace name it made
#   net                 its address prefix (three octets, e.g. 198.18.0)
#   namespaces          every namespace it made, one a line (down.sh deletes these)
#   spare               the id of the spare node: no member, it joins for a
#                       while when a drill replaces a member (drill replace-member)
#   admin.key           the admin's signing key (canon keygen)
#   client.toml         what `canon` reads (CANON_CONFIG)
#   inventory.toml      per node: id, namespace, address, pid, data dir, restart
#   node-ID/canond.env  the node's settings, in the systemd unit's format
#   node-ID/data        its data dir;  node-ID/canond.log, node-ID/pid
# The namespaces: canon-TAG-sw holds the bridge, canon-TAG-c the client,
# canon-TAG-nID node ID. Addresses exist only inside them: no default route,
# no NAT, nothing in the root namespace.

NETNS_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$NETNS_HERE/../.." && pwd)"
ENV_EXAMPLE="$REPO/deploy/systemd/canond.env.example"
PORT=7700
CLIENT_HOST=2

die() {
  echo "netns: $*" >&2
  exit 1
}

need_tools() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
  if ! command -v ip >/dev/null; then
    echo "netns: installing iproute2" >&2
    apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null
  fi
}

# The binaries: NETNS_BIN (a directory with canond and canon), else the
# workspace's debug build.
bin_dir() {
  local d="${NETNS_BIN:-$REPO/target/debug}"
  if [ ! -x "$d/canond" ] || [ ! -x "$d/canon" ]; then
    die "no canond/canon in $d (cargo build -p canon-node -p canon-client, or set NETNS_BIN)"
  fi
  echo "$d"
}

tag_of() { cat "$1/tag"; }
ns_switch() { echo "canon-$(tag_of "$1")-sw"; }
ns_client() { echo "canon-$(tag_of "$1")-c"; }
ns_node() { echo "canon-$(tag_of "$1")-n$2"; }
host_of() { echo "$(cat "$1/net").$((10 + $2))"; }
client_host_of() { echo "$(cat "$1/net").$CLIENT_HOST"; }

# The cloud the nodes drive: sim (each node its own, in memory) or moto (one
# EC2 emulator in the client namespace, shared by every node as a real
# cloud is; up.sh --cloud moto).
MOTO_PORT=5000
cloud_of() { cat "$1/cloud" 2>/dev/null || echo sim; }
moto_url() { echo "http://$(client_host_of "$1"):$MOTO_PORT"; }
# The env file lines that point a node at the cluster's cloud.
cloud_env() {
  if [ "$(cloud_of "$1")" = moto ]; then
    printf '%s\n' CANON_CLOUD=aws "AWS_ENDPOINT_URL=$(moto_url "$1")" \
      AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-west-2
  else
    echo CANON_CLOUD=sim
  fi
}
addr_of() { echo "$(host_of "$1" "$2"):$PORT"; }

# The node ids that have a directory, in order.
node_ids() {
  local d
  for d in "$1"/node-*; do
    [ -d "$d" ] && echo "${d##*/node-}"
  done | sort -n
}

spare_of() { cat "$1/spare" 2>/dev/null || true; }

# node_ids without the spare: the nodes clients and drills know.
member_ids() {
  local spare
  spare="$(spare_of "$1")"
  node_ids "$1" | grep -vx "${spare:-none}" || true
}

# Makes namespace NS with eth0 at HOST/24 on the cluster's bridge.
plug() {
  local dir="$1" ns="$2" host="$3" port_name="$4" sw
  sw="$(ns_switch "$dir")"
  ip netns add "$ns"
  echo "$ns" >>"$dir/namespaces"
  ip link add name eth0 netns "$ns" type veth peer name "$port_name" netns "$sw"
  ip -n "$sw" link set "$port_name" master br0 up
  ip -n "$ns" addr add "$host/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

# Writes node ID's env file from the systemd example: every setting the
# example has, with this node's own values in place of the example's.
write_env() {
  local dir="$1" id="$2" mode="$3" token="${4:-}" key
  local node="$dir/node-$id"
  mkdir -p "$node"
  key="$(cat "$dir/admin.pub")"
  {
    echo "# node $id of the netns cluster in $dir, from $ENV_EXAMPLE"
    grep -E '^[A-Z_]+=' "$ENV_EXAMPLE" | grep -vE '^(CANON_NODE_ID|CANON_LISTEN|CANON_ADVERTISE|CANON_PEERS|CANON_BOOTSTRAP|CANON_JOIN|CANON_JOIN_TOKEN|CANON_DATA_DIR|CANON_ADMIN_KEY|CANON_CLOUD|CANON_TICK|CANON_LOG_FORMAT)='
    printf '%s\n' "CANON_NODE_ID=$id" "CANON_LISTEN=$(addr_of "$dir" "$id")" \
      "CANON_ADVERTISE=$(addr_of "$dir" "$id")" "CANON_DATA_DIR=$node/data" \
      "CANON_ADMIN_KEY=$key" CANON_TICK=2s CANON_LOG_FORMAT=human CANON_DRILL_FAULTS=true
    cloud_env "$dir"
    # MODE: bootstrap (creates the cluster), member (an initial member) or
    # join:HOST:PORT (added to a running cluster through that member, with
    # the one-time join TOKEN).
    case "$mode" in
      bootstrap) echo "CANON_PEERS=$(cat "$dir/peers")" && echo "CANON_BOOTSTRAP=true" ;;
      member) echo "CANON_PEERS=$(cat "$dir/peers")" ;;
      join:*) echo "CANON_JOIN=${mode#join:}" && echo "CANON_JOIN_TOKEN=$token" ;;
      *) die "unknown mode $mode" ;;
    esac
  } >"$node/canond.env"
}

# Starts moto in the client namespace, at moto_url, and waits until it
# answers.
start_moto() {
  local dir="$1" moto i
  moto="${MOTO_SERVER:-$REPO/.venv/bin/moto_server}"
  [ -x "$moto" ] || moto="$(command -v moto_server)" ||
    die "moto_server not found: set MOTO_SERVER or pip install 'moto[server]'"
  # moto's recorder keeps every request (headers, body) it serves.
  ip netns exec "$(ns_client "$dir")" env MOTO_ENABLE_RECORDING=True \
    MOTO_RECORDER_FILEPATH="$dir/cloud-calls.jsonl" \
    "$moto" -H "$(client_host_of "$dir")" -p "$MOTO_PORT" >"$dir/moto.log" 2>&1 &
  for ((i = 0; i < 100; i++)); do
    if ip netns exec "$(ns_client "$dir")" python3 -c \
      "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/', timeout=1)" \
      "$(moto_url "$dir")" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  die "moto did not start: $(tail -n 5 "$dir/moto.log")"
}

# Starts node ID's canond in its namespace from its env file (KEY=VALUE
# lines, as systemd's EnvironmentFile= reads them), plus any KEY=VALUE
# arguments after ID (e.g. a drill's LD_PRELOAD and FAKETIME: for this
# start only); records its pid.
start_node() {
  local dir="$1" id="$2" bin vars=()
  local node="$dir/node-$id"
  shift 2
  bin="$(bin_dir)"
  mapfile -t vars < <(grep -E '^[A-Z_]+=' "$node/canond.env")
  ip netns exec "$(ns_node "$dir" "$id")" env -i PATH=/usr/bin:/bin "${vars[@]}" "$@" \
    "$bin/canond" >>"$node/canond.log" 2>&1 &
  echo $! >"$node/pid"
  write_inventory "$dir"
}

pid_of() { cat "$1/node-$2/pid" 2>/dev/null || true; }

alive() {
  local pid
  pid="$(pid_of "$1" "$2")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# SIGTERM (canond drains and exits), SIGKILL after SECONDS.
stop_node() {
  local dir="$1" id="$2" seconds="${3:-30}" pid i
  pid="$(pid_of "$dir" "$id")"
  if alive "$dir" "$id"; then
    kill -TERM "$pid"
    for ((i = 0; i < seconds * 10; i++)); do
      alive "$dir" "$id" || break
      sleep 0.1
    done
    alive "$dir" "$id" && kill -KILL "$pid"
  fi
  wait_gone "$dir" "$id"
}

kill_node() {
  if alive "$1" "$2"; then
    kill -KILL "$(pid_of "$1" "$2")"
  fi
  wait_gone "$1" "$2"
}

wait_gone() {
  local i
  for ((i = 0; i < 100; i++)); do
    alive "$1" "$2" || return 0
    sleep 0.1
  done
  die "node $2 (pid $(pid_of "$1" "$2")) does not stop"
}

write_client_toml() {
  local dir="$1" id endpoints=""
  for id in $(member_ids "$dir"); do
    endpoints="$endpoints\"http://$(addr_of "$dir" "$id")\", "
  done
  {
    echo "# the netns cluster in $dir; run canon inside $(ns_client "$dir") (deploy/netns/canon.sh)"
    echo "endpoints = [${endpoints%, }]"
    echo 'user = "admin"'
    echo 'key = "admin.key"'
  } >"$dir/client.toml"
}

write_inventory() {
  local dir="$1" id spare
  {
    echo "# The netns cluster in this directory (deploy/netns/up.sh)."
    echo "dir = \"$dir\""
    echo "tag = \"$(tag_of "$dir")\""
    echo "bridge_namespace = \"$(ns_switch "$dir")\""
    echo "client_namespace = \"$(ns_client "$dir")\""
    echo "client_config = \"$dir/client.toml\""
    echo "canon = \"$NETNS_HERE/canon.sh $dir\""
    for id in $(member_ids "$dir"); do
      cat <<EOF

[[node]]
id = $id
namespace = "$(ns_node "$dir" "$id")"
address = "$(addr_of "$dir" "$id")"
pid = $(pid_of "$dir" "$id" | grep -E '^[0-9]+$' || echo 0)
data_dir = "$dir/node-$id/data"
env_file = "$dir/node-$id/canond.env"
log = "$dir/node-$id/canond.log"
stop = "$NETNS_HERE/node.sh $dir stop $id"
kill = "$NETNS_HERE/node.sh $dir kill $id"
restart = "$NETNS_HERE/node.sh $dir restart $id"
restart_with_env = "$NETNS_HERE/node.sh $dir restart $id"
wipe = "$NETNS_HERE/node.sh $dir wipe $id"
join = "$NETNS_HERE/node.sh $dir join $id"
EOF
    done
    if [ "$(cloud_of "$dir")" = moto ]; then
      cat <<EOF

# The EC2 emulator every node drives (the drills' drift and duplicate checks),
# and the requests it recorded (the check that no mutation came from a
# deposed term: each canond names itself in its user agent).
[cloud]
endpoint = "$(moto_url "$dir")"
region = "us-west-2"
access_key_id = "testing"
secret_access_key = "testing"
recording = "$dir/cloud-calls.jsonl"
EOF
    fi
    spare="$(spare_of "$dir")"
    if [ -n "$spare" ]; then
      cat <<EOF

# No member: joins for a while when a drill replaces a member of a cluster
# too small to lose one.
[spare]
id = $spare
join = "$NETNS_HERE/node.sh $dir join $spare"
stop = "$NETNS_HERE/node.sh $dir stop $spare"
wipe = "$NETNS_HERE/node.sh $dir wipe $spare"
EOF
    fi
  } >"$dir/inventory.toml.tmp"
  mv "$dir/inventory.toml.tmp" "$dir/inventory.toml"
}
