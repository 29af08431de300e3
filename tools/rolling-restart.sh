#!/usr/bin/env bash
# Zero-downtime restart of a running FastPool (or an upgrade to a new executable), with so_reuseport = 1:
#
#   tools/rolling-restart.sh [--fastpool PATH] [--timeout SECONDS] CONFIG
#
# 1. starts a second FastPool with CONFIG on the same port (the kernel now spreads new connections over both);
# 2. waits until it listens (it writes its pid into the pidfile once its listeners are bound);
# 3. sends SIGTERM to the old one: it steers new connections to the new process, accepts what was already
#    queued for one more second, closes its listeners and then waits for its clients to finish
#    (shutdown_wait_timeout bounds that wait; clients still there then get 57P01);
# 4. waits until the old process has exited.
# Clients that connect during the switch are served by one process or the other; none is refused. Clients of
# the old process finish their sessions there (with connection-per-transaction clients that is one transaction).
#
# CONFIG must set pidfile and so_reuseport = 1. Exit codes: 0 switched, 1 failed (the old process keeps
# serving when the new one did not start), 2 bad usage or configuration.
set -euo pipefail

fastpool="${FASTPOOL:-fastpool}"
timeout=300
while [ $# -gt 1 ]; do
    case "$1" in
        --fastpool) fastpool="$2"; shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        *) echo "rolling-restart: unknown option $1" >&2; exit 2 ;;
    esac
done
[ $# -eq 1 ] || { echo "usage: $0 [--fastpool PATH] [--timeout SECONDS] CONFIG" >&2; exit 2; }
config="$1"

# The value of KEY in the [pgbouncer] section (the last one wins, as in the loader); %include is not followed.
setting() {
    awk -v key="$1" '
        /^[ \t]*\[/ { section = tolower($0); gsub(/[ \t\[\]]/, "", section); next }
        section == "pgbouncer" && $0 ~ "^[ \t]*" key "[ \t]*=" { sub(/^[^=]*=[ \t]*/, ""); sub(/[ \t]+$/, ""); value = $0 }
        END { print value }' "$config"
}

pidfile="$(setting pidfile)"
reuse="$(setting so_reuseport)"
[ -n "$pidfile" ] || { echo "rolling-restart: $config sets no pidfile; it is how the old process is found" >&2; exit 2; }
case "$reuse" in 1|on|yes|true) ;; *) echo "rolling-restart: $config needs so_reuseport = 1 (two processes share the port)" >&2; exit 2 ;; esac
case "$pidfile" in /*) ;; *) pidfile="$(dirname "$config")/$pidfile" ;; esac

old="$(cat "$pidfile" 2>/dev/null || true)"
if [ -z "$old" ] || ! kill -0 "$old" 2>/dev/null; then
    echo "rolling-restart: no running FastPool in $pidfile" >&2
    exit 1
fi

started=$(date +%s.%N)
# Without a terminal FastPool puts itself in its own session; its log goes to the configured logfile.
"$fastpool" "$config" </dev/null >/dev/null 2>&1 &
new=$!
echo "rolling-restart: started FastPool $new next to $old"

deadline=$((SECONDS + 30))
until [ "$(cat "$pidfile" 2>/dev/null || true)" = "$new" ]; do
    if ! kill -0 "$new" 2>/dev/null; then
        wait "$new" || code=$?
        echo "rolling-restart: the new FastPool exited (code ${code:-0}) before listening; $old keeps serving" >&2
        exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
        kill -QUIT "$new" 2>/dev/null || true
        echo "rolling-restart: the new FastPool did not listen within 30 s; stopped it, $old keeps serving" >&2
        exit 1
    fi
    sleep 0.05
done
echo "rolling-restart: $new listens; asking $old to hand over and drain (SIGTERM)"

kill -TERM "$old"
deadline=$((SECONDS + timeout))
while kill -0 "$old" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
        echo "rolling-restart: $old still drains after ${timeout} s; $new serves new clients" >&2
        exit 1
    fi
    sleep 0.1
done
echo "rolling-restart: $old exited; $new serves alone (switch took $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s)"
