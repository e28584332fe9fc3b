"""Found by a new-user trial of `tether serve` (fix-serve): Host checks without tokens,
state conflicts, pause answers, event streams of paused runs, error documents."""
from __future__ import annotations

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
