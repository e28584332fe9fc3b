"""What a user sees (issue 12, item 7): messages, tables, JSON errors, safe shell examples.
Every test drives the real CLI in a subprocess."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.yaml"


@pytest.fixture
def cli(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def call(*args: str, code: int | None = 0, db_url: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        import os
        proc = subprocess.run([sys.executable, "-m", "tether", "--db", db_url or db, *map(str, args)],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60,
                              env={**os.environ, **(env or {})})
        assert "Traceback" not in proc.stderr or "--debug" in args, proc.stderr
        if code is not None:
            assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
        return proc
    return call


@pytest.fixture
def sql_cli(cli, quick_sqlite_url):
    """``cli`` on a fresh SQLite file and on a fresh PostgreSQL schema (that half in the full suite only)."""
    return lambda *args, **kwargs: cli(*args, db_url=quick_sqlite_url, **kwargs)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- shell injection

def test_quickstart_does_not_run_an_injected_command(cli, tmp_path):
    evil = "hi'; touch pwned; echo 'x"
    doc = json.loads(cli("run", QUICKSTART, "-i", f"text={evil}", "--json").stdout)
    assert doc["status"] == "completed", doc
    assert not (tmp_path / "pwned").exists()
    assert doc["outputs"]["words"] == 5  # hi';, touch, pwned;, echo, 'x: the text itself, split on spaces


@pytest.mark.parametrize("value", ["plain", "it's", "a b; rm -rf /", "$(touch pwned)", "`id`", "", "new\nline"])
def test_shquote_makes_one_shell_word(value, tmp_path):
    from tether.templates import render
    command = render("printf %s {{ v | shquote }}", {"v": value}, "test")
    out = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout == value
    assert not (tmp_path / "pwned").exists()
    words = render("printf '<%s>' {{ v | shquote }}", {"v": [value, "x y"]}, "test")
    out = subprocess.run(["/bin/sh", "-c", words], capture_output=True, text=True)
    assert out.stdout == f"<{value}><x y>"


# ---------------------------------------------------------------- runs --status

def test_runs_refuses_an_unknown_status(sql_cli):
    proc = sql_cli("runs", "--status", "bogus", code=2)
    assert "bogus" in proc.stderr and "interrupted" in proc.stderr and "paused" in proc.stderr
    sql_cli("runs", "--status", "interrupted")


# ---------------------------------------------------------------- --db folders

def test_a_named_sqlite_store_in_a_missing_folder_is_an_error(cli, tmp_path):
    proc = cli("runs", db_url="sqlite:///no/such/dir/x.db", code=2)
    assert "no/such/dir" in proc.stderr and "does not exist" in proc.stderr
    assert not (tmp_path / "no").exists()
    proc = cli("runs", db_url=f"sqlite:///{tmp_path}/missing/x.db", code=2)
    assert not (tmp_path / "missing").exists()
    cli("runs", db_url=f"sqlite:///{tmp_path}/x.db")  # an existing folder: the file is created


def test_the_default_store_folder_is_still_created(tmp_path):
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    proc = subprocess.run([sys.executable, "-m", "tether", "runs"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / ".tether" / "tether.db").exists()


# ---------------------------------------------------------------- run ids

def test_a_run_id_taken_by_another_flow_is_a_conflict(sql_cli, tmp_path):
    cli = sql_cli
    one = write(tmp_path, "one.yaml", "name: one\nsteps:\n  - id: a\n    vars: {x: 1}\n")
    two = write(tmp_path, "two.yaml", "name: two\nsteps:\n  - id: a\n    vars: {x: 2}\n")
    cli("run", one, "--run-id", "r1")
    proc = cli("run", two, "--run-id", "r1", code=4)
    assert "'one'" in proc.stderr and "r1" in proc.stderr
    again = cli("run", one, "--run-id", "r1")  # the same flow: the existing run, as before
    assert "already exists" in again.stderr


# ---------------------------------------------------------------- env

def test_a_declared_unset_env_variable_is_undefined(cli, tmp_path):
    flow = write(tmp_path, "env.yaml", "name: envt\nenv:\n  TETHER_UX_MAYBE: {}\nsteps:\n  - id: a\n    vars:\n"
                 "      x: \"{{ env.TETHER_UX_MAYBE | default('fallback') }}\"\n"
                 "      y: \"v=${env.TETHER_UX_MAYBE:-dflt}\"\n"
                 "outputs: {x: '{{ vars.x }}', y: '{{ vars.y }}'}\n")
    doc = json.loads(cli("run", flow, "--json").stdout)
    assert doc["outputs"] == {"x": "fallback", "y": "v=dflt"}
    doc = json.loads(cli("run", flow, "--json", env={"TETHER_UX_MAYBE": "set"}).stdout)
    assert doc["outputs"] == {"x": "set", "y": "v=set"}
    bare = write(tmp_path, "bare.yaml", "name: bare\nenv:\n  TETHER_UX_MAYBE: {}\nsteps:\n  - id: a\n"
                 "    vars: {x: 'is {{ env.TETHER_UX_MAYBE }}'}\n")
    doc = json.loads(cli("run", bare, "--json", code=1).stdout)
    assert "TETHER_UX_MAYBE" in doc["error"]["message"]


# ---------------------------------------------------------------- computed variables

def test_vars_get_of_a_computed_variable_gives_its_value(sql_cli):
    cli = sql_cli
    run_id = json.loads(cli("run", QUICKSTART, "--json").stdout)["run_id"]
    doc = json.loads(cli("vars", "get", run_id, "long_share", "--json").stdout)
    assert (doc["name"], doc["value"], doc["type"]) == ("long_share", 0.4, "computed")
    assert cli("vars", "get", run_id, "long_share").stdout.startswith("0.4\n")
    assert "no variable 'nope'" in cli("vars", "get", run_id, "nope", code=5).stderr


# ---------------------------------------------------------------- a step's own record

OWN = """name: own
steps:
  - id: a
    tool: shell
    with: {run: "echo hi"}
    vars:
      st: "{{ steps.a.status }}"
      out: "{{ steps.a.result.output }}"
      att: "{{ steps.a.attempts }}"
    next:
      - when: "{{ steps.a.status == 'completed' }}"
        goto: b
  - id: skipped_over
    vars: {bad: 1}
  - id: b
    tool: shell
    with: {run: "echo oops >&2; exit 3"}
    on_failure: continue
    next:
      - when: "{{ steps.b.status == 'failed' and steps.b.error.type == 'ExitCodeError' }}"
        goto: c
  - id: skipped_too
    vars: {bad: 2}
  - id: c
    foreach: [1, 2]
    do: {id: c_one, vars: {}}
    vars:
      loop_st: "{{ steps.c.status }} {{ steps.c.map.total }} {{ steps.c.result | length }}"
