"""A bad TETHER_* value stops a real `tether` process with a message naming the
variable and what it accepts, exit 2, and with --json one error document."""
from __future__ import annotations

import json
import os
import subprocess
import sys


def test_bad_setting_is_a_usage_error_naming_the_variable(tmp_path):
    env = {**os.environ, "TETHER_LEASE_SECONDS": "soon"}
    proc = subprocess.run([sys.executable, "-m", "tether", "--db", f"sqlite:///{tmp_path / 't.db'}", "runs"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "error: TETHER_LEASE_SECONDS must be a number of seconds > 0, not 'soon'" in proc.stderr
    assert "Traceback" not in proc.stderr
    env = {**os.environ, "TETHER_MAX_RECOVERIES": "many"}
    proc = subprocess.run([sys.executable, "-m", "tether", "--db", f"sqlite:///{tmp_path / 't.db'}", "runs", "--json"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert json.loads(proc.stdout) == {"error": {
        "type": "UsageError", "message": "TETHER_MAX_RECOVERIES must be a whole number >= 0, not 'many'"}}
