"""Workers survive a PostgreSQL restart: `pg_ctl -m immediate stop`, a pause, `start`,
while two workers run 100 short runs: every run completes with the right outputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import PG_BIN, PG_DATA, drop_schema, postgres_url

pytestmark = pytest.mark.slow  # restarts the PostgreSQL server

FLOW = """
name: short
inputs: {n: {type: integer, required: true}}
vars: {acc: 0}
steps:
  - {id: a, vars: {acc: "{{ vars.acc + inputs.n }}"}}
  - {id: b, tool: shell, with: {run: "sleep 0.3"}, vars: {acc: "{{ vars.acc * 2 }}"}}
  - {id: c, vars: {acc: "{{ vars.acc + 1 }}"}}
outputs: {acc: "{{ vars.acc }}"}
"""


def _pg_ctl(*args: str) -> None:
    cmd = f"'{PG_BIN}/pg_ctl' -D '{PG_DATA}' " + " ".join(args)
    if os.geteuid() == 0:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", cmd], check=True, capture_output=True, timeout=120)
    else:
        subprocess.run(["sh", "-c", cmd], check=True, capture_output=True, timeout=120)


def _completed(db: str) -> int:
    """How many runs completed, asked through a fresh store (the server may be down a moment)."""
    from tether import Engine, StoreError
    for _ in range(100):
        try:
            engine = Engine(db)
            try:
                return sum(r.status == "completed" for r in engine.runs(limit=500))
            finally:
                engine.close()
        except StoreError:
            time.sleep(0.5)
    raise AssertionError("the store never answered")


def _runs(db: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "tether", "--db", db, "runs", "--json", "--limit", "500"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_two_workers_finish_100_runs_across_an_immediate_server_restart(tmp_path):
    db = postgres_url()
    if not PG_DATA:
        pytest.fail("TETHER_TEST_PG_DATA is not set: run scripts/test.sh, which starts the server it can restart")
    flow = tmp_path / "short.yaml"
    flow.write_text(FLOW)
    env = {**os.environ, "TETHER_LEASE_SECONDS": "3"}
    try:
        from tether import Engine
        engine = Engine(db)
        ids = {engine.run(flow, {"n": n}, detach=True).id: n for n in range(100)}
        engine.close()
        workers = [subprocess.Popen([sys.executable, "-m", "tether", "--db", db, "worker", "--concurrency", "4"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                   for _ in range(2)]
        try:
            end = time.monotonic() + 60
            while _completed(db) < 25 and time.monotonic() < end:
                time.sleep(0.05)
            before = _completed(db)
            _pg_ctl("-m", "immediate", "stop")
            time.sleep(2)
            _pg_ctl("-l", f"'{PG_DATA}/../log'", "-w", "-t", "60", "start")
            end = time.monotonic() + 240
            while time.monotonic() < end and _completed(db) < 100:
                time.sleep(0.5)
        finally:
            for w in workers:
                w.terminate()
            logs = [w.communicate(timeout=60)[1] for w in workers]
        runs = {r["run_id"]: r for r in _runs(db)}
        stuck = {i: runs[i]["status"] for i in ids if runs[i]["status"] != "completed"}
        assert before < 100, "the restart must happen while the workers still have runs to do"
        assert stuck == {}, (stuck, logs)
        assert all("Traceback" not in log for log in logs), logs
        engine = Engine(db)
        wrong = {i: engine.get_run(i).outputs for i, n in ids.items()
                 if engine.get_run(i).outputs != {"acc": (n * 2) + 1}}
        steps = {i: [s.step_id for s in engine.steps(i) if s.status == "completed"] for i in ids}
        engine.close()
        assert wrong == {}
        assert all(s == ["a", "b", "c"] for s in steps.values()), steps
    finally:
        drop_schema(db)