outputs:
  all: "{{ [vars.st, vars.out, vars.att, vars.loop_st, vars.bad | default('none')] }}"
"""


def test_a_step_reads_its_own_record_in_its_vars_and_next(cli, tmp_path):
    flow = write(tmp_path, "own.yaml", OWN)
    cli("validate", flow)
    doc = json.loads(cli("run", flow, "--json").stdout)
    assert doc["status"] == "completed", doc
    assert doc["outputs"] == {"all": ["completed", "hi", 1, "completed 2 2", "none"]}
    verify = json.loads(cli("verify", doc["run_id"], "--json").stdout)
    assert verify["ok"], verify


# ---------------------------------------------------------------- piped tables

def test_piped_tables_are_not_cut_to_80_columns(cli, tmp_path):
    name = "a-flow-with-a-rather-long-name-for-the-table"
    flow = write(tmp_path, "long.yaml", f"name: {name}\nsteps:\n  - id: a\n    vars: {{x: 1}}\n")
    run_id = "a-very-long-run-identifier-that-goes-on-and-on-0123456789"
    cli("run", flow, "--run-id", run_id)
    rows = [line for line in cli("runs", env={"COLUMNS": "80"}).stdout.splitlines() if run_id in line]
    assert len(rows) == 1 and name in rows[0] and "completed" in rows[0], rows


# ---------------------------------------------------------------- the run id at the start

def test_run_prints_its_id_when_it_starts(tmp_path):
    import os
    import signal
    import time
    flow = write(tmp_path, "slow.yaml", "name: slow\nsteps:\n  - id: wait\n    tool: shell\n"
                 "    with: {run: 'sleep 30'}\n  - id: after\n    vars: {done: true}\n")
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "tether", "--db", db, "run", str(flow)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    try:
        line = proc.stderr.readline()  # before the 30 s step ends
        assert proc.poll() is None, line
        assert "started" in line and "tether resume" in line, line
        run_id = line.split()[1]
        time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    shown = subprocess.run([sys.executable, "-m", "tether", "--db", db, "show", run_id, "--json"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert json.loads(shown.stdout)["run_id"] == run_id


def test_run_json_keeps_stdout_one_document_and_a_piped_stderr_quiet(cli, tmp_path):
    flow = write(tmp_path, "quick.yaml", "name: quick\nsteps:\n  - id: a\n    vars: {x: 1}\n")
    proc = cli("run", flow, "--json")
    assert json.loads(proc.stdout)["status"] == "completed"
    assert "started" not in proc.stderr
    people = cli("run", flow)
    run_id = people.stdout.split()[1]
    assert f"run {run_id} started" in people.stderr


# ---------------------------------------------------------------- pauses

PAUSING = """name: gate
steps:
  - id: gate
    tool: pause
    with: {message: "approve the deploy of {{ 'v' ~ 2 }}"}
  - id: second
    tool: pause
    with: {message: "and now the database"}
  - id: done
    vars: {ok: true}
