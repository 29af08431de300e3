#!/usr/bin/env bash
# Select-only throughput through FastPool over one primary and one streaming standby (replication-aware routing,
# reads balanced to the standby) relative to FastPool over the primary alone (issue 7's closing note: with a
# standby added, select-only TPS must not fall).
#
#   perf/routing-compare.sh [--seconds N] [--rounds N] [--fastpool PATH]
#
# Publishes FastPool (native AOT) like perf/compare.sh unless --fastpool names an existing binary. Starts a
# throwaway PostgreSQL primary (trust, 127.0.0.1 only, fsync off) and a standby made with pg_basebackup -R that
# streams from it, loads pgbench data (-s 10) on the primary and waits until the standby has replayed it. Two
# FastPools get the same ini (transaction pooling, default_pool_size = 20) except the [databases] entry: "one-node"
# lists only the primary, "two-node" lists primary and standby, so reads go to the standby (the default
# load_balance_policy, weighted_random, balances reads over the standbys only; here that is the one standby).
# pgbench -S -c 32 -j 2 runs against each, -M simple and -M extended, interleaved round by round. The report
# (perf/reports/routing-<stamp>.txt) gives tps, average latency and FastPool's CPU per transaction (utime+stime
# of the process), the two-node/one-node ratio (of the means, and the median of each round's paired ratio), and where the reads went: SHOW POOL_NODES of the two-node
# FastPool and each server's own transaction count (pg_stat_database).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=perf/lib.sh
. "$here/lib.sh"
bench_setup "$@"
DIR=$(mktemp -d /tmp/routing-compare.XXXXXX); chmod 755 "$DIR"
[[ $(id -u) == 0 ]] && chown postgres "$DIR"
PPORT=$(free_port); SPORT=$(free_port); ONE_PORT=$(free_port); TWO_PORT=$(free_port)
ONE_PID="" TWO_PID=""
cleanup() {
  local rc=$?
  if [[ $rc != 0 ]]; then
    # The logs go with the temp dir; show their ends while they are still there.
    for f in one-node.out two-node.out pg.log standby.log; do
      [[ -f $DIR/$f ]] && { echo "--- $f (last lines)" >&2; tail -15 "$DIR/$f" >&2; }
    done
  fi
  [[ -n $ONE_PID ]] && kill "$ONE_PID" 2>/dev/null || true
  [[ -n $TWO_PID ]] && kill "$TWO_PID" 2>/dev/null || true
  as_pg "$PGBIN/pg_ctl" -D "$DIR/standby" -m immediate stop >/dev/null 2>&1 || true
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

sql() { psql -h 127.0.0.1 -p "$1" -U postgres -d "${3:-postgres}" -XAtqc "$2"; }
wait_for() { # wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds
  local secs=$1 what=$2; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timed out waiting for $what" >&2; return 1
}

# Primary: empty, so that the standby has to replay the pgbench load over the stream, as a real one would.
echo "primary on $PPORT, standby on $SPORT ..." >&2
init_postgres "$DIR" "$PPORT" 300
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PPORT" -U postgres -D "$DIR/standby" -R -c fast -X stream >/dev/null
# The copied postgresql.conf names the primary's port; a later line wins (postgresql.conf is read top to bottom).
echo "port = $SPORT" >>"$DIR/standby/postgresql.conf"
as_pg "$PGBIN/pg_ctl" -D "$DIR/standby" -l "$DIR/standby.log" -w start >/dev/null
streaming() { [[ $(sql "$PPORT" "select count(*) from pg_stat_replication where state = 'streaming'") == 1 ]]; }
wait_for 60 "the standby to stream" streaming
[[ $(sql "$SPORT" "select pg_is_in_recovery()") == t ]] || { echo "the standby is not in recovery" >&2; exit 1; }

echo "pgbench -i -s 10 on the primary ..." >&2
pgbench -h 127.0.0.1 -p "$PPORT" -U postgres -i -s 10 -q postgres >/dev/null 2>&1
LSN=$(sql "$PPORT" "select pg_current_wal_lsn()")
replayed() { [[ $(sql "$SPORT" "select pg_last_wal_replay_lsn() >= '$LSN'::pg_lsn") == t ]]; }
wait_for 300 "the standby to replay the pgbench data (to $LSN)" replayed
ROWS=$(sql "$SPORT" "select count(*) from pgbench_accounts")
echo "standby replayed to $LSN: $ROWS pgbench_accounts rows" >&2

# Same ini for both; the two-node entry lists the standby after the primary (node 0, node 1). Roles are detected
# by FastPool's node checks, not configured.
write_pooler_ini "$DIR/one-node.ini" "$ONE_PORT" "$PPORT" transaction 1000
write_pooler_ini "$DIR/two-node.ini" "$TWO_PORT" "$PPORT" transaction 1000
sed -i "s/^postgres = host=127.0.0.1 port=$PPORT /postgres = host=127.0.0.1,127.0.0.1 port=$PPORT,$SPORT /" "$DIR/two-node.ini"
grep -q "port=$PPORT,$SPORT" "$DIR/two-node.ini" || { echo "could not write the two-node entry" >&2; exit 1; }
[[ $(id -u) == 0 ]] && chown postgres "$DIR"/*.ini "$DIR"/userlist.txt
"$FASTPOOL" "$DIR/one-node.ini" >"$DIR/one-node.out" 2>&1 &
ONE_PID=$!
"$FASTPOOL" "$DIR/two-node.ini" >"$DIR/two-node.out" 2>&1 &
TWO_PID=$!
wait_port "$ONE_PORT" || { echo "FastPool (one node) did not start" >&2; exit 1; }
wait_port "$TWO_PORT" || { echo "FastPool (two nodes) did not start" >&2; exit 1; }

# Reads go to a standby only once the node checks have seen it as one: wait for that before measuring.
pool_nodes() { sql "$TWO_PORT" "SHOW POOL_NODES" pgbouncer; }
standby_ready() { pool_nodes | awk -F'|' '$2 == 1 && $7 == "standby" && $9 == "true" {ok=1} END {exit !ok}'; }
wait_for 30 "the two-node FastPool to see node 1 as a standby taking reads" standby_ready

# Both must answer the benchmark's query before anything is measured; the two-node one from the standby.
[[ $(sql "$ONE_PORT" "select pg_is_in_recovery()") == f ]] || { echo "one-node FastPool: no answer from the primary" >&2; exit 1; }
[[ $(sql "$TWO_PORT" "select pg_is_in_recovery()") == t ]] || { echo "two-node FastPool: a read did not reach the standby" >&2; exit 1; }

TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pid_of() { case $1 in one-node) echo "$ONE_PID";; two-node) echo "$TWO_PID";; esac; }
port_of() { case $1 in one-node) echo "$ONE_PORT";; two-node) echo "$TWO_PORT";; esac; }
xacts() { sql "$1" "select sum(xact_commit + xact_rollback) from pg_stat_database"; }
select_cnt() { pool_nodes | awk -F'|' -v n="$1" '$2 == n {print $8}'; }

stamp=$(date -u +%Y%m%d-%H%M%S)
report="$here/reports/routing-$stamp.txt"
{
  echo "# Routing: FastPool $("$FASTPOOL" --version) over primary + streaming standby vs over the primary alone, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# pgbench -S -c 32 -j 2 -T $SECS -n, -M simple and -M extended; pool_mode = transaction, default_pool_size = 20;"
  echo "# $ROUNDS interleaved rounds, the order of the two FastPools alternating; mean of the rounds below"
  echo "# servers: $("$PGBIN/postgres" --version), fsync off, both on this machine; routing settings at their defaults"
  echo "# (load_balance_policy weighted_random: reads to the standbys only, here the one standby)"
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), shared with other work;"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (tps is noisy here; cpu_us/txn is steadier)"
  printf '%-6s %-9s %-9s %10s %9s %7s %11s\n' round mode target tps lat_ms failed cpu_us/txn
  declare -A SUM=() N=() TXN=() ROUND_TPS=()
  p0=$(xacts "$PPORT"); s0=$(xacts "$SPORT"); c0_0=$(select_cnt 0); c1_0=$(select_cnt 1)
  for r in $(seq 1 "$ROUNDS"); do
    order="one-node two-node"; (( r % 2 == 0 )) && order="two-node one-node"
    for m in simple extended; do
      for t in $order; do
        pid=$(pid_of "$t"); k0=$(cpu_ticks "$pid")
        res=$(pgbench -h 127.0.0.1 -p "$(port_of "$t")" -U postgres -S -M "$m" -c 32 -j 2 -T "$SECS" -n postgres 2>&1 || true)
        k1=$(cpu_ticks "$pid")
        tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$res" | head -1); tps=${tps:-0}
        lat=$(sed -n 's/^latency average = \([0-9.]*\).*/\1/p' <<<"$res" | head -1); lat=${lat:-0}
        txn=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$res" | head -1); txn=${txn:-0}
        failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$res" | head -1)
        # An aborted client (connection lost, server error) is a failure too, and pgbench says so on stderr.
        aborted=$(grep -ciE 'error|abort' <<<"$res" || true)
        failed=$(( ${failed:-0} + aborted ))
        cpu=0; (( txn > 0 )) && cpu=$(awk -v d=$((k1 - k0)) -v n="$txn" -v t="$TICK" 'BEGIN{printf "%.1f", d/t*1e6/n}')
        (( aborted > 0 )) && grep -iE 'error|abort' <<<"$res" | head -3 | sed "s/^/# $t $m: /"
        printf '%-6s %-9s %-9s %10.0f %9s %7s %11s\n' "$r" "$m" "$t" "$tps" "$lat" "$failed" "$cpu"
        key="$m/$t"
        SUM[$key]=$(awk -v a="${SUM[$key]:-0 0 0 0}" -v b="$tps $lat $failed $cpu" 'BEGIN{split(a,x," ");split(b,y," ");printf "%s %s %s %s", x[1]+y[1], x[2]+y[2], x[3]+y[3], x[4]+y[4]}')
        N[$key]=$(( ${N[$key]:-0} + 1 )); TXN[$t]=$(( ${TXN[$t]:-0} + txn )); ROUND_TPS[$key/$r]=$tps
      done
    done
  done
  echo
  echo "mean of $ROUNDS rounds:"
  printf '%-9s %-9s %10s %9s %7s %11s\n' mode target tps lat_ms failed cpu_us/txn
  declare -A TPS=() CPU=()
  for m in simple extended; do
    for t in one-node two-node; do
      read -r tps lat failed cpu <<<"$(awk -v s="${SUM[$m/$t]}" -v n="${N[$m/$t]}" 'BEGIN{split(s,x," ");printf "%.2f %.3f %d %.1f", x[1]/n, x[2]/n, x[3], x[4]/n}')"
      TPS[$m/$t]=$tps; CPU[$m/$t]=$cpu
      printf '%-9s %-9s %10.0f %9s %7s %11s\n' "$m" "$t" "$tps" "$lat" "$failed" "$cpu"
    done
  done
  echo
  # Where the reads went. pg_stat_database is flushed by each server backend at most once a second while busy
  # and about 10 s after it goes idle, so wait that long before counting.
  sleep 11
  p1=$(xacts "$PPORT"); s1=$(xacts "$SPORT"); c0_1=$(select_cnt 0); c1_1=$(select_cnt 1)
  echo "reads: pgbench transactions through one-node ${TXN[one-node]}, through two-node ${TXN[two-node]};"
  echo "  two-node FastPool select_cnt during the runs: node 0 (primary) $((c0_1 - c0_0)), node 1 (standby) $((c1_1 - c1_0));"
  echo "  transactions the servers counted (pg_stat_database, all clients): primary $((p1 - p0)), standby $((s1 - s0))"
  echo "SHOW POOL_NODES (two-node FastPool, at the end):"
  { echo "node_id|port|status|role|select_cnt|load_balance_node|replication_delay"; pool_nodes | cut -d'|' -f2,4,5,7,8,9,10; } |
    column -t -s'|' | sed 's/^/  /'
  echo
  for m in simple extended; do
    awk -v m="$m" -v a="${TPS[$m/one-node]}" -v b="${TPS[$m/two-node]}" -v ca="${CPU[$m/one-node]}" -v cb="${CPU[$m/two-node]}" 'BEGIN{
      printf "%s: two-node/one-node tps ratio %.2f, cpu_us/txn ratio %.2f\n", m, (a>0?b/a:0), (ca>0?cb/ca:0)}'
  done
  # The machine's noise drifts over minutes, so each round's two runs (back to back) are also compared on their own:
  # the median of those paired ratios is less moved by one disturbed run than the ratio of the means.
  for m in simple extended; do
    ratios=$(for r in $(seq 1 "$ROUNDS"); do
      awk -v a="${ROUND_TPS[$m/one-node/$r]}" -v b="${ROUND_TPS[$m/two-node/$r]}" 'BEGIN{printf "%.3f\n", (a>0?b/a:0)}'; done | sort -g)
    median=$(awk '{v[NR]=$1} END{printf "%.2f", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}' <<<"$ratios")
    echo "$m: per-round two-node/one-node tps ratios $(tr '\n' ' ' <<<"$ratios")-> median $median"
  done
  awk -v a="${TPS[simple/one-node]}" -v b="${TPS[simple/two-node]}" -v c="${TPS[extended/one-node]}" -v d="${TPS[extended/two-node]}" 'BEGIN{
    printf "headline: select-only tps, primary + standby over primary alone: simple %.2f, extended %.2f\n", (a>0?b/a:0), (c>0?d/c:0)}'
} | tee "$report"
echo "report: $report" >&2
