#!/usr/bin/env bash
# Screenshot of the ionm dashboard during an alarm, on a virtual display.
#
#   scripts/screenshot.sh [OUT.png] [SECONDS]
#
# Runs `ionm demo` on the ssep-cord-ischemia scenario at 20× real time under Xvfb (the 60% left-tibial drop
# starts at minute 4 of the case and is confirmed around minute 6, i.e. about 18 s of wall time), waits SECONDS
# (default 30), captures the screen and stops. Needs (Debian): xvfb xauth mesa-vulkan-drivers libvulkan1 libegl1
# libegl-mesa0 libgl1-mesa-dri libxkbcommon-x11-0 libxcursor1 libxi6 imagemagick. `--install` installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--install" ]; then
    apt-get update -qq
    apt-get install -y -qq xvfb xauth mesa-vulkan-drivers libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri \
        libxkbcommon-x11-0 libxcursor1 libxi6 imagemagick
    shift
fi
out="${1:-docs/dashboard.png}"
wait_s="${2:-30}"
cargo build --release --bin ionm
export XDG_RUNTIME_DIR="$(mktemp -d)"
chmod 700 "$XDG_RUNTIME_DIR"
display=":$((90 + RANDOM % 9))"
Xvfb "$display" -screen 0 1600x1000x24 -nolisten tcp &
xvfb=$!
trap 'kill "$app" "$xvfb" 2>/dev/null || true; rm -rf "$XDG_RUNTIME_DIR"' EXIT
sleep 1
DISPLAY="$display" target/release/ionm demo --scenario ssep-cord-ischemia --speed 20 --sim-seconds 900 \
    --quiet >/dev/null 2>&1 &
app=$!
sleep "$wait_s"
DISPLAY="$display" import -window root "$out"
echo "$out"
