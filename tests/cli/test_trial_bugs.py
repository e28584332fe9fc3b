"""Bugs found by a new-user trial (verify and the environment, a bad PostgreSQL URL,
characters outside the BMP), through real processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def tether(tmp_path: Path, db: str, *args: object, env: dict[str, str] | None = None,
           drop: tuple[str, ...] = (), code: int | None = 0, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m tether --db DB ARGS`` with ``env`` added to and ``drop`` removed from the environment."""
    environ = {k: v for k, v in os.environ.items() if k not in drop} | (env or {})
    proc = subprocess.run([sys.executable, "-m", "tether", "--db", db, *map(str, args)], capture_output=True,
                          text=True, cwd=tmp_path, env=environ, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


SECRET_FLOW = """name: sec
env:
  API_KEY: {secret: true, required: true}
steps:
  - id: use
    tool: shell
    with: {run: "echo key={{ env.API_KEY }}", env: {K: "{{ env.API_KEY }}"}}
    vars: {length: "{{ env.API_KEY | length }}"}
  - id: plain
    vars: {n: "{{ 1 + 1 }}"}
"""


def test_verify_does_not_need_a_secret_env_var_and_never_reports_it_as_differing(tmp_path):
    db = f"sqlite:///{tmp_path / 'v.db'}"
    (tmp_path / "sec.yaml").write_text(SECRET_FLOW)
    tether(tmp_path, db, "run", "sec.yaml", "--run-id", "sec1", env={"API_KEY": "k-1234"})
    for env in ({}, {"API_KEY": "another-value"}):  # unset, or not the value the run saw
        report = json.loads(tether(tmp_path, db, "verify", "sec1", "--json", env=env, drop=("API_KEY",)).stdout)
        assert report["ok"] and report["differences"] == [], report
        assert {(v["step"], v["field"]) for v in report["volatile"]} == {("use", "with"), ("use", "vars.length")}
        assert all("API_KEY" in v["reason"] for v in report["volatile"]), report
        text = tether(tmp_path, db, "verify", "sec1", env=env, drop=("API_KEY",)).stdout
        assert "env.API_KEY" in text and "clean" in text, text
    # the value the run saw (its keyed hash matches the snapshot): compared
    report = json.loads(tether(tmp_path, db, "verify", "sec1", "--json", env={"API_KEY": "k-1234"}).stdout)
    assert report["ok"] and report["volatile"] == [] and report["checked"] == 2, report


ENV_FLOW = """name: par
env:
  MODE: {default: dev}
steps:
  - id: early
    vars: {early: "{{ env.MODE }}"}
  - id: gate
    tool: pause
    vars: {at_gate: "{{ env.MODE }}"}
  - id: after
    vars: {after: "{{ env.MODE }}"}
  - id: fin
    tool: shell
    with: {run: "echo {{ env.MODE }}"}
    vars: {mode: "{{ env.MODE }}"}
  - id: loop
    foreach: "{{ [1, 2] }}"
    do: {id: body, tool: shell, with: {run: "echo {{ env.MODE }} {{ item }}"}}
    vars: {looped: "{{ env.MODE }}"}
"""


# verified with MODE unset in the quick subset; set to the start value or another (eight CLI
# processes each) in the full suite
@pytest.mark.parametrize("verifying_mode", [None, pytest.param("dev", marks=pytest.mark.slow),
                                            pytest.param("staging", marks=pytest.mark.slow)])
def test_a_run_resumed_in_another_environment_verifies_clean(tmp_path, verifying_mode):
    db = f"sqlite:///{tmp_path / 'v.db'}"
    (tmp_path / "par.yaml").write_text(ENV_FLOW)
    tether(tmp_path, db, "run", "par.yaml", "--run-id", "par1", drop=("MODE",), code=3)
    tether(tmp_path, db, "resume", "par1", "--env-policy", "warn", env={"MODE": "prod"})
    seen = {name: v["value"] if isinstance(v, dict) else v
            for name, v in json.loads(tether(tmp_path, db, "vars", "par1", "--json").stdout).items()}
    assert seen == {"early": "dev", "at_gate": "prod", "after": "prod", "mode": "prod", "looped": "prod"}, seen
    env = {"MODE": verifying_mode} if verifying_mode else {}
    report = json.loads(tether(tmp_path, db, "verify", "par1", "--json", env=env, drop=("MODE",)).stdout)
    assert report["ok"] and report["differences"] == [] and report["volatile"] == [], report
    assert report["checked"] == 5
    # a second resume goes back to the start environment: the steps it re-runs saw dev again
    tether(tmp_path, db, "resume", "par1", "--from", "fin", "--env-policy", "warn", drop=("MODE",))
    report = json.loads(tether(tmp_path, db, "verify", "par1", "--json", env={"MODE": "prod"}).stdout)
    assert report["ok"] and report["volatile"] == [], report


def test_a_computed_variable_reads_the_environment_the_run_was_resumed_with(tmp_path):
    db = f"sqlite:///{tmp_path / 'v.db'}"
    (tmp_path / "c.yaml").write_text('name: c\nenv:\n  MODE: {default: dev}\ncomputed:\n  mode: "{{ env.MODE }}"\n'
                                     "steps:\n  - id: gate\n    tool: pause\n")
    tether(tmp_path, db, "run", "c.yaml", "--run-id", "c1", drop=("MODE",), code=3)
    read = json.loads(tether(tmp_path, db, "vars", "get", "c1", "mode", "--json", drop=("MODE",)).stdout)
    assert read["value"] == "dev"
    tether(tmp_path, db, "resume", "c1", "--env-policy", "warn", env={"MODE": "prod"})
    read = json.loads(tether(tmp_path, db, "vars", "get", "c1", "mode", "--json", drop=("MODE",)).stdout)
    assert read["value"] == "prod", read


def _no_such_database() -> str:
    """The test server's URL with a database that does not exist (and a password)."""
    from urllib.parse import urlsplit, urlunsplit

    from tests.conftest import postgres_url
    parts = urlsplit(postgres_url())  # skips (or fails in CI) without a test server
    netloc = f"{parts.username}:pw-canary-77@{parts.hostname}:{parts.port}"  # a password the output must hide
    return urlunsplit((parts.scheme, netloc, "/tether_no_such_database_1f3", "", ""))


@pytest.mark.parametrize("case", ["refused", "no-database"])
def test_a_bad_postgresql_url_fails_at_once_with_one_clear_line(tmp_path, case):
    import time
    said: tuple[str, ...]
    if case == "refused":
        url, said = "postgresql://postgres:pw-canary-77@127.0.0.1:1/x", ("127.0.0.1", "port 1", "refused")
    else:
        url, said = _no_such_database(), ('database "tether_no_such_database_1f3" does not exist',)
    started = time.monotonic()
    proc = tether(tmp_path, url, "runs", code=1, timeout=60)
    took = time.monotonic() - started
    assert took < 10, took
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert all(s in lines[0] for s in said), lines
    assert "psycopg.pool" not in proc.stderr and "WARNING" not in proc.stderr
    assert "pw-canary-77" not in proc.stderr + proc.stdout
    doc = json.loads(tether(tmp_path, url, "runs", "--json", code=1).stdout)
    assert doc["error"]["type"] == "StoreError" and all(s in doc["error"]["message"] for s in said), doc



def _flows_with(tmp_path: Path, value: str) -> list[Path]:
    """The same flow as .json (written by json.dump, which escapes everything outside
    ASCII) and as .yaml (the escapes in a double-quoted string), with ``value`` in a
    variable on line 6 of the YAML file."""
    doc = {"name": "js", "steps": [{"id": "a", "vars": {"x": value}}], "outputs": {"x": "{{ vars.x }}"}}
    as_json = tmp_path / "js.json"
    with as_json.open("w") as f:
        json.dump(doc, f, indent=2)
    as_yaml = tmp_path / "js.yaml"
    as_yaml.write_text('name: js\noutputs:\n  x: "{{ vars.x }}"\nsteps:\n  - id: a\n'
                       f'    vars: {{x: {json.dumps(value)}}}\n')
    return [as_json, as_yaml]


def test_a_character_outside_the_bmp_escaped_as_a_surrogate_pair_loads_as_that_character(tmp_path):
    db = f"sqlite:///{tmp_path / 'u.db'}"
    for path in _flows_with(tmp_path, "é🌍"):
        assert "\\ud83c\\udf0d" in path.read_text()
        tether(tmp_path, db, "validate", path)
        doc = json.loads(tether(tmp_path, db, "run", path, "--json").stdout)
        assert doc["outputs"] == {"x": "é🌍"}, doc
        assert json.loads(tether(tmp_path, db, "vars", "get", doc["run_id"], "x", "--json").stdout)["value"] == "é🌍"


# a lone high surrogate in the quick subset, a low one inside text (five CLI processes) in the full suite
@pytest.mark.parametrize("lone", ["\ud83c", pytest.param("a\udf0db", marks=pytest.mark.slow)])
def test_a_lone_surrogate_is_refused_by_validate_and_run_naming_the_file_line_and_field(tmp_path, lone):
    db = f"sqlite:///{tmp_path / 'u.db'}"
    for path in _flows_with(tmp_path, lone):
        line = 7 if path.suffix == ".json" else 6
        for command in ("validate", "run"):
            proc = tether(tmp_path, db, command, path, code=2)
            out = proc.stdout + proc.stderr
            assert f"{path.name}:{line}:" in out and "steps.0.vars.x" in out and "surrogate" in out, out
    assert json.loads(tether(tmp_path, db, "runs", "--json").stdout) == []