"""


def test_a_pause_says_why_and_a_paused_run_has_not_finished(cli, tmp_path):
    flow = write(tmp_path, "gate.yaml", PAUSING)
    proc = cli("run", flow, code=3)
    run_id = proc.stdout.split()[1]
    assert "paused at step gate: approve the deploy of v2" in proc.stdout
    assert f"tether resume {run_id}" in proc.stdout
    shown = cli("show", run_id).stdout
    assert "approve the deploy of v2" in shown and "finished" not in shown
    assert json.loads(cli("show", run_id, "--json").stdout)["finished_at"] is None
    again = cli("resume", run_id, "--set", "approved=true", code=3)
    assert "paused at step second: and now the database" in again.stdout
    cli("resume", run_id)
    assert json.loads(cli("show", run_id, "--json").stdout)["finished_at"] is not None


# ---------------------------------------------------------------- --json when a command fails

def test_json_errors_are_one_document_on_stdout(cli, tmp_path):
    missing = json.loads(cli("show", "nope", "--json", code=5).stdout)
    assert missing["error"]["type"] == "NotFound" and "nope" in missing["error"]["message"]
    assert missing["run_id"] == "nope" and "status" not in missing
    usage = json.loads(cli("vars", "get", "r1", "--json", code=2).stdout)
    assert usage["error"]["type"] == "UsageError"
    parser = json.loads(cli("runs", "--bogus", "--json", code=2).stdout)
    assert parser == {"error": {"type": "UsageError", "message": "No such option: --bogus"}}
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    broken = json.loads(cli("runs", "--json", db_url=f"sqlite:///{tmp_path / 'junk.db'}", code=1).stdout)
    assert broken["error"]["type"] == "StoreError"
    bad = write(tmp_path, "bad.yaml", "name: bad\nsteps:\n  - id: a\n    tool: shel\n")
    doc = json.loads(cli("run", bad, "--json", code=2).stdout)
    assert doc["error"]["type"] == "FlowError"
    assert doc["error"]["problems"] == [{"file": str(bad), "line": 4, "column": 11,
                                         "message": "unknown tool 'shel' (did you mean 'shell'?)"}]


def test_validate_json_problems_are_objects(cli, tmp_path):
    bad = write(tmp_path, "bad.yaml", "name: bad\nsteps:\n  - id: a\n    tool: shel\n  - id: a\n")
    doc = json.loads(cli("validate", bad, "--json", code=2).stdout)
    assert doc["valid"] is False
    assert {"file": str(bad), "line": 4, "column": 11,
            "message": "unknown tool 'shel' (did you mean 'shell'?)"} in doc["problems"]
    assert all(set(p) == {"file", "line", "column", "message"} for p in doc["problems"]) and len(doc["problems"]) == 2
    gone = json.loads(cli("validate", tmp_path / "gone.yaml", "--json", code=2).stdout)
    assert gone["problems"] == [{"file": str(tmp_path / "gone.yaml"), "line": None, "column": None,
                                 "message": "no such flow file"}]


def test_a_run_that_loses_its_lease_reports_it_in_json(cli, tmp_path):
    db = tmp_path / "cli.db"
    # the step plays another process taking the run over: it bumps the lease epoch
    steal = (f"import sqlite3; c = sqlite3.connect({str(db)!r}); "
             "c.execute('UPDATE runs SET lease_epoch = lease_epoch + 1'); c.commit()")
    flow = write(tmp_path, "stolen.yaml", "name: stolen\nsteps:\n  - id: take\n    tool: shell\n"
                 f"    with: {{run: [{sys.executable!r}, '-c', {steal!r}]}}\n  - id: b\n    vars: {{x: 1}}\n")
    proc = cli("run", flow, "--json", "--run-id", "lost-1", code=4)
    doc = json.loads(proc.stdout)
    assert doc["error"]["type"] == "LeaseLost" and doc["run_id"] == "lost-1"
    assert doc["status"] in ("running", "interrupted")


# ---------------------------------------------------------------- which iterations failed

LOOP = """name: loopfail
steps:
  - id: each
    foreach: ["a", "b", "c", {"name": "d", "pad": "%s"}]
    max_failures: 1
    do:
      id: one
      tool: shell
      with:
        run: 'case "$ITEM" in a|c) exit 0;; *) echo "cannot process $ITEM" >&2; exit 7;; esac'
        env: {ITEM: "{{ item }}"}
