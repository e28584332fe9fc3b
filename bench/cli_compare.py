"""Before/after comparison of what CLI command lines print: two source trees, byte for byte.

    python -m bench.cli_compare --before /tmp/before/src --after src [MODE ...]

Makes a store of a few runs (secrets, a computed variable, a failed step, values holding
markup, emoji codes, tabs, newlines and wide characters, a queued run), then runs each
command line of ``LINES`` (and ``tether run`` lines) with each tree, on a fresh copy of the
store each time, and reports every difference in exit code, stdout or stderr (run ids and
timestamps masked). MODE is an environment of ``ENVS`` (default ``plain``: piped output),
or ``pty`` / ``pty200`` (a pseudo-terminal of 60 / 200 columns)."""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.startup import ROOT

FLOWS = {
    "r1": "name: r\nvars: {a: 1, b: x}\nsteps:\n  - id: s\n    vars: {c: '{{ vars.a + 1 }}'}\n",
    "r2": "name: fancy\nvars: {x: ':smile: [red]hi[/]', y: '中文', z: \"tab\\there\", w: \"line1\\nline2\", "
    "l: [1, 2, 3], m: '[bold]b[/]', big: '"
    + "x" * 300
    + "'}\nsteps:\n  - id: s\n    vars: {c: '14:15:13'}\n",
    "r3": "name: failing\nsteps:\n  - id: bad\n    tool: shell\n    with: {run: 'exit 3'}\n",
    "r4": "name: comp\nvars: {a: 2}\ncomputed:\n  dbl: '{{ vars.a * 2 }}'\n"
    "steps:\n  - id: s\n    vars: {b: 1}\n",
    "r6": "name: onf\nsteps:\n  - id: bad\n    tool: shell\n    with: {run: 'echo oops >&2; exit 2'}\n"
    "    on_failure: continue\n  - id: ok\n    vars: {z: 1}\n",
    "r7": "name: emo\nsteps:\n  - id: s\n    tool: shell\n"
    "    with: {run: 'echo \":smile: [bold]x[/] 中\"'}\n",
}
READS = [
    ["runs"],
    ["runs", "--json"],
    ["runs", "--limit", "2"],
    ["runs", "--limit=3", "--json"],
    ["runs", "--status", "failed"],
    ["runs", "--status=completed", "--limit", "1"],
    ["runs", "--status", "nope"],
    ["runs", "--status", "nope", "--json"],
    ["runs", "--limit", "0"],
    ["runs", "--limit", "007"],
    ["runs", "--limit", "abc"],
    ["runs", "--limit", "10001"],
    ["runs", "--limit", "10000"],
    ["runs", "--limit"],
    ["runs", "--json", "--json"],
    ["runs", "--jso"],
    ["runs", "extra"],
    ["runs", "--help"],
    ["runs", "--status", "pending"],
    ["runs", "--status", "interrupted"],
    ["runs", "--status", "running", "--json"],
    ["show", "r1"],
    ["show", "r2"],
    ["show", "r3"],
    ["show", "r4"],
    ["show", "r6"],
    ["show", "r7"],
    ["show", "r8"],
    ["show", "r3", "--json"],
    ["show", "--json", "r2"],
    ["show", "nope"],
    ["show", "nope", "--json"],
    ["show", "bad id!"],
    ["show", "bad id!", "--json"],
    ["show"],
    ["show", "r1", "r2"],
    ["show", ""],
    ["show", "--", "r1"],
    ["show", "-r1"],
    ["vars", "r1"],
    ["vars", "r2"],
    ["vars", "r2", "--json"],
    ["vars", "--json", "r2"],
    ["vars", "r4"],
    ["vars", "list"],
    ["vars", "list", "r1"],
    ["vars", "nope"],
    ["vars", "nope", "--json"],
    ["vars"],
    ["vars", "--help"],
    ["vars", "r1", "extra"],
    ["vars", "get", "r1", "c"],
    ["vars", "get", "r1", "sec"],
    ["vars", "get", "r1", "sec", "--reveal"],
    ["vars", "get", "r1", "sec", "--json"],
    ["vars", "get", "r1", "u"],
    ["vars", "get", "r2", "x"],
    ["vars", "get", "r2", "w"],
    ["vars", "get", "r2", "y", "--json"],
    ["vars", "get", "r2", "big"],
    ["vars", "get", "r4", "dbl"],
    ["vars", "get", "r4", "dbl", "--json"],
    ["vars", "get", "r4", "nope"],
    ["vars", "get", "r4", "nope", "--json"],
    ["vars", "get", "nope", "x"],
    ["vars", "get", "r1"],
    ["vars", "get", "r1", "bad name!"],
    ["vars", "get", "--reveal", "--json", "r1", "sec"],
    ["vars", "history", "r1", "a"],
    ["vars", "get", "r2", "m"],
    ["vars", "get", "r2", "z"],
    ["vars", "get", "--help"],
    ["vars", "r1", "--help"],
    ["vars", "--help", "r1"],
    ["vars", "gte", "r1", "c"],
    ["vars", "set", "r1", "n", "5"],
    ["vars", "set", "r1", "n", "5", "--json"],
    ["vars", "rm", "r1", "a"],
    ["vars", "rm", "r1"],
    ["vars", "history", "r1"],
    ["vars", "history", "r1", "a", "--json"],
]
QUICKSTART = str(ROOT / "examples" / "quickstart.yaml")
RUNS = [
    ["run", QUICKSTART],
    ["run", QUICKSTART, "--json"],
    ["run", QUICKSTART, "-i", "words=2"],
    ["run", QUICKSTART, "-i", "words=abc"],
    ["run", QUICKSTART, "--run-id", "r1"],
    ["run", QUICKSTART, "--run-id", "fixed1"],
    ["run", "/nonexistent.yaml"],
    ["run", "/nonexistent.yaml", "--json"],
    ["run", QUICKSTART, "-i", "words=3", "-i", "text=a b c d"],
    ["run", QUICKSTART, "--detach"],
]
ENVS: dict[str, dict[str, str]] = {
    "plain": {},
    "env_db": {"TETHER_DB": "DB"},
    "env_db_empty": {"TETHER_DB": ""},
    "force_color": {"FORCE_COLOR": "1"},
    "tty_compat": {"TTY_COMPATIBLE": "1"},
    "no_color": {"NO_COLOR": "1"},
    "bad_setting": {"TETHER_LEASE_SECONDS": "abc"},
    "ascii": {"PYTHONIOENCODING": "ascii"},
}
MASK = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00)?|01[0-9A-Z]{24}")


