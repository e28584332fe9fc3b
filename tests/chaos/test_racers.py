"""C3: four processes resume one paused run at the same moment, round after round:
exactly one proceeds each time; the others are refused (exit 4 naming the owner, or
exit 2 once it has completed); the resumed work runs exactly once."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from tests.chaos.conftest import scale

pytestmark = pytest.mark.slow  # rounds of four racing processes

FLOW = """
name: race
vars: {n: 0}
steps:
  - id: gate
    tool: pause
    with: {message: "waiting for the racers"}
  - id: work
    tool: shell
    with: {run: "sleep 0.8"}
    vars: {n: "{{ vars.n + 1 }}"}
outputs: {n: "{{ vars.n }}"}
"""


def test_four_racing_resumers_exactly_one_proceeds_every_round(tmp_path, figures):
    from tether import Engine
    rounds = scale(3, 200)
    flow = tmp_path / "race.yaml"
    flow.write_text(FLOW)
    db_path = tmp_path / "race.db"
    db = f"sqlite:///{db_path}"
    engine = Engine(db)
    for i in range(rounds):
        assert engine.run(flow, run_id=f"r{i}").status == "paused"
    engine.close()
    refused = {2: 0, 4: 0}
    for i in range(rounds):
        racers = [subprocess.Popen([sys.executable, "-m", "tether", "--db", db, "resume", f"r{i}", "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        results = [(p.returncode, out, err) for p in racers for out, err in [p.communicate(timeout=120)]]
        codes = sorted(code for code, _, _ in results)
        assert codes.count(0) == 1 and set(codes) <= {0, 2, 4}, (i, results)
        for code, out, err in results:
            assert "Traceback" not in err, err
            if code == 4:
                assert "owned by" in err, err
            elif code == 2:
                assert "completed" in err, err
            else:
                assert json.loads(out)["outputs"] == {"n": 1}
            if code:
                refused[code] += 1
    con = sqlite3.connect(db_path)
    works = dict(con.execute("SELECT run_id, count(*) FROM steps WHERE step_id = 'work' GROUP BY run_id"))
    statuses = {s for (s,) in con.execute("SELECT status FROM runs")}
    con.close()
    assert works == {f"r{i}": 1 for i in range(rounds)} and statuses == {"completed"}
    figures.update(rounds=rounds, proceeded=rounds, refused_owned=refused[4], refused_completed=refused[2],
                   work_executions=sum(works.values()))
