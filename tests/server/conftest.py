"""A real uvicorn server on 127.0.0.1 (in a thread of the test process) over a real store."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

READ, WRITE = "read-token-1234", "write-token-5678"


class Server:
    def __init__(self, db: str, allowed_tools: str | None = None, tokens: dict[str, str] | None = None) -> None:
        import uvicorn

        from tether.server.app import create_app
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.app = create_app(db, tokens={READ: "read", WRITE: "write"} if tokens is None else tokens,
                              allowed_tools=allowed_tools)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self._clients: list[httpx.Client] = []

    def __enter__(self) -> Server:
        self.thread.start()
        end = time.monotonic() + 20
        while not self.server.started and time.monotonic() < end:
            time.sleep(0.02)
        assert self.server.started
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients:
            client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.engine.close()

    def client(self, token: str | None = WRITE) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self._clients.append(client)
        return client


@pytest.fixture
def server(tmp_path: Path):
    with Server(f"sqlite:///{tmp_path / 'api.db'}") as s:
        yield s


def wait_status(client: httpx.Client, run_id: str, statuses=("completed", "failed", "cancelled"), timeout=30.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        doc = client.get(f"/api/runs/{run_id}").json()
        if doc["status"] in statuses:
            return doc
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} is still {doc['status']}")
