"""Loop throughput: N no-op python iterations at a given parallelism.

    python -m bench.loops [--items 100000] [--parallel 1] [--runs 3] [--db sqlite|memory|postgresql://...]

Prints committed iterations per second (median of the runs) and the process's
peak RSS. Each run uses a fresh SQLite file (or PostgreSQL schema).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

FLOW = """
name: bench_loop
inputs: {{n: 1000}}
vars: {{done: 0}}
steps:
  - id: each
    foreach: "{{{{ range(inputs.n) | list }}}}"
    parallel: {parallel}
    do:
      id: noop
      tool: python
      with: {{function: "bench.noop:noop", args: {{x: "{{{{ item }}}}"}}}}
{vars}
"""


def one(items: int, parallel: int, backend: str, folder: Path, k: int, count: bool) -> float:
    from tether import Engine
    from tether.flow import load_flow_text
    text = FLOW.format(parallel=parallel, vars='      vars: {done: "{{ vars.done + 1 }}"}' if count else "")
    if items > 100_000:
        text = text.replace('"{{ range(inputs.n) | list }}"', '"{{ vars.big }}"')
    loaded = load_flow_text(text, "bench.yaml", str(Path(__file__).resolve().parent.parent))
    if backend.startswith("postgres"):  # a fresh schema per run
        engine = Engine(f"{backend}?schema=bench_loops_{k + 1}_{time.time_ns()}")
    else:
        engine = Engine(f"sqlite:///{folder / f'l{k}.db'}" if backend == "sqlite" else "memory://")
    t = time.perf_counter()
    if items > 100_000:
        raise SystemExit("use --items <= 100000 (range limit); bench.memory covers 1,000,000")
    run = engine.run(loaded, {"n": items})
    elapsed = time.perf_counter() - t
    assert run.status == "completed", run.error
    if count:
        assert run.vars["done"] == items
    engine.close()
    return items / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db", default="sqlite", help="sqlite, memory or a postgresql:// URL")
    ap.add_argument("--count", action="store_true",
                    help="also increment a counter variable in every iteration")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one(min(args.items, 2000), args.parallel, args.db, Path(tmp), -1, args.count)
        rates = [one(args.items, args.parallel, args.db, Path(tmp), k, args.count) for k in range(args.runs)]
    from bench.loop_memory import peak_rss_mib
    rss_mib = peak_rss_mib()
    doc = {"items": args.items, "parallel": args.parallel, "db": args.db, "count_var": args.count,
           "median_iterations_per_s": round(statistics.median(rates)), "runs": [round(r) for r in rates],
           "peak_rss_mib": round(rss_mib, 1)}
    print(json.dumps(doc) if args.json else
          f"{args.items} iterations, parallel {args.parallel}, {args.db}: "
          f"median {doc['median_iterations_per_s']} "
          f"it/s (runs {doc['runs']}), peak RSS {doc['peak_rss_mib']} MiB")


if __name__ == "__main__":
    main()
