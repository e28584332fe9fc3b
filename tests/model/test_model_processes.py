"""Model steps through the ``tether`` command: SIGKILL during a call and after its answer
was committed, the API key canary, a cassette round trip, and how ``show``/``runs`` read."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import tether_caller
from tests.model.conftest import models_block
from tests.model.fake_openai import FakeOpenAI

CANARY = "sk-canary-7f3a9c1e5b"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    return tether_caller(tmp_path, f"sqlite:///{tmp_path / 'tether.db'}")


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tether", "--db", f"sqlite:///{tmp_path / 'tether.db'}",
                             *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(check, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def committed_results(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM events WHERE type = 'tool.result'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


@pytest.mark.slow  # processes; the fast in-process cover is in test_model_tool.py / test_paid_once.py
def test_sigkill_during_a_call_then_resume_calls_again(server: FakeOpenAI, cli, tmp_path, write_flow):
    write_flow("name: k\n" + models_block(server) + """steps:
  - {id: ask, tool: model, with: {model: m, prompt: "SLEEP:1.5 slow one"}, vars: {t: "{{ result.text }}"}}
""")
    proc = start(tmp_path, "run", "flow.yaml", "--run-id", "k1")
    wait_for(lambda: server.in_flight == 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    out = cli("resume", "k1", "--json")
    assert json.loads(out.stdout)["status"] == "completed"
    assert server.calls == 2  # no answer had been committed: the call is made again
    assert json.loads(cli("vars", "k1", "--json").stdout)["t"] == "echo: slow one"


@pytest.mark.slow  # processes; the fast in-process cover is in test_model_tool.py / test_paid_once.py
def test_sigkill_after_the_answer_was_committed_never_calls_again(server: FakeOpenAI, cli, tmp_path,
                                                                  write_flow):
    write_flow("name: k\n" + models_block(server) + """steps:
  - id: each
    foreach: [x]
    do:
      - {id: first, tool: model, with: {model: m, prompt: "PAID once"}}
      - {id: second, tool: model, with: {model: m, prompt: "SLEEP:1.5 then"}}
""")
    proc = start(tmp_path, "run", "flow.yaml", "--run-id", "k2")
    wait_for(lambda: server.calls_with("SLEEP") == 1 and committed_results(tmp_path / "tether.db") == 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    out = cli("resume", "k2", "--json")
    assert json.loads(out.stdout)["status"] == "completed"
    assert server.calls_with("PAID") == 1  # its committed answer was reused
    assert server.calls_with("SLEEP") == 2


@pytest.mark.slow  # processes; the fast in-process cover is in test_model_tool.py / test_paid_once.py
def test_api_key_never_reaches_store_events_output_or_cassette(server: FakeOpenAI, cli, tmp_path,
                                                               write_flow, monkeypatch):
    monkeypatch.setenv("TETHER_MODEL_CASSETTE", str(tmp_path / "tape.jsonl"))
    write_flow("name: canary\n" + models_block(server) + """steps:
  - {id: leak, tool: model, with: {model: m, prompt: ECHOAUTH}, vars: {said: "{{ result.text }}"}}
  - {id: bad, tool: model, on_failure: continue, with: {model: m, base_url: "http://127.0.0.1:9/v1", prompt: x}}
outputs: {said: "{{ vars.said }}"}
""")
    outputs = [cli("run", "flow.yaml", "--run-id", "c1", "--json", code=None)]
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {CANARY}"  # it was sent
    for args in (["show", "c1", "--json"], ["show", "c1"], ["trace", "c1", "--json"], ["vars", "c1", "--json"],
                 ["runs", "--json"]):
        outputs.append(cli(*args))
    for proc in outputs:
        assert CANARY not in proc.stdout and CANARY not in proc.stderr
    assert "***" in json.loads(outputs[0].stdout)["outputs"]["said"]
    for path in tmp_path.iterdir():
        if path.is_file() and path.name.startswith(("tether.db", "tape")):
            assert CANARY.encode() not in path.read_bytes(), path


@pytest.mark.slow  # processes; the fast in-process cover is in test_model_tool.py / test_paid_once.py
def test_cassette_round_trip_replays_with_the_server_stopped(tmp_path, cli, monkeypatch, write_flow):
    server = FakeOpenAI().start()
    tape = tmp_path / "tape.jsonl"
    monkeypatch.setenv("TETHER_MODEL_CASSETTE", str(tape))
    write_flow("name: tape\n" + models_block(server, input_per_million=3, output_per_million=6) + """steps:
  - id: each
    foreach: [alpha, beta, gamma]
    parallel: 3
    do: {id: ask, tool: model, with: {model: m, prompt: "summarise {{ item }}", schema: {type: object, required: [title], properties: {title: {type: string}}}}}
  - {id: report, vars: {titles: "{{ steps.each.result | map(attribute='json.title') | list }}"}}
outputs: {titles: "{{ vars.titles }}"}
""")
    first = json.loads(cli("run", "flow.yaml", "--json").stdout)
    server.stop()
    assert server.calls == 3 and len(tape.read_text().splitlines()) == 3
    monkeypatch.delenv("OPENAI_API_KEY")
    second = json.loads(cli("run", "flow.yaml", "--json").stdout)
    assert second["status"] == "completed" and second["outputs"] == first["outputs"]
    assert second["outputs"]["titles"] == ["summarise alpha", "summarise beta", "summarise gamma"]
    shown = json.loads(cli("show", second["run_id"], "--json").stdout)
    assert shown["usage"]["calls"] == 3 and shown["usage"]["cost"] is not None
    write_flow((tmp_path / "flow.yaml").read_text().replace("summarise", "describe"))
    missed = cli("run", "flow.yaml", "--json", code=1)
    assert "no recorded call" in json.loads(missed.stdout)["error"]["message"]


def test_show_and_runs_print_tokens_and_cost(server: FakeOpenAI, cli, write_flow):
    write_flow("name: priced\n" + models_block(server, input_per_million=2, output_per_million=4) + """steps:
  - {id: ask, tool: model, with: {model: m, prompt: one two three}}
""")
    cli("run", "flow.yaml", "--run-id", "p1")
    shown = cli("show", "p1").stdout
    assert "step ask: 1 call, 3 input + 4 output tokens, cost 0.000022" in shown
    assert "total: 1 call" in shown
    doc = json.loads(cli("show", "p1", "--json").stdout)
    assert doc["usage"] == {"input_tokens": 3, "output_tokens": 4, "cost": 2.2e-05, "calls": 1}
    assert doc["steps"][0]["meta"]["cost"] == 2.2e-05
    assert "0.000022" in cli("runs").stdout
    assert json.loads(cli("runs", "--json").stdout)[0]["cost"] == 2.2e-05


def test_example_runs_offline_from_its_cassette(tmp_path, monkeypatch):
    """The README's command: the example flow answered by its committed cassette, no server."""
    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("TETHER_MODEL_CASSETTE", str(root / "examples" / "summarise.cassette.jsonl"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    call = tether_caller(tmp_path, f"sqlite:///{tmp_path / 'ex.db'}")
    out = call("run", str(root / "examples" / "summarise.yaml")).stdout
    assert "3 articles summarised" in out
    assert "total: 3 calls, 190 input + 95 output tokens, cost 0.000086" in out
