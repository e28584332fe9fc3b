"""Found by a new-user trial of `tether serve` (fix-serve): Host checks without tokens,
state conflicts, pause answers, event streams of paused runs, error documents."""
from __future__ import annotations

import time

import httpx

from .conftest import Server

SHELL = "name: pwn\nsteps:\n  - id: s\n    tool: shell\n    with: {run: echo pwned}\n"
FLOW = "name: api\nsteps:\n  - id: a\n    vars: {x: 1}\n"


def test_without_tokens_the_api_answers_only_requests_naming_this_machine(tmp_path):
    with Server(f"sqlite:///{tmp_path / 'h.db'}", tokens={}) as s:
        url = s.url
        # DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1
        r = httpx.post(f"{url}/api/runs", json={"flow": SHELL}, headers={"Host": "evil.example"})
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "forbidden_host"
        assert httpx.get(f"{url}/api/runs", headers={"Host": f"evil.example:{s.port}"}).status_code == 403
        assert httpx.get(f"{url}/metrics", headers={"Host": "evil.example"}).status_code == 403
        assert httpx.get(f"{url}/ui/", headers={"Host": "evil.example"}).status_code == 403
        assert s.app.state.engine.runs() == []  # nothing was queued
        # another site's page posting to 127.0.0.1 (its Origin is its own)
        r = httpx.post(f"{url}/api/runs", json={"flow": SHELL}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403, r.text
        assert s.app.state.engine.runs() == []
        # the names a person uses
        for host in (f"127.0.0.1:{s.port}", f"localhost:{s.port}", f"[::1]:{s.port}", "localhost"):
            assert httpx.get(f"{url}/api/runs", headers={"Host": host}).status_code == 200, host
        r = httpx.post(f"{url}/api/runs", json={"flow": FLOW}, headers={"Origin": f"http://localhost:{s.port}"})
        assert r.status_code == 201, r.text
        assert httpx.post(f"{url}/api/runs", json={"flow": FLOW}).status_code == 201  # curl: no Origin


def test_with_tokens_the_host_is_not_checked(server):
    r = server.client().get("/api/runs", headers={"Host": "tether.internal.example"})
    assert r.status_code == 200, r.text


def test_the_name_given_to_host_is_answered(tmp_path):
    from fastapi.testclient import TestClient

    from tether.server.app import create_app
    app = create_app("memory://", executor=0, hosts=["tether.local"])
    with TestClient(app, base_url="http://tether.local:8080") as named:
        assert named.get("/api/runs").status_code == 200
    with TestClient(app, base_url="http://other.local:8080") as other:
        assert other.get("/api/runs").status_code == 403


PAUSES = "name: p\nsteps:\n  - id: a\n    tool: pause\n  - id: b\n    vars: {x: 1}\n"


def test_state_conflicts_are_409_and_pause_answers_as_documented(server):
    from .conftest import wait_status
    c = server.client()
    done = c.post("/api/runs", json={"flow": FLOW}).json()["run_id"]
    wait_status(c, done)
    for action in ("pause", "cancel"):
        r = c.post(f"/api/runs/{done}/{action}")
        assert r.status_code == 409, (action, r.text)
        assert r.json()["error"] == "InvalidTransition" and "completed" in r.json()["message"]
    r = c.post(f"/api/runs/{done}/resume")  # without a step to start from
    assert r.status_code == 409, r.text
    slow = c.post("/api/runs", json={"flow": "name: s\nsteps:\n  - id: s\n    tool: shell\n"
                                              "    with: {run: sleep 5}\n"}).json()["run_id"]
    wait_status(c, slow, ("running",))
    time.sleep(0.3)
    r = c.post(f"/api/runs/{slow}/pause")
    assert r.status_code == 200 and r.json() == {"run_id": slow, "result": "pause requested",
                                                 "status": "running"}, r.text
    assert c.post(f"/api/runs/{slow}/cancel").status_code == 200
    wait_status(c, slow, ("cancelled",))
    r = c.post(f"/api/runs/{slow}/resume")
    assert r.status_code == 409 and "cancelled" in r.json()["message"], r.text


def test_the_event_stream_of_a_run_that_pauses_ends_with_its_status(server):
    from .conftest import wait_status
    c = server.client()
    run_id = c.post("/api/runs", json={"flow": PAUSES}).json()["run_id"]
    wait_status(c, run_id, ("paused",))
    with c.stream("GET", f"/api/runs/{run_id}/events", params={"follow": "true"}, timeout=10) as r:
        text = "".join(r.iter_text())
    assert text.endswith('event: end\ndata: {"status":"paused"}\n\n'), text
    assert "event: run.paused" in text


def test_an_invalid_flow_lists_its_problems_and_messages_name_no_cli_flags(server):
    from .conftest import wait_status
    c = server.client()
    bad = "name: bad\nsteps:\n  - id: a\n    tool: nosuch\n  - id: a\n    vars: {x: 1}\n"
    r = c.post("/api/runs", json={"flow": bad})
    assert r.status_code == 400, r.text
    body = r.json()
    assert isinstance(body["problems"], list) and len(body["problems"]) >= 2, body
    assert all(p["message"] and p["message"] in body["message"] for p in body["problems"]), body
    done = c.post("/api/runs", json={"flow": FLOW}).json()["run_id"]
    wait_status(c, done)
    for path, doc in ((f"/api/runs/{done}/resume", {"from_step": "nope"}),
                      (f"/api/runs/{done}/fork", {"from_step": "nope"}),
                      (f"/api/runs/{done}/resume", {"retry_failed": True})):
        r = c.post(path, json=doc)
        assert r.status_code == 400 and "--" not in r.json()["message"], (path, r.text)
