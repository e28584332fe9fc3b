"""Command start-up and flow loading, as a person meets them.

    python -m bench.startup [--runs 5]

Times each command from launch to exit (a new process each time, one warm-up): ``tether
--help``; ``runs``, ``show``, ``vars RUN`` and ``vars get`` on a store with 1,000 runs;
``tether run examples/quickstart.yaml``; and the bare interpreter (``python -c pass``) as
the floor. Also loading and validating a 1,000-step flow in process. The ``tether``
console script next to the interpreter is used when installed, else ``python -m tether``.
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

ROOT = Path(__file__).resolve().parent.parent
RUNS_IN_STORE = 1000


def tether_command() -> list[str]:
    """How to launch ``tether``: its console script when installed beside this interpreter."""
    script = Path(sys.executable).parent / "tether"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "tether"]


def _env() -> dict[str, str]:
    # compiled modules are what users run: let this process tree write them
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def launch_ms(args: list[str], runs: int, cwd: Path = ROOT, cpu: list[float] | None = None) -> list[float]:
    """ms from launch to exit of ``args``, ``runs`` times after one warm-up (exit code 0);
    the CPU ms of each run (user + system, less disturbed by a loaded machine) are appended
    to ``cpu`` when given."""
    import resource
    out = []
    for k in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True, cwd=cwd, env=_env())
        out.append((time.perf_counter() - t) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None and k:
            cpu.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return out[1:]


def store_with_runs(folder: Path, n: int = RUNS_IN_STORE) -> str:
    """A SQLite store with ``n`` small completed runs ``run0000``...; its URL."""
    from tether import Engine
    from tether.flow import load_flow_text
    url = f"sqlite:///{folder / 'runs.db'}"
    loaded = load_flow_text("name: r\nvars: {a: 1, b: x}\nsteps:\n"
                            "  - id: s\n    vars: {c: '{{ vars.a + 1 }}'}\n"
                            "  - id: t\n    vars: {d: [1, 2, 3]}\n")
    with Engine(url) as engine:
        for i in range(n):
            engine.run(loaded, run_id=f"run{i:04d}")
    return url


def flow_load_ms(runs: int, steps: int = 1000) -> list[float]:
    """ms to load and validate a flow of ``steps`` steps from its text, in process."""
    from bench.steps import flow_text
    from tether.flow import load_flow_text
    text = flow_text(steps, "normal")
    load_flow_text(text)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        load_flow_text(text)
        out.append((time.perf_counter() - t) * 1000)
    return out


def measure(runs: int) -> dict[str, list[float]]:
    """Wall-clock ms of each command (``NAME_ms``) and its CPU ms (``NAME_cpu_ms``)."""
    exe = tether_command()
    out: dict[str, list[float]] = {}

    def timed(name: str, args: list[str], cwd: Path = ROOT) -> None:
        cpu: list[float] = []
        out[f"{name}_ms"] = launch_ms(args, runs, cwd, cpu)
        out[f"{name}_cpu_ms"] = cpu

    timed("python", [sys.executable, "-c", "pass"])
    timed("help", [*exe, "--help"])
    with tempfile.TemporaryDirectory() as tmp:
        db = ["--db", store_with_runs(Path(tmp))]
        reads = (("runs", ["runs"]), ("show", ["show", "run0500"]), ("vars", ["vars", "run0500"]),
                 ("vars_get", ["vars", "get", "run0500", "c"]))
        for name, args in reads:
            timed(name, [*exe, *db, *args])
        quick = ["--db", f"sqlite:///{tmp}/quick.db", "run", str(ROOT / "examples" / "quickstart.yaml")]
        timed("run_quickstart", [*exe, *quick], ROOT / "examples")
    out["flow_load_1000_steps_ms"] = flow_load_ms(runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    found = measure(args.runs)
    print(json.dumps({k: round(statistics.median(v), 1) for k, v in found.items()}))


if __name__ == "__main__":
    main()
