#!/usr/bin/env python3
"""Writes summary.md (to stdout) for a perf/reports/<date>/ directory made by perf/run-all.sh.

    perf/summarize.py REPORT_DIR [--mode M] [--clients N] [--load-duration D] [--yardstick-args TEXT]

Reads REPORT_DIR/yardstick.txt (the pgbench yardstick's table) and REPORT_DIR/load/<scenario>/report.json
(fastpool-load), and prints one table per tool: throughput, latency, errors and each target's throughput as a
ratio of PgBouncer's and of direct PostgreSQL's, followed by the plots and machine.md.
"""
import argparse, json, os, re, sys

TARGETS = ["direct", "pgbouncer", "pgpool", "fastpool"]
NAMES = {"direct": "PostgreSQL (direct)", "pgbouncer": "PgBouncer", "pgpool": "Pgpool-II", "fastpool": "FastPool"}


def ratio(value, base):
    return f"{value / base:.2f}" if base else "–"


def yardstick_rows(path):
    """{scenario: {target: (tps, lat_ms, errors, cpu)}} from the yardstick's first table, in its order."""
    rows = {}
    if not os.path.exists(path):
        return rows
    line_re = re.compile(r"^(\w+)\s+(direct|pgbouncer|pgpool|fastpool)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\S+)\s*$")
    with open(path) as f:
        for line in f:
            m = line_re.match(line)
            if m:
                sc, target, tps, lat, errors, cpu = m.groups()
                rows.setdefault(sc, {})[target] = (float(tps), float(lat), int(errors), cpu)
    return rows


def load_reports(directory):
    """[(scenario, report)] for every load/<scenario>/report.json, in the order run-all.sh ran them."""
    reports = []
    base = os.path.join(directory, "load")
    if not os.path.isdir(base):
        return reports
    for sc in sorted(os.listdir(base), key=lambda s: os.path.getmtime(os.path.join(base, s))):
        path = os.path.join(base, sc, "report.json")
        if os.path.exists(path):
            with open(path) as f:
                reports.append((sc, json.load(f)))
    return reports


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--mode", default="transaction")
    ap.add_argument("--clients", default="32")
    ap.add_argument("--load-duration", default="10s")
    ap.add_argument("--yardstick-args", default="")
    a = ap.parse_args()

    out = []
    w = out.append
    w(f"# FastPool vs PgBouncer vs Pgpool-II vs PostgreSQL: {os.path.basename(os.path.normpath(a.report))}")
    w("")
    w(f"Made by `perf/run-all.sh` ({a.mode} pooling). The machine is shared and noisy (see [machine.md](machine.md)): "
      "the ratios between targets measured in the same run are what to compare, not the absolute numbers. "
      "A ratio is the target's TPS divided by PgBouncer's or by direct PostgreSQL's in the same scenario.")
    w("")

    loads = load_reports(a.report)
    if loads:
        w(f"## fastpool-load ({a.clients} clients, {a.load_duration} per target after a 2 s warm-up, targets interleaved in 1 s turns)")
        w("")
        w("Latency percentiles from HdrHistogram over every transaction. Pgpool-II: one backend, connection cache on, "
          f"load balancing off, num_init_children = clients + 8 ([config/pgpool.conf](config/pgpool.conf)). "
          "PgBouncer and FastPool: the same ini, default_pool_size = 20 ([config/](config/)).")
        w("")
        w("| scenario | target | TPS | p50 ms | p99 ms | p99.9 ms | errors | vs PgBouncer | vs direct |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for sc, rep in loads:
            by = {t["name"]: t for t in rep["targets"]}
            b = by.get("pgbouncer", {}).get("tps", 0)
            d = by.get("direct", {}).get("tps", 0)
            for name in TARGETS:
                t = by.get(name)
                if not t:
                    continue
                lat = t["latency_ms"]
                errors = t["errors"]
                if errors:
                    codes = ", ".join(f"{k} ×{v}" for k, v in sorted(t.get("errors_by_sqlstate", {}).items()))
                    errors = f"{errors} ({codes})"
                w(f"| {sc} | {NAMES[name]} | {t['tps']:.0f} | {lat['p50']:.2f} | {lat['p99']:.2f} | {lat['p999']:.2f} | "
                  f"{errors} | {ratio(t['tps'], b)} | {ratio(t['tps'], d)} |")
        w("")

    ys = yardstick_rows(os.path.join(a.report, "yardstick.txt"))
    if ys:
        w(f"## pgbench yardstick (`compare.sh {a.yardstick_args}`)")
        w("")
        w("pgbench reports average latency only. cpu µs/txn is the pooler's own CPU time per transaction "
          "(Pgpool-II: summed over its processes). The yardstick starts its own Pgpool-II (load balancing on, "
          "210 children, which with one backend changes nothing). Raw output: [yardstick.txt](yardstick.txt).")
        w("")
        w("| scenario | target | TPS | avg latency ms | errors | cpu µs/txn | vs PgBouncer | vs direct |")
        w("|---|---|---:|---:|---:|---:|---:|---:|")
        for sc, targets in ys.items():
            b = targets.get("pgbouncer", (0,))[0]
            d = targets.get("direct", (0,))[0]
            for name in TARGETS:
                if name not in targets:
                    continue
                tps, lat, errors, cpu = targets[name]
                w(f"| {sc} | {NAMES[name]} | {tps:.0f} | {lat:.3f} | {errors} | {cpu} | {ratio(tps, b)} | {ratio(tps, d)} |")
        w("")
        missing = [t for t in TARGETS if not any(t in v for v in ys.values())]
        if missing:
            w(f"Not measured by the yardstick: {', '.join(NAMES[t] for t in missing)} (see yardstick.txt).")
            w("")

    if loads:
        w("## Plots (fastpool-load)")
        w("")
        for sc, _ in loads:
            for png in sorted(os.listdir(os.path.join(a.report, "load", sc))):
                if png.endswith(".png"):
                    w(f"![{sc}: {png[:-4]}](load/{sc}/{png})")
            w("")

    machine = os.path.join(a.report, "machine.md")
    if os.path.exists(machine):
        with open(machine) as f:
            w("## " + f.read().lstrip("# ").rstrip())
        w("")
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
