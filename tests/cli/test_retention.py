"""`tether gc`, `tether rm` and `tether stats` through the real command line: reports, the
SQLite file shrinking, and every refusal with its exit code (2 usage, 4 conflict, 5 not found)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import tether_caller

FLOW = """name: cli_gc
vars: {n: 0}
steps:
  - id: a
    tool: python
    with: {code: "def main(): return 'x' * 3000"}
    vars: {n: "{{ vars.n + 1 }}"}
"""
PAUSES = "name: pauses\nsteps:\n  - id: p\n    tool: pause\n    with: {message: wait}\n"


@pytest.fixture
def cli(tmp_path: Path):
    (tmp_path / "f.yaml").write_text(FLOW)
    (tmp_path / "p.yaml").write_text(PAUSES)
    return tether_caller(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}", code=0, timeout=60)


def doc(proc) -> dict:
    return json.loads(proc.stdout)


def test_gc_rm_and_stats(cli, tmp_path):
    ids = [doc(cli("run", "f.yaml", "--json"))["run_id"] for _ in range(3)]
    paused = doc(cli("run", "p.yaml", "--json", code=3))["run_id"]
    stats = doc(cli("stats", "--json"))
    assert stats["database_bytes"] > 0 and stats["blob_stores"]["database"] == {"count": 0, "bytes": 0}
    assert stats["gc_would_reclaim"]["runs"] == 0  # gc's default: runs older than 30 days

    dry = doc(cli("gc", "--older-than", "0", "--dry-run", "--json"))
    assert dry["dry_run"] and set(dry["run_ids"]) == set(ids) and dry["rows"] > 0
    assert len(doc(cli("runs", "--json"))) == 4  # nothing changed

    size = os.path.getsize(tmp_path / "cli.db")
    done = doc(cli("gc", "--older-than", "0", "--keep-last", "1", "--json"))
    assert set(done["run_ids"]) == set(ids[:2]) and done["bytes"] > 0
    assert done["database_bytes_after"] <= done["database_bytes_before"]
    assert os.path.getsize(tmp_path / "cli.db") <= size
    left = {r["run_id"] for r in doc(cli("runs", "--json"))}
    assert left == {ids[2], paused}

    out = cli("gc", "--older-than", "0", "--keep-last", "1").stdout
    assert "deleted 0 run(s)" in out  # the paused run is not finished; the last one is kept

    rm = doc(cli("rm", ids[2], "--json"))
    assert rm["run_id"] == ids[2] and rm["deleted"] and rm["rows"] > 0
    assert cli("rm", ids[2], code=5).stderr.startswith("error: no run")
    err = cli("rm", paused, "--json", code=4)
    assert doc(err)["error"]["type"] == "ConflictError" and "paused" in err.stderr
    assert "tether cancel" in err.stderr


@pytest.mark.parametrize("args", [
    ("gc", "--status", "done"), ("gc", "--older-than", "3x"), ("gc", "--keep-last", "-1"),
    ("rm", "../etc"),
])
def test_bad_input_is_a_usage_error(cli, args):
    proc = cli(*args, "--json", code=2)
    assert doc(proc)["error"]["type"] in ("UsageError", "BadParameter", "NoSuchOption")


def test_a_bad_tether_retention_is_a_usage_error(cli, monkeypatch):
    monkeypatch.setenv("TETHER_RETENTION", "forever")
    proc = cli("gc", code=2)
    assert "TETHER_RETENTION must be a duration" in proc.stderr
