"""``tether serve``'s process: the listening socket, uvicorn, its logs and its signals.

Guarantees: a port that cannot be bound is one UsageError naming it (exit 2), before
anything starts. uvicorn's messages and the access log (one line per request) go to
stderr, with one INFO line per run the server's workers take over. A first SIGINT,
SIGTERM or SIGHUP (a closed terminal) stops taking requests and work: open connections get
:data:`CONNECTIONS_GRACE` seconds, the runs this process executes get
:data:`.app.SHUTDOWN_GRACE` seconds to finish their current step (then ``pending``), and
the steps still running after that are killed and their runs handed back
``interrupted`` (both are taken over by the next worker or server: the server stopped,
not their owner). A second signal kills the steps' processes, hands their runs back
``interrupted`` and exits at once (status 128 + the signal)."""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ..errors import UsageError

log = logging.getLogger(__name__)
CONNECTIONS_GRACE = 3.0  # seconds open requests (an event stream) have to end on a first signal


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (IPv4 or IPv6); UsageError, one line, when the
    address is in use or cannot be bound."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        hint = " (another server is using it: stop it or choose another --port)" \
            if exc.errno == 98 else ""
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.set_inheritable(True)
    return sock


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with the access log on stderr (not stdout)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config


class Server(uvicorn.Server):
    """uvicorn's server, which takes SIGHUP as SIGTERM and whose second signal kills the
    steps and exits at once."""

    def __init__(self, config: uvicorn.Config, state: Any) -> None:
        super().__init__(config)
        self.state = state  # the app's: its engine and worker

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # uvicorn says where it listens only for sockets it bound itself
            host, port = self.config.host, self.config.port
            logging.getLogger("uvicorn.error").info(
                "Uvicorn running on http://%s:%d (Press CTRL+C to quit)",
                f"[{host}]" if ":" in host else host, port)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's signal capture (SIGINT, SIGTERM), with SIGHUP handled as they are while
        it serves; restored before uvicorn raises the captured signals again on its way out."""
        with super().capture_signals():
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = signal.signal(signal.SIGHUP, self.handle_exit)
            try:
                yield
            finally:
                signal.signal(signal.SIGHUP, previous)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if len(self._captured_signals) < 2:
            return
        if self.state.worker is not None:
            self.state.worker.stop()
        for run_id in self.state.engine.interrupt_all():
            log.warning("serve: run %s interrupted; its step's processes were killed", run_id)
        logging.shutdown()
        os._exit(128 + sig)


def serve(make_app: Callable[[], Any], host: str, port: int) -> None:
    """Bind ``host``:``port``, then serve the app ``make_app()`` builds there until a signal
    (see the module's guarantees)."""
    sock = listening_socket(host, port)
    app = make_app()
    claims = logging.getLogger("tether.engine.claims")
    if claims.getEffectiveLevel() > logging.INFO:
        claims.setLevel(logging.INFO)  # one line per run taken over
    config = uvicorn.Config(app, host=host, port=port, log_level="info", access_log=True,
                            log_config=log_config(), timeout_graceful_shutdown=int(CONNECTIONS_GRACE))
    Server(config, app.state).run(sockets=[sock])
