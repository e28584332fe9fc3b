"""Ownership and control across real processes: kills, racing resumers, pause, cancel, secrets."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import process_gone

SLOW = """
name: slow
vars: {i: 0}
steps:
""" + "".join(f"""
  - id: s{i}
    tool: shell
    with: {{run: "sleep 0.25"}}
    vars: {{i: "{{{{ vars.i + 1 }}}}"}}
""" for i in range(12))


def tether(db: str, *args: str, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tether", "--db", db, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> int:
    """Wait for the process, draining and closing its pipes; return its exit code."""
    proc.communicate(timeout=timeout)
    return proc.returncode


def wait_for_step(db_path: Path, run_id: str, n: int, timeout: float = 30) -> None:
    import sqlite3
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if db_path.exists():
            try:
                con = sqlite3.connect(db_path)
                count = con.execute("SELECT count(*) FROM steps WHERE run_id = ?", (run_id,)).fetchone()[0]
                con.close()
                if count >= n:
                    return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not reach {n} steps")


@pytest.fixture
def slow(tmp_path: Path):
    flow = tmp_path / "slow.yaml"
    flow.write_text(SLOW)
    return flow, tmp_path / "l.db", f"sqlite:///{tmp_path / 'l.db'}"


@pytest.mark.slow  # a kill and four racing resumers
def test_killed_run_is_interrupted_and_exactly_one_of_four_resumers_proceeds(slow):
    flow, db_path, db = slow
    first = tether(db, "run", flow, "--run-id", "race")
    wait_for_step(db_path, "race", 2)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    show = json.loads(tether(db, "show", "race", "--json").communicate(timeout=30)[0])
    assert show["status"] == "interrupted"
    listed = json.loads(tether(db, "runs", "--status", "interrupted", "--json").communicate(timeout=30)[0])
    assert [r["run_id"] for r in listed] == ["race"]
    racers = [tether(db, "resume", "race", "--json") for _ in range(4)]
    results = []
    for p in racers:
        out, err = p.communicate(timeout=60)
        results.append((p.returncode, (out, err)))
    codes = sorted(code for code, _ in results)
    assert codes == [0, 4, 4, 4], results
    for code, (out, err) in results:
        if code == 4:
            assert "owned by" in err or "running, owned by" in err, err
            assert "Traceback" not in err
        else:
            assert json.loads(out)["status"] == "completed"
    final = json.loads(tether(db, "vars", "race", "--json").communicate(timeout=30)[0])
    assert final == {"i": 12}


@pytest.mark.slow  # waits for steps that sleep
def test_pause_request_stops_after_the_current_step(slow):
    flow, db_path, db = slow
    runner = tether(db, "run", flow, "--run-id", "p1")
    wait_for_step(db_path, "p1", 2)
    out, err = tether(db, "pause", "p1").communicate(timeout=30)
    assert "pause requested" in out, err
    assert finish(runner) == 3
    show = json.loads(tether(db, "show", "p1", "--json").communicate(timeout=30)[0])
    assert show["status"] == "paused" and len(show["steps"]) < 12
    assert finish(tether(db, "resume", "p1", "--json")) == 0
    assert json.loads(tether(db, "vars", "p1", "--json").communicate(timeout=30)[0]) == {"i": 12}


def test_cancel_kills_the_running_shell_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    flow = tmp_path / "c.yaml"
    flow.write_text(f"""
name: cancel_me
steps:
  - id: long
    tool: shell
    with: {{run: "sleep 60 & echo $! > {pidfile}; wait"}}
  - id: never
    vars: {{x: 1}}
""")
    db = f"sqlite:///{tmp_path / 'c.db'}"
    runner = tether(db, "run", flow, "--run-id", "c1")
    for _ in range(200):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.05)
    child = int(pidfile.read_text())
    t = time.monotonic()
    out, err = tether(db, "cancel", "c1").communicate(timeout=30)
    assert "cancel requested" in out, err
    assert finish(runner) == 1
    assert time.monotonic() - t < 10
    assert process_gone(child), "the step's child process is still alive"
    show = json.loads(tether(db, "show", "c1", "--json").communicate(timeout=30)[0])
    assert show["status"] == "cancelled"
    assert [s["error"]["type"] for s in show["steps"]] == ["Cancelled"]
    assert finish(tether(db, "resume", "c1")) == 4  # a cancelled run cannot be resumed: a conflict


@pytest.mark.slow  # every read command, in a process each
def test_secrets_never_reach_the_database_or_any_output(tmp_path):
    canary_env, canary_var = "envcanary-5b1c", "varcanary-93fe"
    flow = tmp_path / "s.yaml"
    flow.write_text(f"""
