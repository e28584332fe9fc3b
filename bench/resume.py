"""B4: a run with 10,000 completed steps, 10,000 variables and a 100,000-item loop half
done; how long from `resume` starting to the first new iteration starting.

The sizes can be made smaller (the smoke test does) with ``TETHER_BENCH_RESUME_STEPS`` and
``TETHER_BENCH_RESUME_ITEMS``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STEPS = 10_000
ITEMS = 100_000
ROOT = Path(__file__).resolve().parent.parent


def sizes() -> tuple[int, int]:
    """(steps, loop items): B4's, unless the environment asks for a smaller run."""
    return (int(os.environ.get("TETHER_BENCH_RESUME_STEPS", STEPS)),
            int(os.environ.get("TETHER_BENCH_RESUME_ITEMS", ITEMS)))


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a `tether` child: ``bench`` importable (the loop body lives here),
    added to the caller's path rather than replacing it (which lost ``src`` when Tether is not
    installed, so the child never ran). The caller's path comes first: ``PYTHONPATH=OTHER/src``
    measures another checkout's Tether with this bench. Compiled modules are what users run:
    the children may write them (as in bench.startup)."""
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH", ""), str(ROOT), str(ROOT / "src")) if p)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": path, **extra}


def flow_text(steps: int = STEPS, items: int = ITEMS) -> str:
    lines = ["name: bench_resume", "vars: {c: 0}", "steps:"]
    for i in range(steps):
        lines.append(f"  - id: s{i}\n    vars: {{v{i}: {i}, c: \"{{{{ vars.c + 1 }}}}\"}}")
    lines.append('''  - id: loop
    foreach: "{{ range(%d) | list }}"
    do:
      id: body
      tool: python
      with: {function: "bench.resume:mark", args: {i: "{{ item }}", half: %d}}''' % (items, items // 2))  # noqa: UP031
    return "\n".join(lines) + "\n"


def mark(i: int, half: int) -> None:
    """Loop body: records when the first iteration after a resume starts (the time, and the
    CPU time its process has used) and ends that process there (what is measured is over;
    the other 50,000 iterations would only load the machine); stops the first run half-way
    (the process kills itself, as a crash would)."""
    marker = os.environ.get("TETHER_BENCH_MARK")
    if marker and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(f"{time.time()} {time.process_time()}")
        os._exit(0)
    if i == half and os.environ.get("TETHER_BENCH_CRASH"):
        os.kill(os.getpid(), signal.SIGKILL)


def prepare(folder: Path) -> None:
    """Build the half-done run once (its database is copied for every measurement)."""
    steps, items = sizes()
    (folder / "flow.yaml").write_text(flow_text(steps, items))
    proc = subprocess.run([sys.executable, "-m", "tether", "--db", f"sqlite:///{folder / 'base.db'}", "run",
                           str(folder / "flow.yaml"), "--run-id", "big"],
                          env=child_env(TETHER_BENCH_CRASH="1"), capture_output=True, text=True)
    # the loop body kills its process half-way, as a crash would: anything else is a broken bench
    assert proc.returncode == -signal.SIGKILL, f"`tether run` exited {proc.returncode}: {proc.stderr[-2000:]}"
    con = __import__("sqlite3").connect(folder / "base.db")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    done = con.execute("SELECT count(*) FROM iterations").fetchone()[0]
    con.close()
    assert done >= items // 2 - 1, done


def time_resume(folder: Path) -> dict[str, float]:
    """ms from Engine.resume() in a process that is up to the first new iteration
    (``in_process_ms``) and from launching `tether resume` to it (``with_interpreter_ms``),
    each with the CPU time its process spent meanwhile (``..._cpu_ms``)."""
    import shutil
    import uuid

    from bench.startup import tether_command
    results = {}
    for mode in ("in_process", "cli"):
        # a new file each time: a leftover -wal of an earlier copy would be replayed into it
        db = folder / f"{mode}-{uuid.uuid4().hex}.db"
        shutil.copy(folder / "base.db", db)
        marker = folder / f"{mode}.mark"
        marker.unlink(missing_ok=True)
        env = child_env(TETHER_BENCH_MARK=str(marker))
        if mode == "cli":
            t, cpu = time.time(), 0.0
            proc = subprocess.run([*tether_command(), "--db", f"sqlite:///{db}", "resume", "big"], env=env,
                                  capture_output=True, text=True)
        else:
            # a process that is already up: its modules are loaded before the clock starts
            code = ("import time, sys, tether; from tether.engine.engine import preload; preload(); "
                    "e = tether.Engine(sys.argv[1]); t = time.time(); c = time.process_time(); "
                    "print(t, c, flush=True); e.resume('big')")
            proc = subprocess.run([sys.executable, "-c", code, f"sqlite:///{db}"], env=env,
                                  capture_output=True, text=True)
            t, cpu = (float(x) for x in proc.stdout.split()[:2])
        # the resumed run reached its first new iteration (and ended there)
        assert proc.returncode == 0 and marker.exists(), \
            f"{mode} resume exited {proc.returncode}: {proc.stderr[-2000:]}"
        db.unlink()
        at, used = (float(x) for x in marker.read_text().split())
        name = "in_process" if mode == "in_process" else "with_interpreter"
        results[f"{name}_ms"], results[f"{name}_cpu_ms"] = (at - t) * 1000, (used - cpu) * 1000
    return results


def interleaved(sources: dict[str, str], rounds: int, folder: Path) -> dict[str, dict[str, float]]:
    """Medians of ``rounds`` measurements of each checkout's Tether (``{name: its src folder}``),
    taken in turn round by round (so that a noisy moment hits them all), each on a run that
    checkout built, after one warm-up round."""
    import statistics
    found: dict[str, dict[str, list[float]]] = {name: {} for name in sources}
    for name, src in sources.items():
        os.environ["PYTHONPATH"] = src
        (folder / name).mkdir()
        prepare(folder / name)
    for k in range(rounds + 1):
        for name, src in sources.items():
            os.environ["PYTHONPATH"] = src
            for key, value in time_resume(folder / name).items():
                if k:
                    found[name].setdefault(key, []).append(value)
    return {name: {key: round(statistics.median(v), 1) for key, v in d.items()} for name, d in found.items()}


if __name__ == "__main__":
    # python -m bench.resume [--against OTHER/src] [--rounds N]: this checkout's B4, or it and
    # another checkout's interleaved (before/after)
    import argparse
    import tempfile
    ap = argparse.ArgumentParser()
    ap.add_argument("--against", help="the src folder of another checkout, measured in turn with this one")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sources = {"this": str(ROOT / "src"), **({"other": args.against} if args.against else {})}
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(interleaved(sources, args.rounds, Path(tmp))))
