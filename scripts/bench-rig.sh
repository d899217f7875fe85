#!/usr/bin/env bash
# Rig benchmark: reflected frames per second through three reflectors on the same veth
# rig, in the same run, interleaved round by round so machine noise hits all alike:
#   xdp_tx     in-kernel XDP program that swaps and returns XDP_TX (the rig's limit)
#   af_xdp     this reflector (AF_XDP behind the XDP filter, mode all)
#   af_packet  this reflector's AF_PACKET back end (the classic design)
# The test head (`reflector probe --rate 0`) floods from the other namespace; the figure
# is reflections received per second of sending. Prints a Markdown table of medians and
# ratios against xdp_tx.
#   sudo scripts/bench-rig.sh            # ROUNDS=3 FRAMES=500000 by default
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}"
FRAMES="${FRAMES:-500000}"
SIZES=(${SIZES:-64 512 1500})
HEAD_NS=rfl-bench-head REFL_NS=rfl-bench-refl
HEAD_MAC=00:c0:17:be:00:01 REFL_MAC=02:52:45:46:4c:02

scripts/setup.sh
cargo build --release --quiet -p reflector -p xdp-filter --example xdp_tx_baseline
BIN="$PWD/target/release/reflector"
BASELINE="$PWD/target/release/examples/xdp_tx_baseline"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$HEAD_NS" 2>/dev/null || true
  ip netns del "$REFL_NS" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip netns add "$HEAD_NS"; ip netns add "$REFL_NS"
ip link add head0 netns "$HEAD_NS" address "$HEAD_MAC" type veth peer name refl0 netns "$REFL_NS" address "$REFL_MAC"
ip -n "$HEAD_NS" link set head0 up; ip -n "$REFL_NS" link set refl0 up
# A veth drops frames sent to it with XDP_TX unless it runs an XDP program itself; this
# one bounces nothing (port 1) and stays attached for every run, so all see the same rig.
ip netns exec "$HEAD_NS" "$BASELINE" head0 1 >/dev/null & PIDS+=($!)
sleep 1

start_reflector() {
  case "$1" in
    xdp_tx)    ip netns exec "$REFL_NS" "$BASELINE" refl0 >/dev/null & ;;
    af_xdp)    ip netns exec "$REFL_NS" "$BIN" refl0 --mode all --stats-interval 0 >/dev/null & ;;
    af_packet) ip netns exec "$REFL_NS" "$BIN" refl0 --mode all --backend af-packet --stats-interval 0 >/dev/null & ;;
  esac
  REFLECTOR_PID=$!
  sleep 1
}

declare -A RESULTS
for round in $(seq "$ROUNDS"); do
  for size in "${SIZES[@]}"; do
    for kind in xdp_tx af_xdp af_packet; do
      start_reflector "$kind"
      report=$(ip netns exec "$HEAD_NS" "$BIN" probe head0 --to "$REFL_MAC" --rate 0 \
        --count "$FRAMES" --size "$size" --wait 1 --json || true)
      kill -INT "$REFLECTOR_PID"; wait "$REFLECTOR_PID" 2>/dev/null || true
      mpps=$(printf '%s' "$report" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.4f" % (r["received"]/r["send_seconds"]/1e6))')
      echo "round $round size $size $kind: $mpps Mpps reflected" >&2
      RESULTS["$size,$kind"]+="$mpps "
    done
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "| frame size | xdp_tx (limit) Mpps | af_xdp Mpps | af_xdp / xdp_tx | af_packet Mpps | af_packet / xdp_tx | af_xdp / af_packet |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for size in "${SIZES[@]}"; do
  tx=$(echo "${RESULTS[$size,xdp_tx]}" | median)
  xsk=$(echo "${RESULTS[$size,af_xdp]}" | median)
  pkt=$(echo "${RESULTS[$size,af_packet]}" | median)
  python3 -c "t,x,p=$tx,$xsk,$pkt; print('| %s | %.3f | %.3f | %.0f%% | %.3f | %.0f%% | %.2fx |' % ('$size', t, x, 100*x/t, p, 100*p/t, x/p))"
done
