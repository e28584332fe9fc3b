"""One measurement of one system, in its own process: ``python -m bench.worker SCENARIO SYSTEM``.

Prints one JSON document: ``{"values": [...], "unit": ..., "extra": {...}}`` with one
value per counted run (after one warm-up run).
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STEPS = 1000


def _wal_size(path: Path) -> int:
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path.stat().st_size


# ------------------------------------------------------------------ B1 / B2: steps
def tether_steps(durability: str, steps: int = STEPS,
                 pg: bool = False) -> Callable[[Path], tuple[float, int]]:
    """Tether's B1 flow on a fresh SQLite file, or (``pg``) a fresh schema of the bench's
    PostgreSQL server (``TETHER_BENCH_PG``)."""
    from bench.steps import flow_text
    from tether import Engine
    from tether.flow import load_flow_text
    loaded = load_flow_text(flow_text(steps, durability))

    def once(folder: Path) -> tuple[float, int]:
        db = folder / "tether.db"
        if pg:
            from bench.peers import pg_url
            engine = Engine(f"{pg_url()}?schema=bench_{os.getpid()}_{time.time_ns()}")
        else:
            engine = Engine(f"sqlite:///{db}")
        t = time.perf_counter()
        run = engine.run(loaded)
        elapsed = time.perf_counter() - t
        assert run.status == "completed" and run.vars["c"] == steps
        if pg:  # the schema stays: the bench's database is dropped at the end
            size = engine.store.stats()["bytes"]
            engine.close()
            return elapsed / steps * 1e6, size
        engine.close()
        return elapsed / steps * 1e6, _wal_size(db)
    return once


def dbos_steps() -> Callable[[Path], tuple[float, int]]:
    """One workflow of 1,000 ``@DBOS.step`` calls on DBOS's SQLite default."""
    from bench.peers import dbos_workflow_us

    def once(folder: Path) -> tuple[float, int]:
        db = folder / "dbos.sqlite"
        return dbos_workflow_us(f"sqlite:///{db}"), _wal_size(db)
    return once


def langgraph_steps(nosync: bool = False) -> Callable[[Path], tuple[float, int]]:
    from typing import TypedDict

    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, StateGraph

    class State(TypedDict):
        c: int

    def inc(s: State) -> dict[str, int]:
        return {"c": s["c"] + 1}
    graph = StateGraph(State)
    graph.add_node("inc", inc)
    graph.set_entry_point("inc")
    graph.add_conditional_edges("inc", lambda s: END if s["c"] >= STEPS else "inc")

    def once(folder: Path) -> tuple[float, int]:
        db = folder / "langgraph.sqlite"
        conn = sqlite3.connect(db, check_same_thread=False)
        if nosync:  # WAL, no sync per commit (Tether's `normal`)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        app = graph.compile(checkpointer=SqliteSaver(conn))
        t = time.perf_counter()
        out = app.invoke({"c": 0}, {"configurable": {"thread_id": "bench"}, "recursion_limit": STEPS + 10})
        elapsed = time.perf_counter() - t
        assert out["c"] == STEPS
        conn.close()
        return elapsed / STEPS * 1e6, _wal_size(db)
    return once


STEP_SYSTEMS: dict[str, Callable[[], Callable[[Path], tuple[float, int]]]] = {
    "tether-normal": lambda: tether_steps("normal"), "tether-full": lambda: tether_steps("full"),
    "dbos": dbos_steps, "langgraph": langgraph_steps,
    "tether-pg-normal": lambda: tether_steps("normal", pg=True),
    "tether-pg-full": lambda: tether_steps("full", pg=True),
}


def step_system(name: str) -> Callable[[Path], tuple[float, int]]:
    if name in STEP_SYSTEMS:
        return STEP_SYSTEMS[name]()
    from bench.peers import PEER_SYSTEMS
    return PEER_SYSTEMS[name]()


def measure(fn: Callable[[Path], Any], runs: int) -> list[Any]:
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warmup"
        warm.mkdir()
        fn(warm)
        out = []
        for k in range(runs):
            folder = Path(tmp) / f"run{k}"
            folder.mkdir()
            out.append(fn(folder))
        return out


# ------------------------------------------------------------------ B2: growth
def growth(runs: int) -> dict[str, Any]:
    out = {}
    for steps in (1000, 10000):
        fn = tether_steps("normal", steps)
        sizes = [size for _, size in measure(fn, min(runs, 2))]
        out[f"bytes_per_step_{steps}"] = round(statistics.median(sizes) / steps, 1)
    return out


