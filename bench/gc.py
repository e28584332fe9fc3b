"""Retention: `tether gc` of many finished runs on SQLite while another process commits.

    python -m bench.gc [--runs 10000] [--steps 20] [--repeat 3] [--db sqlite|postgresql://...] [--json]

Each repetition makes a fresh SQLite file holding ``--runs`` finished runs of ``--steps``
steps (each step one commit: a step record with a ~200-byte result, a variable write),
folds the WAL into the file and measures its size; then starts a committer process that
commits steps of a run of its own as fast as it can, timing each commit, and deletes every
finished run with ``Engine.gc(older_than=0)``. Reported per repetition, and their medians:
gc's wall time, the file size before, after (WAL folded in) and empty (the schema alone),
the share of the runs' bytes given back ``(before - after) / (before - empty)`` (``after``
once the committer's own run is deleted too; ``bytes_after_with_live`` before that), and the
committer's commit latency during gc (max, p99, median) and commit count.

``python -m bench.gc --committer URL STOPFILE`` is the committer (used by the benchmark
and by the tests). With ``--db postgresql://...`` each repetition uses a fresh schema, and
the sizes are what its tables take (``pg_total_relation_size``): PostgreSQL does not give
deleted rows' space back to the file system, autovacuum makes it reusable.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULT = {"rows": [{"id": i, "name": f"item {i}", "score": i * 0.5} for i in range(6)]}  # ~200 bytes


def make_runs(store: Any, n: int, steps: int, *, prefix: str = "old", big: Any = None) -> None:
    """``n`` finished runs of ``steps`` committed steps each, written through the store (no
    flow is executed: the benchmark is about deleting them); with ``big``, each run's first
    step also writes it as the variable ``big``."""
    from tether.store import codec
    from tether.store.base import Commit, EventWrite, RunRecord, RunUpdate, StepWrite, VarWrite
    result = codec.encode(RESULT)
    extra = () if big is None else (VarWrite("big", codec.encode(big)),)
    for i in range(n):
        run_id = f"{prefix}-{i:06d}"
        rec = RunRecord(run_id=run_id, name="bench_gc", status="running", flow_text="name: bench_gc",
                        flow_path=None, inputs={"i": i}, cursor={"next": "s0"})
        run, _ = store.create_run(rec, "bench", 600.0)
        epoch = run.lease_epoch
        store.commit(Commit(run_id, epoch, events=(EventWrite("run.started"),),
                            run=RunUpdate(cursor={"next": "s0"})))
        for s in range(steps):
            t = time.time()
            step = StepWrite(f"s{s}", "completed", 1, None, result, None, {"duration": 0.001}, t, t, None)
            writes = (VarWrite("c", codec.encode(s + 1)), *(extra if s == 0 else ()))
            store.commit(Commit(run_id, epoch, (step,), writes, run=RunUpdate(cursor={"next": f"s{s + 1}"})))
        store.commit(Commit(run_id, epoch, events=(EventWrite("run.completed", None, {}),),
                            run=RunUpdate(cursor=None, status="completed", finished=True,
                                          outputs=codec.encode({"c": steps}))))
        store.release_lease(run_id, epoch)


def committer(url: str, stop_file: str) -> None:
    """Commit steps of one run until ``stop_file`` exists; print the latencies as JSON."""
    from tether.store import codec, open_store
    from tether.store.base import Commit, RunRecord, RunUpdate, StepWrite, VarWrite
    store = open_store(url)
    run_id = f"live-{os.getpid()}"
    rec = RunRecord(run_id=run_id, name="bench_live", status="running", flow_text="name: bench_live",
                    flow_path=None, inputs={})
    run, _ = store.create_run(rec, "live", 600.0)
    result = codec.encode(RESULT)
    latencies: list[float] = []
    Path(stop_file + ".ready").write_text("")
    k = 0
    while not os.path.exists(stop_file):
        k += 1
        t = time.time()
        step = StepWrite(f"s{k}", "completed", 1, None, result, None, None, t, t, None)
        started = time.perf_counter()
        store.commit(Commit(run_id, run.lease_epoch, (step,), (VarWrite("c", codec.encode(k)),),
                            run=RunUpdate(cursor={"next": f"s{k + 1}"})))
        latencies.append(time.perf_counter() - started)
        time.sleep(0.001)
    assert store.load_run(run_id).seq == k and store.read_var(run_id, "c").value == k
    store.close()
    latencies.sort()
    print(json.dumps({"commits": len(latencies), "max_ms": latencies[-1] * 1e3,
                      "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
                      "median_ms": statistics.median(latencies) * 1e3}))


def start_committer(url: str, stop_file: Path) -> subprocess.Popen[str]:
    """A committer process, once it is committing."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "bench.gc", "--committer", url, str(stop_file)], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while not Path(str(stop_file) + ".ready").exists():
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.01)
    return proc


