"""B8 with its CPU: one run of ``bench.loop_workers`` (5 ms items, ``parallel: 4``, N
``tether worker --concurrency 4`` processes) with the CPU each worker process and each of
their PostgreSQL backends spent during it, per iteration (from ``/proc``; the backends
are found by the workers' client ports in ``pg_stat_activity``, so the server must be on
this machine). CPU per iteration is what bounds B8 on two shared cores, and unlike the
rate it barely moves with the other processes' load.

    python -m bench.pg_workers_cpu --db postgresql://... [--workers 4] [--items 10000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from .loop_workers import FLOW, LIB, cpu_seconds, settle, stop_workers


def _ports(pids: list[int]) -> set[int]:
    """The local TCP ports of these processes' sockets."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    link = os.readlink(fd)
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            pass
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[9] in inodes:
                ports.add(int(parts[1].split(":")[1], 16))
    return ports


def one(db: str, workers: int, items: int) -> dict:
    import psycopg

    from tether import Engine
    folder = Path(tempfile.mkdtemp())
    (folder / "benchlib.py").write_text(LIB)
    (folder / "flow.yaml").write_text(FLOW)
    schema = f"bench_lw_{uuid.uuid4().hex[:10]}"
    url = f"{db}?schema={schema}"
    engine = Engine(url)
    procs = [subprocess.Popen([sys.executable, "-m", "tether", "--db", url, "worker", "--concurrency", "4"],
                              cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    settle(procs)
    conn = psycopg.connect(db, autocommit=True)
    backends: dict[int, float] = {}

    def look() -> None:  # the workers' backends (a pool may open more during the run)
        ports = _ports([p.pid for p in procs])
        for pid, port in conn.execute("SELECT pid, client_port FROM pg_stat_activity "
                                      "WHERE client_port IS NOT NULL").fetchall():
            if port in ports and pid not in backends:
                # one opened during the run counts all of its CPU
                backends[pid] = cpu_seconds(pid) if not started else 0.0
    started = False
    look()
    started = True
    client0 = [cpu_seconds(p.pid) for p in procs]
    load = os.getloadavg()[0]
    run_id = engine.run(folder / "flow.yaml", {"n": items, "ms": 5}, detach=True).id
    polls = 0
    while engine.get_run(run_id).status != "completed":
        time.sleep(0.05)
        polls += 1
        if polls % 20 == 0:
            look()
    look()
    client = [cpu_seconds(p.pid) - c for p, c in zip(procs, client0, strict=True)]
    server = sum(cpu_seconds(pid) - c for pid, c in backends.items())
    rec = engine.record(run_id)
    stop_workers(procs)
    engine.close()
    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()
    assert rec.finished_at is not None and rec.started_at is not None
    span = rec.finished_at - rec.started_at
    return {"workers": workers, "items": items, "it_per_s": round(items / span, 1),
            "client_cpu_s": [round(c, 2) for c in client],
            "client_us_per_it": round(sum(client) / items * 1e6),
            "backend_us_per_it": round(server / items * 1e6), "backends": len(backends),
            "load_average": round(load, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=os.environ.get("TETHER_TEST_PG"), help="a postgresql:// URL")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    if not args.db:
        ap.error("--db postgresql://... is required")
    for _ in range(args.runs):
        print(json.dumps(one(args.db, args.workers, args.items)), flush=True)


if __name__ == "__main__":
    main()
