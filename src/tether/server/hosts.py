"""Which host names a server without API tokens answers (DNS rebinding, cross-site requests).

Without tokens every caller may read and act, so only a person at this machine may call:
``tether serve`` listens on loopback only, and :class:`HostGuard` answers 403 to every
request (API, UI, ``/metrics``, the OpenAPI document) whose ``Host`` is not a loopback name
(``127.0.0.1`` and all of ``127.*``, ``localhost``, ``[::1]``, with or without a port) or the
name given to ``--host``: a web page that rebinds its own domain to 127.0.0.1 still sends
its own domain as ``Host``. An unsafe request (not ``GET``/``HEAD``/``OPTIONS``) that
carries an ``Origin`` (a browser's) must also come from such a host, so another site's page
cannot post to the API. With tokens the guard does nothing: a browser never sends them
on its own."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import orjson

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(host: str) -> str:
    """The name of a ``Host`` header value, without its port, lower case (``[::1]`` kept
    bracketed)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def local_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """The loopback names and ``extra`` (``--host``), as :func:`host_name` gives them (an
    IPv6 address bracketed)."""
    names = set(LOOPBACK_NAMES)
    for given in extra:
        name = given.strip().lower()
        names.add(f"[{name}]" if ":" in name and not name.startswith("[") else name)
    return frozenset(names)


def allowed_host(host: str | None, names: frozenset[str]) -> bool:
    """True when the ``Host`` header value names this machine: one of ``names`` or a
    ``127.*`` address."""
    name = host_name(host or "")
    return name in names or (name.startswith("127.") and name.replace(".", "").isdigit())


def allowed_origin(origin: str, names: frozenset[str]) -> bool:
    """True when a browser's ``Origin`` is an ``http``/``https`` page of an allowed host."""
    parts = urlsplit(origin.strip())
    return parts.scheme in ("http", "https") and allowed_host(parts.netloc, names)


def refusal(method: str, headers: dict[str, str], names: frozenset[str]) -> str | None:
    """Why a request without tokens is refused, or None when its ``Host`` (and, for an
    unsafe method, its ``Origin``, when it has one) names this machine."""
    if not allowed_host(headers.get("host"), names):
        return (f"Host {headers.get('host', '')!r} is not this machine: without API tokens the server "
                "answers only http://127.0.0.1:PORT, http://localhost:PORT or http://[::1]:PORT "
                "(or the name given to --host)")
    origin = headers.get("origin")
    if method not in SAFE_METHODS and origin is not None and not allowed_origin(origin, names):
        return (f"Origin {origin!r} is not this machine: without API tokens only pages served "
                "from it may send requests that change something")
    return None


class HostGuard:
    """An ASGI middleware answering 403 ``{"error": "forbidden_host"}`` (a page under
    ``/ui``) to a request :func:`refusal` refuses; it lets everything through when the
    app has tokens (``app.state.tokens``) and reads the names from ``app.state.hosts``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        state = scope["app"].state if "app" in scope else None
        if scope["type"] not in ("http", "websocket") or state is None or getattr(state, "tokens", None):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        why = refusal(scope.get("method", "GET"), headers, state.hosts)
        if why is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope.get("path", "").startswith("/ui"):
            from .ui.render import page
            refused = page("error.html", 403, title="Error", role=None, auth=False, message=why)
            await refused(scope, receive, send)
            return
        body = orjson.dumps({"error": "forbidden_host", "message": why})
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
