#!/usr/bin/env bash
# make-tls-secret.sh DIR NAMESPACE CLUSTER_ID MEMBERS [USER]: the mutual-TLS
# material for the overlay three-tls (or your own), made with `canon cert`:
#   DIR/peer-ca, DIR/client-ca   the two CAs (keep their ca.key off the cluster);
#   DIR/secret/                  what the Secret canon-tls holds: peer-ca.crt,
#                                client-ca.crt, node-ID.crt and node-ID.key for
#                                ids 1..MEMBERS (pod canon-N is node N+1, named
#                                canon-N.canon-peer.NAMESPACE.svc.cluster.local
#                                and canon.NAMESPACE.svc);
#   DIR/USER/                    USER's client certificate (default admin) and
#                                the peer CA's certificate, for client.toml [tls].
# Then prints the kubectl command that makes the Secret. Set CANON to the
# canon binary if it is not on PATH. Nothing is overwritten.
set -euo pipefail

[ $# -ge 4 ] || { echo "usage: make-tls-secret.sh DIR NAMESPACE CLUSTER_ID MEMBERS [USER]" >&2; exit 2; }
dir="$1" ns="$2" cluster="$3" members="$4" user="${5:-admin}"
canon="${CANON:-canon}"
case "$members" in
  '' | *[!0-9]*) echo "make-tls-secret: MEMBERS must be a number, not $members" >&2; exit 2 ;;
esac

"$canon" cert create-ca --kind peer --out "$dir/peer-ca"
"$canon" cert create-ca --kind client --out "$dir/client-ca"
mkdir -p "$dir/secret" "$dir/$user"
cp "$dir/peer-ca/ca.crt" "$dir/secret/peer-ca.crt"
cp "$dir/client-ca/ca.crt" "$dir/secret/client-ca.crt"
i=0
while [ "$i" -lt "$members" ]; do
  "$canon" cert create-node "$((i + 1))" \
    "canon-$i.canon-peer.$ns.svc.cluster.local" "canon.$ns.svc" "canon.$ns.svc.cluster.local" \
    --ca "$dir/peer-ca" --cluster "$cluster" --out "$dir/secret"
  i=$((i + 1))
done
"$canon" cert create-client "$user" --ca "$dir/client-ca" --out "$dir/$user"
cp "$dir/peer-ca/ca.crt" "$dir/$user/ca.crt"

echo "kubectl -n $ns create secret generic canon-tls --from-file=$dir/secret/"
