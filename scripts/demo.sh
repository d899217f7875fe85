#!/usr/bin/env bash
# The main job. With an interface name, reflect test frames on it until Ctrl-C:
#   sudo scripts/demo.sh eth1 [reflector flags...]
# With none, build a virtual lab (two network namespaces joined by veth), run the
# reflector in one and the `reflector probe` test head in the other, and report:
#   sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --quiet -p reflector
BIN="$PWD/target/release/reflector"

if [ "$#" -gt 0 ]; then
  exec "$BIN" "$@"
fi

HEAD_NS=rfl-demo-head
REFL_NS=rfl-demo-refl
HEAD_MAC=00:c0:17:de:00:01     # inside NetAlly's OUI, as a LinkRunner's would be
REFL_MAC=02:52:45:46:4c:01
RATE="${DEMO_RATE:-20000}"
SECONDS_TO_RUN="${DEMO_SECONDS:-10}"

cleanup() {
  [ -n "${REFL_PID:-}" ] && kill -INT "$REFL_PID" 2>/dev/null && wait "$REFL_PID" 2>/dev/null || true
  ip netns del "$HEAD_NS" 2>/dev/null || true
  ip netns del "$REFL_NS" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip netns add "$HEAD_NS"
ip netns add "$REFL_NS"
ip link add head0 netns "$HEAD_NS" address "$HEAD_MAC" type veth peer name refl0 netns "$REFL_NS" address "$REFL_MAC"
for ns in "$HEAD_NS" "$REFL_NS"; do
  ip -n "$ns" link set lo up
done
ip -n "$HEAD_NS" link set head0 up
ip -n "$REFL_NS" link set refl0 up
ip -n "$HEAD_NS" addr add 192.0.2.1/24 dev head0
ip -n "$REFL_NS" addr add 192.0.2.2/24 dev refl0

echo "lab: $HEAD_NS/head0 ($HEAD_MAC) <-> $REFL_NS/refl0 ($REFL_MAC)"
ip netns exec "$REFL_NS" "$BIN" refl0 --stats-interval 2 &
REFL_PID=$!
sleep 1
ip netns exec "$HEAD_NS" "$BIN" probe head0 --to "$REFL_MAC" --rate "$RATE" --duration "$SECONDS_TO_RUN"
