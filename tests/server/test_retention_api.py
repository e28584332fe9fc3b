"""`DELETE /api/runs/{run_id}` against a real uvicorn: a write token deletes a finished run
and everything of it; 404 for an unknown run, 409 for an unfinished one or a parent, 403
for a read token; and the server's retention sweeper deletes expired runs on its own."""
from __future__ import annotations

import time
from pathlib import Path

from tests.server.conftest import READ, Server, wait_status

FLOW = "name: api_gc\nvars: {n: 1}\nsteps:\n  - id: one\n    vars: {n: \"{{ vars.n + 1 }}\"}\n"
PAUSES = "name: api_pause\nsteps:\n  - id: p\n    tool: pause\n    with: {message: wait}\n"


def start(client, flow: str = FLOW) -> str:
    r = client.post("/api/runs", json={"flow": flow})
    assert r.status_code == 201, r.text
    return r.json()["run_id"]


def test_delete_a_finished_run(server):
    client = server.client()
    run_id = start(client)
    wait_status(client, run_id)
    assert server.client(READ).delete(f"/api/runs/{run_id}").status_code == 403
    r = client.delete(f"/api/runs/{run_id}")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["run_id"] == run_id and doc["deleted"] is True and doc["rows"] > 0 and doc["bytes"] > 0
    assert client.get(f"/api/runs/{run_id}").status_code == 404
    assert client.get(f"/api/vars/{run_id}").status_code == 404
    r = client.delete(f"/api/runs/{run_id}")
    assert r.status_code == 404 and r.json()["error"] == "NotFound"


def test_an_unfinished_run_or_a_parent_is_refused(server):
    client = server.client()
    paused = start(client, PAUSES)
    wait_status(client, paused, ("paused",))
    r = client.delete(f"/api/runs/{paused}")
    assert r.status_code == 409 and "paused" in r.json()["message"], r.text
    parent = start(client)
    wait_status(client, parent)
    fork = client.post(f"/api/runs/{parent}/fork", json={})
    assert fork.status_code in (200, 202), fork.text
    r = client.delete(f"/api/runs/{parent}")
    assert r.status_code == 409 and "parent" in r.json()["message"], r.text
    assert client.delete("/api/runs/..%2Fetc").status_code in (400, 404)


def test_the_server_applies_tether_retention(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TETHER_RETENTION", "1s")
    with Server(f"sqlite:///{tmp_path / 'ret.db'}") as server:
        client = server.client()
        run_id = start(client)
        wait_status(client, run_id)
        end = time.monotonic() + 30
        while client.get(f"/api/runs/{run_id}").status_code != 404:
            assert time.monotonic() < end, "the sweeper did not delete the run"
            time.sleep(0.2)
