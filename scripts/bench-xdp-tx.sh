#!/usr/bin/env bash
# The in-kernel back end against its limit, interleaved round by round on one veth rig:
#   baseline  xdp-filter's xdp_tx_baseline (swap and XDP_TX, no classification)
#   xdp_tx    this reflector, --backend xdp-tx --max-streams 0
#   af_xdp    this reflector, --backend xdp (AF_XDP, default features)
# The head is `reflector probe --engine fast --rate 0` (live-frames BPF_PROG_RUN, returns
# counted in XDP); each line gives offered and returned rates, the head's loss and the
# reflector's own totals (received, reflected, kernel RX drops) from its final event.
#   sudo scripts/bench-xdp-tx.sh          # ROUNDS=5 SECS=3 SIZES="64 1500" by default
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-5}" SECS="${SECS:-3}" SIZES=(${SIZES:-64 1500})
H=rfl-xdptx-head R=rfl-xdptx-refl HMAC=00:c0:17:be:00:01 RMAC=02:52:45:46:4c:02
cargo build --release --quiet -p reflector -p xdp-filter --example xdp_tx_baseline
BIN="$PWD/target/release/reflector" BASELINE="$PWD/target/release/examples/xdp_tx_baseline"
OUT=$(mktemp)

PID=""
cleanup() {
  [ -n "$PID" ] && { kill -INT "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  ip netns del "$H" 2>/dev/null || true
  ip netns del "$R" 2>/dev/null || true
  rm -f "$OUT"
}
trap cleanup EXIT
cleanup

ip netns add "$H"; ip netns add "$R"
ip link add head0 netns "$H" address "$HMAC" type veth peer name refl0 netns "$R" address "$RMAC"
ip -n "$H" link set head0 up; ip -n "$R" link set refl0 up

for round in $(seq "$ROUNDS"); do
  for size in "${SIZES[@]}"; do
    for kind in baseline xdp_tx af_xdp; do
      case $kind in
        baseline) ip netns exec "$R" "$BASELINE" refl0 >/dev/null & ;;
        xdp_tx) ip netns exec "$R" "$BIN" refl0 --backend xdp-tx --max-streams 0 --stats-interval 0 --json >"$OUT" & ;;
        af_xdp) ip netns exec "$R" "$BIN" refl0 --backend xdp --stats-interval 0 --json >"$OUT" & ;;
      esac
      PID=$!; sleep 1
      report=$(timeout 60 ip netns exec "$H" "$BIN" probe head0 --to "$RMAC" --engine fast --rate 0 \
        --duration "$SECS" --size "$size" --wait 1 --json || true)
      kill -INT "$PID"; wait "$PID" || true; PID=""
      [ -n "$report" ] || { echo "round $round size $size $kind: the probe printed no report"; continue; }
      totals=""
      [ "$kind" != baseline ] && totals=$(tail -1 "$OUT" | python3 -c 'import json,sys
c = json.load(sys.stdin)["counters"]
drops = sum(v for k, v in c.items() if k.startswith("kernel_rx"))
print("| reflector: received %d reflected %d kernel RX drops %d" % (c["received"], c["reflected"], drops))')
      printf '%s' "$report" | python3 -c "import json,sys
r = json.load(sys.stdin)
print('round $round size $size $kind: offered %.3f Mpps returned %.3f Mpps (sent %d received %d lost %d) $totals'
      % (r['tx_pps'] / 1e6, r['received'] / r['send_seconds'] / 1e6, r['sent'], r['received'], r['lost']))"
    done
  done
done
