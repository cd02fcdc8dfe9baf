#!/usr/bin/env bash
# Static release binaries of vodprobe for the small boxes people own, in dist/.
#
#   scripts/build-static.sh                      x86_64 and aarch64 (Pi 3/4/5 with a 64-bit OS)
#   scripts/build-static.sh --targets "x86_64 aarch64 armv7"   also 32-bit Arm (Pi 2/3, Pi OS 32-bit)
#   scripts/build-static.sh --allocator system   musl's own malloc instead of mimalloc (slower)
#
# Installs what it needs from the registries: rustup targets, Zig (the `ziglang` PyPI package)
# as the C cross compiler for the crates that build C (zstd-sys, libmimalloc-sys), and
# cargo-zigbuild (crates.io). No OpenSSL anywhere: TLS is rustls with ring.
# Where rustup's mirror has no prebuilt standard library for a target (armv7 here), the script
# builds one from rust-src (-Zbuild-std, allowed on stable by RUSTC_BOOTSTRAP for this one build).
# Each binary is checked to be statically linked and packed with install.sh, the systemd unit
# and the default config as dist/vodprobe-VERSION-TARGET.tar.gz; scripts/smoke-static.sh
# then runs the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

targets="x86_64 aarch64"
allocator="mimalloc"
out="dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) targets="$2"; shift 2 ;;
    --allocator) allocator="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$allocator" in
  mimalloc) features=(--features mimalloc) ;;
  system) features=() ;;
  *) echo "--allocator must be mimalloc or system" >&2; exit 2 ;;
esac

triple_of() {
  case "$1" in
    x86_64) echo x86_64-unknown-linux-musl ;;
    aarch64) echo aarch64-unknown-linux-musl ;;
    armv7) echo armv7-unknown-linux-musleabihf ;;
    *) echo "unknown target '$1' (x86_64, aarch64, armv7)" >&2; return 2 ;;
  esac
}

command -v rustup >/dev/null || { echo "rustup is required (https://rustup.rs)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is required (for Zig from PyPI)" >&2; exit 2; }

# Zig from PyPI: cargo-zigbuild finds it as `python3 -m ziglang` when no `zig` is on PATH.
if ! command -v zig >/dev/null && ! python3 -m ziglang version >/dev/null 2>&1; then
  echo "== installing Zig (pip install ziglang)"
  python3 -m pip install --quiet --disable-pip-version-check ziglang
fi
if ! command -v cargo-zigbuild >/dev/null; then
  echo "== installing cargo-zigbuild (crates.io; a few minutes)"
  cargo install --locked cargo-zigbuild
fi
if ! command -v file >/dev/null; then
  echo "== installing file (Debian)"
  scripts/apt-install file
fi

mkdir -p "$out"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
for target in $targets; do
  triple="$(triple_of "$target")"
  build_std=()
  if ! rustup target list --installed | grep -qx "$triple"; then
    echo "== rustup target add $triple"
    if ! rustup_error="$(rustup target add "$triple" 2>&1)"; then
      echo "   no prebuilt standard library for $triple ($(echo "$rustup_error" | grep -m1 '^error' || true));"
      echo "   building it from rust-src"
      rustup component add rust-src
      build_std=(-Zbuild-std=std,panic_unwind)
    fi
  fi
  echo "== building $triple (release, allocator: $allocator)"
  started=$SECONDS
  if [ ${#build_std[@]} -gt 0 ]; then
    # A standard library built here comes without musl's start files; Zig supplies them.
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="${RUSTFLAGS:-} -C link-self-contained=no" cargo zigbuild --release --locked --target "$triple" "${features[@]}" "${build_std[@]}"
  else
    cargo zigbuild --release --locked --target "$triple" "${features[@]}"
  fi
  binary="$out/vodprobe-$version-$triple"
  cp "target/$triple/release/vodprobe" "$binary"
  description="$(file -b "$binary")"
  case "$description" in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) echo "error: $binary is not statically linked: $description" >&2; exit 1 ;;
  esac
  size=$(stat -c %s "$binary")
  awk -v b="$binary" -v s="$size" -v t=$((SECONDS - started)) -v d="$description" \
    'BEGIN { printf "   %s: %d bytes (%.1f MiB), built in %d s\n   %s\n", b, s, s / 1048576, t, d }'
  # The release tarball: what scripts/install.sh needs beside the binary, and the notices.
  package="vodprobe-$version-$triple"
  staging="$(mktemp -d)"
  mkdir "$staging/$package"
  cp "$binary" "$staging/$package/vodprobe"
  cp scripts/install.sh deploy/vodprobe.service config.toml "$staging/$package/"
  cp web/vendor/LICENSE.hls.js "$staging/$package/"
  tar -C "$staging" -czf "$out/$package.tar.gz" "$package"
  rm -rf "$staging"
  echo "   $out/$package.tar.gz: $(stat -c %s "$out/$package.tar.gz") bytes (binary, install.sh, vodprobe.service, config.toml)"
done
echo "== done: binaries and tarballs in $out/; scripts/smoke-static.sh tries them (qemu for Arm)"
