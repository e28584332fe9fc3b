"""A run that keeps killing the process that runs it is not taken over forever (SPEC §10):
real `tether worker` processes on SQLite and PostgreSQL take it over TETHER_MAX_RECOVERIES
times, then it ends failed with MaxRecoveriesExceeded; a person's `tether resume` still
runs it and resets the count."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.integration.test_workers import statuses, tether

pytestmark = pytest.mark.slow  # kills its owner again and again

FLOW = """
name: crashy
inputs:
  ledger: {type: string, required: true}
  fixed: {type: string, required: true}
steps:
  - id: first
    vars: {ready: true}
  - id: boom
    tool: python
    with:
      code: |
        import os, pathlib
        def main(ledger, fixed):
            with open(ledger, "a") as f:
                f.write(f"{os.getpid()}\\n")
            if not pathlib.Path(fixed).exists():
                os.kill(os.getpid(), 9)  # a crash no handler can catch, like the OOM killer
            return "fine"
      args: {ledger: "{{ inputs.ledger }}", fixed: "{{ inputs.fixed }}"}
outputs: {result: "{{ steps.boom.result }}"}
"""

FINAL = ("completed", "failed", "cancelled")


def _one_worker(db: str, run_id: str, env: dict) -> str:
    """Start a worker and wait until it is killed by the step ("killed") or the run ends
    ("ended", the worker is then stopped)."""
    worker = tether(db, "worker", env=env)
    end = time.monotonic() + 60
    try:
        while time.monotonic() < end:
            if worker.poll() is not None:
                assert worker.returncode == -signal.SIGKILL, worker.communicate()
                return "killed"
            if statuses(db)[run_id]["status"] in FINAL:
                return "ended"
            time.sleep(0.1)
        raise AssertionError("the worker neither died nor ended the run")
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)


def test_a_run_that_keeps_killing_its_worker_fails_after_max_recoveries(tmp_path: Path, sql_url: str) -> None:
    db = sql_url
    flow = tmp_path / "crashy.yaml"
    flow.write_text(FLOW)
    ledger, fixed = tmp_path / "ledger", tmp_path / "fixed"
    out, _err = tether(db, "run", flow, "--detach", "-i", f"ledger={ledger}", "-i",
                      f"fixed={fixed}").communicate(timeout=60)
    run_id = out.strip()
    env = {"TETHER_LEASE_SECONDS": "1"}
    outcomes: list[str] = []
    while len(outcomes) < 10 and (not outcomes or outcomes[-1] == "killed"):
        outcomes.append(_one_worker(db, run_id, env))
    # the first execution and TETHER_MAX_RECOVERIES (5) takeovers died; the next claim failed it
    assert outcomes == ["killed"] * 6 + ["ended"]
    assert len(ledger.read_text().split()) == 6
    out, _ = tether(db, "show", run_id, "--json").communicate(timeout=60)
    shown = json.loads(out)
    assert shown["status"] == "failed"
    assert shown["error"]["type"] == "MaxRecoveriesExceeded"
    assert "TETHER_MAX_RECOVERIES=5" in shown["error"]["message"] and "5 time(s)" in shown["error"]["message"]
    assert shown["error"]["step"] == "boom"

    # a person's resume runs it again (here it dies again) and resets the count, so a
    # worker takes it over again instead of failing it at once
    resumed = tether(db, "resume", run_id, env=env)
    resumed.communicate(timeout=60)
    assert resumed.returncode == -signal.SIGKILL
    assert len(ledger.read_text().split()) == 7
    assert _one_worker(db, run_id, env) == "killed"
    assert len(ledger.read_text().split()) == 8
    fixed.write_text("")
    assert _one_worker(db, run_id, env) == "ended"
    assert statuses(db)[run_id]["status"] == "completed"
    assert len(ledger.read_text().split()) == 9
