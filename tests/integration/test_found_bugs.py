"""Bugs found by new users and a reliability probe (issue 12, item 6), through the engine."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tether import Engine


class _Echo(BaseHTTPRequestHandler):
    """Answers every GET with the path and query it received."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def sqlite_engine(tmp_path: Path):
    e = Engine(f"sqlite:///{tmp_path / 'e.db'}")
    yield e
    e.close()


def test_the_http_tool_keeps_the_query_string_of_its_url(sqlite_engine, write_flow, echo_server):
    run = sqlite_engine.run(write_flow("""
name: q
inputs: {url: {type: string}}
steps:
  - id: merged
    tool: http
    with: {url: "{{ inputs.url }}/echo?page=2&tag=a", params: {q: x, n: 3}}
  - id: url_only
    tool: http
    with: {url: "{{ inputs.url }}/echo?page=2"}
  - id: params_win
    tool: http
    with: {url: "{{ inputs.url }}/echo?page=2", params: {page: 3}}
"""), {"url": echo_server})
    assert run.status == "completed", run.error
    paths = {s.step_id: s.result["json"]["path"] for s in sqlite_engine.steps(run.id)}
    assert paths == {"merged": "/echo?page=2&tag=a&q=x&n=3", "url_only": "/echo?page=2",
                     "params_win": "/echo?page=3"}


def test_an_invalid_url_fails_the_step_without_retries(sqlite_engine, write_flow):
    run = sqlite_engine.run(write_flow("""
name: bad
steps:
  - id: s
    tool: http
    with: {url: "http://999.1.1.1:1/x", params: {q: 1}}
    retry: {attempts: 3, delay: 10ms}
"""))
    assert run.status == "failed" and run.error["type"] == "ArgumentError" and "invalid url" in run.error["message"]
    assert sqlite_engine.steps(run.id)[0].attempts == 1


def test_a_checkpoint_names_each_variable_once_however_often_it_wrote_it(store_url):
    """A group commit renders several iterations' ``vars`` blocks in one checkpoint, so
    one variable may have several history rows with the same seq."""
    from tether.store import codec
    from tether.store.base import Commit, RunRecord, VarWrite
    engine = Engine(store_url)
    try:
        store = engine.store
        run, _ = store.create_run(RunRecord(run_id="g1", name="f", status="running", flow_text="name: f",
                                            flow_path=None, inputs={}, cursor={"next": None}), "me", 30.0)
        store.commit(Commit("g1", run.lease_epoch, vars=tuple(VarWrite("n", codec.encode(i)) for i in range(3))))
        (cp,) = engine.checkpoints("g1")
        assert cp["vars"] == ["n"] and cp["at"] is not None
        assert [h.value for h in engine.history("g1", "n")] == [0, 1, 2]
    finally:
        engine.close()
