#!/usr/bin/env bash
# Builds a release tarball target/packages/reflector-VERSION-TARGET.tar.gz: both
# binaries, man pages, shell completions, the systemd unit and service user, the
# default config, the docs and INSTALL.md (how to install it by hand).
#   scripts/package-tarball.sh                                   # this machine (x86_64)
#   TARGET=aarch64-unknown-linux-gnu scripts/package-tarball.sh  # cross-compiled arm64
#   PROFILE=debug scripts/package-tarball.sh                     # CI: the debug build
# Cross-compiling for aarch64 needs, on a Debian/Ubuntu x86_64 machine:
#   rustup target add aarch64-unknown-linux-gnu
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install gcc-aarch64-linux-gnu libelf-dev:arm64 zlib1g-dev:arm64 libpcap-dev:arm64
# (the C parts, libbpf, libxdp and the pcap binding, are compiled and linked for the
# target; clang compiles the XDP programs, which are the same BPF bytecode for every
# CPU). The man pages are rendered by the x86_64 build, which is built too.
set -euo pipefail
source "$(dirname "$0")/package-common.sh"

if [ "$TARGET" != "$HOST" ]; then
  triple="${TARGET/-unknown-/-}"      # aarch64-unknown-linux-gnu -> aarch64-linux-gnu
  if ! command -v "$triple-gcc" >/dev/null 2>&1 || [ ! -d "/usr/lib/$triple/pkgconfig" ]; then
    echo "package-tarball: cross-compiling for $TARGET needs $triple-gcc and the target's" \
      "libelf, zlib and libpcap (see the top of this script for the commands)" >&2
    exit 1
  fi
  env_triple="$(echo "$TARGET" | tr 'a-z-' 'A-Z_')"
  export "CARGO_TARGET_${env_triple}_LINKER=$triple-gcc" "CC_${TARGET//-/_}=$triple-gcc" \
    "AR_${TARGET//-/_}=$triple-ar" PKG_CONFIG_ALLOW_CROSS=1 \
    "PKG_CONFIG_LIBDIR=/usr/lib/$triple/pkgconfig:/usr/share/pkgconfig"
fi

build_binaries
name="reflector-$VERSION-$TARGET"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dir="$work/$name"

for program in reflector reflector-control; do
  install_stripped "$BIN/$program" "$dir/bin/$program"
done
render_docs "$work/rendered"
install -d "$dir/man/man1" "$dir/completions" "$dir/docs"
install -m 0644 "$work"/rendered/man/*.1 "$dir/man/man1/"
install -m 0644 "$work"/rendered/completions/* "$dir/completions/"
install -D -m 0644 "$REPO/deploy/reflector-control.service" "$dir/systemd/reflector-control.service"
install -D -m 0644 "$REPO/deploy/reflector-control.sysusers" "$dir/systemd/reflector-control.conf"
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
