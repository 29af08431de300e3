#!/usr/bin/env bash
# Publishes FastPool (native AOT) and runs the shared pgbench yardstick against PostgreSQL directly,
# PgBouncer and FastPool, interleaved, keeping the report under perf/reports/.
#
#   perf/compare.sh [yardstick options...]
#   perf/compare.sh --mode session --scenarios select,extended,single
#
# Options are passed to ../shared/yardstick/compare.sh (see its header: --seconds, --rounds, --mode,
# --scenarios, --pgpool). The yardstick installs pgbouncer from Debian's packages when it is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
yardstick=${YARDSTICK:-$root/../shared/yardstick/compare.sh}
[[ -x $yardstick || -f $yardstick ]] || { echo "yardstick not found at $yardstick (set YARDSTICK=...)" >&2; exit 2; }

out="$here/out"
echo "publishing FastPool (native AOT) to $out ..." >&2
dotnet publish "$root/src/FastPool/FastPool.csproj" -c Release -r linux-x64 -o "$out" -v quiet -nologo >&2

stamp=$(date -u +%Y%m%d-%H%M%S)
report="$here/reports/$stamp.txt"
{
  echo "# FastPool $("$out/fastpool" --version) vs PgBouncer $(pgbouncer --version 2>/dev/null | head -1 || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# args: $*"
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  bash "$yardstick" "$@" -- "$out/fastpool"
} | tee "$report"
echo "report: $report" >&2
