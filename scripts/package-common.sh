# shellcheck shell=bash disable=SC2034  # (the variables are for the scripts that source this)
# Sourced by scripts/package-deb.sh and scripts/package-tarball.sh: builds the two
# binaries, renders their man pages and shell completions from the binaries' own clap
# definitions, and knows the version and the paths.
#
#   PROFILE=release (default) | debug   cargo profile; CI packages the debug build it
#                                       already has (see scripts/test.sh)
#   TARGET=<rust target triple>         default: this machine's
#   OUT=DIR                             where packages go (default target/packages)
#   CARGO_TARGET_DIR                    honoured, as cargo does

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
umask 022   # the directories the packages create get the usual 0755
PROFILE="${PROFILE:-release}"
HOST="$(rustc -vV | sed -n 's/^host: //p')"
TARGET="${TARGET:-$HOST}"
OUT="${OUT:-$REPO/target/packages}"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"

# cargo calls the debug profile "dev" but builds it into target/debug.
PROFILE_ARGS=(--profile "$PROFILE")
[ "$PROFILE" = debug ] && PROFILE_ARGS=(--profile dev)

# The directory cargo puts TARGET's binaries in.
bin_dir() {
  local target="$1"
  if [ "$target" = "$HOST" ]; then echo "$TARGET_DIR/$PROFILE"; else echo "$TARGET_DIR/$target/$PROFILE"; fi
}

# The environment of the cross build for TARGET on a Debian/Ubuntu multiarch machine
# (scripts/setup.sh cross-aarch64 installs the tools): the cross gcc compiles the C parts
# (libbpf, libxdp) and links, pkg-config reads the target's .pc files, and libxdp-sys's
# build script wraps its BPF objects with `ld -r -b binary` and objcopy, which must
# write target objects. Given to that build only: the host build keeps the host's tools.
cross_env() {
  local triple="${TARGET/-unknown-/-}" under="${TARGET//-/_}"  # aarch64-linux-gnu
  if ! command -v "$triple-gcc" >/dev/null 2>&1 || [ ! -f "/usr/lib/$triple/pkgconfig/libelf.pc" ] ||
    [ ! -d "$(rustc --print sysroot)/lib/rustlib/$TARGET" ]; then
    echo "package: cross-compiling for $TARGET needs $triple-gcc, the target's libelf, zlib" \
      "and libpcap, and the Rust target (for aarch64: sudo scripts/setup.sh cross-aarch64)" >&2
    exit 1
  fi
  CROSS_ENV=(
    "CARGO_TARGET_${under^^}_LINKER=$triple-gcc" "CC_$under=$triple-gcc" "AR_$under=$triple-ar"
    PKG_CONFIG_ALLOW_CROSS=1 "PKG_CONFIG_LIBDIR=/usr/lib/$triple/pkgconfig:/usr/share/pkgconfig"
    "LD=$triple-ld" "OBJCOPY=$triple-objcopy"
  )
}

# Build reflector and reflector-control (the workspace's binaries) for TARGET, and for
# this machine too when cross-compiling: the docs are rendered by running a binary.
# The same command as scripts/test.sh's build, so there it is a no-op.
build_binaries() {
  local target_args=() CROSS_ENV=()
  if [ "$TARGET" != "$HOST" ]; then
    cross_env
    target_args=(--target "$TARGET")
  fi
  (cd "$REPO" && env "${CROSS_ENV[@]}" cargo build --locked "${PROFILE_ARGS[@]}" "${target_args[@]}" --workspace --bins)
  if [ "$TARGET" != "$HOST" ]; then
    (cd "$REPO" && cargo build --locked "${PROFILE_ARGS[@]}" --workspace --bins)
  fi
  BIN="$(bin_dir "$TARGET")"
  VERSION="$("$(bin_dir "$HOST")/reflector" -V | awk '{print $2}')"
  COMMIT="$("$(bin_dir "$HOST")/reflector" --version | sed -n 's/^commit: //p')"
}

# Render man pages (DIR/man/*.1) and completions (DIR/completions/) from the binaries.
render_docs() {
  local dir="$1" host_bin
  host_bin="$(bin_dir "$HOST")"
  for program in reflector reflector-control; do
    REFLECTOR_RENDER_DOCS="$dir" "$host_bin/$program" >/dev/null
  done
}

# Copy a binary stripped as Debian strips (the release profile keeps line tables for
# profiling; a package does not need them). llvm-strip handles every target.
install_stripped() {
  local strip=strip
  command -v llvm-strip >/dev/null 2>&1 && strip=llvm-strip
  install -D -m 0755 "$1" "$2"
  "$strip" --strip-unneeded --remove-section=.comment --remove-section=.note "$2"
}

# The user-facing docs every package carries.
DOCS=(README.md docs/CONTROL.md docs/TROUBLESHOOTING.md docs/PERFORMANCE.md docs/ARCHITECTURE.md)
