"""What the PostgreSQL commit statement costs the server, part by part: the statement of a
B1 step (one variable, one step record, the run's cursor) and the same without some of its
parts, each executed N times on one connection with ``synchronous_commit = off`` (so the
WAL flush, which every variant pays alike, is left out), alternated over several rounds.

    python -m bench.pg_parts --db "$TETHER_TEST_PG" [--n 2000] [--rounds 8]

Prints, per variant, the medians over the rounds of wall time, client CPU and the
backend's CPU (``/proc/<pid>/stat``: the server must run on this machine) per execution.
A fresh schema, dropped after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.steps import flow_text

TICK = os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=os.environ.get("TETHER_TEST_PG"), help="a postgresql:// URL")
    ap.add_argument("--n", type=int, default=2000, help="executions per variant and round")
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    if not args.db:
        raise SystemExit("give --db postgresql://… (or set TETHER_TEST_PG)")
    import psycopg

    import tether.store.pg_commit as pc
    from tether import Engine
    from tether.flow import load_flow_text
    from tether.store.pg_prepared import execute
    schema = f"bench_parts_{os.getpid()}"
    engine = Engine(f"{args.db}?schema={schema}")
    seen: list[Any] = []
    params = pc._params

    def spy(c: Any, blobs: Any, shared: Any) -> Any:
        seen.append(c)
        return params(c, blobs, shared)
    pc._params = spy
    try:
        engine.run(load_flow_text(flow_text(20, "normal")))
        p, parts, single = params(seen[10], [], set())  # a B1 step's commit
        store: Any = engine.store
        conn = store._connection()
        conn.execute("SET synchronous_commit = off")
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]

        def backend() -> float:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / TICK
        one = frozenset
        variants = {"the step's commit": (parts, single), "its variable only": (one({"vars"}), one({"vars"})),
                    "its step record only": (one({"steps"}), one({"steps"})),
                    "the runs UPDATE only": (one(), one())}
        res: dict[str, list[tuple[float, float, float]]] = {k: [] for k in [*variants, "SELECT 1"]}
        for _ in range(args.rounds):
            for name, (pts, sg) in variants.items():
                prep = pc._statement(True, False, pts, sg)[1]
                execute(conn, prep, p)
                w, c, s = time.perf_counter(), time.thread_time(), backend()
                for _ in range(args.n):
                    p["t"] = time.time()
                    execute(conn, prep, p)
                res[name].append((time.perf_counter() - w, time.thread_time() - c, backend() - s))
            w, c, s = time.perf_counter(), time.thread_time(), backend()
            for _ in range(args.n):
                conn.execute("SELECT 1")
            res["SELECT 1"].append((time.perf_counter() - w, time.thread_time() - c, backend() - s))
        store._pool.putconn(conn)
        per = 1e6 / args.n
        for name, rows in res.items():
            wall, cpu, srv = (statistics.median(r[k] for r in rows) * per for k in range(3))
            print(f"{name:22s} wall {wall:5.0f} µs, client CPU {cpu:4.0f} µs, server CPU {srv:4.0f} µs")
    finally:
        pc._params = params
        engine.close()
        with psycopg.connect(args.db, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
