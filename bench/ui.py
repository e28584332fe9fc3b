"""Server time of the web UI's two heaviest pages (issue 16; goal <= 150 ms each, run page
<= 200 KB before compression):

    python -m bench.ui [--runs 10000] [--steps 1000] [--items 100000] [--repeat 7] [--db PATH]

Builds a SQLite store with ``--runs`` runs (one real run of a small flow, the rest created
through the store) and one real run of ``--steps`` steps plus a ``--items``-item loop of
which every 1,000th item fails; then times ``GET /ui/`` and ``GET /ui/runs/{big}`` in
process (the app's full stack, no network) and prints medians of ``--repeat`` requests
after one warm-up, with each page's size. A ``--db`` that exists is reused.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

SMALL = "name: bench_small\nsteps:\n  - id: only\n    vars: {done: true}\n"


def big_flow(steps: int, items: int) -> str:
    lines = ["name: bench_big", "vars: {n: 0, failed_at: 1000}", "steps:"]
    for i in range(steps):
        lines += [f"  - id: s{i:04d}", '    vars: {n: "{{ vars.n + 1 }}"}']
    lines += ["  - id: each", f'    foreach: "{{{{ range({items}) | list }}}}"', "    parallel: 8",
              f"    max_failures: {items}", "    do:", "      id: body",
              '      vars: {last: "{{ 1 // (item % vars.failed_at) }}"}']
    return "\n".join(lines) + "\n"


def build(db: str, runs: int, steps: int, items: int) -> str:
    """The big run's id, after filling the store."""
    from tether import Engine
    from tether.flow import load_flow_text
    from tether.store.records import RunRecord
    engine = Engine(db)
    small = engine.run(load_flow_text(SMALL))
    t = time.perf_counter()
    big = engine.run(load_flow_text(big_flow(steps, items)))
    print(f"big run {big.id}: {big.status} in {time.perf_counter() - t:.1f} s")
    base = time.time() - runs
    for i in range(runs - 2):
        engine.store.create_run(RunRecord(
            run_id=f"bench-{i:06d}", name="bench_small", status="completed", flow_text=SMALL,
            flow_path=None, inputs={}, created_at=base + i, started_at=base + i, finished_at=base + i + 0.01,
            seq=2, cursor={"next": None}), None, 0.0)
    engine.close()
    assert small.status == "completed"
    return big.id


def timed(client: object, path: str, repeat: int) -> dict[str, float]:
    get = client.get  # type: ignore[attr-defined]
    first = get(path)
    assert first.status_code == 200, (path, first.status_code, first.text[:500])
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = get(path)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1),
            "max_ms": round(max(times), 1), "bytes": len(first.content)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=1_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--db", help="a SQLite file to build (or reuse)")
    args = ap.parse_args()
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp(prefix="tether-bench-ui-")) / "ui.db"
    db = f"sqlite:///{path}"
    if path.exists():
        from tether import Engine
        engine = Engine(db)
        big_id = next(r.run_id for r in engine.runs(None, 100_000) if r.name == "bench_big")
        engine.close()
    else:
        big_id = build(db, args.runs, args.steps, args.items)
    from fastapi.testclient import TestClient

    from tether.server.app import create_app
    app = create_app(db, executor=0)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        out = {"runs_page": timed(client, "/ui/", args.repeat),
               "runs_page_flow_filter": timed(client, "/ui/?flow=bench_big", args.repeat),
               "run_page": timed(client, f"/ui/runs/{big_id}", args.repeat),
               "run_page_at_checkpoint": timed(client, f"/ui/runs/{big_id}?at={args.steps // 2}",
                                               args.repeat),
               "variable_page": timed(client, f"/ui/runs/{big_id}/vars/n", args.repeat),
               "loop_step_page": timed(client, f"/ui/runs/{big_id}/steps/each", args.repeat)}
    print(json.dumps({"db": str(path), "runs": args.runs, "steps": args.steps, "items": args.items,
                      "repeat": args.repeat, **out}, indent=2))


if __name__ == "__main__":
    main()
