"""`tether worker` processes apply TETHER_RETENTION and a flow's `retention:` on their own,
on SQLite and PostgreSQL: expired finished runs go, the others stay, and the workers run on."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tether import Engine
from tether.flow import load_flow_text

ROOT = Path(__file__).resolve().parents[2]
SHORT = "name: short\nretention: 1s\nsteps:\n  - id: a\n    vars: {x: 1}\n"
PLAIN = "name: plain\nsteps:\n  - id: a\n    vars: {x: 1}\n"
PAUSES = "name: pauses\nsteps:\n  - id: p\n    tool: pause\n    with: {message: wait}\n"


def test_workers_delete_expired_runs_and_keep_the_others(quick_sqlite_url, tmp_path):
    sql_url = quick_sqlite_url  # on PostgreSQL in the full suite (two worker processes)
    engine = Engine(sql_url)
    short = engine.run(load_flow_text(SHORT, "s.yaml")).id
    plain = engine.run(load_flow_text(PLAIN, "p.yaml")).id
    paused = engine.run(load_flow_text(PAUSES, "q.yaml")).id
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    workers = [subprocess.Popen([sys.executable, "-m", "tether", "--db", sql_url, "worker"], env=env,
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        end = time.monotonic() + 60
        while any(b.run_id == short for b in engine.store.run_briefs()):
            assert time.monotonic() < end, "no worker deleted the expired run"
            assert all(w.poll() is None for w in workers)
            time.sleep(0.2)
        left = {b.run_id for b in engine.store.run_briefs()}
        assert left == {plain, paused}  # no TETHER_RETENTION: a flow without retention: stays
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            _, err = w.communicate(timeout=60)
            assert w.returncode == 0, err
            assert "Traceback" not in err
    engine.close()
