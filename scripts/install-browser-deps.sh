#!/usr/bin/env bash
# Installs what the browser driver's demo and tests need (docs/browser.md), idempotently:
#   - Debian: chromium (headless, driven over the DevTools protocol), fonts for
#     screenshots, and node + npm when they are missing
#   - npm, in web/: pyodide (pinned by web/package-lock.json), with `npm ci`
#   - PyPI, into web/vendor/: the micropip wheel the page loads by URL
#     (Pyodide's npm package does not ship it)
# Runs `apt-get update` only when a package is missing and cannot be found.
# Usage: scripts/install-browser-deps.sh [VENV]   (default: .venv beside this script's repo)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$here/.venv}"
web="$here/web"
micropip_version="0.11.1" # the version pyodide-lock.json of Pyodide 314.0.7 names

apt_packages=(chromium fonts-dejavu-core)
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)

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

# npm ci (which deletes and reinstalls node_modules) only when the lock file changed since.
installed_lock="$web/node_modules/.package-lock.json"
if [[ ! -f "$installed_lock" || "$web/package-lock.json" -nt "$installed_lock" ]]; then
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
fi

vendor="$web/vendor"
if ! compgen -G "$vendor/micropip-$micropip_version-*.whl" >/dev/null; then
    mkdir -p "$vendor"
    "$venv/bin/pip" download --quiet --no-deps --only-binary=:all: --python-version 3.14 \
        --dest "$vendor" "micropip==$micropip_version"
fi

echo "browser deps ready: $(chromium --version 2>/dev/null | head -n 1);" \
    "node $(node --version); pyodide $(node -p "require('$web/node_modules/pyodide/package.json').version");" \
    "$(basename "$(compgen -G "$vendor/micropip-*.whl" | head -n 1)")"
