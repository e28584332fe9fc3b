"""Per-step overhead: a flow of N steps that each set one variable from an expression.

    python -m bench.steps [--steps 1000] [--runs 5] [--durability normal|full] [--db sqlite|memory|postgresql://...]

Prints the median (and every run's) per-step time in microseconds, measured
through the Python API on a fresh SQLite file (or PostgreSQL schema) per run, after
one warm-up run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def flow_text(steps: int, durability: str) -> str:
    lines = [f"name: bench_steps\ncheckpoint: {{durability: {durability}}}\nvars: {{c: 0}}\nsteps:"]
    for i in range(steps):
        lines.append(f"  - id: s{i}\n    vars: {{c: \"{{{{ vars.c + 1 }}}}\"}}")
    return "\n".join(lines) + "\n"


def one_run(steps: int, durability: str, backend: str, folder: Path, k: int) -> tuple[float, int]:
    from tether import Engine
    from tether.flow import load_flow_text
    loaded = load_flow_text(flow_text(steps, durability))
    db = folder / f"b{k}.db"
    if backend.startswith("postgres"):
        url = f"{backend}?schema=bench_{k + 1}_{int(time.time())}"
    else:
        url = f"sqlite:///{db}" if backend == "sqlite" else "memory://"
    engine = Engine(url)
    t = time.perf_counter()
    run = engine.run(loaded)
    elapsed = time.perf_counter() - t
    assert run.status == "completed" and run.vars["c"] == steps, run
    size = 0
    if backend == "sqlite":
        engine.store.checkpoint_wal()  # type: ignore[attr-defined]
        size = db.stat().st_size
    engine.close()
    return elapsed / steps, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--durability", choices=["normal", "full"], default="normal")
    ap.add_argument("--db", default="sqlite", help="sqlite, memory or a postgresql:// URL")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one_run(args.steps, args.durability, args.db, Path(tmp), -1)  # warm-up
        results = [one_run(args.steps, args.durability, args.db, Path(tmp), k) for k in range(args.runs)]
    per_step = [r[0] * 1e6 for r in results]
    doc = {"steps": args.steps, "durability": args.durability, "db": args.db,
           "median_us_per_step": round(statistics.median(per_step), 1),
           "runs_us_per_step": [round(x, 1) for x in per_step],
           "db_bytes_per_step": round(results[-1][1] / args.steps, 1) if results[-1][1] else None}
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"{args.steps} steps, durability={args.durability}, store={args.db}: "
              f"median {doc['median_us_per_step']} µs/step  (runs: {doc['runs_us_per_step']})"
              + (f", {doc['db_bytes_per_step']} bytes/step on disk" if doc["db_bytes_per_step"] else ""))


if __name__ == "__main__":
    main()
