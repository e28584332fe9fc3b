"""What a step (or a no-op loop iteration) costs on PostgreSQL: wall time, the client's CPU
and the server backends' CPU, per step.

    python -m bench.pg_cost --db "$TETHER_TEST_PG" [--steps 2000] [--loop] [--runs 3]

B1's flow (each step sets one variable from an expression) or B3's no-op loop at
`parallel: 1`, in a fresh schema, after a warm-up run. Client CPU is this process's
(`time.process_time()`, threads included); server CPU is the sum of `utime + stime` in
`/proc/<pid>/stat` of the run's backends (found by their `application_name`), so the
server must run on this machine. One line per run.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.loops import FLOW
from bench.steps import flow_text

TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(monitor: object, app: str) -> float:
    """Seconds of CPU the backends named ``app`` used so far."""
    total = 0
    for (pid,) in monitor.execute(  # type: ignore[attr-defined]
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchall():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def one(db: str, n: int, loop: bool, k: int) -> str:
    import psycopg

    from tether import Engine
    from tether.flow import load_flow_text
    app = f"tether-bench-{os.getpid()}-{k}"
    os.environ["PGAPPNAME"] = app  # libpq: every connection of the store carries it
    schema = f"bench_cost_{os.getpid()}_{k}"
    root = str(Path(__file__).resolve().parent.parent)
    if loop:
        loaded, inputs = load_flow_text(FLOW.format(parallel=1, vars=""), "bench.yaml", root), {"n": n}
        warm = {"n": 50}
    else:
        loaded, inputs = load_flow_text(flow_text(n, "normal")), {}
        warm = None
    with psycopg.connect(db, autocommit=True, application_name="tether-bench-monitor") as monitor:
        engine = Engine(f"{db}?schema={schema}")
        try:
            engine.run(load_flow_text(flow_text(50, "normal")) if warm is None else loaded, warm or {})
            s0, c0, t0 = backend_cpu(monitor, app), time.process_time(), time.perf_counter()
            run = engine.run(loaded, inputs)
            t1, c1, s1 = time.perf_counter(), time.process_time(), backend_cpu(monitor, app)
            assert run.status == "completed", run.error
        finally:
            engine.close()
            monitor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    per = 1e6 / n
    return (f"{'iteration' if loop else 'step'}: wall {(t1 - t0) * per:,.0f} µs, client CPU "
            f"{(c1 - c0) * per:,.0f} µs, server CPU {(s1 - s0) * per:,.0f} µs ({n / (t1 - t0):,.0f}/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=os.environ.get("TETHER_TEST_PG"), help="a postgresql:// URL")
    ap.add_argument("--steps", type=int, default=2000, help="steps (or iterations with --loop)")
    ap.add_argument("--loop", action="store_true", help="B3's no-op loop at parallel: 1 instead of B1")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not args.db:
        raise SystemExit("give --db postgresql://… (or set TETHER_TEST_PG)")
    for k in range(args.runs):
        print(one(args.db, args.steps, args.loop, k), flush=True)


if __name__ == "__main__":
    main()
