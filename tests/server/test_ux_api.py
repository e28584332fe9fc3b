"""What a user of `tether serve` sees (issue 12, item 7)."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import httpx


def test_an_unknown_status_filter_is_refused(server):
    reply = server.client().get("/api/runs", params={"status": "bogus"})
    assert reply.status_code == 400
    body = reply.json()
    assert "bogus" in body["message"] and "interrupted" in body["message"] and "completed" in body["message"]
    assert server.client().get("/api/runs", params={"status": "interrupted"}).status_code == 200


def _free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def _wait_for(path, pattern: str, proc: subprocess.Popen, timeout: float = 30.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = path.read_text()
        if re.search(pattern, text):
            return text
        assert proc.poll() is None, text
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} never appeared in:\n{path.read_text()}")


def test_serve_says_where_it_listens_and_logs_requests(tmp_path):
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tether", "--db", f"sqlite:///{tmp_path / 's.db'}", "serve",
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_for(log, rf"http://127\.0\.0\.1:{port}", proc)
        assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/runs", timeout=10).status_code == 200  # no tokens: loopback
        _wait_for(log, r'"GET /api/health HTTP/1\.1" 200', proc)
        _wait_for(log, r'"GET /api/runs HTTP/1\.1" 200', proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
