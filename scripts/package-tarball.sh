#!/usr/bin/env bash
# Builds a release tarball target/packages/reflector-VERSION-TARGET.tar.gz: both
# binaries, man pages, shell completions, the systemd unit and service user, the
# default config, the docs and INSTALL.md (how to install it by hand).
#   scripts/package-tarball.sh                                   # this machine (x86_64)
#   TARGET=aarch64-unknown-linux-gnu scripts/package-tarball.sh  # cross-compiled arm64
#   PROFILE=debug scripts/package-tarball.sh                     # CI: the debug build
# Cross-compiling for aarch64 on a Debian/Ubuntu x86_64 machine needs the arm64 cross
# gcc and multiarch libelf/zlib/libpcap and the Rust target: `scripts/setup.sh
# cross-aarch64` installs them (package-common.sh sets the cross environment). clang
# compiles the XDP programs, which are the same BPF bytecode for every CPU; the man
# pages are rendered by running the x86_64 build, which is built too.
set -euo pipefail
source "$(dirname "$0")/package-common.sh"

build_binaries
name="reflector-$VERSION-$TARGET"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dir="$work/$name"

for program in reflector reflector-control; do
  install_stripped "$BIN/$program" "$dir/bin/$program"
done
# A cross-compiled binary must at least load its libraries and run: under qemu-user
# (setup.sh cross-aarch64 installs it and the target's multiarch libraries).
qemu="qemu-${TARGET%%-*}"
if [ "$TARGET" != "$HOST" ] && command -v "$qemu" >/dev/null 2>&1; then
  for program in reflector reflector-control; do
    "$qemu" "$dir/bin/$program" --version >/dev/null ||
      { echo "package-tarball: $program for $TARGET does not run under $qemu" >&2; exit 1; }
  done
fi
render_docs "$work/rendered"
install -d "$dir/man/man1" "$dir/completions" "$dir/docs"
install -m 0644 "$work"/rendered/man/*.1 "$dir/man/man1/"
install -m 0644 "$work"/rendered/completions/* "$dir/completions/"
install -D -m 0644 "$REPO/deploy/reflector-control.service" "$dir/systemd/reflector-control.service"
install -D -m 0644 "$REPO/deploy/reflector-control.sysusers" "$dir/systemd/reflector-control.conf"
install -D -m 0644 "$REPO/deploy/reflector-control.rules" "$dir/udev/60-reflector-control.rules"
install -D -m 0644 "$REPO/deploy/control.toml" "$dir/etc/control.toml"
install -m 0644 "$REPO/deploy/control.example.toml" "$REPO/deploy/prometheus.yml" "$dir/docs/"
install -D -m 0644 -t "$dir/docs/grafana" "$REPO"/deploy/grafana/*.json
install -m 0644 "$REPO/deploy/tarball/INSTALL.md" "$REPO/README.md" "$dir/"
for file in "${DOCS[@]}"; do
  [ "$file" = README.md ] || install -m 0644 "$REPO/$file" "$dir/docs/"
done

mkdir -p "$OUT"
tarball="$OUT/$name.tar.gz"
# Owner, group and times fixed, so the same build gives the same tarball.
mtime="@${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}"
tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" \
  -cf - "$name" | gzip -9n >"$tarball"
echo "$tarball"
