"""Tether's benchmarks, side by side with DBOS, LangGraph and Prefect: ``python -m bench``.

Every scenario runs each system in its own process (``bench.worker``), with one
warm-up and ``--runs`` counted runs, prints a table of medians and ratios, and
writes everything to ``bench/results/latest.json``. Peers run in the interpreter given
by ``--peers-python`` (default: this one), which needs the ``bench`` extra, e.g.
``python3 -m venv /tmp/peers && /tmp/peers/bin/pip install dbos 'prefect>=3,<4'
langgraph langgraph-checkpoint-sqlite``; a peer that is not installed is reported as not
measured. The PostgreSQL scenarios (``pg-steps``, ``pg-loops``, ``pg-workers``) run on a
fresh database of ``TETHER_TEST_PG``'s server, or on a server of their own
(:mod:`bench.pgserver`).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "B1 normal vs peers": ">= 10x faster than DBOS and LangGraph",
    "B1 full vs peers": ">= 3x faster than DBOS and LangGraph",
    "B2 storage": ">= 4x smaller than LangGraph; linear growth",
    "B3 loops": ">= 10,000 iterations/s at parallel 1 and 8; RSS <= 300 MiB",
    "B4 resume": "<= 150 ms in process, <= 300 ms from launching tether resume, to the first new iteration",
    "B5 templates": "bare path <= 2 us, expression <= 10 us, string <= 15 us; hit rate >= 99.9%",
    "B6 CLI": "tether --help <= 80 ms",
    "B6 reads": "runs, show, vars RUN, vars get <= 150 ms on a store with 1,000 runs",
    "B6 run": "tether run examples/quickstart.yaml <= 400 ms",
    "B6 flow": "load and validate a 1,000-step flow <= 60 ms",
    "B7 history": "resume and tether vars RUN with 100k history rows within 20 % of 1k",
    "B1 PostgreSQL": "<= 400 us/step; >= 5x faster than DBOS on the same server",
    "B3 PostgreSQL loops": ">= 3,000 it/s, 10,000 no-op iterations, one process",
    "B8 PostgreSQL workers": ">= 1,500 it/s at 4 workers, 5 ms items, parallel 4",
}
PEERS = {"dbos", "langgraph", "langgraph-nosync", "prefect", "dbos-pg", "dbos-pg-nosync", "dbos-queue"}


PEERS_PYTHON = [sys.executable]
ENV: dict[str, str] = {}


def worker(*args: str, runs: int) -> Any:
    """One scenario of one system in its own process (a peer's in the peers' interpreter)."""
    python = PEERS_PYTHON[0] if set(args) & PEERS else sys.executable
    env = dict(__import__("os").environ, **ENV)
    proc = subprocess.run([python, "-m", "bench.worker", *args, "--runs", str(runs)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800, env=env)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        return {"error": last}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def med(values: list[float]) -> float:
    return statistics.median(values)


def pg_scenarios(only: set[str], args: Any, results: dict[str, Any], rows: list[tuple[str, str, str, str]],
                 url: str) -> None:
    """B1, B3 and B8 on PostgreSQL, Tether beside DBOS on the same server, in one run."""
    if "pg-steps" in only:
        steps = {s: worker("steps", s, runs=args.runs)
                 for s in ("tether-pg-normal", "tether-pg-full", "dbos-pg", "dbos-pg-nosync")}
        results["pg_steps"] = steps
        per = {s: med(d["us_per_step"]) for s, d in steps.items() if "error" not in d}
        for s, v in per.items():
            rows.append(("B1 PostgreSQL per step", s, f"{v:,.1f} µs/step",
                         TARGETS["B1 PostgreSQL"] if s == "tether-pg-normal" else ""))
        for mode, peer in (("tether-pg-full", "dbos-pg"), ("tether-pg-normal", "dbos-pg")):
            if mode in per and peer in per:
                rows.append(("B1 PostgreSQL", f"{peer} / {mode}", f"{per[peer] / per[mode]:.1f}x", ""))
        for s, d in steps.items():
            if "error" in d:
                rows.append(("B1 PostgreSQL", s, "not measured", d["error"]))
    if "pg-loops" in only:
        for p in ("1", "8"):
            d = worker("pg-loops", p, runs=args.runs)
            results[f"pg_loops_parallel_{p}"] = d
            rows.append(("B3 PostgreSQL loops", f"10k no-op, parallel {p}",
                         d.get("error") or f"{med(d['iterations_per_s']):,.0f} it/s",
                         TARGETS["B3 PostgreSQL loops"] if p == "1" else ""))
    if "pg-workers" in only:
        proc = subprocess.run([sys.executable, "-m", "bench.loop_workers", "--db", url, "--items",
                               str(args.worker_items), "--work-ms", "5", "--runs", str(min(args.runs, 3))],
                              cwd=ROOT, capture_output=True, text=True, timeout=3600)
        if proc.returncode == 0:
            d = json.loads(proc.stdout.strip().splitlines()[-1])
            results["pg_workers"] = d
            for n, v in d["iterations_per_s"].items():
                target = TARGETS["B8 PostgreSQL workers"] if n == "4" else ""
                rows.append(("B8 PostgreSQL workers", f"{n} worker(s), 5 ms items, parallel 4",
                             f"{v['median']:,.0f} it/s", target))
        else:
            rows.append(("B8 PostgreSQL workers", "tether", "not measured", proc.stderr.strip()[-200:]))
        ENV["TETHER_BENCH_QUEUE_ITEMS"] = str(args.worker_items)
        d = worker("dbos-queue", runs=min(args.runs, 3))
        results["dbos_queue"] = d
        rows.append(("B8 PostgreSQL workers", "DBOS queue, concurrency 16, 5 ms steps",
                     d.get("error") or f"{med(d['iterations_per_s']):,.0f} it/s", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="scenarios to run: steps growth loops resume templates cli "
                    "history pg-steps pg-loops pg-workers")
    ap.add_argument("--peers-python", default=sys.executable,
                    help="the interpreter that has the peers installed (dbos, prefect 3, langgraph)")
    ap.add_argument("--worker-items", type=int, default=10_000,
                    help="items of the pg-workers scenario (and of the DBOS queue beside it)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = ap.parse_args()
    only = set(args.only or ["steps", "growth", "loops", "resume", "templates", "cli", "history", "pg-steps",
                             "pg-loops", "pg-workers"])
    PEERS_PYTHON[0] = args.peers_python
    machine = {"python": platform.python_version(), "platform": platform.platform(),
               "cpus": __import__("os").cpu_count()}
    results: dict[str, Any] = {"machine": machine, "runs": args.runs,
                               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    rows: list[tuple[str, str, str, str]] = []
    if "steps" in only:
        steps = {s: worker("steps", s, runs=args.runs)
                 for s in ("tether-normal", "tether-full", "dbos", "langgraph", "langgraph-nosync",
                           "prefect")}
        results["steps"] = steps
        ok = {s: d for s, d in steps.items() if "error" not in d}
        per = {s: med(d["us_per_step"]) for s, d in ok.items()}
        for s, v in per.items():
            rows.append(("B1 per-step overhead", s, f"{v:,.1f} µs/step", ""))
        # the headline, like for like: `full` (a sync per commit) against the peers' defaults,
        # which sync on every commit; `normal` against peers configured without that sync
        for mode, peers in (("tether-full", ("dbos", "langgraph", "prefect")),
                            ("tether-normal", ("langgraph-nosync", "dbos", "langgraph", "prefect"))):
            for peer in peers:
                if mode in per and peer in per:
                    name = f"B1 {mode.split('-')[1]} vs peers"
                    rows.append((name, f"{peer} / {mode}", f"{per[peer] / per[mode]:.1f}x", TARGETS[name]))
        size = {s: med(d["bytes_per_step"]) for s, d in ok.items()}
        for s, v in size.items():
            rows.append(("B2 storage (after B1)", s, f"{v:,.0f} bytes/step", ""))
        if "langgraph" in size and "tether-normal" in size:
            rows.append(("B2 storage", "langgraph / tether",
                         f"{size['langgraph'] / size['tether-normal']:.1f}x", TARGETS["B2 storage"]))
        for s, d in steps.items():
            if "error" in d:
                rows.append(("B1", s, "not measured", d["error"]))
    if only & {"pg-steps", "pg-loops", "pg-workers"}:
        from bench.pgserver import postgres
        with postgres() as url:
            ENV["TETHER_BENCH_PG"] = url
            pg_scenarios(only, args, results, rows, url)
    if "growth" in only:
        g = worker("growth", runs=args.runs)
        results["growth"] = g
        if "error" not in g:
            rows.append(("B2 growth", "tether 1k / 10k steps",
                         f"{g['bytes_per_step_1000']} / {g['bytes_per_step_10000']} bytes/step", "linear"))
    if "loops" in only:
        for p in ("1", "8"):
            d = worker("loops", p, runs=args.runs)
            results[f"loops_parallel_{p}"] = d
            if "error" not in d:
                rows.append(("B3 loop throughput", f"100k no-op, parallel {p}",
                             f"{med(d['iterations_per_s']):,.0f} it/s, RSS {d['peak_rss_mib']:.0f} MiB",
                             TARGETS["B3 loops"] if p == "1" else ""))
    if "resume" in only:
        d = worker("resume", runs=args.runs)
        results["resume"] = d
        if "error" not in d:
            def took(name: str) -> str:
                return f"{med(d[name + '_ms']):,.0f} ms (CPU {med(d[name + '_cpu_ms']):,.0f})"
            rows.append(("B4 resume", "in process", took("in_process"), TARGETS["B4 resume"]))
            rows.append(("B4 resume", "from launching tether resume", took("with_interpreter"), ""))
    if "templates" in only:
        d = worker("templates", runs=args.runs)
        results["templates"] = d
        if "error" not in d:
            for key in ("bare_path_us", "expression_us", "string_template_us"):
                target = TARGETS["B5 templates"] if key == "bare_path_us" else ""
                rows.append(("B5 templates", key.replace("_us", "").replace("_", " "),
                             f"{med(d[key]):.2f} µs", target))
            rows.append(("B5 templates", "cache hit rate, 10k-iteration loop",
                         f"{d['cache_hit_rate_10k_loop']:.4%}", ""))
    if "cli" in only:
        d = worker("cli", runs=args.runs)
        results["cli"] = d
        if "error" not in d:
            def took(name: str) -> str:
                cpu = f" (CPU {med(d[name + '_cpu_ms']):,.0f})" if name + "_cpu_ms" in d else ""
                return f"{med(d[name + '_ms']):,.0f} ms{cpu}"
            rows.append(("B6 CLI start-up", "python -c pass (the floor)", took("python"), ""))
            rows.append(("B6 CLI start-up", "tether --help", took("help"), TARGETS["B6 CLI"]))
            for key, label in (("runs", "tether runs"), ("show", "tether show RUN"),
                               ("vars", "tether vars RUN"), ("vars_get", "tether vars get RUN NAME")):
                rows.append(("B6 CLI reads (1,000 runs)", label, took(key),
                             TARGETS["B6 reads"] if key == "runs" else ""))
            rows.append(("B6 CLI run", "tether run examples/quickstart.yaml", took("run_quickstart"),
                         TARGETS["B6 run"]))
            rows.append(("B6 flow loading", "1,000 steps, load + validate",
                         f"{med(d['flow_load_1000_steps_ms']):,.1f} ms", TARGETS["B6 flow"]))
    if "history" in only:
        d = worker("history", runs=args.runs)
        results["history"] = d
        if "error" not in d:
            for what in ("resume", "vars"):
                small, large = med(d[f"{what}_ms_1000"]), med(d[f"{what}_ms_100000"])
                rows.append(("B7 history", f"{what}: 1k / 100k history rows",
                             f"{small:,.0f} / {large:,.0f} ms ({large / small - 1:+.0%})",
                             TARGETS["B7 history"] if what == "resume" else ""))
    results["table"] = [list(r) for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    try:
        from rich.console import Console
        from rich.table import Table
        table = Table("scenario", "system", "median", "target", title=f"Tether benchmarks ({args.runs} runs)")
        for r in rows:
            table.add_row(*r)
        Console().print(table)
    except ImportError:
        for r in rows:
            print(" | ".join(r))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
