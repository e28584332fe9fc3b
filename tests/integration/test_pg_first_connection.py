"""A process's first connection to PostgreSQL: a server that says it is starting up is
waited for (it comes back), through a real proxy in front of the test server."""
from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import drop_schema, postgres_url
from tether.errors import StoreError
from tether.store.postgres import PostgresStore


def _fatal(code: str, message: str) -> bytes:
    fields = b"SFATAL\0" + b"C" + code.encode() + b"\0M" + message.encode() + b"\0\0"
    return b"E" + struct.pack("!I", 4 + len(fields)) + fields


class _Proxy:
    """Listens on a local port; until ``opens_at`` answers every connection as a server
    starting up would, then forwards bytes to ``target`` both ways."""

    def __init__(self, target: tuple[str, int], opens_at: float) -> None:
        self.target, self.opens_at, self.refused = target, opens_at, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if time.monotonic() < self.opens_at:
                threading.Thread(target=self._starting_up, args=(client,), daemon=True).start()
            else:
                upstream = socket.create_connection(self.target)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _starting_up(self, client: socket.socket) -> None:
        with client:
            while True:
                head = client.recv(8)
                if len(head) < 8:
                    return
                length, code = struct.unpack("!II", head)
                client.recv(length - 8) if length > 8 else None
                if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: "no"
                    client.sendall(b"N")
                    continue
                self.refused += 1
                client.sendall(_fatal("57P03", "the database system is starting up"))
                return

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self.sock.close()


def _through(proxy: _Proxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{proxy.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def test_a_server_starting_up_is_waited_for_at_the_first_connection():
    url = postgres_url()
    parts = urlsplit(url)
    proxy = _Proxy((parts.hostname or "127.0.0.1", parts.port or 5432), time.monotonic() + 1.5)
    started = time.monotonic()
    store = PostgresStore(_through(proxy, url))
    try:
        assert proxy.refused >= 2 and time.monotonic() - started >= 1.5
        assert store.steps("no-such-run") == []  # and it works, through the proxy
    finally:
        store.close()
        proxy.close()
        drop_schema(url)


def test_a_server_still_starting_up_after_its_time_is_reported_in_one_line(monkeypatch):
    from tether.store import postgres
    monkeypatch.setattr(postgres, "_FIRST_CONNECT_WAITS", ((("starting up",), 1.0),))
    url = postgres_url()
    parts = urlsplit(url)
    proxy = _Proxy((parts.hostname or "127.0.0.1", parts.port or 5432), time.monotonic() + 3600)
    started = time.monotonic()
    with pytest.raises(StoreError, match="the database system is starting up"):
        PostgresStore(_through(proxy, url))
    proxy.close()
    assert 0.5 <= time.monotonic() - started < 5 and proxy.refused >= 2
