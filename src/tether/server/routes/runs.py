"""``/api/runs``: create (queued for a worker), list, show, resume, pause, cancel, fork,
delete, a run's steps and the diff of two of its checkpoints."""
from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from ... import queries
from ...engine.engine import Engine
from ...flow import load_flow_text
from ...views import run_doc
from ..bodies import CreateRun, ForkRun, ResumeRun
from ..deps import ApiError, engine_of, reader, run_id_of, state_of, writer

router = APIRouter()


def _started(state: Any, fn: Callable[[], Any], run_id: str) -> JSONResponse:
    """Run ``fn`` in the API's pool; its result if it ends within a moment, else 202."""
    future = state.pool.submit(fn)
    try:
        result = future.result(timeout=0.25)
    except concurrent.futures.TimeoutError:
        return JSONResponse({"run_id": run_id, "status": "running"}, status_code=202)
    return JSONResponse(run_doc(result))


@router.post("/api/runs", status_code=201, dependencies=[Depends(writer)])
def create_run(body: CreateRun, state: Any = Depends(state_of)) -> dict[str, Any]:
    loaded = load_flow_text(body.flow, "<api>", os.getcwd())
    state.policy.check(loaded.data)
    # PostgreSQL: workers are notified
    run = state.engine.run(loaded, body.inputs, run_id=body.run_id, detach=True)
    if state.worker is not None:
        state.worker.wake()
    return {"run_id": run.id, "status": run.status, "created": run.created}


@router.get("/api/runs", dependencies=[Depends(reader)])
def list_runs(status: str | None = Query(None, max_length=32), limit: int = Query(50, ge=1, le=500),
              cursor: str | None = Query(None, max_length=64),
              engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    return queries.runs_page(engine, status, limit, cursor)


@router.get("/api/runs/{run_id}", dependencies=[Depends(reader)])
def get_run(run_id: str, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    return queries.run_detail(engine, run_id_of(run_id))


@router.post("/api/runs/{run_id}/resume", dependencies=[Depends(writer)])
def resume(run_id: str, body: ResumeRun | None = None, state: Any = Depends(state_of)) -> JSONResponse:
    body = body or ResumeRun()
    rid, engine = run_id_of(run_id), state.engine
    engine.record(rid)
    return _started(state, lambda: engine.resume(rid, set=body.set, from_step=body.from_step,
                                                 retry_failed=body.retry_failed), rid)


@router.post("/api/runs/{run_id}/pause", dependencies=[Depends(writer)])
def pause(run_id: str, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    """Ask a running run to pause after its current step: ``{"run_id", "result": "pause
    requested", "status"}`` (its status now: still ``running``); 409 when it is not running."""
    status = engine.pause(run_id_of(run_id))
    return {"run_id": run_id, "result": "pause requested", "status": status}


@router.post("/api/runs/{run_id}/cancel", dependencies=[Depends(writer)])
def cancel(run_id: str, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    return {"run_id": run_id, "result": engine.cancel(run_id_of(run_id))}


@router.delete("/api/runs/{run_id}", dependencies=[Depends(writer)])
def delete_run(run_id: str, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    """Delete a finished run and everything of it (SPEC §7.5): 404 unknown, 409 unfinished
    or the parent of other runs."""
    report = engine.delete_run(run_id_of(run_id))
    return {"run_id": run_id, "deleted": True, **{k: v for k, v in report.items() if k != "run_ids"}}


@router.post("/api/runs/{run_id}/fork", dependencies=[Depends(writer)])
def fork(run_id: str, body: ForkRun | None = None, state: Any = Depends(state_of)) -> JSONResponse:
    body = body or ForkRun()
    rid, engine = run_id_of(run_id), state.engine
    engine.record(rid)
    return _started(state, lambda: engine.fork(rid, from_step=body.from_step, set=body.set), rid)


@router.get("/api/runs/{run_id}/steps", dependencies=[Depends(reader)])
def steps(run_id: str, engine: Engine = Depends(engine_of)) -> list[dict[str, Any]]:
    return queries.steps(engine, run_id_of(run_id))


@router.get("/api/runs/{run_id}/steps/{step_id}", dependencies=[Depends(reader)])
def step(run_id: str, step_id: str, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    rid = run_id_of(run_id)
    found = queries.step(engine, rid, step_id)
    if found is None:
        raise ApiError(404, "NotFound", f"run {rid} has no record of step {step_id!r}")
    return found
