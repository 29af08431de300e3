#!/usr/bin/env bash
# What the perf/ scripts share: run as postgres when root, free ports, a throwaway PostgreSQL with pgbench data,
# and the pgbouncer-format ini that PgBouncer and FastPool both read. Sourced, not run.

as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# start_postgres DIR PORT MAX_CONNECTIONS: init_postgres, then pgbench data at scale 10.
start_postgres() {
  init_postgres "$@"
  pgbench -h 127.0.0.1 -p "$2" -U postgres -i -s 10 -q postgres >/dev/null 2>&1
}

# init_postgres DIR PORT MAX_CONNECTIONS: initdb in DIR/pg (trust, 127.0.0.1 and a socket in DIR only), settings
# for throughput rather than durability (these servers hold nothing), and start it, empty.
init_postgres() {
  local dir=$1 port=$2 max=$3
  as_pg "$PGBIN/initdb" -D "$dir/pg" -A trust -U postgres >/dev/null
  cat >>"$dir/pg/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = $max
shared_buffers = 256MB
fsync = off
synchronous_commit = off
CONF
  as_pg "$PGBIN/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w start >/dev/null
}

# write_pooler_ini FILE LISTEN_PORT PG_PORT MODE MAX_CLIENT_CONN [EXTRA_LINES]: the [databases]/[pgbouncer] ini both
# poolers get (trust, DIR/userlist.txt holding postgres), logging and the pid file next to FILE.
write_pooler_ini() {
  local file=$1 port=$2 pgport=$3 mode=$4 maxclients=$5 extra=${6:-}
  local dir base
  dir=$(dirname "$file"); base=$(basename "$file" .ini)
  echo '"postgres" ""' >"$dir/userlist.txt"
  cat >"$file" <<INI
[databases]
postgres = host=127.0.0.1 port=$pgport dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = $mode
max_client_conn = $maxclients
default_pool_size = 20
${extra}
logfile = $dir/$base.log
pidfile = $dir/$base.pid
INI
}

# bench_setup "$@": what cache-compare.sh and routing-compare.sh share. Reads --seconds N, --rounds N and
# --fastpool PATH into SECS, ROUNDS and FASTPOOL (defaults 10, 2 and a fresh native AOT publish to perf/out), and
# sets PGBIN to the newest PostgreSQL server binaries. Exits 2 on an unknown option or when something is missing.
bench_setup() {
  SECS=10 ROUNDS=2 FASTPOOL=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --seconds) SECS=$2; shift 2;; --rounds) ROUNDS=$2; shift 2;; --fastpool) FASTPOOL=$2; shift 2;;
      *) echo "unknown option $1" >&2; exit 2;;
    esac
  done
  local here root
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  root=$(cd "$here/.." && pwd)
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -x $PGBIN/postgres ]] || { echo "no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 2; }
  if [[ -z $FASTPOOL ]]; then
    echo "publishing FastPool (native AOT) to $here/out ..." >&2
    dotnet publish "$root/src/FastPool/FastPool.csproj" -c Release -r linux-x64 -o "$here/out" -v quiet -nologo >&2
    FASTPOOL="$here/out/fastpool"
  fi
  [[ -x $FASTPOOL ]] || { echo "FastPool binary not found at $FASTPOOL" >&2; exit 2; }
}
