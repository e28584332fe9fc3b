"""Every error the API answers, as JSON ``{error, message}`` (and ``problems``, a list,
for a flow that does not load): ``ApiError``, the
``TetherError`` family (with its HTTP status), schema mismatches (422) and HTTP errors
(a 405 lists every method of the path in ``Allow``)."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..errors import TetherError
from ..validation_text import describe, location
from .deps import ApiError


def error(status: int, kind: str, message: str) -> JSONResponse:
    """The API's error document with ``status``."""
    return JSONResponse({"error": kind, "message": message}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Register the API's exception handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.error, exc.message)

    @app.exception_handler(TetherError)
    async def _tether_error(_: Request, exc: TetherError) -> JSONResponse:
        text = exc.message
        problems = getattr(exc, "problems", None)
        if not problems:
            return error(exc.http_status, type(exc).__name__, text)
        # an invalid flow: every problem in the message and, for programs, as a list of
        # {file, line, column, message} (as the CLI's --json error)
        docs = getattr(exc, "problem_docs", None)
        return JSONResponse({"error": type(exc).__name__, "message": text + ": " + "; ".join(problems),
                             "problems": docs() if callable(docs) else list(problems)},
                            status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{location(e.get('loc'))}: {describe(e)}" for e in exc.errors()[:5]]
        return error(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        reply = error(exc.status_code, "http_error", str(exc.detail))
        reply.headers.update(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only those of its first route
            methods = {m for r in app.router.routes if getattr(r, "methods", None)
                       and r.matches(request.scope)[0] != Match.NONE
                       for m in getattr(r, "methods", None) or ()}
            reply.headers["Allow"] = ", ".join(sorted(methods))
        return reply
