"""Peak memory of a loop over 1,000,000 small items.

    python -m bench.loop_memory [--items 1000000] [--parallel 1]

The items come from a JSON file (the loop reads its collection once, stores it
element by element, and then reads it back in batches). Prints the peak RSS of
the process and the loop's throughput.
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

FLOW = """
name: bench_memory
vars: {{done: 0}}
steps:
  - id: each
    foreach_file: items.json
    parallel: {parallel}
    do:
      id: noop
      tool: python
      with: {{function: "bench.noop:noop", args: {{x: "{{{{ item }}}}"}}}}
      vars: {{done: "{{{{ vars.done + 1 }}}}"}}
outputs:
  done: "{{{{ vars.done }}}}"
  successful: "{{{{ map.successful }}}}"
"""


def peak_rss_mib() -> float:
    """Peak RSS of this process image (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(folder: Path, items: int) -> None:
    """Run the flow in this (fresh) process and report its own peak RSS."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tether import Engine
    from tether.flow import load_flow_text
    flow = folder / "flow.yaml"
    engine = Engine(f"sqlite:///{folder / 'm.db'}")
    before = peak_rss_mib()
    t = time.perf_counter()
    run = engine.run(load_flow_text(flow.read_text(), str(flow), str(folder)))
    elapsed = time.perf_counter() - t
    assert run.status == "completed", run.error
    assert run.outputs == {"done": items, "successful": items}, run.outputs
    peak = peak_rss_mib()
    print(json.dumps({"items": items, "seconds": round(elapsed, 1),
                      "iterations_per_s": round(items / elapsed),
                      "peak_rss_mib": round(peak, 1), "rss_after_imports_mib": round(before, 1),
                      "db_mib": round((folder / "m.db").stat().st_size / 2**20, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child), args.items)
        return
    import subprocess
    import sys
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "items.json").write_text(json.dumps([{"i": i} for i in range(args.items)]))
        (folder / "flow.yaml").write_text(FLOW.format(parallel=args.parallel))
        out = subprocess.run([sys.executable, "-m", "bench.loop_memory", "--items", str(args.items),
                              "--child", str(folder)], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
        if out.returncode:
            raise SystemExit(out.stderr)
        doc = json.loads(out.stdout)
        doc["parallel"] = args.parallel
        print(json.dumps(doc))


if __name__ == "__main__":
    main()
