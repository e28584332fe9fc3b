"""A 10,000-item parallel loop SIGKILLed 5 times at random moments and resumed to the end.

Aggregates must be exact; a counter incremented in the body must equal the number of
successful iterations (one history row per successful iteration: no iteration's
writes committed twice); side effects may repeat only for in-flight iterations, at
most `parallel` per kill.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter

import pytest

from tests.helpers import kill_after, stored_status

pytestmark = pytest.mark.slow  # a big loop killed and resumed 5 times

LIB = '''
import os
import time


def work(n, ledger):
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{n}\\n".encode())
    finally:
        os.close(fd)
    time.sleep(0.006)
    if n % 97 == 0:
        raise ValueError(f"{n} fails by design")
    return n * 2
'''

FLOW = """
name: loop_chaos
inputs:
  ledger: {type: string, required: true}
  n: 10000
vars: {ok: 0}
steps:
  - id: each
    foreach: "{{ range(inputs.n) | list }}"
    parallel: 8
    max_failures: 100%
    do:
      id: work
      tool: python
      with: {function: "chaoslib:work", args: {n: "{{ item }}", ledger: "{{ inputs.ledger }}"}}
      vars: {ok: "{{ vars.ok + 1 }}"}
  - id: summary
    vars: {successful: "{{ map.successful }}", failed: "{{ map.failed }}", total: "{{ map.total }}"}
outputs:
  ok: "{{ vars.ok }}"
  successful: "{{ vars.successful }}"
  failed: "{{ vars.failed }}"
  total: "{{ vars.total }}"
"""


def tether(db: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tether", "--db", db, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_parallel_loop_survives_five_sigkills(tmp_path):
    rng = random.Random(int(os.environ.get("TETHER_CHAOS_SEED", "7")))
    (tmp_path / "chaoslib.py").write_text(LIB)
    flow = tmp_path / "loop.yaml"
    flow.write_text(FLOW)
    db_path = tmp_path / "loop.db"
    db = f"sqlite:///{db_path}"
    ledger = tmp_path / "ledger"
    kills = 0
    for _ in range(40):
        st = stored_status(db_path, "loop")
        if st == "completed":
            break
        args = ["resume", "loop"] if st else ["run", flow, "--run-id", "loop", "-i", f"ledger={ledger}"]
        proc = tether(db, *args)
        if kills < 5 and kill_after(proc, rng.uniform(0.6, 1.6)):
            kills += 1
            continue
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "Traceback" not in err, (proc.returncode, out, err)
    assert stored_status(db_path, "loop") == "completed"
    assert kills == 5
    show = tether(db, "show", "loop", "--json")
    doc = json.loads(show.communicate(timeout=60)[0])
    expected_failed = len([n for n in range(10000) if n % 97 == 0])
    assert doc["outputs"] == {"ok": 10000 - expected_failed, "successful": 10000 - expected_failed,
                              "failed": expected_failed, "total": 10000}
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM iterations WHERE run_id = 'loop'").fetchone()[0] == 10000
    writes = con.execute("SELECT count(*) FROM var_history WHERE run_id = 'loop' AND name = 'ok'").fetchone()[0]
    assert writes == 1 + 10000 - expected_failed  # the initial value, then one per successful iteration
    ran = Counter(int(x) for x in ledger.read_text().split())
    assert set(ran) == set(range(10000))
    reruns = sum(c - 1 for c in ran.values())
    assert reruns <= 8 * kills, reruns
    print(f"kills={kills} re-run iterations={reruns}")
    verify = tether(db, "verify", "loop", "--json")
    report = json.loads(verify.communicate(timeout=120)[0])
    assert report["ok"], report