def lines(db: str, work: str) -> list[list[str]]:
    out = []
    for top in (["--db", db], [f"--db={db}"], ["--debug", "--db", db], ["--db", db, "--debug"]):
        out += [top + ["runs"], top + ["show", "r3"]]
    out += [["--db", db, *a] for a in READS + RUNS]
    return out + [
        ["runs"],
        ["--db", "sqlite:////nonexistent/x.db", "runs"],
        ["--db", "sqlite:////nonexistent/x.db", "runs", "--json"],
        ["--db", f"sqlite:///{work}/empty.db", "vars", "r1"],
        ["--db", "bogus://x", "show", "r1", "--json"],
        ["--db"],
        ["--db", db],
        ["--nope", "runs"],
        ["--db", db, "--db", db, "runs"],
        ["--db", db, "run"],
        ["--db", "memory://", "runs"],
        ["--debug", "--db", db, "vars", "r1"],
        ["--debug", "--db", db, "vars", "get", "r4", "dbl"],
        ["--debug", "--db", db, "vars", "set", "r1", "n", "5"],
    ]


def make_store(folder: Path) -> None:
    from tether import Engine

    with Engine(f"sqlite:///{folder / 'fix.db'}") as engine:
        for run_id, text in FLOWS.items():
            try:
                engine.run_text(text, run_id=run_id)
            except Exception as exc:  # a failing run is part of the fixture
                print(run_id, type(exc).__name__, exc, file=sys.stderr)
        engine.set_var("r1", "sec", "hush", secret=True)
        engine.set_var("r1", "u", ":100: and :rocket:")
        engine.run_text("name: q\nsteps:\n  - id: s\n    vars: {a: 1}\n", run_id="r8", detach=True)


def run_once(src: str, args: list[str], mode: str, db: str, work: str) -> tuple[int, bytes, bytes]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("TETHER_DB", "FORCE_COLOR", "NO_COLOR", "COLUMNS")
    }
    env.update({k: db if v == "DB" else v for k, v in ENVS.get(mode, {}).items()})
    env["PYTHONPATH"] = src
    cmd = [str(Path(sys.executable).parent / "tether"), *args]
    if not mode.startswith("pty"):
        p = subprocess.run(cmd, capture_output=True, env=env, cwd=work, timeout=120)
        return p.returncode, p.stdout, p.stderr
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200 if mode == "pty200" else 60, 0, 0))
    proc = subprocess.Popen(
        cmd,
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        cwd=work,
        env={**env, "TERM": "xterm-256color"},
    )
    os.close(slave)
    out = b""
    while select.select([master], [], [], 60)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.wait()
    os.close(master)
    return proc.returncode, out, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("modes", nargs="*", default=["plain"])
    args = ap.parse_args()
    trees = {"before": str(Path(args.before).resolve()), "after": str(Path(args.after).resolve())}
    with tempfile.TemporaryDirectory() as tmp:
        fixture, work = Path(tmp) / "fixture", Path(tmp) / "work"
        fixture.mkdir()
        make_store(fixture)
        db = f"sqlite:///{work}/fix.db"
        compared = differ = 0
        for mode in args.modes:
            for line in lines(db, str(work)):
                seen = []
                for src in trees.values():
                    shutil.rmtree(work, ignore_errors=True)
                    shutil.copytree(fixture, work)
                    rc, out, err = run_once(src, line, mode, db, str(work))
                    seen.append((rc, MASK.sub(b"<T>", out), MASK.sub(b"<T>", err)))
                compared += 1
                if seen[0] != seen[1]:
                    differ += 1
                    print("DIFF", mode, line, "\n  before:", seen[0], "\n  after: ", seen[1])
        print(f"{compared} command lines compared, {differ} differ")


if __name__ == "__main__":
    main()
