"""Loop throughput with 1, 2 and 4 `tether worker` processes sharing one parallel loop
(PostgreSQL): iterations/s from the run's claim to its completion.

    python -m bench.loop_workers --db postgresql://... [--items 600] [--work-ms 50] \
        [--concurrency 4] [--runs 3]

Each worker is a real process (`tether worker --concurrency C`); the run is queued
with `--detach`; its loop has `parallel: 4`, and its body is a python function that
sleeps ``work-ms`` (a stand-in for I/O or a remote call) and returns. Prints the median of
``runs`` measurements per count.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

LIB = "import time\n\ndef work(n, ms):\n    time.sleep(ms / 1000)\n    return n\n"
FLOW = """
name: bench_loop_workers
inputs: {n: 2000, ms: 5}
steps:
  - id: each
    foreach: "{{ range(inputs.n) | list }}"
    parallel: 4
    do:
      id: work
      tool: python
      with: {function: "benchlib:work", args: {n: "{{ item }}", ms: "{{ inputs.ms }}"}}
"""


def cpu_seconds(pid: int) -> float:
    """The process's CPU seconds so far (user + system), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(procs: list[subprocess.Popen], most: float = 60.0) -> None:
    """Wait until every worker has started (its imports and set-up done: its CPU time stops
    growing), at least 1.5 s; on a loaded machine starting takes seconds, and workers still
    importing would compete with the measured run for the cores."""
    time.sleep(1.5)
    if not Path("/proc/self/stat").exists():
        return
    until = time.monotonic() + most
    last = [cpu_seconds(p.pid) for p in procs]
    while time.monotonic() < until:
        time.sleep(0.5)
        now = [cpu_seconds(p.pid) for p in procs]
        if all(b - a < 0.05 for a, b in zip(last, now, strict=True)):
            return
        last = now


def stop_workers(procs: list[subprocess.Popen]) -> None:
    """Stop the workers as a person would (SIGTERM: they hand back what they hold) and wait
    for each to exit."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)


def one(db: str, workers: int, items: int, ms: int, folder: Path, concurrency: int) -> float:
    import psycopg

    from tether import Engine
    schema = f"bench_lw_{uuid.uuid4().hex[:10]}"
    url = f"{db}?schema={schema}"
    engine = Engine(url)
    procs = [subprocess.Popen([sys.executable, "-m", "tether", "--db", url, "worker", "--concurrency",
                               str(concurrency)], cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    settle(procs)  # the workers are up and idle
    run_id = engine.run(folder / "flow.yaml", {"n": items, "ms": ms}, detach=True).id
    while engine.get_run(run_id).status != "completed":
        time.sleep(0.02)
    rec = engine.record(run_id)
    stop_workers(procs)
    engine.close()
    with psycopg.connect(db, autocommit=True) as conn:  # the schema of this measurement only
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    assert rec.finished_at is not None and rec.started_at is not None
    return items / (rec.finished_at - rec.started_at)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=os.environ.get("TETHER_TEST_PG"), help="a postgresql:// URL")
    ap.add_argument("--items", type=int, default=600)
    ap.add_argument("--work-ms", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    if not args.db:
        ap.error("--db postgresql://... is required")
    doc = {"items": args.items, "work_ms": args.work_ms, "parallel": 4, "concurrency": args.concurrency,
           "iterations_per_s": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "benchlib.py").write_text(LIB)
        (folder / "flow.yaml").write_text(FLOW)
        for n in (int(x) for x in args.workers.split(",")):
            rates = [one(args.db, n, args.items, args.work_ms, folder, args.concurrency)
                     for _ in range(args.runs)]
            doc["iterations_per_s"][n] = {"median": round(statistics.median(rates), 1),
                                          "runs": [round(r, 1) for r in rates]}
            print(f"{n} worker(s): {statistics.median(rates):,.1f} iterations/s "
                  f"(runs: {', '.join(f'{r:,.1f}' for r in rates)})", flush=True)
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
