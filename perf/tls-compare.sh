#!/usr/bin/env bash
# TLS on the client side, FastPool vs PgBouncer, in one run (issue 5: "TLS is on the hot path").
#
#   perf/tls-compare.sh [--seconds N] [--rounds N] [--mode session|transaction]
#
# Publishes FastPool (native AOT) like perf/compare.sh, starts a throwaway PostgreSQL (trust, 127.0.0.1 only),
# generates a self-signed test certificate with openssl, and gives PgBouncer and FastPool the same ini with
# client_tls_sslmode = prefer (TLS for every client that asks) and that certificate. Then runs select-only
# pgbench (-S -c 32 -j 2) against each pooler with sslmode=require, and for reference with sslmode=disable,
# interleaved round by round; the median of the rounds is reported. The report goes to perf/reports/tls-<stamp>.txt; its last line is the ratio.
set -euo pipefail
SECS=10 ROUNDS=3 MODE=transaction
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) SECS=$2; shift 2;; --rounds) ROUNDS=$2; shift 2;; --mode) MODE=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $PGBIN/postgres ]] || { echo "no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 2; }
if ! command -v pgbouncer >/dev/null; then
  echo "installing pgbouncer (Debian package)..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer) >/dev/null 2>&1 || { echo "could not install pgbouncer" >&2; exit 2; }
fi
command -v openssl >/dev/null || { echo "openssl is needed to generate the test certificate" >&2; exit 2; }

out="$here/out"
echo "publishing FastPool (native AOT) to $out ..." >&2
dotnet publish "$root/src/FastPool/FastPool.csproj" -c Release -r linux-x64 -o "$out" -v quiet -nologo >&2

# shellcheck source=perf/lib.sh
. "$here/lib.sh"
DIR=$(mktemp -d /tmp/tls-compare.XXXXXX); chmod 755 "$DIR"
[[ $(id -u) == 0 ]] && chown postgres "$DIR"
PGPORT=$(free_port); BPORT=$(free_port); FPORT=$(free_port)
FP_PID=""
cleanup() {
  [[ -n $FP_PID ]] && kill "$FP_PID" 2>/dev/null || true
  [[ -f $DIR/pgbouncer.pid ]] && kill "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null || true
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

start_postgres "$DIR" "$PGPORT" 200

# A throwaway test certificate (ECDSA P-256, CN=localhost), made for this run and deleted with it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=localhost" \
  -keyout "$DIR/server.key" -out "$DIR/server.crt" >/dev/null 2>&1
chmod 600 "$DIR/server.key"
tls_lines="client_tls_sslmode = prefer
client_tls_cert_file = $DIR/server.crt
client_tls_key_file = $DIR/server.key"
write_pooler_ini "$DIR/pgbouncer.ini" "$BPORT" "$PGPORT" "$MODE" 1000 "$tls_lines"
write_pooler_ini "$DIR/fastpool.ini" "$FPORT" "$PGPORT" "$MODE" 1000 "$tls_lines"
[[ $(id -u) == 0 ]] && chown postgres "$DIR"/*.ini "$DIR"/userlist.txt "$DIR"/server.*
as_pg pgbouncer -d "$DIR/pgbouncer.ini"
wait_port "$BPORT" || { echo "pgbouncer did not start" >&2; exit 1; }
"$out/fastpool" "$DIR/fastpool.ini" >"$DIR/fastpool.out" 2>&1 &
FP_PID=$!
wait_port "$FPORT" || { echo "FastPool did not start:" >&2; tail -20 "$DIR/fastpool.out" >&2; exit 1; }

# Both must really speak TLS before anything is measured.
for port in "$BPORT" "$FPORT"; do
  ssl=$(psql "host=127.0.0.1 port=$port user=postgres dbname=postgres sslmode=require" -Atc 'show ssl' 2>/dev/null || true)
  proto=$(psql "host=127.0.0.1 port=$port user=postgres dbname=postgres sslmode=require" -c '\conninfo' 2>/dev/null | grep -o 'protocol: [^,]*, cipher: [^,]*' || true)
  [[ -n $proto ]] || { echo "no TLS connection through port $port" >&2; exit 1; }
  echo "port $port: $proto" >&2
  [[ $port == "$BPORT" ]] && BPROTO=$proto || FPROTO=$proto
  : "$ssl"
done

TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15+$16+$17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pid_of() { case $1 in pgbouncer*) cat "$DIR/pgbouncer.pid";; fastpool*) echo "$FP_PID";; esac; }
port_of() { case $1 in pgbouncer*) echo "$BPORT";; fastpool*) echo "$FPORT";; esac; }
TARGETS="pgbouncer-tls fastpool-tls pgbouncer-plain fastpool-plain"
stamp=$(date -u +%Y%m%d-%H%M%S)
report="$here/reports/tls-$stamp.txt"
{
  echo "# TLS on the client side: FastPool $("$out/fastpool" --version) vs $(pgbouncer --version 2>/dev/null | head -1), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# pgbench -S -M simple -c 32 -j 2 -T $SECS, pool_mode = $MODE, $ROUNDS interleaved rounds (median), sslmode=require vs disable"
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(openssl version)"
  echo "# negotiated: pgbouncer $BPROTO; fastpool $FPROTO"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine makes tps noisy; cpu_us/txn is steadier)"
  printf '%-16s %10s %9s %7s %12s\n' target tps lat_ms errors cpu_us/txn
  declare -A RES=()
  for r in $(seq 1 "$ROUNDS"); do
    for t in $TARGETS; do
      mode=require; [[ $t == *-plain ]] && mode=disable
      pid=$(pid_of "$t"); c0=$(cpu_ticks "$pid")
      res=$(PGSSLMODE=$mode pgbench -h 127.0.0.1 -p "$(port_of "$t")" -U postgres -S -M simple -c 32 -j 2 -T "$SECS" -n postgres 2>&1 || true)
      c1=$(cpu_ticks "$pid")
      tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$res" | head -1); tps=${tps:-0}
      lat=$(sed -n 's/^latency average = \([0-9.]*\).*/\1/p' <<<"$res" | head -1)
      txn=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$res" | head -1)
      fails=$(grep -c -iE 'error|abort' <<<"$res" || true)
      cpu="-"; [[ ${txn:-0} -gt 0 ]] && cpu=$(awk -v d=$((c1-c0)) -v n="$txn" -v t="$TICK" 'BEGIN{printf "%.1f", d/t*1e6/n}')
      echo "# round $r $t: tps $tps" >&2
      RES[$t]="${RES[$t]:-} $tps|${lat:-0}|$fails|$cpu"
    done
  done
  declare -A MED=()
  for t in $TARGETS; do
    row=$(tr ' ' '\n' <<<"${RES[$t]}" | sed '/^$/d' | sort -t'|' -k1,1g | awk -v n="$ROUNDS" 'NR==int((n+1)/2)')
    IFS='|' read -r tps lat fails cpu <<<"$row"
    MED[$t]=$tps
    printf '%-16s %10.0f %9s %7s %12s\n' "$t" "$tps" "$lat" "$fails" "$cpu"
  done
  echo
  awk -v b="${MED[pgbouncer-tls]}" -v f="${MED[fastpool-tls]}" -v bp="${MED[pgbouncer-plain]}" -v fp="${MED[fastpool-plain]}" 'BEGIN{
    printf "plain fastpool/pgbouncer %.2f\n", (bp>0?fp/bp:0)
    printf "tls cost (tls/plain): pgbouncer %.2f, fastpool %.2f\n", (bp>0?b/bp:0), (fp>0?f/fp:0)
    printf "headline: select with client TLS (sslmode=require) fastpool/pgbouncer tps ratio %.2f\n", (b>0?f/b:0)}'
} | tee "$report"
echo "report: $report" >&2
