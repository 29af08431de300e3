#!/usr/bin/env bash
# The whole side-by-side comparison in one run: PostgreSQL directly, PgBouncer, Pgpool-II and FastPool, measured
# by the shared pgbench yardstick and by fastpool-load, written to perf/reports/<date>/:
#   summary.md     the tables (TPS, latency, ratios against PgBouncer and against direct) and the plots
#   machine.md     cores, memory, kernel and the version of everything measured
#   yardstick.txt  the yardstick's raw output
#   load/<scenario>/report.{json,md}, *.png   fastpool-load's reports
#   config/        the PgBouncer/FastPool ini and pgpool.conf the fastpool-load targets ran with
#
#   perf/run-all.sh [--seconds 10] [--rounds 2] [--mode transaction] [--scenarios LIST]
#                   [--load-scenarios select,extended,tpcb,mixed] [--load-duration 10s] [--clients 32] [--out DIR]
#
# --seconds/--rounds/--mode/--scenarios go to the yardstick (../shared/yardstick/compare.sh, run with --pgpool);
# --load-* and --clients to fastpool-load, which runs every scenario against the four targets interleaved in
# 1 s turns, after a 2 s warm-up each. Needs root for apt-get (pgbouncer and pgpool2 are installed when missing)
# and to run PostgreSQL, PgBouncer and Pgpool-II as the 'postgres' user. Everything listens on 127.0.0.1 only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
yardstick=${YARDSTICK:-$root/../shared/yardstick/compare.sh}

SECS=10 ROUNDS=2 MODE=transaction SCEN="" LOAD_SCEN=select,extended,tpcb,mixed LOAD_DURATION=10s CLIENTS=32 OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) SECS=$2; shift 2;; --rounds) ROUNDS=$2; shift 2;; --mode) MODE=$2; shift 2;;
    --scenarios) SCEN=$2; shift 2;; --load-scenarios) LOAD_SCEN=$2; shift 2;;
    --load-duration) LOAD_DURATION=$2; shift 2;; --clients) CLIENTS=$2; shift 2;; --out) OUT=$2; shift 2;;
    -h|--help) sed -n '2,18p' "$0"; exit 0;;
    *) echo "run-all.sh: unknown option $1 (see --help)" >&2; exit 2;;
  esac
done
[[ $MODE == session || $MODE == transaction ]] || { echo "run-all.sh: --mode is session or transaction" >&2; exit 2; }
[[ -f $yardstick ]] || { echo "run-all.sh: yardstick not found at $yardstick (set YARDSTICK=...)" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "run-all.sh: run as root (it installs packages and starts the servers as 'postgres')" >&2; exit 2; }

log() { echo "run-all.sh: $*" >&2; }

# ---- packages ------------------------------------------------------------------------------------------------
missing=()
command -v pgbouncer >/dev/null || missing+=(pgbouncer)
command -v pgpool >/dev/null || missing+=(pgpool2)
command -v pgbench >/dev/null || missing+=(postgresql-contrib)
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing ${missing[*]} (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The packages start their own services; this run uses its own instances on free ports.
for svc in pgbouncer pgpool2; do systemctl is-active --quiet "$svc" 2>/dev/null && systemctl stop "$svc" 2>/dev/null || true; done
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $PGBIN/postgres ]] || { echo "run-all.sh: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 2; }

# ---- build ---------------------------------------------------------------------------------------------------
bin="$here/out"
log "publishing FastPool (native AOT) and fastpool-load to $bin"
dotnet publish "$root/src/FastPool/FastPool.csproj" -c Release -r linux-x64 -o "$bin" -v quiet -nologo >&2
dotnet publish "$root/load/FastPool.Load/FastPool.Load.csproj" -c Release -o "$bin/load" -v quiet -nologo >&2
fastpool="$bin/fastpool"
load=(dotnet "$bin/load/fastpool-load.dll")

report=${OUT:-$here/reports/$(date -u +%Y-%m-%d)}
rm -rf "$report"
mkdir -p "$report/load" "$report/config"
log "report directory: $report"

# ---- machine -------------------------------------------------------------------------------------------------
{
  echo "# Machine and versions"
  echo
  echo "- run: $(date -u '+%Y-%m-%d %H:%M UTC'), FastPool commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src || echo ' (with uncommitted changes)')"
  echo "- cpu: $(nproc) logical cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
  echo "- memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "- kernel: $(uname -srm)"
  echo "- os: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "- .NET: $(dotnet --version) SDK"
  echo "- FastPool: $("$fastpool" --version)"
  echo "- PostgreSQL: $("$PGBIN/postgres" --version)"
  echo "- PgBouncer: $(pgbouncer --version 2>/dev/null | head -1)"
  echo "- Pgpool-II: $(pgpool --version 2>&1 | head -1)"
  echo "- pgbench: $(pgbench --version)"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: compare ratios, not absolute numbers)"
} >"$report/machine.md"

