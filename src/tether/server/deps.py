"""What every route of the API depends on, as FastAPI dependencies: the engine the app
was built with, the caller's role from its bearer token, and a checked run id. Routers
of other packages (the web UI) import these; they read only ``app.state``, which
``create_app`` fills once.

``app.state`` holds: ``engine`` (the one :class:`Engine`), ``tokens`` (token -> role,
empty: no auth), ``metrics``, ``policy`` (the tool policy), ``worker`` (the server's own
:class:`Worker`, or None) and ``pool`` (threads that start resumes and forks)."""
from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from ..engine.engine import Engine
from ..errors import UsageError
from ..ids import check_run_id
from .auth import role_of


class ApiError(Exception):
    """An HTTP error answered as ``{"error": error, "message": message}`` with ``status``."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def engine_of(request: Request) -> Engine:
    """The app's engine (``Depends(engine_of)``); the same object for every request."""
    engine: Engine = request.app.state.engine
    return engine


def state_of(request: Request) -> Any:
    """The app's ``state`` (engine, tokens, metrics, policy, worker, pool)."""
    return request.app.state


def role(request: Request) -> str:
    """The caller's role, ``read`` or ``write``: ``write`` when the app has no tokens;
    ApiError 401 without a known bearer token."""
    tokens: dict[str, str] = request.app.state.tokens
    if not tokens:
        return "write"
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    found = role_of(tokens, given.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise ApiError(401, "unauthorized", "a valid bearer token is required")
    return found


def reader(r: str = Depends(role)) -> str:
    """Any known caller (``dependencies=[Depends(reader)]`` on a read endpoint); its role."""
    return r


def writer(r: str = Depends(role)) -> str:
    """A caller with a write token; ApiError 403 for a read token, 401 for none."""
    if r != "write":
        raise ApiError(403, "forbidden", "this endpoint needs a write token")
    return r


def run_id_of(run_id: str) -> str:
    """``run_id`` when it is a well-formed run id; ApiError 404 otherwise (no run can have it)."""
    try:
        return check_run_id(run_id)
    except UsageError as exc:
        raise ApiError(404, "NotFound", exc.message) from None
