"""Small helpers shared by the process-level tests."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
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
