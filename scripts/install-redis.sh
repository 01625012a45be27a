#!/usr/bin/env bash
# Installs what the multi-instance signaling tests and benchmarks need
# (docs/signaling-server.md, "Several instances over Redis"), idempotently:
#   - Debian: redis-server (the tests start their own on a free loopback port;
#     the package's system service is not used)
# Runs `apt-get update` only when the package is missing and cannot be found.
# Usage: scripts/install-redis.sh
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
        sudo_cmd=(sudo)
    else
        sudo_cmd=()
    fi
    export DEBIAN_FRONTEND=noninteractive
    # A package list that does not know the package needs refreshing first.
    if ! apt-cache show redis-server >/dev/null 2>&1; then
        "${sudo_cmd[@]}" apt-get update -qq
    fi
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi

echo "redis ready: $(redis-server --version)"
