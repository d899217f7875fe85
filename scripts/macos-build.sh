#!/usr/bin/env bash
# Build release binaries on a Mac from a script run with sudo, as the user who ran sudo:
# their cargo (rustup installs it in ~/.cargo/bin, which sudo's PATH may lack) and
# their ownership of target/. Arguments go to cargo build (e.g. -p reflector).
set -euo pipefail
cd "$(dirname "$0")/.."

user="${SUDO_USER:-$(id -un)}"
cargo="$(command -v cargo || echo "$(eval echo "~$user")/.cargo/bin/cargo")"
if [ ! -x "$cargo" ]; then
  echo "cargo not found: install Rust from https://rustup.rs (as $user), then rerun" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ] && [ "$user" != root ]; then
  exec sudo -H -u "$user" "$cargo" build --release --quiet "$@"
fi
exec "$cargo" build --release --quiet "$@"
