#!/usr/bin/env bash
# Installs Debian's chromium for the status-page browser test (tests/FastPool.IntegrationTests/Metrics).
# CI machines have only what the project's scripts install, so .ci/run calls this, and the test calls it
# too when chromium is missing (a developer running just that test). Exits 0 when chromium is usable
# afterwards; prints why not and exits 1 otherwise (no root, no package source reachable).
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: chromium is missing and installing it needs root (apt-get)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Several test processes may ask at once; apt's own lock serialises them, this waits instead of failing.
exec 9>/tmp/fastpool-install-chromium.lock
flock 9
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null 2>&1
