"""The REST API (SPEC §8.3): every endpoint, bearer-token roles, the event stream and
``/metrics``. Runs sent to the API are queued and executed by the server's own worker
threads, or by ``tether worker`` processes (on PostgreSQL, where ``serve`` starts none
by default). Errors are JSON ``{error, message}``; bad input is a 4xx, never a 5xx."""
from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import queries
from ..engine.engine import Engine
from ..engine.lifecycle import status_of
from ..engine.worker import Worker
from ..errors import TetherError, UsageError
from ..flow import load_flow_text
from ..ids import check_run_id
from ..settings import Settings
from ..store import open_store
from ..store.base import SharedLoopWork
from ..views import event_doc, iso, run_doc, step_doc, var_doc
from . import ui
from .auth import role_of
from .limits import BodyLimits
from .metrics import Metrics
from .policy import ToolPolicy

MAX_BODY = 1024 * 1024
MAX_DEPTH = 64
FINAL = ("completed", "failed", "cancelled")


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


# ------------------------------------------------------------------ request bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateRun(_Body):
    flow: str = Field(..., max_length=MAX_BODY, description="The flow as YAML (or JSON) text.")
    inputs: dict[str, Any] | None = None
    run_id: str | None = Field(None, max_length=64)


class ResumeRun(_Body):
    set: dict[str, Any] | None = None
    from_step: str | None = Field(None, max_length=128)
    retry_failed: bool = False


class ForkRun(_Body):
    set: dict[str, Any] | None = None
    from_step: str | None = Field(None, max_length=128)


class SetVars(_Body):
    variables: dict[str, Any] = Field(..., max_length=1000)
    var_type: Literal["user_defined"] = "user_defined"
    source_step: str = Field("api", max_length=128, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")


class ErrorBody(BaseModel):
    error: str
    message: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
    (400, "bad input: an invalid flow, name, value or request"), (401, "no or an unknown bearer token"),
    (403, "a read token on a write endpoint"), (404, "no such run, step or variable"),
    (409, "a stale expected_version, or a run owned by another process"),
    (413, "the request body is too large"),
    (422, "the request does not match its schema"), (503, "the store cannot be reached"))}


class PutVar(_Body):
    value: Any = None
    expected_version: int | None = Field(None, ge=0)


