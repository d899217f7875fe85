#!/usr/bin/env bash
# Sets up a fresh machine and runs every check: formatting, lints (Linux and both macOS
# targets), unit, property, BPF agreement and network-namespace end-to-end tests, and a
# bounded fuzzing run of the classifier. Must run as root: the end-to-end tests build
# real veth rigs and attach real XDP programs, and they fail (never skip) if they can't.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
MAC_TARGETS=(x86_64-apple-darwin aarch64-apple-darwin)

# Each step says how far into the run it starts, so a slow step shows (CI has 30 min).
step() { printf '\n=== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

step "setup"
scripts/setup.sh test
rustup target add "${MAC_TARGETS[@]}" >/dev/null
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet

step "format"
cargo fmt --all --check

step "clippy (linux)"
cargo clippy --workspace --all-targets --locked -- -D warnings

for target in "${MAC_TARGETS[@]}"; do
  step "type-check and clippy for $target"
  # The control plane has no CPU-specific code: one macOS target is enough for it.
  control=()
  [ "$target" = x86_64-apple-darwin ] && control=(-p control)
  cargo clippy -p platform-macos -p reflector "${control[@]}" --target "$target" --locked -- -D warnings
done

step "build binaries"
cargo build --workspace --bins --locked

step "tests"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"

# The debug build just made: a release build (thin LTO, one codegen unit) would add
# minutes, and the packaging is the same for both.
step "package (.deb, tarball), install the .deb, run the installed binaries"
PROFILE=debug DEB_COMPRESS=gzip scripts/package-deb.sh
tarball="$(PROFILE=debug scripts/package-tarball.sh | tail -n 1)"
contents="$(tar -tzf "$tarball")"
for file in bin/reflector bin/reflector-control man/man1/reflector.1 \
  systemd/reflector-control.service etc/control.toml INSTALL.md; do
  grep -q "^reflector-[^/]*/$file\$" <<<"$contents" || { echo "$tarball lacks $file" >&2; exit 1; }
done
dpkg -i target/packages/reflector_*_amd64.deb
/usr/bin/reflector --version | grep -E '^(reflector |commit: |back ends: .*xdp-tx)'
/usr/bin/reflector-control --version | grep '^commit: '
man -w reflector reflector-probe reflector-control
man -P cat reflector | grep -- '--no-oui-filter' >/dev/null   # (grep -q would SIGPIPE man)
systemd-analyze verify /usr/lib/systemd/system/reflector-control.service
getent passwd reflector-control
# The installed udev rule is the one tests/tests/wake_latency.rs applies and tests.
cmp deploy/reflector-control.rules /usr/lib/udev/rules.d/60-reflector-control.rules
# The unit reads the package's conffile, and the README names that same file.
config="$(sed -n 's/^ExecStart=.* --config \([^ ]*\).*/\1/p' /usr/lib/systemd/system/reflector-control.service)"
grep -qx "$config" /var/lib/dpkg/info/reflector.conffiles && grep -q -- "--config $config" README.md
# Real frames through the installed binary (reflector and test head), on a netns lab.
installed_log="$(mktemp)"
REFLECTOR_BIN=/usr/bin/reflector cargo test -p reflector-tests --test e2e --locked -- \
  --exact no_loss_at_a_moderate_rate af_packet_backend_reflects 2>&1 | tee "$installed_log"
grep -q 'test result: ok. 2 passed' "$installed_log"
cat "$installed_log" >>"$log"
rm -f "$installed_log"
dpkg --purge reflector

step "fuzz the classifier for ${FUZZ_SECONDS}s"
cargo run -q -p dataplane --example fuzz_seeds -- dataplane/fuzz/corpus/classify
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir dataplane/fuzz classify -- \
  -max_total_time="$FUZZ_SECONDS" -max_len=9100 2>&1 | tail -n 5

passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
echo
echo "all checks: ${passed} passed, ${failed} failed ($((SECONDS / 60))m$((SECONDS % 60))s)"
