"""The `vars` sub-app's forms (its first word optional) and `tether shared`, through real
processes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import tether_caller

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.yaml"


@pytest.fixture
def cli(tmp_path: Path):
    return tether_caller(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}", code=0, timeout=60)


def test_vars_lists_with_or_without_its_verb_and_options_anywhere(cli):
    cli("run", QUICKSTART, "--run-id", "list", "--json")
    short = json.loads(cli("vars", "list", "--json").stdout)  # the run named `list`
    assert short["verdict"] == "mostly short words"
    assert json.loads(cli("vars", "--json", "list").stdout) == short
    assert "verdict" in cli("vars", "list").stdout
    missing = json.loads(cli("vars", "--json", code=2).stdout)
    assert missing["error"]["type"] == "UsageError"
    assert "nope" in json.loads(cli("vars", "nope", "--json", code=5).stdout)["error"]["message"]


def test_shared_list_set_get_rm(cli):
    assert json.loads(cli("shared", "--json").stdout) == []
    doc = json.loads(cli("shared", "set", "k", '{"a": 1}', "--immutable", "--json").stdout)
    assert (doc["name"], doc["value"], doc["version"], doc["immutable"]) == ("k", {"a": 1}, 1, True)
    assert json.loads(cli("shared", "get", "k", "--json").stdout) == doc
    assert [d["name"] for d in json.loads(cli("shared", "--json").stdout)] == ["k"]
    cli("shared", "rm", "k", code=4)  # immutable
    assert "usage: tether shared" in cli("shared", "bogus", code=2).stderr
    cli("shared", "set", "n", "1")
    assert json.loads(cli("shared", "rm", "n", "--json").stdout) == {"name": "n", "deleted": True}