# ------------------------------------------------------------------ the app
def create_app(db: str | None = None, *, tokens: dict[str, str] | None = None,
               allowed_tools: str | None = None, executor: int | None = None,
               settings: Settings | None = None) -> FastAPI:
    """The API over the store ``db``. ``tokens`` maps token -> role (none: no auth, for
    loopback only); ``executor`` threads run queued runs in this process (default 4,
    or 0 on PostgreSQL, where `tether worker` processes run them); ``settings`` configure
    the engine (default: from the environment). Every store call is counted for /metrics."""
    metrics = Metrics()
    engine = Engine(metrics.instrument(open_store(db)), settings=settings)
    policy = ToolPolicy(allowed_tools)
    shares = isinstance(engine.store, SharedLoopWork)  # structural: seen through the metrics wrapper
    threads = executor if executor is not None else (0 if shares else 4)
    worker = Worker(engine, threads) if threads else None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="tether-api")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        runner = (threading.Thread(target=worker.serve, name="tether-api-worker", daemon=True)
                  if worker else None)
        if runner:
            runner.start()
        yield
        if worker:
            worker.stop()  # runs in progress finish their step and go back to pending
        if runner:
            runner.join(timeout=30)
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="Tether", version="0.1.0", lifespan=lifespan, responses=_ERRORS,
                  description="Durable YAML workflows: runs, variables, events. See docs/api.md.")
    app.add_middleware(BodyLimits, max_bytes=MAX_BODY, max_depth=MAX_DEPTH)

    # -------------------------------------------------------------- errors
    def error(status: int, kind: str, message: str) -> JSONResponse:
        return JSONResponse({"error": kind, "message": message}, status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.error, exc.message)

    @app.exception_handler(TetherError)
    async def _tether_error(_: Request, exc: TetherError) -> JSONResponse:
        text = exc.message
        problems = getattr(exc, "problems", None)
        if problems:
            text += ": " + "; ".join(problems)
        return error(exc.http_status, type(exc).__name__, text)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:5]]
        return error(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        reply = error(exc.status_code, "http_error", str(exc.detail))
        reply.headers.update(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only those of its first route
            from starlette.routing import Match
            methods = {m for r in app.router.routes if getattr(r, "methods", None)
                       and r.matches(request.scope)[0] != Match.NONE
                       for m in getattr(r, "methods", None) or ()}
            reply.headers["Allow"] = ", ".join(sorted(methods))
        return reply

    # -------------------------------------------------------------- auth
    def role(request: Request) -> str:
        if not tokens:
            return "write"
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        found = role_of(tokens, given.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise ApiError(401, "unauthorized", "a valid bearer token is required")
        return found

    def reader(r: str = Depends(role)) -> str:
        return r

    def writer(r: str = Depends(role)) -> str:
        if r != "write":
            raise ApiError(403, "forbidden", "this endpoint needs a write token")
        return r

    # -------------------------------------------------------------- helpers
    def run_id_of(run_id: str) -> str:
        try:
            return check_run_id(run_id)
        except UsageError as exc:
            raise ApiError(404, "NotFound", exc.message) from None

    def run_detail(run_id: str) -> dict[str, Any]:
        rec = engine.record(run_id_of(run_id))
        steps = engine.steps(run_id)
        done = [s.step_id for s in steps if s.status in ("completed", "skipped")]
        try:
            flow_steps = [s.id for s in engine.stored_flow(rec).flow.steps]
        except TetherError:
            flow_steps = []
        pending = [s for s in flow_steps if s not in done]
        cursor = rec.cursor if isinstance(rec.cursor, dict) else {}
        return {"run_id": rec.run_id, "flow": rec.name, "status": status_of(rec), "outputs": rec.outputs,
                "error": rec.error, "parent_id": rec.parent_id, "created_at": iso(rec.created_at),
                "started_at": iso(rec.started_at), "finished_at": iso(rec.finished_at),
                "checkpoints": rec.seq,
                "current_step": cursor.get("next") if status_of(rec) not in FINAL else None,
                "completed_steps": done, "pending_steps": pending,
                "progress": {"done": len(set(done) & set(flow_steps)), "total": len(flow_steps)}}

    def started(fn: Any, run_id: str) -> JSONResponse:
        """Run ``fn`` in the API's pool; its result if it ends within a moment, else 202."""
        future = pool.submit(fn)
        try:
            result = future.result(timeout=0.25)
        except concurrent.futures.TimeoutError:
            return JSONResponse({"run_id": run_id, "status": "running"}, status_code=202)
        return JSONResponse(run_doc(result))

    # -------------------------------------------------------------- endpoints
    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "store": queries.store_kind(engine)}

    @app.post("/api/runs", status_code=201, dependencies=[Depends(writer)])
    def create_run(body: CreateRun) -> dict[str, Any]:
        loaded = load_flow_text(body.flow, "<api>", os.getcwd())
        policy.check(loaded.data)
        # PostgreSQL: workers are notified
        run = engine.run(loaded, body.inputs, run_id=body.run_id, detach=True)
        if worker is not None:
            worker.wake()
        return {"run_id": run.id, "status": run.status, "created": run.created}

    @app.get("/api/runs", dependencies=[Depends(reader)])
    def list_runs(status: str | None = Query(None, max_length=32), limit: int = Query(50, ge=1, le=500),
                  cursor: str | None = Query(None, max_length=64)) -> dict[str, Any]:
        stored = "running" if status == "interrupted" else status
        found = engine.runs(stored, limit + 1, cursor)
        if status is not None:
            found = [r for r in found if status_of(r) == status]
        page = found[:limit]
        return {"runs": [{"run_id": r.run_id, "flow": r.name, "status": status_of(r),
                          "created_at": iso(r.created_at), "started_at": iso(r.started_at),
                          "finished_at": iso(r.finished_at), "checkpoints": r.seq}
                         for r in page],
                "next_cursor": page[-1].run_id if len(found) > limit else None}

    @app.get("/api/runs/{run_id}", dependencies=[Depends(reader)])
    def get_run(run_id: str) -> dict[str, Any]:
        return run_detail(run_id)

    @app.post("/api/runs/{run_id}/resume", dependencies=[Depends(writer)])
    def resume(run_id: str, body: ResumeRun | None = None) -> JSONResponse:
        body = body or ResumeRun()
        rid = run_id_of(run_id)
        engine.record(rid)
        return started(lambda: engine.resume(rid, set=body.set, from_step=body.from_step,
                                             retry_failed=body.retry_failed), rid)

    @app.post("/api/runs/{run_id}/pause", dependencies=[Depends(writer)])
    def pause(run_id: str) -> dict[str, Any]:
        return {"run_id": run_id, "result": engine.pause(run_id_of(run_id))}

    @app.post("/api/runs/{run_id}/cancel", dependencies=[Depends(writer)])
    def cancel(run_id: str) -> dict[str, Any]:
        return {"run_id": run_id, "result": engine.cancel(run_id_of(run_id))}

    @app.post("/api/runs/{run_id}/fork", dependencies=[Depends(writer)])
    def fork(run_id: str, body: ForkRun | None = None) -> JSONResponse:
        body = body or ForkRun()
        rid = run_id_of(run_id)
        engine.record(rid)
        return started(lambda: engine.fork(rid, from_step=body.from_step, set=body.set), rid)

    @app.get("/api/runs/{run_id}/steps", dependencies=[Depends(reader)])
    def steps(run_id: str) -> list[dict[str, Any]]:
        rid = run_id_of(run_id)
        engine.record(rid)
        return [step_doc(s) for s in engine.steps(rid)]

    @app.get("/api/runs/{run_id}/steps/{step_id}", dependencies=[Depends(reader)])
    def step(run_id: str, step_id: str) -> dict[str, Any]:
        rid = run_id_of(run_id)
        engine.record(rid)
        found = [s for s in engine.steps(rid) if s.step_id == step_id]
        if not found:
            raise ApiError(404, "NotFound", f"run {rid} has no record of step {step_id!r}")
        return step_doc(found[-1])

    @app.get("/api/runs/{run_id}/events", dependencies=[Depends(reader)], response_model=None,
             responses={200: {
        "description": "a JSON list of events; with follow=true a text/event-stream of them "
                       "until the run ends",
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                    "text/event-stream": {"schema": {"type": "string"}}}}})
    def events(run_id: str, after: int = Query(0, ge=0, le=2**62), follow: bool = False) -> Any:
        rid = run_id_of(run_id)
        engine.record(rid)
        if not follow:
            return [event_doc(e) for e in engine.events(rid, after)]
        return StreamingResponse(_stream(rid, after), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    def _stream(rid: str, after: int) -> Iterator[bytes]:
        last = after
        while True:
            ended = status_of(engine.record(rid)) in FINAL
            for e in engine.events(rid, last):
                last = e.seq
                yield b"id: %d\nevent: %s\ndata: %s\n\n" % (e.seq, e.type.encode(),
                                                            orjson.dumps(event_doc(e)))
            if ended:
                yield b"event: end\ndata: {}\n\n"
                return
            time.sleep(0.2)

    @app.get("/api/runs/{run_id}/diff", dependencies=[Depends(reader)])
    def diff(run_id: str, from_: str = Query(..., alias="from", max_length=128),
             to: str = Query(..., max_length=128)) -> dict[str, Any]:
        return engine.diff(run_id_of(run_id), from_, to)

    @app.get("/api/vars/{run_id}", dependencies=[Depends(reader)])
    def get_vars(run_id: str) -> dict[str, Any]:
        rid = run_id_of(run_id)
        variables = queries.variables(engine, rid)
        return {"run_id": rid, "variables": variables, "count": len(variables)}

    @app.get("/api/vars/{run_id}/{name}", dependencies=[Depends(reader)])
    def get_var(run_id: str, name: str) -> dict[str, Any]:
        return {"run_id": run_id, **var_doc(engine.variable(run_id_of(run_id), name))}

    @app.post("/api/vars/{run_id}", dependencies=[Depends(writer)])
    def set_vars(run_id: str, body: SetVars) -> dict[str, Any]:
        rid = run_id_of(run_id)
        engine.set_vars(rid, body.variables, source=body.source_step)  # all or none
        return {"run_id": rid, "variables_set": len(body.variables), "var_names": sorted(body.variables)}

    @app.put("/api/vars/{run_id}/{name}", dependencies=[Depends(writer)])
    def put_var(run_id: str, name: str, body: PutVar) -> dict[str, Any]:
        rec = engine.set_var(run_id_of(run_id), name, body.value, body.expected_version)
        return {"run_id": run_id, **var_doc(rec)}

    @app.delete("/api/vars/{run_id}/{name}", dependencies=[Depends(writer)])
    def delete_var(run_id: str, name: str) -> dict[str, Any]:
        engine.delete_var(run_id_of(run_id), name)
        return {"run_id": run_id, "var_name": name, "deleted": True}

    @app.get("/api/vars/{run_id}/{name}/history", dependencies=[Depends(reader)])
    def var_history(run_id: str, name: str) -> list[dict[str, Any]]:
        return [{"version": h.version, "value": None if h.deleted else h.value, "seq": h.seq,
                 "source_step": h.source_step, "at": iso(h.at), "deleted": h.deleted}
                for h in engine.history(run_id_of(run_id), name)]

    @app.get("/metrics", dependencies=[Depends(reader)], response_model=None, responses={200: {
        "description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}})
    def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.state.engine, app.state.metrics, app.state.tokens = engine, metrics, tokens or {}
    app.include_router(ui.router)
    return app
