"""`tether resume` gets to the run's next step without importing what it does not use: Rich
(nothing is printed before the run ends when the environment did not change), PyYAML (the
stored flow is rebuilt from its parsed data) and ctypes (loaded when a step first starts a
process: this one starts none)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FLOW = """
name: probe
steps:
  - id: wait
    tool: pause
  - id: look
    tool: python
    with:
      code: |
        import sys
        def main(ctx):
            return sorted(m for m in ("rich", "rich.console", "rich.table", "yaml", "ctypes") if m in sys.modules)
    vars: {loaded: "{{ result }}"}
"""


def test_resume_reaches_the_next_step_without_rich(tmp_path: Path):
    from tether import Engine
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Engine(url) as engine:
        assert engine.run_text(FLOW, run_id="p1").status == "paused"
    proc = subprocess.run([sys.executable, "-m", "tether", "--db", url, "resume", "p1"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "completed" in proc.stdout  # the report is printed (with Rich) once the run ends
    with Engine(url) as engine:
        assert engine.vars("p1")["loaded"] == []
