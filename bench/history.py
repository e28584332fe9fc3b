"""Reads and resume cost O(state), not O(history): two runs with the same state (one
counter) but 1,000 and 100,000 history rows (a ``repeat`` that increments it), paused
after the loop. Measured: resuming each in process (to its end: the pause step, one
step after it) and ``tether vars RUN`` on each.

    python -m bench.history [--small 1000] [--large 100000] [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.startup import tether_command


def flow_text(n: int) -> str:
    return f"""name: history
vars: {{c: 0}}
steps:
  - id: count
    repeat: {{until: "{{{{ vars.c >= {n} }}}}", max: {n}}}
    do:
      id: inc
      vars: {{c: "{{{{ vars.c + 1 }}}}"}}
  - id: wait
    tool: pause
  - id: after
    vars: {{done: true}}
"""


def prepare(folder: Path, n: int) -> Path:
    """A database holding one run, ``h``, paused after ``n`` history rows of its counter."""
    from tether import Engine
    db = folder / f"h{n}.db"
    with Engine(f"sqlite:///{db}") as engine:
        run = engine.run_text(flow_text(n), run_id="h")
        assert run.status == "paused" and run.vars["c"] == n, run
    return db


def resume_ms(db: Path) -> float:
    """ms of ``Engine.resume`` of a fresh copy of ``db``, in a process whose modules are loaded."""
    copy = db.with_name(f"{db.stem}-{uuid.uuid4().hex}.db")
    shutil.copy(db, copy)
    code = ("import sys, time, tether; from tether.engine.engine import preload; preload(); "
            "e = tether.Engine(sys.argv[1]); t = time.perf_counter(); r = e.resume('h'); "
            "print((time.perf_counter() - t) * 1000, r.status)")
    out = subprocess.run([sys.executable, "-c", code, f"sqlite:///{copy}"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[1] == "completed", out
    copy.unlink()
    return float(out[0])


def vars_ms(db: Path) -> float:
    t = time.perf_counter()
    subprocess.run([*tether_command(), "--db", f"sqlite:///{db}", "vars", "h"], capture_output=True,
                   check=True)
    return (time.perf_counter() - t) * 1000


def measure(small: int, large: int, runs: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        dbs = {n: prepare(Path(tmp), n) for n in (small, large)}
        out: dict[str, list[float]] = {}
        for db in dbs.values():
            resume_ms(db)
            vars_ms(db)  # warm-up
        for _ in range(runs):  # interleaved, so that a noisy moment hits both
            for n, db in dbs.items():
                out.setdefault(f"resume_ms_{n}", []).append(resume_ms(db))
                out.setdefault(f"vars_ms_{n}", []).append(vars_ms(db))
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    found = measure(args.small, args.large, args.runs)
    print(json.dumps({k: round(statistics.median(v), 1) for k, v in found.items()}))


if __name__ == "__main__":
    main()
