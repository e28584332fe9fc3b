"""An action the run's status does not allow is a conflict: exit 4, as the guide says
(fix-serve, item 4), not 2 (bad usage)."""
from __future__ import annotations

import os
import subprocess
import sys


def tether(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether", "--db", db, *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ})


def test_pausing_or_cancelling_a_completed_run_and_resuming_a_cancelled_one_exit_4(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    flow = tmp_path / "f.yaml"
    flow.write_text("name: f\nsteps:\n  - id: a\n    vars: {x: 1}\n")
    assert tether(db, "run", str(flow), "--run-id", "done").returncode == 0
    for verb in ("pause", "cancel"):
        proc = tether(db, verb, "done")
        assert proc.returncode == 4, (verb, proc.stderr)
        assert "completed" in proc.stderr
    queued = tether(db, "run", str(flow), "--detach").stdout.strip()
    assert tether(db, "cancel", queued).returncode == 0
    proc = tether(db, "resume", queued)
    assert proc.returncode == 4 and "cancelled" in proc.stderr, proc.stderr
