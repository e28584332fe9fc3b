"""SIGKILL real `tether` processes at random moments and resume them to the end.

The final variables must equal those of an uninterrupted run; every step must be
committed exactly once among the visible records; a side effect may repeat only for
a step that had started and not committed when the process died (at most one per
kill); the database must pass SQLite's integrity check.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import kill_after, stored_status

FLOW = """
name: chaos
vars: {counter: 0, trail: []}
steps:
""" + "".join(f"""
  - id: bump{i}
    vars: {{counter: "{{{{ vars.counter + {i} }}}}"}}
  - id: effect{i}
    tool: python
    with:
      code: |
        import time
        def main(ctx, ledger, n):
            with open(ledger, "a") as f:
                f.write(ctx.idempotency_key + "\\n")
            time.sleep(0.12)
            return n * 2
      args: {{ledger: "{{{{ inputs.ledger }}}}", n: "{{{{ vars.counter }}}}"}}
    vars: {{trail: "{{{{ vars.trail + [result] }}}}"}}
""" for i in range(20)) + """
outputs:
  counter: "{{ vars.counter }}"
  trail: "{{ vars.trail }}"
inputs:
  ledger: {type: string, required: true}
"""


def _tether(db: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tether", "--db", db, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _uninterrupted(tmp_path: Path, flow: Path) -> dict:
    db = f"sqlite:///{tmp_path / 'clean.db'}"
    proc = _tether(db, "run", str(flow), "-i", f"ledger={tmp_path / 'clean.ledger'}", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out)["outputs"]


@pytest.mark.parametrize("seed", [int(s) for s in os.environ.get("TETHER_CHAOS_SEEDS", "1,2").split(",")])
def test_random_sigkills_then_resume_reach_the_uninterrupted_state(tmp_path, seed):
    rng = random.Random(seed)
    flow = tmp_path / "chaos.yaml"
    flow.write_text(FLOW)
    expected = _uninterrupted(tmp_path, flow)
    db_path = tmp_path / "chaos.db"
    db = f"sqlite:///{db_path}"
    ledger = tmp_path / "chaos.ledger"
    kills = 0

    for attempt in range(60):
        status = stored_status(db_path, "crash-1")
        if status == "completed":  # killed after its last commit
            break
        args = ["resume", "crash-1", "--json"] if status else \
            ["run", str(flow), "--run-id", "crash-1", "-i", f"ledger={ledger}", "--json"]
        proc = _tether(db, *args)
        if kills < 6 and kill_after(proc, rng.uniform(0.35, 1.0)):
            kills += 1
            continue
        out, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        assert proc.returncode == 0, (proc.returncode, out, err)
        break
    else:
        pytest.fail("the run never completed")
    assert kills >= 3, "the test must actually interrupt the run"
    show = _tether(db, "show", "crash-1", "--json")
    doc = json.loads(show.communicate(timeout=60)[0])
    assert doc["status"] == "completed"
    assert doc["outputs"] == expected

    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    steps = [r[0] for r in con.execute("SELECT step_id FROM steps WHERE run_id = 'crash-1' ORDER BY seq")]
    assert Counter(steps) == Counter({f"{k}{i}": 1 for i in range(20) for k in ("bump", "effect")})
    assert steps == [f"{k}{i}" for i in range(20) for k in ("bump", "effect")]
    # counter history: one write per bump step, in order, no lost or doubled increments
    values = [json.loads(bytes(r[0])[1:]) for r in con.execute(
        "SELECT value FROM var_history WHERE run_id = 'crash-1' AND name = 'counter' ORDER BY version")]
    assert values == [0] + [sum(range(i + 1)) for i in range(1, 20)]
    # side effects: every effect happened; repeats only for in-flight steps, at most one per kill
    seen = Counter(ledger.read_text().split())
    committed = {key if "/" in key else f"crash-1/{step}/{key}"  # standard keys are stored compacted
                 for step, key in con.execute("SELECT step_id, idempotency_key FROM steps WHERE step_id LIKE 'effect%'")}
    assert set(seen) == committed
    repeats = sum(n - 1 for n in seen.values())
    assert repeats <= kills
    # a resumed run re-renders to exactly what it recorded
    verify = _tether(db, "verify", "crash-1", "--json")
    out, err = verify.communicate(timeout=60)
    report = json.loads(out)
    assert verify.returncode == 0 and report["ok"] and report["checked"] == 40, (report, err)
