#!/usr/bin/env bash
# scripts/demo.sh on a Mac: build the release binaries (as the user who ran sudo, so
# target/ stays theirs) and run the control plane with its dashboard supervising a
# reflector on a real interface. No apt-get, no virtual lab (that needs Linux network
# namespaces; docs/MACOS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

interface="${1:-}"
if [ -z "$interface" ] || [ "${interface#-}" != "$interface" ]; then
  cat >&2 <<'TEXT'
demo: macOS has no virtual lab (it needs Linux network namespaces). Name the wired
interface a test head is plugged into, and the dashboard supervises a reflector on it:

    sudo scripts/demo.sh en0        # networksetup -listallhardwareports lists them

Or run the pieces yourself (Rust from https://rustup.rs, Xcode tools: xcode-select --install):

    cargo build --release -p reflector -p control
    sudo ./target/release/reflector en0
    sudo ./target/release/reflector-control demo en0     # http://127.0.0.1:8080/
    sudo scripts/macos-selftest.sh                       # a feth pair, frames both ways
TEXT
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run with sudo: the reflector reads /dev/bpf, which only root may open" >&2
  exit 1
fi

scripts/macos-build.sh -p reflector -p control
exec target/release/reflector-control demo "$@"
