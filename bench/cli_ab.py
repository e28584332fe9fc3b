"""Interleaved before/after timing of CLI commands: two source trees, run by run.

    python -m bench.cli_ab --before /tmp/before/src --after src --runs 11 [NAME ...]

NAME is among python, help, runs, show, vars, vars_get, run (default all): the commands
of ``bench/startup.py`` on a store of 1,000 runs made once (in a temporary folder), each
launched through the ``tether`` console script beside this interpreter with ``PYTHONPATH``
set to the tree, before and after alternating run by run after one warm-up. Prints the
median wall and CPU (user + system) ms of each, and the load average."""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.startup import ROOT, store_with_runs

NAMES = ("python", "help", "runs", "show", "vars", "vars_get", "run")


def command(name: str, db: str, quick_db: str) -> list[str]:
    exe = [str(Path(sys.executable).parent / "tether")]
    return {"python": [sys.executable, "-c", "pass"], "help": [*exe, "--help"],
            "runs": [*exe, "--db", db, "runs"], "show": [*exe, "--db", db, "show", "run0500"],
            "vars": [*exe, "--db", db, "vars", "run0500"],
            "vars_get": [*exe, "--db", db, "vars", "get", "run0500", "c"],
            "run": [*exe, "--db", quick_db, "run", str(ROOT / "examples" / "quickstart.yaml")]}[name]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the src folder of the tree before")
    ap.add_argument("--after", required=True, help="the src folder of the tree after")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("names", nargs="*", default=list(NAMES))
    args = ap.parse_args()
    trees = {"before": str(Path(args.before).resolve()), "after": str(Path(args.after).resolve())}
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    found: dict[tuple[str, str], tuple[list[float], list[float]]] = {
        (t, n): ([], []) for t in trees for n in args.names}
    with tempfile.TemporaryDirectory() as tmp:
        db = store_with_runs(Path(tmp))
        for k in range(args.runs + 1):
            for name in args.names:
                for tree, src in trees.items():
                    cmd = command(name, db, f"sqlite:///{tmp}/quick-{tree}.db")
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    t = time.perf_counter()
                    subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT / "examples",
                                   env={**base, "PYTHONPATH": src})
                    wall = (time.perf_counter() - t) * 1000
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    if k:  # the first round warms up
                        found[tree, name][0].append(wall)
                        found[tree, name][1].append((after.ru_utime - before.ru_utime
                                                     + after.ru_stime - before.ru_stime) * 1000)
    for name in args.names:
        print(f"{name:9}", "   ".join(f"{tree}: {statistics.median(found[tree, name][0]):7.1f} / "
                                      f"{statistics.median(found[tree, name][1]):6.1f} ms" for tree in trees))
    print("wall / CPU medians; load average", os.getloadavg())


if __name__ == "__main__":
    main()
