#!/usr/bin/env bash
# The socket engine's RTT floor (issue 16): `reflector probe` (default engine) through
# the in-kernel XDP_TX baseline on a two-namespace veth rig, at 1 kpps, 20 kpps and full
# rate, ROUNDS rounds. Each run's JSON report gives the round trips by the kernel's
# software timestamps; its info line (RUST_LOG=info) the same frames by the user clock,
# so both come from the same run. OLD=path/to/reflector adds a full-rate run of another
# build (e.g. one from before kernel stamps) for its send rate and loss.
#   flock /tmp/bench.lock env ROUNDS=3 bash scripts/socket-probe-floor.sh
# Run as root from the repository; it builds the release binaries first.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "socket-probe-floor: run as root" >&2; exit 1; }
ROUNDS="${ROUNDS:-3}" OLD="${OLD:-}"
H=rfl-floor-head R=rfl-floor-refl HMAC=00:c0:17:be:00:01 RMAC=02:52:45:46:4c:02
cargo build --release --quiet -p reflector --bin reflector -p xdp-filter --example xdp_tx_baseline
BIN="$PWD/target/release/reflector" BASELINE="$PWD/target/release/examples/xdp_tx_baseline"
TMP=$(mktemp -d) PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  ip netns del "$H" 2>/dev/null || true
  ip netns del "$R" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
ip netns del "$H" 2>/dev/null || true
ip netns del "$R" 2>/dev/null || true
ip netns add "$H"
ip netns add "$R"
ip link add head0 netns "$H" address "$HMAC" type veth peer name refl0 netns "$R" address "$RMAC"
ip -n "$H" link set head0 up
ip -n "$R" link set refl0 up
ip netns exec "$H" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$R" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$R" "$BASELINE" refl0 >/dev/null & PIDS+=($!)
# A veth delivers XDP_TX frames only to a peer that runs XDP too: the baseline on a port
# no test frame uses passes everything on head0 up the stack (as bench-rig.sh does).
ip netns exec "$H" "$BASELINE" head0 9 >/dev/null & PIDS+=($!)
sleep 1
probe() { # binary rate count
  RUST_LOG=info ip netns exec "$H" "$1" probe head0 --to "$RMAC" --rate "$2" --count "$3" \
    --wait 0.3 --json >"$TMP/report" 2>"$TMP/log" || true
  python3 - "$TMP/report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); p = r["rtt_ns"]; us = lambda ns: f"{ns / 1e3:.1f}"
print(f"  sent {r['sent']} received {r['received']} samples {p['count']} "
      f"tx {r['tx_pps'] / 1e3:.0f} kpps, {r.get('timestamps', 'user clock (old)')}: "
      f"p50 {us(p['p50'])} p99 {us(p['p99'])} p99.9 {us(p['p999'])} max {us(p['max'])} us")
PY
  grep -o "by the user clock: [^(]*" "$TMP/log" | sed 's/^/    same frames /' || true
  grep -o "[0-9]* reflections had no .*" "$TMP/log" | sed 's/^/    /' || true
}
for round in $(seq "$ROUNDS"); do
  echo "round $round (rustc running: $(pgrep -c rustc || true))"
  echo " 1 kpps"; probe "$BIN" 1000 3000
  echo " 20 kpps"; probe "$BIN" 20000 60000
  echo " full rate"; probe "$BIN" 0 1000000
  if [ -n "$OLD" ]; then echo " full rate, $OLD"; probe "$OLD" 0 1000000; fi
done
