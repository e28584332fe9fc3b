"""Safety properties (a first part of the fault-injection and security harness).

S4: nothing in the source tree can turn stored data into code.
S3: hostile run ids, step ids and variable names are usage errors and create no files.
C3: an owner stopped past its lease, taken over, then continued, cannot write.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.chaos.conftest import LONG
from tests.helpers import stored_status

SRC = Path(__file__).resolve().parents[2] / "src" / "tether"


def test_no_pickle_eval_or_unsafe_yaml_anywhere_in_the_source():
    forbidden = re.compile(r"\b(pickle|marshal|shelve|dill|cloudpickle)\b|\beval\(|yaml\.load\(|"
                           r"yaml\.unsafe_load|Loader=yaml\.Loader|FullLoader")
    exec_allowed = {SRC / "tools" / "python.py"}  # runs the flow author's own `code:`, never stored data
    problems = []
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for n, line in enumerate(text.splitlines(), 1):
            code = line.split("#", 1)[0]
            if forbidden.search(code):
                problems.append(f"{path}:{n}: {line.strip()}")
            if re.search(r"\bexec\(", code) and path not in exec_allowed:
                problems.append(f"{path}:{n}: {line.strip()}")
    assert problems == []


def quick_first(values: list[str], quick: int) -> list:
    """``values`` as parameters, all but the first ``quick`` marked slow: every hostile value
    runs in the full suite, a few of each family in the quick subset (a CLI process per
    command, each ~0.5 s)."""
    return [v if i < quick else pytest.param(v, marks=pytest.mark.slow) for i, v in enumerate(values)]


@pytest.mark.parametrize("run_id", quick_first(["../escape", "x;DROP TABLE runs", "", "a/b", "..", "-rf", "a" * 65,
                                                "run\nid", "ru n", "%2e%2e"], 3))
def test_hostile_run_ids_are_usage_errors_and_create_nothing(tmp_path, run_id):
    flow = tmp_path / "f.yaml"
    flow.write_text("name: f\nsteps: [{id: s, vars: {x: 1}}]\n")
    work = tmp_path / "work"
    work.mkdir()
    before = set(tmp_path.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "tether", "--db", f"sqlite:///{tmp_path / 'h.db'}", "run",
                           str(flow), "--run-id", run_id], capture_output=True, text=True, cwd=work, timeout=60)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "invalid run id" in proc.stderr and "Traceback" not in proc.stderr
    created = {p for p in set(tmp_path.rglob("*")) - before if not p.name.startswith("h.db")}
    assert created == set()


@pytest.mark.parametrize("name", ["../x", "a-b", "1abc", "x" * 129, "a b", "__class__.x"])
def test_hostile_variable_names_are_refused(tmp_path, name):
    from tether import Engine, UsageError
    e = Engine(f"sqlite:///{tmp_path / 'v.db'}")
    flow = tmp_path / "f.yaml"
    flow.write_text("name: f\nsteps: [{id: s, vars: {x: 1}}]\n")
    run = e.run(flow)
    with pytest.raises(UsageError):
        e.set_var(run.id, name, 1)
    assert e.vars(run.id) == {"x": 1}
    e.close()


@pytest.mark.slow  # waits for a lease to expire, then runs 40 steps
def test_a_stopped_owner_taken_over_cannot_write_when_it_continues(tmp_path):
    flow = tmp_path / "z.yaml"
    flow.write_text("name: zombie\nvars: {n: 0}\nsteps:\n" + "".join(
        f"  - id: s{i}\n    tool: shell\n    with: {{run: 'sleep 0.1'}}\n    vars: {{n: '{{{{ vars.n + 1 }}}}', "
        f"last: s{i}}}\n" for i in range(40)))
    db_path = tmp_path / "z.db"
    db = f"sqlite:///{db_path}"
    env = {**os.environ, "TETHER_LEASE_SECONDS": "1"}  # the heartbeat renews it every 1/3 s
    owner = subprocess.Popen([sys.executable, "-m", "tether", "--db", db, "run", str(flow), "--run-id", "z"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    end = time.monotonic() + 30
    while stored_status(db_path, "z") != "running" and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.8)
    os.kill(owner.pid, signal.SIGSTOP)  # the owner freezes mid-run, holding a 1 s lease
    try:
        time.sleep(2)  # ... long enough for the lease to expire
        taker = subprocess.run([sys.executable, "-m", "tether", "--db", db, "resume", "z", "--json"],
                               capture_output=True, text=True, env=env, timeout=120)
        assert taker.returncode == 0, taker.stderr
        assert json.loads(taker.stdout)["status"] == "completed"
    finally:
        os.kill(owner.pid, signal.SIGCONT)
    _out, err = owner.communicate(timeout=60)
    assert owner.returncode != 0  # its next write was refused
    assert "no longer holds the lease" in err or "owned by" in err or "taken over" in err, err
    assert "Traceback" not in err
    show = subprocess.run([sys.executable, "-m", "tether", "--db", db, "show", "z", "--json"],
                          capture_output=True, text=True, timeout=60)
    doc = json.loads(show.stdout)
    assert doc["status"] == "completed"
    steps = [s["step_id"] for s in doc["steps"]]
    assert sorted(steps, key=lambda s: int(s[1:])) == steps and len(steps) == len(set(steps)) == 40
    values = subprocess.run([sys.executable, "-m", "tether", "--db", db, "vars", "z", "--json"],
                            capture_output=True, text=True, timeout=60)
    assert json.loads(values.stdout) == {"n": 40, "last": "s39"}


HOSTILE_NAMES = ["../escape", "x;DROP TABLE runs", "__class__", "$(touch pwned)", "a" * 300, "run\nid", "",
                 "a/b", "x' OR '1'='1", "..", "-rf", "ru n", "%2e%2e", "名前"]
if not LONG:
    HOSTILE_NAMES = HOSTILE_NAMES[:7]


def _schema(db: Path) -> list[tuple]:
    import sqlite3
    con = sqlite3.connect(db)
    try:
        return sorted(con.execute("SELECT type, name, sql FROM sqlite_master"))
    finally:
        con.close()


OK_FLOW = "name: ok\nsteps: [{id: s, vars: {x: 1}}]\n"


@pytest.fixture(scope="module")
def existing_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a store with one run ("good"), made once by a real ``tether run``."""
    made = tmp_path_factory.mktemp("existing")
    flow = made / "ok.yaml"
    flow.write_text(OK_FLOW)
    db = made / "s3.db"
    subprocess.run([sys.executable, "-m", "tether", "--db", f"sqlite:///{db}", "run", str(flow), "--run-id", "good"],
                   check=True, capture_output=True, timeout=60)
    return made