# ------------------------------------------------------------------ B4: resume
def resume_latency(runs: int) -> dict[str, Any]:
    from bench.resume import prepare, sizes, time_resume
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepare(folder)
        found: dict[str, list[float]] = {}
        for k in range(runs + 1):
            for key, value in time_resume(folder).items():
                if k:  # the first is a warm-up
                    found.setdefault(key, []).append(value)
        steps, items = sizes()
        return {**found, "steps": steps, "items": items}


# ------------------------------------------------------------------ B5: templates
def templates(runs: int) -> dict[str, Any]:
    import timeit

    from tether.templates import CACHE, AttrView, render
    scope = {"vars": AttrView.of({"c": 1, "name": "x"}, "vars"),
             "steps": AttrView.of({"fetch": {"result": {"url": "http://x"}}}, "steps")}
    cases = {"bare_path_us": "{{ steps.fetch.result.url }}", "expression_us": "{{ vars.c + 1 }}",
             "string_template_us": "n={{ vars.c }} for {{ vars.name }}"}
    out: dict[str, Any] = {}
    for name, src in cases.items():
        render(src, scope)
        # timed here, in this iteration
        out[name] = [timeit.timeit(lambda: render(src, scope), number=20000) / 20000 * 1e6  # noqa: B023
                     for _ in range(runs)]
    from tether import Engine
    from tether.flow import load_flow_text
    flow = load_flow_text("""
name: cache
vars: {n: 0}
steps:
  - id: each
    foreach: "{{ range(10000) | list }}"
    do:
      id: body
      vars: {n: "{{ vars.n + item }}", label: "item {{ item }} of {{ loop.length }}"}
""")
    hits, misses = CACHE.hits, CACHE.misses
    with tempfile.TemporaryDirectory() as tmp:
        Engine(f"sqlite:///{tmp}/c.db").run(flow)
    h, m = CACHE.hits - hits, CACHE.misses - misses
    out["cache_hit_rate_10k_loop"] = h / (h + m)
    return out


# ------------------------------------------------------------------ B6: CLI start-up, B7: history
def cli_startup(runs: int) -> dict[str, Any]:
    from bench.startup import measure as startup
    return startup(runs)


def history(runs: int) -> dict[str, Any]:
    from bench.history import measure as by_history
    return by_history(1000, 100_000, runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("system", nargs="?")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.scenario == "steps":
        results = measure(step_system(args.system), args.runs)
        doc: dict[str, Any] = {"us_per_step": [r[0] for r in results],
                               "bytes_per_step": [r[1] / STEPS for r in results]}
    elif args.scenario == "pg-loops":  # 10,000 no-op iterations in one process, parallel 1 and 8
        from bench.loops import one
        from bench.peers import pg_url
        items = int(os.environ.get("TETHER_BENCH_LOOP_ITEMS", "10000"))
        with tempfile.TemporaryDirectory() as tmp:
            one(500, int(args.system), pg_url(), Path(tmp), -1, False)
            doc = {"iterations_per_s": [one(items, int(args.system), pg_url(), Path(tmp), k, False)
                                        for k in range(args.runs)], "items": items}
    elif args.scenario == "dbos-queue":  # the same 5 ms items through a DBOS queue of 16
        from bench.peers import dbos_queue
        items = int(os.environ.get("TETHER_BENCH_QUEUE_ITEMS", "10000"))
        doc = {"iterations_per_s": measure(dbos_queue(items, 5.0), args.runs), "items": items}
    elif args.scenario == "growth":
        doc = growth(args.runs)
    elif args.scenario == "loops":
        from bench.loops import one
        with tempfile.TemporaryDirectory() as tmp:
            one(2000, int(args.system), "sqlite", Path(tmp), -1, False)
            rates = [one(100_000, int(args.system), "sqlite", Path(tmp), k, False) for k in range(args.runs)]
        from bench.loop_memory import peak_rss_mib
        doc = {"iterations_per_s": rates, "peak_rss_mib": peak_rss_mib()}
    elif args.scenario == "resume":
        doc = resume_latency(args.runs)
    elif args.scenario == "templates":
        doc = templates(args.runs)
    elif args.scenario == "cli":
        doc = cli_startup(args.runs)
    elif args.scenario == "history":
        doc = history(args.runs)
    else:
        raise SystemExit(f"unknown scenario {args.scenario}")
    print(json.dumps(doc))


if __name__ == "__main__":
    os.environ.setdefault("DBOS__LOGLEVEL", "WARNING")
    main()
