"""Per shell step: a flow of N ``tool: shell`` steps running ``true``, through the Python
API on the memory store, so that what is measured is starting, waiting for and recording
a process (fork, exec, the guardian's registration).

    python -m bench.shell_steps [--steps 200] [--runs 7]

Prints one JSON document: the median wall and CPU time (this process and its children)
per step in milliseconds, and each run's.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import time


def flow_text(steps: int) -> str:
    lines = ["name: bench_shell\nsteps:"]
    lines += [f"  - id: s{i}\n    tool: shell\n    with: {{run: \"true\"}}" for i in range(steps)]
    return "\n".join(lines) + "\n"


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def one_run(steps: int) -> tuple[float, float]:
    from tether import Engine
    from tether.flow import load_flow_text
    loaded = load_flow_text(flow_text(steps))
    engine = Engine("memory://")
    t, c = time.perf_counter(), _cpu()
    run = engine.run(loaded)
    wall, cpu = time.perf_counter() - t, _cpu() - c
    assert run.status == "completed", run
    engine.close()
    return wall / steps * 1e3, cpu / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    one_run(20)  # warm-up (imports, the guardian's start)
    runs = [one_run(args.steps) for _ in range(args.runs)]
    print(json.dumps({"steps": args.steps, "wall_ms": round(statistics.median(r[0] for r in runs), 3),
                      "cpu_ms": round(statistics.median(r[1] for r in runs), 3),
                      "runs": [[round(w, 3), round(c, 3)] for w, c in runs]}))


if __name__ == "__main__":
    main()
