"""The UI's URLs (SPEC §8.4) as one router under ``/ui``: pages answer HTML (an error is a
page with a 4xx status, never a traceback), actions answer JSON, static files are the
package's own. ``create_app`` includes it; it reads only ``app.state`` (engine, tokens)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from ...errors import TetherError
from ...ids import check_run_id
from . import actions
from .access import COOKIE, action_role, bearer, page_role, tokens_of
from .history_view import diff_page, var_page
from .render import STATIC, page
from .run_view import run_page, step_page
from .runs_view import runs_page

router = APIRouter(prefix="/ui", include_in_schema=False)
STATIC_FILES = {"ui.css": "text/css", "ui.js": "text/javascript"}


def engine_of(request: Request) -> Any:
    """The app's one ``Engine``."""
    return request.app.state.engine


def guarded(request: Request, template: str, build: Callable[[], dict[str, Any]]) -> Response:
    """The page ``template`` for the context ``build()`` makes, for a caller with a valid
    token (else a redirect to the login page); a TetherError is an error page with its 4xx status."""
    role = page_role(request)
    if role is None and not tokens_of(request):
        return page("error.html", 403, title="Error", role=None, auth=False,
                    message="Without API tokens the UI answers only a loopback host name: "
                            "open it as http://127.0.0.1:PORT/ui/ or http://localhost:PORT/ui/.")
    if role is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={quote(here, safe='')}", status_code=303)
    common: dict[str, Any] = {"role": role, "auth": bool(tokens_of(request))}
    try:
        context = build()
    except TetherError as exc:
        status = exc.http_status if 400 <= exc.http_status < 500 else 503
        return page("error.html", status, title="Error", message=exc.message, **common)
    return page(template, **common, **context)


def checked(run_id: str) -> str:
    """``run_id`` when well formed; UsageError (a 400 page) otherwise."""
    return check_run_id(run_id)


@router.get("", include_in_schema=False)
def ui_root() -> RedirectResponse:
    """``/ui`` is ``/ui/``."""
    return RedirectResponse("/ui/", status_code=308)


@router.get("/", response_class=HTMLResponse)
def runs(request: Request) -> Response:
    """The runs, newest first, filtered by ``status``, ``flow`` and ``q`` (an id or its start)."""
    params = {k: request.query_params.get(k, "") for k in ("status", "flow", "q", "cursor")}
    return guarded(request, "runs.html", lambda: {"title": "Runs",
                                                  **runs_page(engine_of(request), params)})


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run(request: Request, run_id: str) -> Response:
    """A run; ``at=SEQ``: its variables as of that checkpoint; ``tl=N``: the timeline from record N."""
    q = request.query_params
    return guarded(request, "run.html", lambda: {"title": f"Run {run_id}", **run_page(
        engine_of(request), checked(run_id), q.get("at"), q.get("tl"))})


@router.get("/runs/{run_id}/diff", response_class=HTMLResponse)
def diff(request: Request, run_id: str) -> Response:
    """The variables that differ between checkpoints ``from`` and ``to``."""
    q = request.query_params
    return guarded(request, "diff.html", lambda: {"title": f"Diff of run {run_id}", **diff_page(
        engine_of(request), checked(run_id), q.get("from"), q.get("to"))})


@router.get("/runs/{run_id}/vars/{name}", response_class=HTMLResponse)
def variable(request: Request, run_id: str, name: str) -> Response:
    """One variable and its history."""
    return guarded(request, "var.html", lambda: {"title": f"Variable {name}", **var_page(
        engine_of(request), checked(run_id), name)})


@router.get("/runs/{run_id}/steps/{step_id}", response_class=HTMLResponse)
def step(request: Request, run_id: str, step_id: str) -> Response:
    """Every record of one step, and its loop when it is one."""
    return guarded(request, "step.html", lambda: {"title": f"Step {step_id}", **step_page(
        engine_of(request), checked(run_id), step_id)})


@router.get("/login", response_class=HTMLResponse)
def login(request: Request) -> HTMLResponse:
    """The token form; ``next`` is where it goes once signed in (a path under /ui only)."""
    target = request.query_params.get("next", "/ui/")
    if not target.startswith("/ui/") or "//" in target or "\\" in target:
        target = "/ui/"
    return page("login.html", title="Sign in", role=None, auth=True, next=target)


@router.post("/session")
def session(request: Request) -> JSONResponse:
    """Sign in: the bearer token (sent by the login page's script) becomes the tab's
    page cookie; 401 for an unknown token."""
    tokens = tokens_of(request)
    given = bearer(request)
    from ..auth import role_of
    role = role_of(tokens, given) if tokens and given else ("write" if not tokens else None)
    if role is None or request.headers.get("x-tether-ui") != "1":
        return JSONResponse({"ok": False, "message": "unknown token"}, status_code=401)
    reply = JSONResponse({"ok": True, "role": role})
    if tokens and given:
        reply.set_cookie(COOKIE, given, httponly=True, samesite="strict", path="/ui",
                         secure=request.url.scheme == "https")
    return reply


@router.post("/logout")
def logout() -> JSONResponse:
    """Sign out: the page cookie is removed (the script forgets the tab's token)."""
    reply = JSONResponse({"ok": True})
    reply.delete_cookie(COOKIE, path="/ui")
    return reply


@router.post("/runs/{run_id}/actions/{verb}")
async def action(request: Request, run_id: str, verb: str) -> JSONResponse:
    """An action from a run page; 401/403 unless sent by the UI's script with a write
    token in the Authorization header; the action's outcome as JSON."""
    refused = action_role(request)
    if refused:
        return JSONResponse({"ok": False, "error": "forbidden", "message": refused[1]},
                            status_code=refused[0])
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"ok": False, "error": "invalid_request",
                             "message": "the body must be a JSON object"}, status_code=400)
    try:
        answer = await run_in_threadpool(actions.act, engine_of(request), checked(run_id), verb, body)
    except TetherError as exc:
        status, doc = actions.error_answer(exc)
        return JSONResponse(doc, status_code=status if status < 500 else 503)
    return JSONResponse(answer)


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The UI's own stylesheet and script (no other file is served)."""
    if name not in STATIC_FILES:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name],
                        headers={"Cache-Control": "public, max-age=300"})
