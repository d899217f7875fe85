#!/usr/bin/env bash
# End-to-end self-test on a Mac: a feth pair (fake Ethernet, two interfaces joined back
# to back), the reflector on feth1 over /dev/bpf, and frames sent from feth0 by
# scripts/macos-selftest.py (`reflector probe` runs on Linux only). Checks that every
# PROBEOT, RFC 2544 and STAMP frame comes back once, correctly rewritten, and that the
# reflector's own totals agree. Needs root; removes the pair on exit.
#   sudo scripts/macos-selftest.sh [COUNT]       # COUNT frames of each kind (100)
# REFLECTOR=path/to/reflector to test a given binary (default: target/release, built).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${1:-100}"
A=feth0 B=feth1
REFLECTOR_MAC=02:52:45:46:4c:01

if [ "$(uname -s)" != Darwin ]; then
  echo "selftest: this is the macOS self-test (feth, /dev/bpf); on Linux run sudo scripts/test.sh" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "selftest: run with sudo: feth interfaces and /dev/bpf need root" >&2
  exit 1
fi
if [ -z "${REFLECTOR:-}" ]; then
  scripts/macos-build.sh -p reflector
  REFLECTOR=target/release/reflector
fi

log="$(mktemp)"
cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  ifconfig "$A" destroy 2>/dev/null || true
  ifconfig "$B" destroy 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

for i in "$A" "$B"; do ifconfig "$i" destroy 2>/dev/null || true; done
ifconfig "$A" create
ifconfig "$B" create
ifconfig "$A" peer "$B"
ifconfig "$B" lladdr "$REFLECTOR_MAC"
ifconfig "$A" up
ifconfig "$B" up

"$REFLECTOR" "$B" --json --stats-interval 0 >"$log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q '"started"' "$log" && break; sleep 0.1; done
grep -q '"started"' "$log" || { echo "selftest: the reflector did not start:" >&2; cat "$log" >&2; exit 1; }

status=0
python3 scripts/macos-selftest.py "$A" "$REFLECTOR_MAC" --count "$COUNT" || status=$?
kill -INT "$pid"
wait "$pid" || true
pid=
final="$(grep '"final"' "$log" || true)"
echo "reflector: $final"
reflected="$(echo "$final" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["reflected"])' || echo none)"
if [ "$reflected" != "$((3 * COUNT))" ]; then
  echo "selftest: the reflector counts $reflected reflected frames, expected $((3 * COUNT))" >&2
  status=1
fi
exit "$status"
