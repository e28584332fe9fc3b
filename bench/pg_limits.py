"""The physical limits of PostgreSQL on this machine, for docs/performance.md:

    python -m bench.pg_limits [--db postgresql://...] [--n 2000] [--runs 5]

Medians of ``runs`` means over ``n`` operations each, on one psycopg connection over
loopback: a bare ``SELECT 1`` round trip, and a bare one-row INSERT committed with
``synchronous_commit = on`` (a commit round trip with its WAL flush); plus a bare
``python -c pass``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=os.environ.get("TETHER_TEST_PG"))
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    import psycopg
    out: dict[str, list[float]] = {"select_1_us": [], "commit_us": [], "python_pass_ms": []}
    with psycopg.connect(args.db, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = on")
        table = f"tether_limits_{os.getpid()}"  # a logged table: its commits flush the WAL
        conn.execute(f"CREATE TABLE {table} (a int)")
        for _ in range(args.runs + 1):
            t = time.perf_counter()
            for _ in range(args.n):
                conn.execute("SELECT 1").fetchone()
            out["select_1_us"].append((time.perf_counter() - t) / args.n * 1e6)
            t = time.perf_counter()
            for i in range(args.n):
                conn.execute(f"INSERT INTO {table} VALUES (%s)", (i,))
            out["commit_us"].append((time.perf_counter() - t) / args.n * 1e6)
        conn.execute(f"DROP TABLE {table}")
    for _ in range(args.runs + 1):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        out["python_pass_ms"].append((time.perf_counter() - t) * 1000)
    doc = {k: round(statistics.median(v[1:]), 1) for k, v in out.items()}
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
