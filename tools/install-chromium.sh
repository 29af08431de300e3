#!/usr/bin/env bash
# Installs Debian's chromium for the status-page browser test (tests/FastPool.IntegrationTests/Metrics).
# CI machines have only what the project's scripts install, so .ci/run calls this, and the test calls it
# too when chromium is missing (a developer running just that test). Exits 0 when chromium is usable
# afterwards; prints why not and exits 1 otherwise (no root, no package source reachable).
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-debian.sh" chromium chromium fonts-dejavu-core
