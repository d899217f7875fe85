#!/usr/bin/env bash
# The main job: the control plane with its dashboard, supervising reflectors.
#   sudo scripts/demo.sh              # virtual lab: two network namespaces joined by veth,
#                                     # a reflector on one end, the test head on the other
#   sudo scripts/demo.sh eth1         # supervise a reflector on a real interface
# Then open http://127.0.0.1:8080/ (the API token is printed at start). Ctrl-C stops
# everything and removes the lab. Extra arguments go to `reflector-control demo`
# (e.g. --rate 20000, --listen 0.0.0.0:8080).
# On macOS there is no virtual lab (it needs Linux network namespaces): name an
# interface (`sudo scripts/demo.sh en0`); nothing is installed, Rust must be there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" = Darwin ]; then
  exec scripts/demo-macos.sh "$@"
fi
scripts/setup.sh demo
cargo build --release --quiet -p reflector -p control
exec target/release/reflector-control demo "$@"
