#!/bin/sh
# Writes this pod's own canond settings to /run/canon/canond.toml, which
# canond reads with --config (its CANON_* variables win over the file):
#   id         the StatefulSet ordinal + 1 (canond's ids start at 1);
#   advertise  the pod's stable DNS name under the headless peer Service;
#   first start (CLUSTER_STATE=new) of an initial member: peers (every
#              initial member by DNS name), and bootstrap on ordinal 0;
#   otherwise  join, through ordinal 0 (ordinal 1 for ordinal 0 itself);
#   with TLS_DIR (the overlay three-tls): mutual TLS from the Secret mounted
#              there, this pod's own node-ID.crt and node-ID.key.
# A node that already has data ignores bootstrap, and a join is harmless
# on the restart of a member. Runs in busybox sh as the init container.
set -eu

out="${NODE_TOML:-/run/canon/canond.toml}"
ordinal="${POD_NAME##*-}"
case "$ordinal" in
  '' | *[!0-9]*) echo "node-config: cannot read an ordinal from POD_NAME=$POD_NAME" >&2; exit 1 ;;
esac
set_name="${POD_NAME%-*}"
port="${CANON_LISTEN##*:}"

host_of() {
  echo "$set_name-$1.$PEER_SERVICE.$POD_NAMESPACE.svc.$CLUSTER_DOMAIN:$port"
}

peers=""
i=0
while [ "$i" -lt "$INITIAL_MEMBERS" ]; do
  peers="$peers\"$((i + 1))=$(host_of "$i")\", "
  i=$((i + 1))
done

{
  printf 'id = %s\n' "$((ordinal + 1))"
  printf 'advertise = "%s"\n' "$(host_of "$ordinal")"
  if [ "$CLUSTER_STATE" = new ] && [ "$ordinal" -lt "$INITIAL_MEMBERS" ]; then
    printf 'peers = [%s]\n' "${peers%, }"
    if [ "$ordinal" -eq 0 ]; then
      printf 'bootstrap = true\n'
    fi
  elif [ "$ordinal" -eq 0 ]; then
    printf 'join = "%s"\n' "$(host_of 1)"
  else
    printf 'join = "%s"\n' "$(host_of 0)"
  fi
  if [ -n "${TLS_DIR:-}" ]; then
    printf 'tls_cert = "%s/node-%s.crt"\n' "$TLS_DIR" "$((ordinal + 1))"
    printf 'tls_key = "%s/node-%s.key"\n' "$TLS_DIR" "$((ordinal + 1))"
    printf 'tls_peer_ca = "%s/peer-ca.crt"\n' "$TLS_DIR"
    printf 'tls_client_ca = "%s/client-ca.crt"\n' "$TLS_DIR"
  fi
} >"$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
