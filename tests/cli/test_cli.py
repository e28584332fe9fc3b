"""The command line through real subprocesses: documents, exit codes, no tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import tether_caller

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.yaml"


@pytest.fixture
def cli(tmp_path: Path):
    return tether_caller(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}", code=0, timeout=60)


def test_run_json_prints_exactly_the_documented_document(cli):
    proc = cli("run", QUICKSTART, "-i", "words=3", "--json")
    doc = json.loads(proc.stdout)
    assert set(doc) == {"run_id", "status", "outputs", "error"}
    assert doc["status"] == "completed" and doc["error"] is None
    assert doc["outputs"] == {"verdict": "mostly long words", "longest": "survives", "long_share": 0.67,
                              "words": 3}


@pytest.mark.slow  # a dozen CLI processes
def test_show_vars_history_trace_runs_json(cli):
    run_id = json.loads(cli("run", QUICKSTART, "--json").stdout)["run_id"]
    show = json.loads(cli("show", run_id, "--json").stdout)
    assert {"run_id", "status", "outputs", "error", "flow", "parent_id", "created_at", "started_at",
            "finished_at", "steps"} <= set(show)
    assert [s["step_id"] for s in show["steps"]] == ["split", "score", "mostly_short"]
    values = json.loads(cli("vars", run_id, "--json").stdout)
    assert values["verdict"] == "mostly short words" and values["total_words"] == 5
    one = json.loads(cli("vars", "get", run_id, "attempts", "--json").stdout)
    assert set(one) == {"name", "value", "type", "scope", "version", "source_step", "created_at", "updated_at",
                        "accessed_at", "access_count"}
    assert (one["value"], one["version"], one["source_step"], one["type"]) == (1, 2, "score", "step_result")
    hist = json.loads(cli("vars", "history", run_id, "attempts", "--json").stdout)
    assert [(h["version"], h["value"], h["source_step"]) for h in hist] == [(1, 0, "flow"), (2, 1, "score")]
    assert set(hist[0]) == {"version", "value", "seq", "source_step", "at"}
    trace = json.loads(cli("trace", run_id, "--json").stdout)
    assert trace[0]["type"] == "run.started" and trace[-1]["type"] == "run.completed"
    runs = json.loads(cli("runs", "--json").stdout)
    assert runs[0]["run_id"] == run_id and runs[0]["status"] == "completed"


@pytest.mark.slow  # a dozen CLI processes
def test_vars_set_rm_and_stale_version(cli):
    run_id = json.loads(cli("run", QUICKSTART, "--json").stdout)["run_id"]
    doc = json.loads(cli("vars", "set", run_id, "limit", '{"a": [1, 2]}', "--json").stdout)
    assert doc["value"] == {"a": [1, 2]} and doc["version"] == 1 and doc["type"] == "user_defined"
    assert json.loads(cli("vars", "set", run_id, "note", "plain text", "--json").stdout)["value"] == "plain text"
    stale = cli("vars", "set", run_id, "limit", "3", "--expect-version", "5", code=4)
    assert "version 1, not 5" in stale.stderr
    cli("vars", "set", run_id, "limit", "3", "--expect-version", "1")
    rm = json.loads(cli("vars", "rm", run_id, "limit", "--json").stdout)
    assert rm == {"run_id": run_id, "var_name": "limit", "deleted": True}
    cli("vars", "get", run_id, "limit", code=5)


@pytest.mark.slow  # a dozen CLI processes
def test_exit_codes_and_messages(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - id: a\n    tool: shel\n")
    proc = cli("validate", bad, code=2)
    assert f"{bad}:4:11: unknown tool 'shel' (did you mean 'shell'?)" in proc.stderr
    assert cli("run", bad, code=2).stdout == ""
    failing = tmp_path / "fail.yaml"
    failing.write_text("name: fail\nsteps:\n  - id: a\n    tool: shell\n    with: {run: 'exit 7'}\n")
    doc = json.loads(cli("run", failing, "--json", code=1).stdout)
    assert doc["status"] == "failed" and doc["error"]["type"] == "ExitCodeError"
    assert "no such flow file" in cli("run", tmp_path / "nope.yaml", code=2).stderr
    assert "must look like NAME=VALUE" in cli("run", QUICKSTART, "-i", "oops", code=2).stderr
    assert "unknown input 'wrds'" in cli("run", QUICKSTART, "-i", "wrds=3", code=2).stderr
    assert "invalid run id" in cli("run", QUICKSTART, "--run-id", "../x", code=2).stderr
    assert "no run 'ghost'" in cli("show", "ghost", code=5).stderr
    assert "invalid variable name" in cli("vars", "get", "ghost", "a-b", code=2).stderr


def test_existing_run_id_is_not_started_twice(cli):
    first = json.loads(cli("run", QUICKSTART, "--run-id", "daily-1", "--json").stdout)
    again = cli("run", QUICKSTART, "--run-id", "daily-1", "--json")
    assert json.loads(again.stdout) == first
    assert len(json.loads(cli("runs", "--json").stdout)) == 1


def test_inputs_file(cli, tmp_path):
    (tmp_path / "in.json").write_text('{"words": 2}')
    doc = json.loads(cli("run", QUICKSTART, "--inputs", tmp_path / "in.json", "--json").stdout)
    assert doc["outputs"]["words"] == 2
    (tmp_path / "bad.json").write_text("[1]")
    cli("run", QUICKSTART, "--inputs", tmp_path / "bad.json", code=2)


def test_schema_and_stats(cli):
    schema = json.loads(cli("schema").stdout)
    assert schema["title"] == "Tether flow" and "steps" in schema["properties"]
    cli("run", QUICKSTART)
    stats = json.loads(cli("stats", "--json").stdout)
    assert stats["runs"] == 1 and stats["template_misses"] > 0 and 0 <= stats["template_hit_rate"] <= 1


def test_default_store_is_created_under_the_current_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tether", "run", str(QUICKSTART)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / ".tether" / "tether.db").exists()


def test_help_explains_commands(cli):
    out = cli("--help").stdout
    for command in ("run", "runs", "show", "vars", "trace", "validate", "schema", "stats"):
        assert command in out
    assert "tether vars set RUN NAME VALUE" in cli("vars", "--help").stdout
