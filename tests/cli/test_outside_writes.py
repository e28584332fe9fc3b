"""Variables written from outside a running run are never lost: a step that was running
renders its ``vars`` block at commit time, against the outside write (SPEC §4.3)."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

FLOW = """
name: slow
vars: {done: 0}
steps:
  - id: work
    tool: shell
    with: {run: "while [ ! -e go ]; do sleep 0.05; done"}
    vars: {done: "{{ vars.done + 1 }}", seen: "{{ vars.done }}"}
  - id: after
    vars: {done: "{{ vars.done * 2 }}"}
"""


def tether(db: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether", "--db", db, *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def wait_for_event(db: str, run_id: str, kind: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        proc = tether(db, "trace", run_id, "--json")
        if proc.returncode == 0 and any(e["type"] == kind for e in json.loads(proc.stdout)):
            return
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached {kind}")


@pytest.mark.slow  # a run and outside writers, in processes
def test_a_value_set_from_outside_during_a_step_is_seen_by_its_vars_block(sql_url: str, tmp_path: Path) -> None:
    flow = tmp_path / "slow.yaml"
    flow.write_text(FLOW)
    runner = subprocess.Popen([sys.executable, "-m", "tether", "--db", sql_url, "run", flow, "--run-id", "r",
                               "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        wait_for_event(sql_url, "r", "step.started")
        outside = tether(sql_url, "vars", "set", "r", "done", "100")
        assert outside.returncode == 0, outside.stderr
        (tmp_path / "go").touch()  # the step ends after the outside write
        out, err = runner.communicate(timeout=120)
    finally:
        runner.kill()
    assert runner.returncode == 0, (out, err)
    assert json.loads(tether(sql_url, "vars", "r", "--json").stdout) == {"done": 202, "seen": 100}
    history = json.loads(tether(sql_url, "vars", "history", "r", "done", "--json").stdout)
    assert [h["value"] for h in history] == [0, 100, 101, 202]
    report = json.loads(tether(sql_url, "verify", "r", "--json").stdout)
    assert report["ok"] and report["checked"] == 2, report


LOOP = """
name: counting
vars: {n: 0}
steps:
  - id: each
    foreach: "{{ range(12) | list }}"
    parallel: 3
    do:
      id: body
      tool: shell
      with: {run: "if [ {{ item }} -ge 6 ]; then while [ ! -e go ]; do sleep 0.05; done; fi"}
      vars: {n: "{{ vars.n + 1 }}"}
"""


@pytest.mark.slow  # a run and outside writers, in processes
def test_an_outside_write_during_a_parallel_loop_is_kept_by_every_later_iteration(sql_url: str,
                                                                                  tmp_path: Path) -> None:
    flow = tmp_path / "loop.yaml"
    flow.write_text(LOOP)
    runner = subprocess.Popen([sys.executable, "-m", "tether", "--db", sql_url, "run", flow, "--run-id", "l",
                               "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        wait_for_event(sql_url, "l", "loop.started")
        for _ in range(50):  # add 1000 with compare-and-set: iterations commit meanwhile
            got = json.loads(tether(sql_url, "vars", "get", "l", "n", "--json").stdout)
            added = tether(sql_url, "vars", "set", "l", "n", str(got["value"] + 1000),
                           "--expect-version", str(got["version"]))
            if added.returncode == 0:
                break
            assert added.returncode == 4, added.stderr
        else:
            raise AssertionError("the outside write never won its compare-and-set")
        (tmp_path / "go").touch()  # iterations 6.. end after the outside write
        out, err = runner.communicate(timeout=120)
    finally:
        runner.kill()
    assert runner.returncode == 0, (out, err)
    assert json.loads(tether(sql_url, "vars", "l", "--json").stdout) == {"n": 1012}
    sources = [h["source_step"] for h in json.loads(tether(sql_url, "vars", "history", "l", "n", "--json").stdout)]
    assert sources.index("cli") < len(sources) - 1, sources  # iterations committed after the outside write


@pytest.mark.slow  # many CLI processes
def test_fork_and_resume_with_one_bad_set_entry_change_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    flow = tmp_path / "pause.yaml"
    flow.write_text("name: p\nvars: {a: 0}\nsteps:\n  - id: wait\n    tool: pause\n  - id: end\n"
                    "    vars: {a: \"{{ vars.a + 1 }}\"}\n")
    assert tether(db, "run", flow, "--run-id", "orig").returncode == 3  # paused
    before = tether(db, "trace", "orig", "--json").stdout
    for command in ("fork", "resume"):
        bad = tether(db, command, "orig", "--set", "a=5", "--set", "bad name=1")
        assert bad.returncode == 2 and "bad name" in bad.stderr, (command, bad.stderr)
    assert [r["run_id"] for r in json.loads(tether(db, "runs", "--json").stdout)] == ["orig"]
    assert tether(db, "trace", "orig", "--json").stdout == before
    assert json.loads(tether(db, "vars", "orig", "--json").stdout) == {"a": 0}


RACE = """
name: race
vars: {n: 0}
steps:
  - id: each
    foreach: "{{ range(300) | list }}"
    do:
      id: inc
      tool: python
      with:
        code: |
          import time
          def main():
              time.sleep(0.002)
      vars: {n: "{{ vars.n + 1 }}"}
