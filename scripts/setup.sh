#!/usr/bin/env bash
# Installs what one purpose needs on a fresh Debian/Ubuntu machine, and prepares the
# kernel side (bpffs). Idempotent: safe to run every time.
#   scripts/setup.sh build   # compile: clang/llvm, libelf, zlib, libpcap (+ Rust check)
#   scripts/setup.sh demo    # build + the virtual lab (iproute2, ethtool, bpffs) and
#                            # the STAMP sender; no browser (scripts/demo.sh)
#   scripts/setup.sh test    # everything (the default; scripts/test.sh): demo + the
#                            # browser test, packaging and the installed-package checks
#   scripts/setup.sh cross-aarch64  # build + the arm64 cross compiler and libraries, the
#                            # Rust target and qemu-user, for the aarch64 tarball
#                            # (TARGET=aarch64-unknown-linux-gnu scripts/package-tarball.sh)
set -euo pipefail

PURPOSE="${1:-test}"
BUILD_PACKAGES=(
  clang llvm libelf-dev zlib1g-dev pkg-config make m4   # BPF programs, libbpf, libxdp
  libpcap-dev                                           # --read/--write pcap platform
)
LAB_PACKAGES=(
  iproute2 ethtool                                      # network namespaces and veth
)
TEST_PACKAGES=(
  iputils-ping netcat-openbsd                           # end-to-end rigs
  strace                                                # AF_XDP TX kick count (tx_kick.rs)
  tmux                                                  # terminal dashboard (--tui) tests
  chromium chromium-driver python3                      # dashboard browser test, bench-rig.sh
  dpkg-dev man-db adduser systemd                       # package build and install, man, unit check
)
CROSS_AARCH64_PACKAGES=(
  gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu      # C parts (libbpf, libxdp), link
  libc6-dev:arm64 libelf-dev:arm64 zlib1g-dev:arm64     # arm64 headers, libraries and .pc
  libpcap-dev:arm64                                     #   files (multiarch)
  qemu-user                                             # runs the aarch64 --version check
)
case "$PURPOSE" in
  build) APT_PACKAGES=("${BUILD_PACKAGES[@]}") ;;
  demo) APT_PACKAGES=("${BUILD_PACKAGES[@]}" "${LAB_PACKAGES[@]}") ;;
  test) APT_PACKAGES=("${BUILD_PACKAGES[@]}" "${LAB_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  cross-aarch64) APT_PACKAGES=("${BUILD_PACKAGES[@]}" "${CROSS_AARCH64_PACKAGES[@]}") ;;
  *) echo "setup: unknown purpose '$PURPOSE': use build, demo, test or cross-aarch64" >&2; exit 2 ;;
esac

# The independent STAMP session-sender the interoperability tests run (crates.io).
STAMP_SUITE_VERSION=1.0.0
REPO="$(cd "$(dirname "$0")/.." && pwd)"

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (or with sudo): XDP, AF_XDP and network namespaces need it" >&2
    exit 1
  fi
}

# Whether PKG (NAME or NAME:ARCH) is installed; not `dpkg -s`, which refuses a bare NAME
# once it is installed for two architectures (after cross-aarch64).
installed() {
  dpkg-query -W -f='${binary:Package} ${db:Status-Abbrev}\n' "$1" 2>/dev/null |
    grep -Eq "^$1(:$(dpkg --print-architecture))? ii"
}

install_apt_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust from https://rustup.rs first" >&2
    exit 1
  fi
}

# The arm64 libraries come from the same Debian archive as the native ones (multiarch).
add_arm64_architecture() {
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt-get update -qq
  fi
}

mount_bpffs() {
  if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
    mkdir -p /sys/fs/bpf
    mount -t bpf bpf /sys/fs/bpf
  fi
}

install_stamp_suite() {
  local root="$REPO/target/tools"
  if ! "$root/bin/stamp-suite" --version 2>/dev/null | grep -qx "stamp-suite $STAMP_SUITE_VERSION"; then
    echo "setup: installing stamp-suite $STAMP_SUITE_VERSION (STAMP sender for the interop tests)"
    CARGO_TARGET_DIR="$REPO/target/tools-build" \
      cargo install stamp-suite --version "$STAMP_SUITE_VERSION" --locked --root "$root" --quiet
  fi
}

if [ "$(uname -s)" = Darwin ]; then
  echo "setup: this script installs Debian/Ubuntu packages; on macOS you need only Rust" \
    "(https://rustup.rs) and the Xcode command-line tools (xcode-select --install):" \
    "see docs/MACOS.md" >&2
  exit 1
fi
need_root
[ "$PURPOSE" = cross-aarch64 ] && add_arm64_architecture
install_apt_packages
install_rust
if [ "$PURPOSE" = cross-aarch64 ]; then
  rustup target add aarch64-unknown-linux-gnu
  exit 0
fi
[ "$PURPOSE" = build ] && exit 0
mount_bpffs
install_stamp_suite
