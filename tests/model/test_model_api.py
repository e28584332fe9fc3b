"""``GET /api/runs/{id}`` carries a run's model usage; no API response holds the API key."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.model.conftest import models_block
from tests.model.fake_openai import FakeOpenAI
from tests.server.conftest import Server, wait_status

CANARY = "sk-canary-api-4b1d"


def test_run_detail_has_usage_and_no_key(server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    text = "name: api_model\n" + models_block(server, input_per_million=10, output_per_million=20) + """steps:
  - id: each
    foreach: [a, b]
    do: {id: ask, tool: model, with: {model: m, prompt: "ECHOAUTH {{ item }}"}}
"""
    with Server(f"sqlite:///{tmp_path / 'api.db'}") as api:
        c = api.client()
        run_id = c.post("/api/runs", json={"flow": text}).json()["run_id"]
        doc = wait_status(c, run_id)
        assert doc["status"] == "completed", doc
        usage = doc["usage"]
        assert usage["calls"] == 2 and usage["input_tokens"] == 4 and usage["output_tokens"] == 10
        assert usage["cost"] == round((4 * 10 + 10 * 20) / 1e6, 10)
        for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/steps", f"/api/runs/{run_id}/events"):
            body = c.get(path).text
            assert CANARY not in body
        assert "Bearer ***" in c.get(f"/api/runs/{run_id}/events").text
        page = c.get("/ui/", headers={"Accept": "text/html"}).text  # the web UI's runs list and run page
        assert "cost 0.0002" in page and CANARY not in page
        page = c.get(f"/ui/runs/{run_id}", headers={"Accept": "text/html"}).text
        assert "14 tokens" in page and "cost 0.0002" in page and CANARY not in page


def test_web_ui_views_show_tokens_and_cost(server: FakeOpenAI, make_engine, write_flow):
    from tether.server.ui.run_view import run_page
    from tether.server.ui.runs_view import runs_page
    engine = make_engine()
    run = engine.run(write_flow("name: ui_model\n" + models_block(server, input_per_million=10, output_per_million=20)
                                + "steps:\n  - {id: ask, tool: model, with: {model: m, prompt: one two}}\n"))
    plain = engine.run(write_flow("name: plain\nsteps: [{id: s}]\n", "plain.yaml"))
    rows = {r["run_id"]: r for r in runs_page(engine, {})["runs"]}
    assert rows[run.id]["cost"] == round((2 * 10 + 3 * 20) / 1e6, 10) and rows[plain.id]["cost"] is None
    assert run_page(engine, run.id, None, None)["spend"] == {"tokens": 5, "cost": rows[run.id]["cost"]}
    assert run_page(engine, plain.id, None, None)["spend"] == {}