name: secrets
env:
  API_TOKEN: {{secret: true, required: true}}
secret_vars: [password]
steps:
  - id: make
    tool: python
    with: {{code: "def main(p): return p[::-1]", args: {{p: "{canary_var[::-1]}"}}}}
    vars: {{password: "{{{{ result }}}}"}}
  - id: call
    tool: shell
    with: {{run: "echo token={{{{ env.API_TOKEN }}}} pw={{{{ vars.password }}}}; exit 1"}}
    on_failure: continue
  - id: echo
    tool: shell
    with: {{run: "echo {{{{ env.API_TOKEN }}}}-{{{{ vars.password }}}}"}}
    vars: {{combined: "{{{{ result.output }}}}"}}
outputs:
  combined: "{{{{ vars.combined }}}}"
  direct: "{{{{ env.API_TOKEN }}}}"
""")
    db = f"sqlite:///{tmp_path / 's.db'}"
    env = {**os.environ, "API_TOKEN": canary_env}
    outputs = []
    for args in (["--debug", "run", flow, "--run-id", "sec", "--json"], ["show", "sec", "--json"],
                 ["trace", "sec", "--json"], ["vars", "sec", "--json"], ["vars", "history", "sec", "password"],
                 ["vars", "get", "sec", "password", "--json"], ["checkpoints", "sec", "--json"],
                 ["verify", "sec"], ["show", "sec"], ["trace", "sec"]):
        proc = tether(db, *args, env=env)
        out, err = proc.communicate(timeout=60)
        outputs.append(out + err)
    run_doc = json.loads(outputs[0][:outputs[0].rindex("}") + 1])
    assert run_doc["outputs"] == {"combined": "***-***", "direct": "***"}
    everything = "\n".join(outputs)
    assert canary_env not in everything and canary_var not in everything
    for f in tmp_path.iterdir():
        if f.name.startswith("s.db"):
            data = f.read_bytes()
            assert canary_env.encode() not in data and canary_var.encode() not in data, f.name
    revealed = tether(db, "vars", "get", "sec", "password", "--reveal", "--json", env=env).communicate(timeout=60)[0]
    assert json.loads(revealed)["value"] == canary_var


def test_a_run_killed_before_its_first_commit_resumes_from_the_start(tmp_path):
    """Found by the C1 chaos run: a process killed between creating the run and its first
    commit left a run that resume treated as finished (its outputs failed)."""
    flow = tmp_path / "f.yaml"
    flow.write_text("name: early\nvars: {a: 1, b: '{{ vars.a + 1 }}'}\nsteps:\n"
                    "  - {id: s, vars: {c: '{{ vars.b * 10 }}'}}\noutputs: {c: '{{ vars.c }}', a: '{{ vars.a }}'}\n")
    db = f"sqlite:///{tmp_path / 'e.db'}"
    crash = ("import os, sys\nfrom tether import Engine\nfrom tether.engine.engine import Engine as E\n"
             "E._execute = lambda *a, **k: os._exit(9)\nEngine(sys.argv[1]).run(sys.argv[2], run_id=sys.argv[3])\n")
    for run_id in ("plain", "withset"):
        died = subprocess.run([sys.executable, "-c", crash, db, str(flow), run_id], capture_output=True, timeout=60)
        assert died.returncode == 9
    shown = json.loads(tether(db, "show", "plain", "--json").communicate(timeout=30)[0])
    assert shown["status"] == "interrupted"
    out, err = tether(db, "resume", "plain", "--json").communicate(timeout=60)
    assert json.loads(out)["outputs"] == {"c": 20, "a": 1}, err
    out, err = tether(db, "resume", "withset", "--set", "a=4", "--json").communicate(timeout=60)
    assert json.loads(out)["outputs"] == {"c": 50, "a": 4}, err
