#!/usr/bin/env bash
# Runs each static binary the way a user would on the box it is for: natively when it matches
# this machine, under Debian's qemu-user-static otherwise (installed if missing).
#
#   scripts/smoke-static.sh                 every binary in dist/
#   scripts/smoke-static.sh dist/vodprobe-0.1.0-aarch64-unknown-linux-musl
#
# For each: `--version`, `check-config` on the built-in default and on a written file, then
# `demo` (a simulated Twitch at 3600x) until it has captured at least one broadcast, checked
# through `/healthz` and `/api/v1/vods?status=found`, and stopped with SIGTERM (exit 0).
# Prints the time to the first capture and, for native runs, the peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

binaries=("$@")
if [ $# -eq 0 ]; then
  for file in dist/vodprobe-*; do
    case "$file" in *.tar.gz) ;; *) [ -f "$file" ] && binaries+=("$file") ;; esac
  done
fi
[ ${#binaries[@]} -gt 0 ] || { echo "no binaries: run scripts/build-static.sh first" >&2; exit 2; }

command -v file >/dev/null || scripts/apt-install file

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
for binary in "${binaries[@]}"; do
  binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
  description="$(file -b "$binary")"
  case "$description" in
    *x86-64*) arch=x86_64 ;;
    *aarch64*|*"ARM aarch64"*) arch=aarch64 ;;
    *ARM*) arch=arm ;;
    *) echo "$binary: unknown architecture: $description" >&2; failures=$((failures + 1)); continue ;;
  esac
  runner=()
  if [ "$arch" != "$(uname -m)" ]; then
    command -v "qemu-$arch-static" >/dev/null || { echo "== installing qemu-user-static"; scripts/apt-install qemu-user-static; }
    runner=("qemu-$arch-static")
  fi
  echo "== $binary (${runner[*]:-native})"
  case "$description" in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) echo "   FAIL: not statically linked: $description"; failures=$((failures + 1)); continue ;;
  esac
  run() { "${runner[@]}" "$binary" "$@"; }

  if ! version="$(run --version)"; then echo "   FAIL: --version"; failures=$((failures + 1)); continue; fi
  echo "   --version: $version"

  empty="$work/empty"; mkdir -p "$empty"
  if ! (cd "$empty" && run check-config >/dev/null); then
    echo "   FAIL: check-config (built-in default)"; failures=$((failures + 1)); continue
  fi
  printf 'data_dir = "./data"\n[api]\nlisten = "127.0.0.1:0"\n[[domain]]\nurl = "https://d2nvs31859zcd8.cloudfront.net/"\nprobe = "twitch-vod"\n' > "$work/config.toml"
  if ! run check-config --config "$work/config.toml" >/dev/null; then
    echo "   FAIL: check-config --config"; failures=$((failures + 1)); continue
  fi
  printf 'data_dir = "./data"\n[api]\nlisten = 8080\n' > "$work/bad.toml"
  if run check-config --config "$work/bad.toml" >/dev/null 2>&1; then
    echo "   FAIL: check-config accepted a bad file"; failures=$((failures + 1)); continue
  fi
  echo "   check-config: built-in default valid, a written file valid, a bad file refused"

  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  mkdir -p "$work/tmp"
  # Started directly (not through `run`) so that $! is the program itself and gets the signal.
  TMPDIR="$work/tmp" VODPROBE_LOG=warn "${runner[@]}" "$binary" demo --listen "127.0.0.1:$port" \
    --speed 3600 >"$work/demo.log" 2>&1 &
  pid=$!
  if python3 - "$port" "$pid" "$arch" <<'EOF'
import json, sys, time, urllib.request
port, pid, arch = sys.argv[1], int(sys.argv[2]), sys.argv[3]
base = f"http://127.0.0.1:{port}"
started = time.monotonic()
health = None
while time.monotonic() - started < 300:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as r:
            health = json.load(r)
        with urllib.request.urlopen(f"{base}/api/v1/vods?status=found&limit=5", timeout=5) as r:
            items = json.load(r)["items"]
        if items:
            first = items[0]
            with urllib.request.urlopen(base + first["playlist_url"], timeout=5) as r:
                playlist = r.read().decode()
            if not playlist.startswith("#EXTM3U") or "#EXT-X-ENDLIST" not in playlist:
                print(f"   demo: the captured playlist is not a whole playlist: {playlist[:200]!r}")
                sys.exit(1)
            print(f"   demo: first capture after {time.monotonic() - started:.1f} s "
                  f"({first['login']} stream {first['stream_id']}, playlist "
                  f"{playlist.count('#EXTINF')} segments); "
                  f"/healthz status {health.get('status')!r}")
            sys.exit(0)
    except (OSError, ValueError, KeyError):
        pass
    time.sleep(1)
print(f"   demo: nothing captured in 300 s; last /healthz: {health}")
sys.exit(1)
EOF
  then
    if [ -z "${runner[*]}" ]; then
      awk '/VmHWM/ { printf "   demo: peak RSS %.1f MiB\n", $2 / 1024 }' "/proc/$pid/status"
    fi
    kill -TERM "$pid"
    status=0; wait "$pid" || status=$?
    if [ "$status" = 0 ]; then echo "   demo: stopped cleanly on SIGTERM"; else
      echo "   FAIL: demo exited $status after SIGTERM"; failures=$((failures + 1)); fi
  else
    kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    tail -20 "$work/demo.log"
    failures=$((failures + 1))
  fi
done
if [ "$failures" -gt 0 ]; then echo "== $failures failure(s)"; exit 1; fi
echo "== all ${#binaries[@]} binaries passed"
