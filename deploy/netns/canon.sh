#!/usr/bin/env bash
# canon.sh DIR ARGS...: runs `canon ARGS...` in the client namespace of the
# netns cluster in DIR, with DIR/client.toml: the CLI reaches the nodes
# over the bridge like a client on another host.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || die "usage: canon.sh DIR ARGS..."
dir="$(cd "$1" && pwd)"
shift
exec ip netns exec "$(ns_client "$dir")" env CANON_CONFIG="$dir/client.toml" "$(bin_dir)/canon" "$@"
