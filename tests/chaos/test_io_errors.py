"""C2: disk full and I/O errors injected with strace into the system calls SQLite
commits with (``pwrite64``, ``fdatasync``, ``fsync``), from the N-th call on, sweeping N.

Every injected run must stop with a clear error naming the database and the cause (no
traceback), leave a database that passes ``PRAGMA integrity_check``, and resume to the
uninterrupted run's final state once writes succeed again.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chaos.conftest import LONG, SEED
from tests.helpers import stored_status

pytestmark = pytest.mark.slow  # injected I/O errors under strace, then resumes

FLOW = """
name: io
checkpoint: {durability: %s}
vars: {n: 0, total: 0}
steps:
""" + "".join(f"""
  - id: s{i}
    vars: {{n: "{{{{ vars.n + 1 }}}}"}}
""" for i in range(30)) + """
  - id: each
    foreach: "{{ range(20) | list }}"
    parallel: 2
    do:
      id: add
      vars: {total: "{{ vars.total + item }}"}
outputs:
  n: "{{ vars.n }}"
  total: "{{ vars.total }}"
"""
EXPECTED = {"n": 30, "total": sum(range(20))}
# SQLite writes its files with pwrite64 and syncs them with fdatasync on Linux (a trace of a
# whole run shows no write() or fsync() on them), so those are the calls that can fail.
CASES = [("full", "pwrite64", "ENOSPC"), ("full", "fdatasync", "EIO"), ("normal", "pwrite64", "EIO")]
if LONG:
    CASES += [("normal", "pwrite64", "ENOSPC"), ("full", "pwrite64", "EIO"), ("full", "fdatasync", "ENOSPC")]


def _strace() -> str:
    found = shutil.which("strace")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("strace is missing: .ci/run installs it (Debian package strace)")
        pytest.skip("strace is not installed (apt-get install strace)")
    return found


def _tether(db_path: Path, *args: str, inject: str | None = None, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tether", "--db", f"sqlite:///{db_path}", *args]
    if inject:
        files = [str(db_path) + suffix for suffix in ("", "-wal", "-shm")]
        cmd = [_strace(), "-f", "-qq", "-o", "/dev/null", *[a for f in files for a in ("-P", f)],
               "-e", "trace=pwrite64,write,fdatasync,fsync", "-e", f"inject={inject}", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


def _calls(folder: Path, durability: str, syscall: str) -> int:
    """How many ``syscall`` calls on the database files an uninterrupted run makes."""
    db = folder / "count.db"
    _tether(db, "runs", cwd=folder)  # the schema exists before the counted run, as in every injected run
    log = folder / "count.trace"
    files = [str(db) + suffix for suffix in ("", "-wal", "-shm")]
    subprocess.run([_strace(), "-f", "-qq", "-o", str(log), *[a for f in files for a in ("-P", f)],
                    "-e", f"trace={syscall}", sys.executable, "-m", "tether", "--db", f"sqlite:///{db}",
                    "run", str(folder / "io.yaml"), "--run-id", "count"], check=True, capture_output=True,
                   timeout=300, cwd=folder)
    return len(re.findall(rf"\b{syscall}\(", log.read_text()))


@pytest.mark.parametrize("durability,syscall,errno", CASES)
def test_injected_io_errors_stop_cleanly_and_resume_to_completion(tmp_path, figures, durability, syscall, errno):
    _strace()
    (tmp_path / "io.yaml").write_text(FLOW % durability)
    total = _calls(tmp_path, durability, syscall)
    assert total > 0, f"{syscall} never called"
    count = 40 if LONG else 2
    step = max(1, total // count)
    offset = SEED % step
    points = sorted({1, total} | set(range(1 + offset, total + 1, step)))
    stopped = completed_anyway = 0
    for n in points:
        db = tmp_path / f"io-{n}.db"
        _tether(db, "runs", cwd=tmp_path)
        hurt = _tether(db, "run", "io.yaml", "--run-id", "r", "--json", inject=f"{syscall}:error={errno}:when={n}+",
                       cwd=tmp_path)
        assert "Traceback" not in hurt.stderr, hurt.stderr
        if hurt.returncode == 0:
            completed_anyway += 1  # the N-th call came after the last commit that needed it
        else:
            stopped += 1
            # SQLite reports ENOSPC as "database or disk is full" or, on some writes, as an I/O error
            assert str(db) in hurt.stderr and ("disk is full" in hurt.stderr or "I/O error" in hurt.stderr) \
                and "SQLITE_" in hurt.stderr and "tether resume" in hurt.stderr, (n, hurt.stderr)
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", n
        con.close()
        status = stored_status(db, "r")
        if status != "completed":
            again = _tether(db, *(["resume", "r"] if status else ["run", "io.yaml", "--run-id", "r"]), "--json",
                            cwd=tmp_path)
            assert again.returncode == 0, (n, again.stderr)
        shown = json.loads(_tether(db, "show", "r", "--json", cwd=tmp_path).stdout)
        assert shown["status"] == "completed" and shown["outputs"] == EXPECTED, (n, shown)
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", n
        steps = [r[0] for r in con.execute("SELECT step_id FROM steps WHERE run_id = 'r'")]
        assert len(steps) == len(set(steps)) == 31, (n, steps)
        con.close()
        for p in tmp_path.glob(f"io-{n}.db*"):
            p.unlink()
    assert stopped > 0, "no injection reached a commit"
    figures.update(calls=total, injections=len(points), stopped_with_error=stopped,
                   completed_anyway=completed_anyway, corruptions=0)
