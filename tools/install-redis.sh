#!/usr/bin/env bash
# Installs Debian's redis-server for the shared result cache tests (memqcache_method = redis,
# tests/FastPool.IntegrationTests/Cache). CI machines have only what the project's scripts install, so .ci/run
# calls this, and the tests call it too when redis-server is missing (a developer running just those tests).
# The package's own service is not needed: each test class starts its own redis-server on a free port.
# Exits 0 when redis-server is usable afterwards; prints why not and exits 1 otherwise.
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-debian.sh" redis-server redis-server