@pytest.fixture
def existing(tmp_path: Path, existing_store: Path) -> tuple[Path, Path, list[tuple], set[Path]]:
    """A copy of ``existing_store`` in the test folder (each test attacks its own), its schema,
    and the files of the test folder before the attack."""
    flow = tmp_path / "ok.yaml"
    flow.write_text(OK_FLOW)
    for made in existing_store.glob("s3.db*"):  # the database and any -wal/-shm beside it
        shutil.copyfile(made, tmp_path / made.name)
    db = tmp_path / "s3.db"
    return flow, db, _schema(db), set(tmp_path.rglob("*"))


def _attack(tmp_path: Path, db: Path, *args: str) -> subprocess.CompletedProcess:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "tether", "--db", f"sqlite:///{db}", *args],
                          capture_output=True, text=True, cwd=work, timeout=60)


def _unchanged(tmp_path: Path, db: Path, schema: list[tuple], before: set[Path]) -> None:
    assert _schema(db) == schema
    created = {p for p in set(tmp_path.rglob("*")) - before
               if not p.name.startswith("s3.db") and p != tmp_path / "work" and p.suffix != ".yaml"}
    assert created == set()
    assert not (tmp_path / "work" / "pwned").exists()


@pytest.mark.parametrize("step_id", quick_first(HOSTILE_NAMES, 3))
def test_hostile_step_ids_are_usage_errors(tmp_path, existing, step_id):
    _, db, schema, before = existing
    flow = tmp_path / "hostile.yaml"
    flow.write_text(json.dumps({"name": "h", "steps": [{"id": step_id, "vars": {"x": 1}}]}))
    for args in (["validate", str(flow)], ["run", str(flow)]):
        proc = _attack(tmp_path, db, *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.returncode, proc.stderr)
        assert "id" in proc.stderr
    _unchanged(tmp_path, db, schema, before)


HOSTILE_PATHS = ["zero.yaml", "fifo.yaml", "../../../../etc/passwd", "$(touch pwned).yaml", "dir.yaml", "/dev/zero",
                 "a\nb.yaml", "/etc/shadow.yaml", "/dev/stdin", "x;rm -rf ~.yaml", "%2e%2e/x.yaml", "", "-"]
if not LONG:
    HOSTILE_PATHS = HOSTILE_PATHS[:6]


@pytest.mark.parametrize("path", quick_first(HOSTILE_PATHS, 3))
def test_hostile_flow_paths_are_usage_errors(tmp_path, existing, path):
    _, db, schema, before = existing
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    os.mkfifo(work / "fifo.yaml")
    (work / "zero.yaml").symlink_to("/dev/zero")
    (work / "dir.yaml").mkdir()
    before |= set(work.rglob("*")) | {work}
    for args in (["run", path], ["validate", path], ["resume", "good", "--flow", path]):
        proc = _attack(tmp_path, db, *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.returncode, proc.stderr)
    _unchanged(tmp_path, db, schema, before)


@pytest.mark.parametrize("name", quick_first(HOSTILE_NAMES, 3))
def test_hostile_variable_names_from_the_cli_are_usage_errors(tmp_path, existing, name):
    _, db, schema, before = existing
    for args in (["vars", "set", "good", name, "1"], ["vars", "get", "good", name], ["vars", "rm", "good", name],
                 ["vars", "history", "good", name], ["resume", "good", "--set", f"{name}=1"]):
        proc = _attack(tmp_path, db, *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.returncode, proc.stderr)
    _unchanged(tmp_path, db, schema, before)
