#!/usr/bin/env bash
# install-debian.sh COMMAND PACKAGE...: installs Debian PACKAGEs with apt-get unless COMMAND is already on PATH.
# What tools/install-chromium.sh and tools/install-redis.sh share. Exits 0 when COMMAND is usable afterwards;
# prints why not and exits 1 otherwise (no root, no package source reachable).
set -euo pipefail
command_name=$1
shift

if command -v "$command_name" >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install: $command_name is missing and installing it needs root (apt-get)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Several test processes may ask at once; apt's own lock serialises them, this waits instead of failing.
exec 9>"/tmp/fastpool-install-$command_name.lock"
flock 9
if command -v "$command_name" >/dev/null 2>&1; then
    exit 0
fi

apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
command -v "$command_name" >/dev/null 2>&1
