"""The REST API against a real uvicorn on 127.0.0.1, with httpx: every endpoint of §8.3,
auth, the event stream, metrics, bad input and the tool policy."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.server.conftest import READ, Server, wait_status

FLOW = """
name: api
vars: {n: 1}
secret_vars: [password]
steps:
  - id: one
    vars: {n: "{{ vars.n + 1 }}", password: "hunter2-canary"}
  - id: two
    tool: shell
    with: {run: "sleep 0.3; echo done"}
    vars: {n: "{{ vars.n * 10 }}"}
outputs: {n: "{{ vars.n }}"}
"""


def start(client, flow: str = FLOW, **extra) -> str:
    r = client.post("/api/runs", json={"flow": flow, **extra})
    assert r.status_code == 201, r.text
    return r.json()["run_id"]


def test_health_is_open_and_everything_else_needs_a_token(server):
    anon = server.client(None)
    assert anon.get("/api/health").json()["status"] == "ok"
    for method, path in (("GET", "/api/runs"), ("GET", "/metrics"), ("POST", "/api/runs"), ("GET", "/api/vars/x")):
        r = anon.request(method, path)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized", (path, r.text)
    assert server.client("not-a-token-at-all").get("/api/runs").status_code == 401
    reader = server.client(READ)
    assert reader.get("/api/runs").status_code == 200
    r = reader.post("/api/runs", json={"flow": FLOW})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert reader.put("/api/vars/x/y", json={"value": 1}).status_code == 403


def test_a_run_started_through_the_api_executes_and_is_described(server):
    c = server.client()
    run_id = start(c)
    doc = wait_status(c, run_id)
    assert doc["status"] == "completed" and doc["outputs"] == {"n": 20}
    assert doc["completed_steps"] == ["one", "two"] and doc["pending_steps"] == []
    assert doc["progress"] == {"done": 2, "total": 2} and doc["checkpoints"] >= 4
    listed = c.get("/api/runs", params={"status": "completed"}).json()
    assert [r["run_id"] for r in listed["runs"]] == [run_id] and listed["next_cursor"] is None
    steps = c.get(f"/api/runs/{run_id}/steps").json()
    assert [s["step_id"] for s in steps] == ["one", "two"]
    assert c.get(f"/api/runs/{run_id}/steps/two").json()["result"]["output"] == "done"
    assert c.get(f"/api/runs/{run_id}/steps/nope").status_code == 404
    events = c.get(f"/api/runs/{run_id}/events", params={"after": 0}).json()
    assert events[-1]["type"] == "run.completed" and all(e["seq"] > 0 for e in events)
    later = c.get(f"/api/runs/{run_id}/events", params={"after": events[-2]["seq"]}).json()
    assert [e["type"] for e in later] == ["run.completed"]
    diff = c.get(f"/api/runs/{run_id}/diff", params={"from": "one", "to": "two"}).json()
    assert diff["changed"]["n"] == {"from": 2, "to": 20}
    assert "hunter2-canary" not in json.dumps([doc, steps, events, diff])


def test_the_event_stream_follows_a_run_until_it_ends(server):
    c = server.client()
    run_id = start(c)
    seen = []
    with c.stream("GET", f"/api/runs/{run_id}/events", params={"follow": "true"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                seen.append(line[7:])
    assert seen[-1] == "end" and "run.completed" in seen and "step.completed" in seen


def test_variable_endpoints_have_the_documented_shapes(server):
    c = server.client()
    run_id = start(c)
    wait_status(c, run_id)
    all_vars = c.get(f"/api/vars/{run_id}").json()
    assert set(all_vars) == {"run_id", "variables", "count"} and all_vars["count"] == 2
    assert set(all_vars["variables"]["n"]) == {"value", "type", "scope", "source_step", "version", "created_at",
                                               "updated_at", "accessed_at", "access_count"}
    assert all_vars["variables"]["password"]["value"] == "***"
    first = c.get(f"/api/vars/{run_id}/n").json()
    second = c.get(f"/api/vars/{run_id}/n").json()
    assert second["access_count"] == first["access_count"] + 1  # a GET of one variable counts as an access
    assert c.get(f"/api/vars/{run_id}/password").json()["value"] == "***"
    posted = c.post(f"/api/vars/{run_id}", json={"variables": {"a": 1, "b": [2]}}).json()
    assert posted == {"run_id": run_id, "variables_set": 2, "var_names": ["a", "b"]}
    put = c.put(f"/api/vars/{run_id}/a", json={"value": 5, "expected_version": 1})
    assert put.status_code == 200 and put.json()["version"] == 2 and put.json()["type"] == "user_defined"
    stale = c.put(f"/api/vars/{run_id}/a", json={"value": 6, "expected_version": 1})
    assert stale.status_code == 409 and stale.json()["error"] == "ConflictError"
    history = c.get(f"/api/vars/{run_id}/a/history").json()
    assert [h["value"] for h in history] == [1, 5]
    assert c.delete(f"/api/vars/{run_id}/b").json() == {"run_id": run_id, "var_name": "b", "deleted": True}
    assert c.get(f"/api/vars/{run_id}/b").status_code == 404
    assert c.get("/api/vars/NOPE").status_code == 404
    assert c.get("/api/runs/NOPE").status_code == 404
    assert c.get("/api/runs/..%2F..%2Fetc").status_code == 404


def test_post_vars_writes_all_entries_or_none(server):
    c = server.client()
    run_id = start(c)
    wait_status(c, run_id)
    before = c.get(f"/api/vars/{run_id}").json()["variables"]
    events = len(c.get(f"/api/runs/{run_id}/events").json())
    for bad in ({"a": 1, "bad name": 2, "c": 3}, {"a": 1, "c": 2 ** 70}):  # a bad name, an unstorable value
        r = c.post(f"/api/vars/{run_id}", json={"variables": bad})
        assert r.status_code == 400, r.text
    assert c.get(f"/api/vars/{run_id}").json()["variables"] == before
    assert len(c.get(f"/api/runs/{run_id}/events").json()) == events
    ok = c.post(f"/api/vars/{run_id}", json={"variables": {"a": 1, "c": 3}})
    assert ok.status_code == 200, ok.text
    got = c.get(f"/api/vars/{run_id}").json()["variables"]
    assert (got["a"]["value"], got["c"]["value"]) == (1, 3)
    assert got["a"]["version"] == got["c"]["version"] == 1
    new = c.get(f"/api/runs/{run_id}/events").json()[events:]
    assert [(e["type"], e["seq"]) for e in new] == [("var.set", new[0]["seq"])] * 2  # one checkpoint


def test_pause_resume_cancel_and_fork(server):
    c = server.client()
    slow = "name: slow\nvars: {i: 0}\nsteps:\n" + "".join(
        f"  - {{id: s{i}, tool: shell, with: {{run: 'sleep 0.2'}}, vars: {{i: '{{{{ vars.i + 1 }}}}'}}}}\n"
        for i in range(8))
    run_id = start(c, slow)
    wait_status(c, run_id, ("running",))
    assert c.post(f"/api/runs/{run_id}/pause").status_code == 200
    paused = wait_status(c, run_id, ("paused",))
    assert paused["current_step"] is not None and paused["pending_steps"]
    r = c.post(f"/api/runs/{run_id}/resume", json={"set": {"extra": 1}})
    assert r.status_code in (200, 202), r.text
    done = wait_status(c, run_id)
    assert done["status"] == "completed"
    assert c.get(f"/api/vars/{run_id}/i").json()["value"] == 8
    forked = c.post(f"/api/runs/{run_id}/fork", json={"from_step": "s6"})
    assert forked.status_code in (200, 202), forked.text
    again = c.post(f"/api/runs/{run_id}/resume")
    assert again.status_code == 409  # a completed run cannot simply be resumed: a conflict with its state
    other = start(c, slow)
    wait_status(c, other, ("running",))
    assert c.post(f"/api/runs/{other}/cancel").status_code == 200
    assert wait_status(c, other)["status"] == "cancelled"


def test_bad_input_is_a_4xx_never_a_5xx(server):
    c = server.client()
    assert c.post("/api/runs", content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                  headers={"content-type": "application/json"}).status_code == 413
    deep = b'{"flow": ' + b"[" * 200 + b"]" * 200 + b"}"
    r = c.post("/api/runs", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "too_deep"
    assert c.post("/api/runs", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    r = c.post("/api/runs", json={"flow": "name: x\nsteps: [{id: a, tool: nosuch}]\n"})
    assert r.status_code == 400 and "nosuch" in r.json()["message"]
    assert c.post("/api/runs", json={"flow": FLOW, "surprise": 1}).status_code == 422
    assert c.post("/api/runs", json={"flow": FLOW, "run_id": "../x"}).status_code == 400
    assert c.get("/api/runs", params={"limit": 0}).status_code == 422
    assert c.put("/api/vars/x/y", json={"value": 1, "expected_version": -1}).status_code == 422


def test_metrics_report_operations_commits_cache_and_runs(server):
    c = server.client()
    wait_status(c, start(c))
    text = c.get("/metrics").text
    for needle in ('tether_state_operations_total{kind="commit"}', "tether_commit_duration_seconds_bucket",
                   "tether_checkpoints_total", "tether_recoveries_total", "tether_template_cache_hits_total",
                   "tether_template_cache_misses_total", 'tether_runs{status="completed"} 1.0'):
        assert needle in text, needle


def test_the_tool_policy_limits_flows_sent_to_the_server(tmp_path):
    with Server(f"sqlite:///{tmp_path / 'p.db'}", allowed_tools="http,python:json") as s:
        c = s.client()
        shell = "name: s\nsteps: [{id: a, tool: shell, with: {run: 'id'}}]\n"
        r = c.post("/api/runs", json={"flow": shell})
        assert r.status_code == 400 and "TETHER_ALLOWED_TOOLS" in r.json()["message"]
        code = "name: s\nsteps: [{id: a, tool: python, with: {code: 'def main(): return 1'}}]\n"
        assert c.post("/api/runs", json={"flow": code}).status_code == 400
        other = "name: s\nsteps: [{id: a, tool: python, with: {function: 'os:getcwd'}}]\n"
        assert c.post("/api/runs", json={"flow": other}).status_code == 400
        ok = "name: s\nsteps: [{id: a, tool: python, with: {function: 'json:dumps', args: {obj: [1]}}}]\n" \
             "outputs: {x: '{{ steps.a.result }}'}\n"
        run_id = start(c, ok)
        assert wait_status(c, run_id)["outputs"] == {"x": "[1]"}


def test_serve_refuses_a_public_address_without_tokens(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tether", "--db", f"sqlite:///{tmp_path / 'x.db'}", "serve",
                           "--host", "0.0.0.0", "--port", "18999"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "without API tokens" in proc.stderr


def test_docs_api_lists_every_operation_of_the_openapi_document(server):
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    spec = server.client(None).get("/openapi.json").json()
    listed = {" ".join(line.split()[:2]) for line in doc.splitlines() if line.split()[:1] and
              line.split()[0] in ("GET", "POST", "PUT", "DELETE")}
    served = {f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops}
    assert listed == served


@pytest.mark.slow  # starts worker processes
def test_on_postgresql_runs_sent_to_the_api_go_to_the_workers(tmp_path):
    from tests.conftest import drop_schema, postgres_url
    url = postgres_url()
    try:
        with Server(url) as s:
            from tether.store.base import SharedLoopWork
            assert isinstance(s.app.state.engine.store, SharedLoopWork)  # PostgreSQL: no executor threads in the server
            c = s.client()
            run_id = start(c)
            import time
            time.sleep(0.5)
            assert c.get(f"/api/runs/{run_id}").json()["status"] == "pending"
            worker = subprocess.run([sys.executable, "-m", "tether", "--db", url, "worker", "--once"],
                                    capture_output=True, text=True, timeout=120)
            assert worker.returncode == 0, worker.stderr
            assert wait_status(c, run_id)["outputs"] == {"n": 20}
    finally:
        drop_schema(url)