"""


@pytest.mark.slow  # writers racing a run's every commit
def test_outside_writes_racing_every_commit_are_all_kept(sql_url: str, tmp_path: Path) -> None:
    """No window between rendering a commit and making it: an outside write that lands
    during an iteration or between its render and its commit makes it render again, and
    a writer that never stops does not keep the run from committing."""
    from tether import Engine
    flow = tmp_path / "race.yaml"
    flow.write_text(RACE)
    runner = subprocess.Popen([sys.executable, "-m", "tether", "--db", sql_url, "run", flow, "--run-id", "x",
                               "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    engine = Engine(sql_url)
    try:
        wait_for_event(sql_url, "x", "loop.started")
        k = 0
        while runner.poll() is None:  # as fast as it can, while the loop runs
            k += 1
            engine.set_var("x", "n", 1_000_000 * k)
        out, err = runner.communicate(timeout=120)
        assert runner.returncode == 0, (out, err)
        history = engine.history("x", "n")
    finally:
        runner.kill()
        engine.close()
    assert sum(h.source_step == "api" for h in history) > 3
    assert sum(h.source_step == "inc" for h in history) == 300
    for before, write in itertools.pairwise(history):  # every increment saw the value just before it
        assert write.source_step == "api" or write.value == before.value + 1, (before, write)


@pytest.mark.slow  # four commands, each its own process
def test_a_write_to_a_detached_run_before_its_first_step_is_kept(sql_url: str, tmp_path: Path) -> None:
    """The new-user trial's repro: the CLI confirmed ``done = 50 (version 1)``, then the
    worker's first commit wrote the flow's initial 0 over it and the run ended ``done: 1``."""
    flow = tmp_path / "cnt.yaml"
    flow.write_text("""
name: cnt
vars: {done: 0}
steps:
  - id: bump
    vars: {done: "{{ vars.done + 1 }}"}
outputs: {done: "{{ vars.done }}"}
""")
    assert tether(sql_url, "run", flow, "--detach", "--run-id", "cnt3").returncode == 0
    written = tether(sql_url, "vars", "set", "cnt3", "done", "50")
    assert written.returncode == 0 and "version 1" in written.stdout, (written.stdout, written.stderr)
    worked = tether(sql_url, "worker", "--once")
    assert worked.returncode == 0, worked.stderr
    assert json.loads(tether(sql_url, "vars", "cnt3", "--json").stdout) == {"done": 51}
    history = json.loads(tether(sql_url, "vars", "history", "cnt3", "done", "--json").stdout)
    assert [(h["source_step"], h["value"]) for h in history] == [("cli", 50), ("bump", 51)]
