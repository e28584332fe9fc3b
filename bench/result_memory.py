"""Peak memory of a flow whose steps return large values.

    python -m bench.result_memory [--steps 200] [--mib 1] [--runs 3] [--blobs file]

A flow of ``--steps`` python steps, each returning a list of random numbers whose JSON
text is ``--mib`` MiB, run through the Python API on a fresh SQLite file in a fresh
process; its last outputs read the first step's result and a variable set from a large
result, so the values stay reachable to the end. Prints the median peak RSS (``VmHWM``
of the child: unlike ``ru_maxrss`` it is not inherited across ``exec``) of ``--runs``
runs, each in its own process. ``--blobs file`` keeps the blobs in a folder
(``TETHER_BLOBS=file://``) instead of the database's table.
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


def flow_text(steps: int, mib: float) -> str:
    """``steps`` python steps each returning a list of random 7-digit numbers whose JSON
    text is ``mib`` MiB (8 bytes a number)."""
    count = int(mib * 1024 * 1024) // 8
    lines = ["name: bench_result_memory\nsteps:\n"]
    for i in range(steps):
        lines.append(f"  - id: s{i}\n    tool: python\n    with:\n      code: |\n"
                     "        import random\n        def main():\n"
                     f"            return [random.randrange(1000000, 10000000) for _ in range({count})]\n")
        if i == steps // 2:
            lines.append('    vars: {middle: "{{ result }}"}\n')
    lines.append("outputs:\n  first: \"{{ steps.s0.result | length }}\"\n"
                 "  middle: \"{{ vars.middle | length }}\"\n")
    return "".join(lines)


def peak_rss_mib() -> float:
    """Peak RSS of this process image (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(folder: Path, steps: int, mib: float) -> None:
    """Run the flow in this fresh process and print its own peak RSS as JSON."""
    from tether import Engine
    from tether.flow import load_flow_text
    from tether.settings import Settings
    blobs = os.environ.get("BENCH_BLOBS") or None
    engine = Engine(f"sqlite:///{folder / 'm.db'}", settings=Settings(blobs=blobs))
    loaded = load_flow_text(flow_text(steps, mib))
    before = peak_rss_mib()
    t = time.perf_counter()
    run = engine.run(loaded)
    elapsed = time.perf_counter() - t
    assert run.status == "completed", run.error
    size = int(mib * 1024 * 1024) // 8
    assert run.outputs == {"first": size, "middle": size}, run.outputs
    print(json.dumps({"steps": steps, "mib": mib, "seconds": round(elapsed, 2),
                      "ms_per_step": round(elapsed / steps * 1e3, 2),
                      "peak_rss_mib": round(peak_rss_mib(), 1), "rss_after_imports_mib": round(before, 1)}))


def one(steps: int, mib: float, blobs: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env["BENCH_BLOBS"] = f"file://{tmp}/blobs" if blobs == "file" else ""
        out = subprocess.run([sys.executable, "-m", "bench.result_memory", "--steps", str(steps), "--mib",
                              str(mib), "--child", tmp], capture_output=True, text=True, cwd=ROOT, env=env)
        if out.returncode:
            raise SystemExit(out.stderr)
        doc: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
        return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--mib", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--blobs", choices=["db", "file"], default="db")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child), args.steps, args.mib)
        return
    runs = [one(args.steps, args.mib, args.blobs) for _ in range(args.runs)]
    peaks = [r["peak_rss_mib"] for r in runs]
    per = [r["ms_per_step"] for r in runs]
    print(json.dumps({"steps": args.steps, "mib": args.mib, "blobs": args.blobs,
                      "median_peak_rss_mib": statistics.median(peaks), "runs_peak_rss_mib": peaks,
                      "median_ms_per_step": statistics.median(per), "runs_ms_per_step": per,
                      "rss_after_imports_mib": runs[-1]["rss_after_imports_mib"]}))


if __name__ == "__main__":
    main()