# ---- the pgbench yardstick -------------------------------------------------------------------------------------
yargs=(--seconds "$SECS" --rounds "$ROUNDS" --mode "$MODE" --pgpool)
[[ -n $SCEN ]] && yargs+=(--scenarios "$SCEN")
log "yardstick: ${yargs[*]}"
{
  echo "# yardstick $(basename "$yardstick") ${yargs[*]} -- fastpool"
  bash "$yardstick" "${yargs[@]}" -- "$fastpool" || echo "# yardstick exited with $?"
} | tee "$report/yardstick.txt" >&2

# ---- fastpool-load: a sandbox of our own -----------------------------------------------------------------------
# shellcheck source=perf/lib.sh
. "$here/lib.sh"
DIR=$(mktemp -d /tmp/run-all.XXXXXX); chmod 755 "$DIR"; chown postgres "$DIR"
PGPORT=$(free_port) BPORT=$(free_port) PPORT=$(free_port) FPORT=$(free_port)
FP_PID="" PP_PID=""
cleanup() {
  [[ -n $FP_PID ]] && kill "$FP_PID" 2>/dev/null || true
  [[ -f $DIR/pgbouncer.pid ]] && kill "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null || true
  [[ -n $PP_PID ]] && kill "$PP_PID" 2>/dev/null || true
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

log "starting PostgreSQL on $PGPORT"
start_postgres "$DIR" "$PGPORT" 300

# PgBouncer and FastPool read the same pgbouncer.ini, only the port differs (as in the yardstick).
write_pooler_ini "$DIR/pgbouncer.ini" "$BPORT" "$PGPORT" "$MODE" 5000
write_pooler_ini "$DIR/fastpool.ini" "$FPORT" "$PGPORT" "$MODE" 5000
chown postgres "$DIR"/*.ini "$DIR/userlist.txt"
as_pg pgbouncer -d "$DIR/pgbouncer.ini"
wait_port "$BPORT" || { echo "run-all.sh: pgbouncer did not start" >&2; exit 1; }

# Pgpool-II: one backend, its connection cache on, load balancing off; a child process per client, so
# num_init_children covers the clients with room to spare, and max_pool = 1 (one database/user pair).
cat >"$DIR/pgpool.conf" <<PCONF
backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = $PPORT
unix_socket_directories = '$DIR'
pcp_listen_addresses = ''
pcp_socket_dir = '$DIR'
pcp_port = $(free_port)
backend_hostname0 = '127.0.0.1'
backend_port0 = $PGPORT
backend_weight0 = 1
enable_pool_hba = off
connection_cache = on
num_init_children = $((CLIENTS + 8))
max_pool = 1
load_balance_mode = off
sr_check_period = 0
health_check_period = 0
logdir = '$DIR'
pid_file_name = '$DIR/pgpool.pid'
PCONF
chown postgres "$DIR/pgpool.conf"
runuser -u postgres -- pgpool -n -f "$DIR/pgpool.conf" -F /dev/null >"$DIR/pgpool.log" 2>&1 &
PP_PID=$!
wait_port "$PPORT" || { echo "run-all.sh: pgpool did not start:" >&2; tail -20 "$DIR/pgpool.log" >&2; exit 1; }

"$fastpool" "$DIR/fastpool.ini" >"$DIR/fastpool.out" 2>&1 &
FP_PID=$!
wait_port "$FPORT" || { echo "run-all.sh: FastPool did not start:" >&2; tail -20 "$DIR/fastpool.out" >&2; exit 1; }

sed "s|$DIR|<sandbox>|g" "$DIR/pgbouncer.ini" >"$report/config/pgbouncer.ini"
sed "s|$DIR|<sandbox>|g" "$DIR/fastpool.ini" >"$report/config/fastpool.ini"
sed "s|$DIR|<sandbox>|g" "$DIR/pgpool.conf" >"$report/config/pgpool.conf"

cs() { echo "Host=127.0.0.1;Port=$1;Username=postgres;Database=postgres;Timeout=15;Command Timeout=60"; }
targets=(--target "direct=$(cs "$PGPORT")" --target "pgbouncer=$(cs "$BPORT")" --target "pgpool=$(cs "$PPORT")" --target "fastpool=$(cs "$FPORT")")
for sc in ${LOAD_SCEN//,/ }; do
  log "fastpool-load: $sc, $CLIENTS clients, $LOAD_DURATION per target"
  "${load[@]}" run "${targets[@]}" --scenario "$sc" --clients "$CLIENTS" --duration "$LOAD_DURATION" --warmup 2s \
    --no-live --out "$report/load/$sc" >"$DIR/load-$sc.out" 2>&1 || { log "fastpool-load $sc failed:"; tail -5 "$DIR/load-$sc.out" >&2; }
done

# ---- summary -------------------------------------------------------------------------------------------------
echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$report/machine.md"
python3 "$here/summarize.py" "$report" --mode "$MODE" --clients "$CLIENTS" --load-duration "$LOAD_DURATION" \
  --yardstick-args "--seconds $SECS --rounds $ROUNDS --mode $MODE${SCEN:+ --scenarios $SCEN} --pgpool" >"$report/summary.md"
cat "$report/summary.md"
log "report: $report/summary.md"
