"""`tether run --detach` and `tether worker`, as real processes on SQLite and PostgreSQL:
every queued run is executed once, a SIGKILLed worker's run is taken over when its lease
expires, a SIGTERMed worker hands its run back after the current step."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # worker processes, kills and takeovers

FLOW = """
name: work
inputs: {ledger: {type: string, required: true}}
vars: {n: 0}
steps:
""" + "".join(f"""
  - id: s{i}
    tool: shell
    with: {{run: "echo {{{{ run.id }}}}/s{i} >> {{{{ inputs.ledger }}}}; sleep 0.15"}}
    vars: {{n: "{{{{ vars.n + 1 }}}}"}}
""" for i in range(8)) + """
outputs: {n: "{{ vars.n }}"}
"""


@pytest.fixture
def db(sql_url: str) -> str:
    return sql_url


def tether(db: str, *args: str | Path, env: dict | None = None, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tether", "--db", db, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, **kw)


def queue(db: str, flow: Path, ledger: Path, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        out, err = tether(db, "run", flow, "--detach", "-i", f"ledger={ledger}").communicate(timeout=60)
        assert err == "", err
        ids.append(out.strip())
    return ids


def statuses(db: str) -> dict[str, dict]:
    out, _ = tether(db, "runs", "--json", "--limit", "500").communicate(timeout=60)
    return {r["run_id"]: r for r in json.loads(out)}


def wait_for(predicate, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_three_workers_execute_every_queued_run_once(tmp_path, db):
    flow = tmp_path / "w.yaml"
    flow.write_text(FLOW)
    ledger = tmp_path / "ledger"
    ids = queue(db, flow, ledger, 6)
    assert {r["status"] for r in statuses(db).values()} == {"pending"}
    workers = [tether(db, "worker", "--once", "--concurrency", "2") for _ in range(3)]
    for w in workers:
        _out, err = w.communicate(timeout=120)
        assert w.returncode == 0 and "Traceback" not in err, err
    done = statuses(db)
    assert {done[i]["status"] for i in ids} == {"completed"}
    lines = Counter(ledger.read_text().split())
    assert lines == Counter({f"{i}/s{k}": 1 for i in ids for k in range(8)})  # every step exactly once


def test_a_killed_workers_run_is_taken_over_when_its_lease_expires(tmp_path, db):
    flow = tmp_path / "w.yaml"
    flow.write_text(FLOW)
    ledger = tmp_path / "ledger"
    [run_id] = queue(db, flow, ledger, 1)
    env = {"TETHER_LEASE_SECONDS": "1"}  # short, so the takeover comes soon (renewed every 1/3 s)
    first = tether(db, "worker", env=env)
    wait_for(lambda: ledger.exists() and len(ledger.read_text().split()) >= 3)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    second = tether(db, "worker", env=env)
    try:
        wait_for(lambda: statuses(db)[run_id]["status"] == "completed")
    finally:
        second.send_signal(signal.SIGTERM)
        _out, err = second.communicate(timeout=60)
    assert second.returncode == 0 and "Traceback" not in err, err
    lines = Counter(ledger.read_text().split())
    assert set(lines) == {f"{run_id}/s{k}" for k in range(8)}
    assert sum(lines.values()) - 8 <= 1  # only the step in flight when the worker died ran twice


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])  # a hang-up as SIGTERM
def test_a_terminated_worker_hands_its_run_back_after_the_current_step(tmp_path, db, sig):
    flow = tmp_path / "w.yaml"
    flow.write_text(FLOW)
    ledger = tmp_path / "ledger"
    [run_id] = queue(db, flow, ledger, 1)
    first = tether(db, "worker")
    wait_for(lambda: ledger.exists() and len(ledger.read_text().split()) >= 2)
    first.send_signal(sig)
    _out, err = first.communicate(timeout=30)
    assert first.returncode == 0 and "1 run(s) executed" in err, err
    handed_back = statuses(db)[run_id]
    assert handed_back["status"] == "pending"
    steps_done = len(ledger.read_text().split())
    assert steps_done < 8
    second = tether(db, "worker", "--once")
    _out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert statuses(db)[run_id]["status"] == "completed"
    assert Counter(ledger.read_text().split()) == Counter({f"{run_id}/s{k}": 1 for k in range(8)})


def test_a_new_worker_takes_over_the_run_of_a_killed_worker_on_this_host_at_once(tmp_path, db):
    flow = tmp_path / "w.yaml"
    flow.write_text(FLOW)
    ledger = tmp_path / "ledger"
    [run_id] = queue(db, flow, ledger, 1)
    env = {"TETHER_LEASE_SECONDS": "120"}  # the owner's pid is checked: its lease is not waited for
    first = tether(db, "worker", env=env)
    wait_for(lambda: ledger.exists() and len(ledger.read_text().split()) >= 2)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    started = time.monotonic()
    second = tether(db, "worker", env=env)
    try:
        wait_for(lambda: statuses(db)[run_id]["status"] == "completed", timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        _out, err = second.communicate(timeout=60)
    assert time.monotonic() - started < 30
    assert second.returncode == 0 and "Traceback" not in err, err
    assert set(ledger.read_text().split()) == {f"{run_id}/s{k}" for k in range(8)}
