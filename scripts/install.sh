#!/usr/bin/env bash
# Installs vodprobe as a system service (run as root on the box itself), from an unpacked
# release tarball or from the repository:
#
#   tar xzf vodprobe-0.1.0-aarch64-unknown-linux-musl.tar.gz
#   sudo vodprobe-0.1.0-aarch64-unknown-linux-musl/install.sh
#
#   /usr/local/bin/vodprobe                  the binary
#   /etc/vodprobe/config.toml                the documented default config (kept if present),
#                                            data_dir = /var/lib/vodprobe, mode 0640 root:vodprobe
#   /etc/vodprobe/probes/                    extra probe modules (optional)
#   /etc/systemd/system/vodprobe.service     the hardened unit (deploy/vodprobe.service)
#   user and group `vodprobe`, /var/lib/vodprobe owned by it
#
# Then validates the config with the installed binary and, where systemd runs, enables and
# starts the service. Options:
#   --binary PATH   the binary to install [default: the tarball's; in the repository, dist/'s
#                   static build for this machine, else target/release/vodprobe]
#   --root DIR      install under DIR (a staging tree for packaging or tests): no user is
#                   created and nothing is started
#   --no-start      install and enable, but do not start
set -euo pipefail
# Run from a release tarball (install.sh beside vodprobe, vodprobe.service and config.toml)
# or from the repository (scripts/install.sh, deploy/vodprobe.service, config.toml).
here="$(cd "$(dirname "$0")" && pwd)"
if [ -f "$here/vodprobe.service" ]; then
  unit_file="$here/vodprobe.service"; default_config="$here/config.toml"; candidates=("$here/vodprobe")
else
  repo="$(cd "$here/.." && pwd)"
  unit_file="$repo/deploy/vodprobe.service"; default_config="$repo/config.toml"; candidates=()
fi

binary=""
root=""
start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --root) root="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$binary" ]; then
  case "$(uname -m)" in
    x86_64) triple=x86_64-unknown-linux-musl ;;
    aarch64|arm64) triple=aarch64-unknown-linux-musl ;;
    armv7l|armv6l) triple=armv7-unknown-linux-musleabihf ;;
    *) triple=none ;;
  esac
  if [ -n "${repo:-}" ]; then
    candidates=("$repo"/dist/vodprobe-*-"$triple" "$repo/target/release/vodprobe")
  fi
  for candidate in "${candidates[@]}"; do
    if [ -f "$candidate" ]; then binary="$candidate"; break; fi
  done
fi
[ -n "$binary" ] && [ -f "$binary" ] || {
  echo "no binary found: pass --binary PATH (build one with scripts/build-static.sh)" >&2; exit 2; }
if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
  echo "run as root (sudo), or use --root DIR for a staging tree" >&2; exit 2
fi
"$binary" --version >/dev/null 2>&1 || {
  echo "$binary does not run on this machine ($(uname -m)); pick the build for this architecture" >&2; exit 2; }

bin_dir="$root/usr/local/bin"
config_dir="$root/etc/vodprobe"
unit_dir="$root/etc/systemd/system"
data_dir="/var/lib/vodprobe"
mkdir -p "$bin_dir" "$config_dir/probes" "$unit_dir"

# Replace the binary atomically: a running service keeps its old inode until restarted.
install -m 0755 "$binary" "$bin_dir/vodprobe.new"
mv -f "$bin_dir/vodprobe.new" "$bin_dir/vodprobe"
echo "installed $bin_dir/vodprobe ($("$bin_dir/vodprobe" --version))"

if [ -z "$root" ] && ! getent passwd vodprobe >/dev/null; then
  nologin="$(command -v nologin || echo /usr/sbin/nologin)"
  useradd --system --user-group --home-dir "$data_dir" --no-create-home --shell "$nologin" vodprobe
  echo "created system user vodprobe"
fi

config="$config_dir/config.toml"
if [ -e "$config" ]; then
  echo "kept the existing $config"
else
  # The repository's config.toml is the documented default; only its data directory changes.
  sed "s|^data_dir = .*|data_dir = \"$data_dir\"|" "$default_config" > "$config.new"
  grep -q "^data_dir = \"$data_dir\"" "$config.new" || { echo "could not set data_dir in $config" >&2; exit 1; }
  mv "$config.new" "$config"
  echo "installed the default $config (edit it; changes apply live)"
fi
# The config holds the admin token: readable by the service, not by everyone.
chmod 0750 "$config_dir"
chmod 0640 "$config"
if [ -z "$root" ]; then
  chown root:vodprobe "$config_dir" "$config" "$config_dir/probes"
  install -d -m 0750 -o vodprobe -g vodprobe "$data_dir"
else
  mkdir -p "$root$data_dir"
fi

if ! "$bin_dir/vodprobe" check-config --config "$config"; then
  echo "the config at $config is invalid: fix it, then run: systemctl restart vodprobe" >&2
  exit 1
fi

install -m 0644 "$unit_file" "$unit_dir/vodprobe.service"
echo "installed $unit_dir/vodprobe.service"

if [ -n "$root" ]; then
  echo "staged under $root (no user created, nothing started)"
elif [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ "$start" = 1 ]; then
    systemctl enable --now vodprobe
    systemctl restart vodprobe # picks up a replaced binary
    echo "vodprobe is running: systemctl status vodprobe; journalctl -u vodprobe -f"
  else
    systemctl enable vodprobe
    echo "enabled; start it with: systemctl start vodprobe"
  fi
else
  echo "systemd is not running here: start it by hand with"
  echo "  sudo -u vodprobe $bin_dir/vodprobe serve --config $config"
fi