def _size(store: Any, path: Path | None) -> int:
    """The SQLite file's size with its WAL folded in, or what PostgreSQL's tables take."""
    if path is None:
        return int(store.storage()["database_bytes"])
    store.checkpoint_wal()
    return path.stat().st_size


def one(folder: Path, k: int, runs: int, steps: int, db: str = "sqlite") -> dict[str, Any]:
    from tether import Engine
    from tether.store import open_store
    if db == "sqlite":
        path: Path | None = folder / f"gc{k}.db"
        url, empty_url = f"sqlite:///{path}", f"sqlite:///{folder / f'empty{k}.db'}"
    else:  # a schema of its own per repetition, dropped afterwards
        path, url = None, f"{db}?schema=bench_gc_{k}_{int(time.time())}"
        empty_url = url
    store: Any = open_store(empty_url)
    empty_size = _size(store, None if path is None else folder / f"empty{k}.db")
    store.close()
    store = open_store(url)
    t = time.perf_counter()
    make_runs(store, runs, steps)
    made = time.perf_counter() - t
    before = _size(store, path)
    store.close()
    stop = folder / f"stop{k}"
    proc = start_committer(url, stop)
    time.sleep(0.5)  # the committer's steady state first
    engine = Engine(url)
    t = time.perf_counter()
    report = engine.gc(older_than=0)
    elapsed = time.perf_counter() - t
    time.sleep(0.2)
    stop.write_text("")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    live = json.loads(out.strip().splitlines()[-1])
    after_live = _size(engine.store, path)  # with what the committer wrote meanwhile
    live_runs = [b for b in engine.store.run_briefs() if b.name == "bench_live"]
    engine.store.delete_runs(live_runs)  # the committer's run too: what is left is the schema
    after = _size(engine.store, path)
    engine.close()
    if path is None:
        _drop_schema(url)
    assert report["runs"] == runs, report
    return {"make_s": round(made, 1), "gc_s": round(elapsed, 2), "rows": report["rows"],
            "bytes_before": before, "bytes_after": after, "bytes_after_with_live": after_live,
            "bytes_empty": empty_size,
            "given_back": round((before - after) / (before - empty_size), 4),
            "commit_max_ms": round(live["max_ms"], 1), "commit_p99_ms": round(live["p99_ms"], 2),
            "commit_median_ms": round(live["median_ms"], 3), "commits_during": live["commits"]}


def _drop_schema(url: str) -> None:
    import psycopg
    base, schema = url.split("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--committer":
        committer(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", default="sqlite", help="sqlite or a postgresql:// URL")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [one(Path(tmp), k, args.runs, args.steps, args.db) for k in range(args.repeat)]
    keys = ("gc_s", "bytes_before", "bytes_after", "given_back", "commit_max_ms", "commit_p99_ms",
            "commit_median_ms", "commits_during")
    doc = {"runs": args.runs, "steps": args.steps, "each": results,
           "median": {k: statistics.median(r[k] for r in results) for k in keys}}
    if args.json:
        print(json.dumps(doc))
        return
    m = doc["median"]
    for r in results:
        print(json.dumps(r))
    print(f"gc of {args.runs:,} runs x {args.steps} steps: {m['gc_s']:.2f} s (median of {args.repeat}); "
          f"file {m['bytes_before'] / 1e6:.1f} MB -> {m['bytes_after'] / 1e6:.1f} MB "
          f"({m['given_back']:.1%} of the runs' bytes back); "
          f"concurrent commits: max {m['commit_max_ms']:.1f} ms, p99 {m['commit_p99_ms']:.2f} ms, "
          f"median {m['commit_median_ms']:.3f} ms")


if __name__ == "__main__":
    main()
