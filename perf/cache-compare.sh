#!/usr/bin/env bash
# cache-compare.sh: the query result cache's two figures (issue "query result cache"), from one run.
#
#   perf/cache-compare.sh [--seconds N] [--rounds N] [--fastpool PATH]
#
# 1. Hits: `select sum(abalance) from pgbench_accounts` (a 1M-row scan PostgreSQL takes ~100 ms for) through
#    FastPool with the cache on, against the cheapest query PostgreSQL answers directly (`select 1`): goal >= 1.0,
#    a hit is never slower than the fastest real round trip. pgbench, 4 clients, simple protocol.
# 2. Misses: `pgbench -S` (each aid is a new key, so nearly every lookup misses) through FastPool with the cache
#    on, against the same FastPool with it off: goal >= 1.0, looking up the cache costs the misses nothing.
#    32 clients, as the yardstick's select scenario.
# The targets run interleaved, R rounds of N seconds; the means are reported, with FastPool's CPU µs per
# transaction. Report: perf/reports/cache-<stamp>.txt; its last lines are the two ratios.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=perf/lib.sh
source "$here/lib.sh"
bench_setup "$@"

DIR=$(mktemp -d /tmp/cache-compare.XXXXXX); chmod 755 "$DIR"
[[ $(id -u) == 0 ]] && chown postgres "$DIR"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

PGPORT=$(free_port); ONPORT=$(free_port); OFFPORT=$(free_port)
start_postgres "$DIR" "$PGPORT" 300
write_pooler_ini "$DIR/on.ini" "$ONPORT" "$PGPORT" transaction 500
write_pooler_ini "$DIR/off.ini" "$OFFPORT" "$PGPORT" transaction 500
printf '\n[fastpool]\nmemory_cache_enabled = on\n' >>"$DIR/on.ini"
"$FASTPOOL" "$DIR/on.ini" >"$DIR/on.out" 2>&1 & PIDS+=($!); ONPID=$!
"$FASTPOOL" "$DIR/off.ini" >"$DIR/off.out" 2>&1 & PIDS+=($!); OFFPID=$!
wait_port "$ONPORT" && wait_port "$OFFPORT" || { echo "FastPool did not start" >&2; tail "$DIR"/*.out >&2; exit 1; }

echo 'select sum(abalance) from pgbench_accounts;' >"$DIR/hit.sql"
echo 'select 1;' >"$DIR/one.sql"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run LABEL PORT PID PGBENCH_ARGS...: prints "LABEL tps lat cpu_us/txn failed"
run() {
  local label=$1 port=$2 pid=$3; shift 3
  local t0 t1 out n tps lat failed
  [[ $pid != - ]] && t0=$(cpu_ticks "$pid")
  out=$(pgbench -h 127.0.0.1 -p "$port" -U postgres -n -T "$SECS" "$@" postgres 2>&1 || true)
  [[ $pid != - ]] && t1=$(cpu_ticks "$pid")
  n=$(awk '/number of transactions actually processed/ {split($NF, a, "/"); print a[1]}' <<<"$out")
  tps=$(awk '/^tps/ {print $3; exit}' <<<"$out")
  lat=$(awk '/latency average/ {print $4}' <<<"$out")
  failed=$(awk '/number of failed transactions/ {print $5}' <<<"$out")
  local cpu=-
  [[ $pid != - && -n $n && $n -gt 0 ]] && cpu=$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$n" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
  printf '%-28s %9.0f %9s %7s %10s\n' "$label" "${tps:-0}" "${lat:--}" "${failed:-0}" "$cpu"
}

# Warm the cache (the first hit is a miss, and the catalog question behind it) and both servers' plans.
pgbench -h 127.0.0.1 -p "$ONPORT" -U postgres -n -t 5 -c 1 -f "$DIR/hit.sql" postgres >/dev/null 2>&1 || true
pgbench -h 127.0.0.1 -p "$OFFPORT" -U postgres -n -S -T 2 -c 4 postgres >/dev/null 2>&1 || true

stamp=$(date -u +%Y%m%d-%H%M%S)
report="$here/reports/cache-$stamp.txt"
{
  echo "# FastPool $("$FASTPOOL" --version) result cache, $(date -u '+%Y-%m-%d %H:%M UTC'); $SECS s x $ROUNDS rounds, interleaved"
  echo "# machine: $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-28s %9s %9s %7s %10s\n' target tps lat_ms failed cpu_us/txn
  for r in $(seq 1 "$ROUNDS"); do
    run "hits: fastpool cache on" "$ONPORT" "$ONPID" -c 4 -j 2 -M simple -f "$DIR/hit.sql"
    run "select 1: postgres direct" "$PGPORT" - -c 4 -j 2 -M simple -f "$DIR/one.sql"
    run "pgbench -S: cache on" "$ONPORT" "$ONPID" -c 32 -j 2 -M simple -S
    run "pgbench -S: cache off" "$OFFPORT" "$OFFPID" -c 32 -j 2 -M simple -S
  done | tee "$DIR/rows"
  echo
  echo "mean of $ROUNDS rounds:"
  awk '{ key = $0; sub(/ +[0-9.]+ +[0-9.-]+ +[0-9]+ +[0-9.-]+$/, "", key); n[key]++; tps[key] += $(NF-3); cpu[key] += ($NF == "-" ? 0 : $NF) }
       END { for (k in n) printf "%-28s %9.0f %10s\n", k, tps[k] / n[k], (cpu[k] > 0 ? sprintf("%.1f", cpu[k] / n[k]) : "-") }' "$DIR/rows" | sort
  awk '{ key = $0; sub(/ +[0-9.]+ +[0-9.-]+ +[0-9]+ +[0-9.-]+$/, "", key); n[key]++; tps[key] += $(NF-3) }
       END {
         printf "hits: cache-hit sum(abalance) through FastPool / select 1 on PostgreSQL directly: %.2f (goal >= 1.0)\n", tps["hits: fastpool cache on"] / tps["select 1: postgres direct"];
         printf "misses: pgbench -S with the cache on / off: %.2f (goal >= 1.0)\n", tps["pgbench -S: cache on"] / tps["pgbench -S: cache off"] }' "$DIR/rows"
  echo "SHOW POOL_CACHE (cache on):"
  psql -h 127.0.0.1 -p "$ONPORT" -U postgres -d pgbouncer -c 'SHOW POOL_CACHE' 2>&1 | sed 's/^/  /'
} | tee "$report"
echo "report: $report" >&2
