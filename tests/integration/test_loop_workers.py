"""Iterations of one parallel loop shared by three `tether worker` processes on
PostgreSQL, one of which is SIGKILLed midway: the run completes, aggregates are exact,
every iteration is committed exactly once, and re-runs stay within the killed worker's
work in flight."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.conftest import drop_schema, postgres_url

pytestmark = pytest.mark.slow  # three worker processes share a 2,000-item loop

# Big enough that every worker claims iterations before and after the kill (at a third of the
# loop) and that a double commit would show in the counts; small enough to take seconds.
N = 2_000
LIB = '''
import os, time


def work(n, ledger):
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{n} {os.getpid()}\\n".encode())
    finally:
        os.close(fd)
    time.sleep(0.003)
    if n % 97 == 0:
        raise ValueError(f"{n} fails by design")
    return n * 2
'''
FLOW = """
name: shared_loop
inputs:
  ledger: {type: string, required: true}
  n: %d
vars: {ok: 0}
steps:
  - id: each
    foreach: "{{ range(inputs.n) | list }}"
    parallel: 4
    max_failures: 100%%
    do:
      id: work
      tool: python
      with: {function: "loopworklib:work", args: {n: "{{ item }}", ledger: "{{ inputs.ledger }}"}}
      vars: {ok: "{{ vars.ok + 1 }}"}
  - id: summary
    vars: {successful: "{{ map.successful }}", failed: "{{ map.failed }}", total: "{{ map.total }}"}
outputs: {ok: "{{ vars.ok }}", successful: "{{ vars.successful }}", failed: "{{ vars.failed }}", total: "{{ vars.total }}"}
"""


def test_three_workers_share_a_loop_and_survive_a_sigkill(tmp_path):
    from tether import Engine
    url = postgres_url()
    try:
        (tmp_path / "loopworklib.py").write_text(LIB)
        flow = tmp_path / "loop.yaml"
        flow.write_text(FLOW % N)
        ledger = tmp_path / "ledger"
        engine = Engine(url)
        run_id = engine.run(flow, {"ledger": str(ledger)}, detach=True).id
        # a short lease: the killed worker's iterations are claimed again soon after it dies
        env = {**os.environ, "TETHER_LEASE_SECONDS": "2"}
        workers = [subprocess.Popen([sys.executable, "-m", "tether", "--db", url, "worker"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path) for _ in range(3)]
        killed = None
        end = time.monotonic() + 300
        try:
            while time.monotonic() < end:
                time.sleep(0.2)
                done = len(ledger.read_text().splitlines()) if ledger.exists() else 0
                if killed is None and done > N // 3:
                    killed = workers[1]
                    killed.send_signal(signal.SIGKILL)
                if engine.get_run(run_id).status in ("completed", "failed"):
                    break
        finally:
            for w in workers:
                if w.poll() is None:
                    w.send_signal(signal.SIGTERM)
            logs = [w.communicate(timeout=60)[1] for w in workers]
        assert killed is not None, "the loop ended before a worker could be killed"
        run = engine.get_run(run_id)
        failed = len([n for n in range(N) if n % 97 == 0])
        assert run.status == "completed", (run.error, logs)
        assert run.outputs == {"ok": N - failed, "successful": N - failed, "failed": failed, "total": N}
        history = engine.history(run_id, "ok")
        assert len(history) == 1 + N - failed  # one write per successful iteration: none committed twice
        [loop] = [s for s in engine.steps(run_id) if s.step_id == "each"]
        assert loop.meta["total"] == N and loop.meta["map"]["completed"] == N and loop.meta["map"]["pending"] == 0
        lines = [line.split() for line in ledger.read_text().splitlines()]
        ran = Counter(n for n, _ in lines)
        assert set(ran) == {str(n) for n in range(N)}
        reruns = sum(c - 1 for c in ran.values())
        assert reruns <= 4, reruns  # the killed worker's work in flight: at most its 4 loop threads
        by_worker = Counter(pid for _, pid in lines)
        assert len(by_worker) == 3, by_worker  # every worker ran iterations of the one loop
        assert all("Traceback" not in log for log in logs), logs
        engine.close()
    finally:
        drop_schema(url)


def test_loop_work_writes_leave_commits_synchronous():
    """Claims, renewals, outcomes, releases and removals commit without waiting for the WAL
    flush, each one statement that turns the wait off for its own transaction only: the
    connection they ran on (a pool of one here) still commits synchronously afterwards."""
    from tests.contract.helpers import new_run
    from tether.store import codec
    from tether.store.base import EventWrite
    from tether.store.postgres import PostgresStore
    url = postgres_url()
    store = PostgresStore(url, pool_size=1)
    try:
        run, _ = new_run(store)
        store.start_loop("r1", run.lease_epoch, "each", [codec.encode(i) for i in (10, 20, 30)],
                         EventWrite("loop.started", "each"))
        store.work_publish("r1", "each", [0, 1, 2])
        assert store.work_claim_many("w", 30.0, "r1", "each", 3) == [(0, 10), (1, 20), (2, 30)]
        assert store.work_renew("r1", "each", 0, "w", 30.0)
        assert store.work_done("r1", "each", 0, "w", {"status": "completed"})
        store.work_release("r1", "each", [1], "w")
        store.work_remove("r1", "each", [2])
        assert store._query("SHOW synchronous_commit") == [("on",)]
        assert store.work_left("r1", "each") == 2
    finally:
        store.close()
        drop_schema(url)
