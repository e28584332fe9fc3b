"""Small helpers shared by the process-level tests."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def process_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once no process has ``pid`` (polled until ``timeout``)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def stored_status(db_path: Path, run_id: str) -> str | None:
    """The run's stored status read straight from the SQLite file, or None if the file,
    its schema or the run does not exist yet (a process may die before any of them)."""
    if not db_path.exists():
        return None
    con = sqlite3.connect(db_path)
    try:
        row = con.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        con.close()
    return row[0] if row else None


def kill_after(proc: subprocess.Popen[str], delay: float) -> bool:
    """SIGKILL ``proc`` after ``delay`` seconds unless it has finished; True if killed."""
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    return True


def tether_caller(cwd: Path, db: str, *, code: int | None = 0, timeout: float = 60):
    """A function that runs ``python -m tether --db DB ARGS...`` in ``cwd`` and returns the
    finished process, failing the test on a traceback or, unless ``code`` is None, on
    another exit code (both can be overridden per call)."""
    default_code, default_timeout = code, timeout

    def call(*args: object, code: int | None = default_code,
             timeout: float = default_timeout) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "tether", "--db", db, *map(str, args)],
                              capture_output=True, text=True, cwd=cwd, timeout=timeout)
        assert "Traceback" not in proc.stderr, proc.stderr
        if code is not None:
            assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
        return proc
    return call