""" % ("x" * 200)


@pytest.mark.parametrize("parallel", [1, 3])
def test_a_failed_loop_names_its_failed_iterations_everywhere(sql_cli, tmp_path, parallel):
    cli = sql_cli
    flow = write(tmp_path, "loop.yaml", LOOP.replace("max_failures: 1", f"max_failures: 1\n    parallel: {parallel}"))
    ran = cli("run", flow, "--run-id", "l1", code=1).stdout
    for text in (ran, cli("show", "l1").stdout, cli("trace", "l1").stdout):
        assert "2 of 4 iterations failed" in text, text
        assert '[1] "b" in one: ExitCodeError: command exited with code 7: cannot process b' in text, text
        assert '[3] "{\\"name\\":\\"d\\"' in text and "…" in text, text  # the item, shortened
    doc = json.loads(cli("show", "l1", "--json").stdout)
    failures = doc["error"]["failures"]
    assert [f["index"] for f in failures] == [1, 3]
    assert failures[0]["item"] == "b" and failures[0]["error"]["type"] == "ExitCodeError"
    assert "code 7" in failures[0]["error"]["message"] and "cannot process b" in failures[0]["error"]["message"]
    assert len(failures[1]["item"]) <= 80
    step = next(s for s in doc["steps"] if s["step_id"] == "each")
    assert step["error"]["failures"] == failures


# ---------------------------------------------------------------- python tracebacks

PYFAIL = '''name: py
steps:
  - id: inline
    tool: python
    on_failure: continue
    with:
      code: |
        def inner(d):
            return d["missing"]

        def main():
            return inner({})
  - id: lib
    tool: python
    timeout: 10s
    with: {function: "lib_fail:main", args: {x: 0}}
'''


def test_a_failing_python_step_keeps_the_traceback_of_the_users_code(cli, tmp_path):
    (tmp_path / "lib_fail.py").write_text("def helper(x):\n    return 1 / x\n\n\ndef main(x):\n    return helper(x)\n")
    flow = write(tmp_path, "py.yaml", PYFAIL)
    ran = cli("run", flow, "--run-id", "p1", code=1).stdout
    shown = cli("show", "p1").stdout
    for text in (ran, shown):
        assert f'File "{tmp_path / "lib_fail.py"}", line 2, in helper' in text, text
        assert "return 1 / x" in text and "ZeroDivisionError: division by zero" in text
    assert 'File "<step inline>", line 2, in inner' in shown and 'return d["missing"]' in shown
    doc = json.loads(cli("show", "p1", "--json").stdout)
    inline = next(s for s in doc["steps"] if s["step_id"] == "inline")["error"]["traceback"]
    assert inline.startswith("Traceback (most recent call last):")
    assert 'File "<step inline>", line 5, in main' in inline and "KeyError: 'missing'" in inline
    assert "/tether/" not in inline  # none of Tether's own frames
    assert "/tether/" not in doc["error"]["traceback"] and "lib_fail.py" in doc["error"]["traceback"]
