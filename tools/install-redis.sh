#!/usr/bin/env bash
# Installs Debian's redis-server for the shared result cache tests (memqcache_method = redis,
# tests/FastPool.IntegrationTests/Cache). CI machines have only what the project's scripts install, so .ci/run
# calls this, and the tests call it too when redis-server is missing (a developer running just those tests).
# The package's own service is not needed: each test class starts its own redis-server on a free port.
# Exits 0 when redis-server is usable afterwards; prints why not and exits 1 otherwise.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-redis: redis-server is missing and installing it needs root (apt-get)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Several test processes may ask at once; apt's own lock serialises them, this waits instead of failing.
exec 9>/tmp/fastpool-install-redis.lock
flock 9
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi

apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
command -v redis-server >/dev/null 2>&1
