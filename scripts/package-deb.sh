#!/usr/bin/env bash
# Builds the Debian package target/packages/reflector_VERSION-1_ARCH.deb with dpkg-deb
# (no cargo-deb to compile): both binaries in /usr/bin, the systemd unit with its own
# service user, /etc/reflector-control/control.toml as a conffile, man pages and shell
# completions rendered from the binaries' clap definitions, and the docs. The XDP
# programs are compiled into the reflector binary, so nothing needs clang at run time.
#   scripts/package-deb.sh                 # release build
#   PROFILE=debug scripts/package-deb.sh   # package the debug build (CI, fast)
#   DEB_COMPRESS=gzip|zstd|xz              # xz (the default) is smallest, gzip fastest
# Then: sudo dpkg -i target/packages/reflector_*.deb (or apt install ./that.deb).
set -euo pipefail
source "$(dirname "$0")/package-common.sh"

case "$TARGET" in
  x86_64-unknown-linux-gnu) ARCH=amd64 ;;
  aarch64-unknown-linux-gnu) ARCH=arm64 ;;
  *) echo "package-deb: no Debian architecture for $TARGET" >&2; exit 1 ;;
esac
[ "$TARGET" = "$HOST" ] || {
  echo "package-deb: build the .deb on a $TARGET machine (its library dependencies are read from dpkg there); scripts/package-tarball.sh cross-builds" >&2
  exit 1
}
MAINTAINER="${DEB_MAINTAINER:-reflector maintainers <reflector-maintainers@example.org>}"

build_binaries
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# debian/reflector: where dpkg-shlibdeps expects the package's files.
root="$work/debian/reflector"
doc="$root/usr/share/doc/reflector"

for program in reflector reflector-control; do
  install_stripped "$BIN/$program" "$root/usr/bin/$program"
done
render_docs "$work/rendered"
install -d "$root/usr/share/man/man1"
for page in "$work"/rendered/man/*.1; do
  gzip -9n <"$page" >"$root/usr/share/man/man1/$(basename "$page").gz"
done
for program in reflector reflector-control; do
  install -D -m 0644 "$work/rendered/completions/$program.bash" \
    "$root/usr/share/bash-completion/completions/$program"
  install -D -m 0644 "$work/rendered/completions/_$program" \
    "$root/usr/share/zsh/vendor-completions/_$program"
  install -D -m 0644 "$work/rendered/completions/$program.fish" \
    "$root/usr/share/fish/vendor_completions.d/$program.fish"
done

install -D -m 0644 "$REPO/deploy/reflector-control.service" \
  "$root/usr/lib/systemd/system/reflector-control.service"
install -D -m 0644 "$REPO/deploy/reflector-control.sysusers" \
  "$root/usr/lib/sysusers.d/reflector-control.conf"
install -D -m 0644 "$REPO/deploy/reflector-control.rules" \
  "$root/usr/lib/udev/rules.d/60-reflector-control.rules"
install -D -m 0644 "$REPO/deploy/control.toml" "$root/etc/reflector-control/control.toml"

for file in "${DOCS[@]}"; do install -D -m 0644 "$REPO/$file" "$doc/$(basename "$file")"; done
install -m 0644 "$REPO/deploy/control.example.toml" "$doc/control.example.toml"
# The fleet monitoring examples: a Prometheus scrape config and a Grafana dashboard.
install -m 0644 "$REPO/deploy/prometheus.yml" "$doc/prometheus.yml"
install -d "$doc/grafana"
install -m 0644 "$REPO"/deploy/grafana/*.json "$doc/grafana/"
install -m 0644 "$REPO/deploy/debian/copyright" "$doc/copyright"
date="$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}")"
printf 'reflector (%s-1) unstable; urgency=medium\n\n  * Built from commit %s by scripts/package-deb.sh.\n\n -- %s  %s\n' \
  "$VERSION" "$COMMIT" "$MAINTAINER" "$date" | gzip -9n >"$doc/changelog.Debian.gz"

# Library dependencies as dpkg-shlibdeps reads them from the binaries (libc, libelf,
# zlib, libpcap); it wants a debian/control to stand in.
install -d "$root/DEBIAN"   # how dpkg-shlibdeps recognises the package's root
printf 'Source: reflector\n\nPackage: reflector\nArchitecture: any\n' >"$work/debian/control"
shlibs="$(cd "$work" && dpkg-shlibdeps -O debian/reflector/usr/bin/{reflector,reflector-control} |
  sed -n 's/^shlibs:Depends=//p')"

cat >"$root/DEBIAN/control" <<CONTROL
Package: reflector
Version: $VERSION-1
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $shlibs, adduser
Recommends: iproute2
Section: net
Priority: optional
Homepage: https://github.com/reflector/reflector
Description: packet reflector for network test heads and STAMP senders
 Recognises the UDP test frames of NetAlly LinkRunner/EtherScope and NETSCOUT
 OneTouch (ITO), RFC 2544 and Y.1564 testers, and STAMP (RFC 8762) packets,
 swaps their addresses in place and sends each frame straight back: in the
 kernel (XDP_TX), through AF_XDP or AF_PACKET. reflector-control supervises a
 reflector per interface and serves a dashboard, a REST API and Prometheus
 metrics.
CONTROL
install -m 0644 "$REPO/deploy/debian/conffiles" "$root/DEBIAN/conffiles"
install -m 0755 "$REPO"/deploy/debian/{postinst,prerm,postrm} "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
  sort -z | xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/md5sums"

mkdir -p "$OUT"
deb="$OUT/reflector_${VERSION}-1_${ARCH}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$root" "$deb" >/dev/null
echo "$deb"
