"""Shared variables (§4.5) from flows and the API, and `lock:` across concurrent runs."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest

SHARE = """
name: sharer
steps:
  - id: count
    share: {visits: "{{ (shared.visits | default(0)) + 1 }}", last_run: "{{ run.id }}"}
  - id: read
    vars: {seen: "{{ shared.visits }}", limit: "{{ shared.limit }}"}
outputs: {seen: "{{ vars.seen }}", limit: "{{ vars.limit }}"}
"""


def test_share_blocks_write_shared_variables_that_later_runs_read(engine, write_flow):
    engine.shared_set("limit", 10, immutable=True)
    flow = write_flow(SHARE)
    first = engine.run(flow)
    second = engine.run(flow)
    assert first.outputs == {"seen": 1, "limit": 10} and second.outputs == {"seen": 2, "limit": 10}
    rec = engine.shared_get("visits")
    assert rec.value == 2 and rec.version == 2
    assert engine.shared_get("last_run").value == second.id


def test_writing_an_immutable_shared_variable_fails_the_step(engine, write_flow):
    engine.shared_set("limit", 10, immutable=True)
    run = engine.run(write_flow("name: bad\nsteps: [{id: s, share: {limit: 11}}]\n"))
    assert run.status == "failed" and run.error["type"] == "ConflictError" and "immutable" in run.error["message"]
    assert engine.shared_get("limit").value == 10


LOCKED = """
name: locked
inputs: {ledger: {type: string, required: true}}
steps:
  - id: critical
    lock: "db-{{ 'main' }}"
    tool: python
    with:
      code: |
        import os, time
        def main(ledger):
            start = time.time()
            time.sleep(0.03)
            fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, f"{start} {time.time()}\\n".encode())
            os.close(fd)
      args: {ledger: "{{ inputs.ledger }}"}
"""




@pytest.mark.slow  # 20 runs through 5 worker threads
def test_a_lock_shared_by_20_concurrent_runs_is_never_held_twice(tmp_path, sql_url):
    flow = tmp_path / "locked.yaml"
    flow.write_text(LOCKED)
    ledger = tmp_path / "ledger"
    env = {**os.environ, "TETHER_LEASE_SECONDS": "30"}
    for _ in range(20):
        subprocess.run([sys.executable, "-m", "tether", "--db", sql_url, "run", str(flow), "--detach",
                        "-i", f"ledger={ledger}"], check=True, capture_output=True, timeout=60, env=env)
    workers = [subprocess.Popen([sys.executable, "-m", "tether", "--db", sql_url, "worker", "--once",
                                 "--concurrency", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env) for _ in range(4)]
    for w in workers:
        _, err = w.communicate(timeout=180)
        assert w.returncode == 0 and "Traceback" not in err, err
    listed = json.loads(subprocess.run([sys.executable, "-m", "tether", "--db", sql_url, "runs", "--json",
                                        "--limit", "100"], capture_output=True, text=True, timeout=60).stdout)
    assert [r["status"] for r in listed] == ["completed"] * 20
    spans = sorted(tuple(map(float, line.split())) for line in ledger.read_text().splitlines())
    assert len(spans) == 20
    overlaps = [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1]]
    assert overlaps == []
