#!/usr/bin/env bash
# Builds the native WebRTC core (the rtc/ crate: str0m through PyO3) and puts the
# extension module next to the sources, as unisockets/_rtc.abi3.so (like
# `setup.py build_ext --inplace`), for the venv's Python. Without cargo it says so
# and succeeds: unisockets then uses its aiortc backend (docs/transport.md).
# Usage: scripts/build-rtc.sh VENV
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
target="unisockets/_rtc.abi3.so"
if ! command -v cargo >/dev/null 2>&1; then
    echo "build-rtc: cargo not found: the native WebRTC backend is not built (aiortc is used)" >&2
    rm -f "$target"
    exit 0
fi
# --locked: the versions in rtc/Cargo.lock, nothing newer.
PYO3_PYTHON="$venv/bin/python" cargo build --release --locked --quiet --manifest-path rtc/Cargo.toml
# Replace atomically: a running process keeps the old file mapped.
cp rtc/target/release/lib_rtc.so "$target.tmp"
mv -f "$target.tmp" "$target"
"$venv/bin/python" -c "import unisockets._rtc" 
echo "build-rtc: built $target"
