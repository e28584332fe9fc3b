"""Paper cuts found by a new-user trial that followed the README and the guide, each
checked through a real ``tether`` process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def tether(cwd: Path, *args: object, code: int | None = 0, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m tether ARGS`` in ``cwd`` (no ``--db`` added), failing on a traceback or,
    unless ``code`` is None, another exit code."""
    environ = {k: v for k, v in os.environ.items() if k != "TETHER_DB"} | (env or {})
    proc = subprocess.run([sys.executable, "-m", "tether", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=environ, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


FLOW = "name: t\nvars: {a: 1}\nsteps:\n  - id: s\n    vars: {b: '{{ vars.a + 1 }}'}\n"


@pytest.fixture()
def db(tmp_path: Path) -> str:
    (tmp_path / "t.yaml").write_text(FLOW)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    tether(tmp_path, "--db", url, "run", "t.yaml", "--run-id", "r1")
    return url


def test_db_and_debug_after_the_command_name(tmp_path: Path, db: str):
    listed = json.loads(tether(tmp_path, "runs", "--json", "--db", db).stdout)
    assert [r["run_id"] for r in listed] == ["r1"]
    assert json.loads(tether(tmp_path, "vars", "r1", "--db", db, "--json").stdout) == {"a": 1, "b": 2}
    assert json.loads(tether(tmp_path, "vars", "get", "--db", db, "r1", "b", "--json").stdout)["value"] == 2
    # after the name it wins over TETHER_DB and over --db before the name
    other = f"sqlite:///{tmp_path / 'other.db'}"
    shown = tether(tmp_path, "--db", other, "show", "r1", "--db", db, "--json", env={"TETHER_DB": other})
    assert json.loads(shown.stdout)["status"] == "completed"
    tether(tmp_path, "run", "t.yaml", "--run-id", "r2", "--db", db)
    assert {r["run_id"] for r in json.loads(tether(tmp_path, "--db", db, "runs", "--json").stdout)} == {"r1", "r2"}
    # --debug after the name: the traceback of a failure is shown
    failed = subprocess.run([sys.executable, "-m", "tether", "show", "nope", "--db", db, "--debug"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert failed.returncode == 5 and "Traceback" in failed.stderr, failed.stderr
    assert "--db URL" in tether(tmp_path, "show", "--help").stdout


def test_version_and_h(tmp_path: Path):
    from tether import __version__
    assert tether(tmp_path, "--version").stdout == f"tether {__version__}\n"
    long, short = tether(tmp_path, "--help").stdout, tether(tmp_path, "-h").stdout
    assert short == long and "-h, --help" in long and "--version" in long
    assert tether(tmp_path, "runs", "-h").stdout == tether(tmp_path, "runs", "--help").stdout
    assert "Usage:" in tether(tmp_path, "vars", "set", "-h").stdout
    # through the app (not the fast path): a narrower terminal
    narrow = tether(tmp_path, "-h", env={"COLUMNS": "60"}).stdout
    assert "-h, --help" in narrow and "Usage:" in narrow
    assert tether(tmp_path, "--version", "--debug").stdout == f"tether {__version__}\n"


SLEEP_FLOW = """name: sl
vars: {secs: 0}
steps:
  - id: first
    vars: {n: 1}
  - id: nap
    tool: shell
    with: {run: "sleep {{ vars.secs }}"}
"""


def test_fork_names_the_new_run_when_it_starts(tmp_path: Path):
    import re
    import signal
    import time
    (tmp_path / "sl.yaml").write_text(SLEEP_FLOW)
    db = f"sqlite:///{tmp_path / 'f.db'}"
    tether(tmp_path, "--db", db, "run", "sl.yaml", "--run-id", "orig")
    done = tether(tmp_path, "--db", db, "fork", "orig")
    new_id = re.search(r"run (\S+) \(sl\): completed", done.stdout)
    assert new_id and f"run {new_id[1]} started" in done.stderr, (done.stdout, done.stderr)
    # interrupted while the fork runs: the id was given at its start, the resume command at its end
    with subprocess.Popen([sys.executable, "-m", "tether", "--db", db, "fork", "orig", "--from", "nap",
                           "--set", "secs=30"], cwd=tmp_path, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        started = re.match(r"run (\S+) started; if it stops, continue it with: tether resume (\S+)", first)
        assert started and started[1] == started[2] and started[1] != "orig", first
        time.sleep(1.5)  # into its sleep
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(30) == 143 and f"tether resume {started[1]}" in rest, rest
    shown = json.loads(tether(tmp_path, "--db", db, "show", started[1], "--json").stdout)
    assert shown["status"] == "interrupted" and shown["parent_id"] == "orig"


def test_a_value_that_starts_like_json_must_be_json_unless_string_is_asked(tmp_path: Path, db: str):
    for bad in ("{a:1", "[1, 2", '"open'):
        refused = tether(tmp_path, "--db", db, "vars", "set", "r1", "c", bad, code=2)
        assert "is not valid JSON" in refused.stderr and "--string" in refused.stderr, refused.stderr
        refused = tether(tmp_path, "--db", db, "shared", "set", "s", bad, code=2)
        assert "is not valid JSON" in refused.stderr and "--string" in refused.stderr, refused.stderr
    assert "c" not in json.loads(tether(tmp_path, "--db", db, "vars", "r1", "--json").stdout)
    assert json.loads(tether(tmp_path, "--db", db, "shared", "--json").stdout) == []
    # asked for: stored as text; valid JSON and plain words as before
    tether(tmp_path, "--db", db, "vars", "set", "r1", "c", "{a:1", "--string")
    tether(tmp_path, "--db", db, "vars", "set", "r1", "d", '{"a": 1}')
    tether(tmp_path, "--db", db, "vars", "set", "r1", "e", "hello")
    tether(tmp_path, "--db", db, "shared", "set", "s", "[1,", "--string")
    values = json.loads(tether(tmp_path, "--db", db, "vars", "r1", "--json").stdout)
    assert (values["c"], values["d"], values["e"]) == ("{a:1", {"a": 1}, "hello")
    assert json.loads(tether(tmp_path, "--db", db, "shared", "get", "s", "--json").stdout)["value"] == "[1,"
    # --set of fork (and resume) likewise; nothing is forked
    refused = tether(tmp_path, "--db", db, "fork", "r1", "--set", "b={x", code=2)
    assert "--set b=" in refused.stderr and "is not valid JSON" in refused.stderr, refused.stderr
    assert len(json.loads(tether(tmp_path, "--db", db, "runs", "--json").stdout)) == 1


BAD_FLOWS = {
    "name: 3\nsteps: {}\n": ["bad.yaml:1:7: name: expected text, found 3",
                             "bad.yaml:2:8: steps: expected a list, found a mapping"],
    "name: t\nsteps:\n  - id: a\n    parallel: -1\n    timeout: xx\n    retry: {attempts: x}\n    if: 3\n": [
        "steps.0.parallel: expected a number >= 1, found -1",
        "steps.0.timeout: invalid duration 'xx'",
        "steps.0.retry.attempts: expected a whole number, found 'x'",
        "steps.0.if: expected text, found 3"],
}


@pytest.mark.parametrize("text", list(BAD_FLOWS))
def test_validate_says_what_was_expected_and_found_in_its_own_words(tmp_path: Path, text: str):
    (tmp_path / "bad.yaml").write_text(text)
    proc = tether(tmp_path, "validate", "bad.yaml", code=2)
    for line in BAD_FLOWS[text]:
        assert line in proc.stderr, proc.stderr
    assert not any(w in proc.stderr for w in ("Input should", "Value error", "pydantic")), proc.stderr
    problems = json.loads(tether(tmp_path, "validate", "bad.yaml", "--json", code=2).stdout)["problems"]
    assert not any("Input should" in p["message"] for p in problems), problems


def test_a_held_run_reads_as_held_and_rewound_records_as_rewound(tmp_path: Path, db: str):
    (tmp_path / "sl.yaml").write_text(SLEEP_FLOW)
    tether(tmp_path, "--db", db, "run", "sl.yaml", "--run-id", "h1")
    import signal
    import time
    with subprocess.Popen([sys.executable, "-m", "tether", "--db", db, "resume", "h1", "--from", "nap",
                           "--set", "secs=30"],
                          cwd=tmp_path, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        time.sleep(2.5)  # into its sleep
        proc.send_signal(signal.SIGINT)
        proc.stderr.read()
        assert proc.wait(30) == 130
    listed = tether(tmp_path, "--db", db, "runs").stdout
    assert "(held: resume or cancel it)" in listed, listed
    docs = {d["run_id"]: d for d in json.loads(tether(tmp_path, "--db", db, "runs", "--json").stdout)}
    assert docs["h1"]["status"] == "interrupted" and docs["h1"]["held"] is True and docs["r1"]["held"] is False
    shown = tether(tmp_path, "--db", db, "show", "h1").stdout
    assert "h1 flow sl: interrupted (held: resume or cancel it)" in shown, shown
    doc = json.loads(tether(tmp_path, "--db", db, "show", "h1", "--json").stdout)
    assert doc["status"] == "interrupted" and doc["held"] is True
    # the first run's record of nap was undone by the rewind (resume --from nap)
    assert [(s["step_id"], s["rewound"]) for s in doc["steps"]][:2] == [("first", False), ("nap", True)], doc
    assert "completed (rewound)" in shown, shown
    # resumed (secs back to 0): no longer held; the rewound record still says so
    tether(tmp_path, "--db", db, "resume", "h1", "--set", "secs=0")
    doc = json.loads(tether(tmp_path, "--db", db, "show", "h1", "--json").stdout)
    assert doc["status"] == "completed" and doc["held"] is False
    assert [s["rewound"] for s in doc["steps"] if s["step_id"] == "nap"] == [True, False], doc["steps"]


def test_show_gives_a_loop_steps_counts_where_its_result_is_not_stored(tmp_path: Path):
    (tmp_path / "lp.yaml").write_text('name: lp\nsteps:\n  - id: each\n    foreach: [3, 1, 4]\n'
                                      '    filter: "{{ item > 1 }}"\n    do:\n      id: sq\n'
                                      '      vars: {x: "{{ item }}"}\noutputs:\n  all: "{{ steps.each.result }}"\n')
    db = f"sqlite:///{tmp_path / 'l.db'}"
    tether(tmp_path, "--db", db, "run", "lp.yaml", "--run-id", "lp1")
    shown = tether(tmp_path, "--db", db, "show", "lp1").stdout
    assert "loop of 3: 2 successful, 0 failed, 1 skipped" in shown, shown
    doc = json.loads(tether(tmp_path, "--db", db, "show", "lp1", "--json").stdout)
    (loop,) = [s for s in doc["steps"] if s["step_id"] == "each"]
    assert loop["result"] is None and loop["meta"]["map"]["skipped"] == 1  # as the guide says
    assert len(doc["outputs"]["all"]) == 3  # in a template: the list of iteration results


FILE_LOOP = "name: ff\nsteps:\n  - id: each\n    foreach_file: {name}\n    do:\n      id: sq\n      vars: {{x: '{{{{ item }}}}'}}\n"


def test_a_missing_foreach_file_is_a_file_not_found_error_naming_the_step(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'ff.db'}"
    (tmp_path / "ff.yaml").write_text(FILE_LOOP.format(name="items.json"))
    failed = tether(tmp_path, "--db", db, "run", "ff.yaml", "--run-id", "f1", code=1)
    want = f"InputFileError: file not found: {tmp_path / 'items.json'} (step each"
    assert want in failed.stdout, failed.stdout
    error = json.loads(tether(tmp_path, "--db", db, "show", "f1", "--json").stdout)["error"]
    assert error["type"] == "InputFileError" and error["step"] == "each", error
    (tmp_path / "items.json").write_text("{not json")
    failed = tether(tmp_path, "--db", db, "run", "ff.yaml", code=1)
    assert "InputFileError: not valid JSON: " in failed.stdout, failed.stdout
    (tmp_path / "items.json").write_text("[1, 2]")  # there now: a resume reads it
    assert json.loads(tether(tmp_path, "--db", db, "resume", "f1", "--json").stdout)["status"] == "completed"
