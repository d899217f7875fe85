#!/usr/bin/env bash
# Sets up a fresh machine and runs every check: formatting, lints (Linux and both macOS
# targets), unit, property, BPF agreement and network-namespace end-to-end tests, and a
# bounded fuzzing run of the classifier. Must run as root: the end-to-end tests build
# real veth rigs and attach real XDP programs, and they fail (never skip) if they can't.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
MAC_TARGETS=(x86_64-apple-darwin aarch64-apple-darwin)

step() { printf '\n=== %s\n' "$*"; }

step "setup"
scripts/setup.sh
rustup target add "${MAC_TARGETS[@]}" >/dev/null
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet

step "format"
cargo fmt --all --check

step "clippy (linux)"
cargo clippy --workspace --all-targets --locked -- -D warnings

for target in "${MAC_TARGETS[@]}"; do
  step "type-check and clippy for $target"
  cargo clippy -p platform-macos -p reflector --target "$target" --locked -- -D warnings
done

step "build binaries"
cargo build --workspace --bins --locked

step "tests"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"

step "fuzz the classifier for ${FUZZ_SECONDS}s"
cargo run -q -p dataplane --example fuzz_seeds -- dataplane/fuzz/corpus/classify
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir dataplane/fuzz classify -- \
  -max_total_time="$FUZZ_SECONDS" -max_len=9100 2>&1 | tail -n 5

passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
echo
echo "all checks: ${passed} passed, ${failed} failed"
