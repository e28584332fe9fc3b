"""The repair actions a write token may take from a run page — resume (with values to set,
from a step, retrying failed iterations), pause, cancel, fork (from a step, with
overrides) and delete (a finished run) — through the same ``Engine`` methods the
API calls. Each answers ``{ok, message, run_id, status}``; a resume or fork that takes
longer than a moment goes on in the background and is answered as started."""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from ...errors import TetherError, UsageError
from ...ids import check_var_name, new_run_id

VERBS = ("resume", "pause", "cancel", "fork", "delete")
WAIT = 1.0  # seconds an action's answer waits for a resumed or forked run


def offered(status: str) -> tuple[str, ...]:
    """The actions a run page offers for a run of ``status``: only those its state allows
    (pause a running run; resume a paused, failed, interrupted or completed one, the
    last from a step; cancel one not finished; delete a finished one; fork any)."""
    actions = ["fork"]
    if status in ("paused", "failed", "interrupted", "completed"):
        actions.append("resume")
    if status == "running":
        actions.append("pause")
    if status in ("pending", "running", "paused", "failed", "interrupted"):
        actions.append("cancel")
    if status in ("completed", "failed", "cancelled"):
        actions.append("delete")
    return tuple(a for a in VERBS if a in actions)


def in_background(fn: Callable[[], Any]) -> Future[Any]:
    """``fn()`` in a daemon thread (a run it continues outlives the request)."""
    future: Future[Any] = Future()

    def work() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)
    threading.Thread(target=work, name="tether-ui-action", daemon=True).start()
    return future


def values_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """The ``set`` member: a JSON object of variable names to values, or None; UsageError
    for anything else or a bad name."""
    values = body.get("set")
    if values in (None, {}):
        return None
    if not isinstance(values, dict):
        raise UsageError("set must be an object of NAME: VALUE")
    for name in values:
        check_var_name(name)
    return values


def step_of(body: dict[str, Any]) -> str | None:
    """The ``from_step`` member: a step id or None; UsageError for anything else."""
    step = body.get("from_step")
    if step in (None, ""):
        return None
    if not isinstance(step, str) or len(step) > 128:
        raise UsageError("from_step must be a step id")
    return step


def outcome(run_id: str, future: Future[Any], verb: str) -> dict[str, Any]:
    """The answer for a resumed or forked run: its status if it stopped within ``WAIT``,
    else that it goes on; a TetherError it raised propagates."""
    try:
        run = future.result(timeout=WAIT)
    except FutureTimeout:
        return {"ok": True, "run_id": run_id, "status": "running",
                "message": f"{verb}: run {run_id} is running"}
    return {"ok": True, "run_id": run.id, "status": run.status,
            "message": f"{verb}: run {run.id} is {run.status}"}


def act(engine: Any, run_id: str, verb: str, body: dict[str, Any]) -> dict[str, Any]:
    """Do ``verb`` on the run; UsageError for an unknown verb or bad body, and whatever the
    engine raises (NotFound, ConflictError, ...) for a refused action."""
    if verb not in VERBS:
        raise UsageError(f"unknown action {verb!r}; actions: {', '.join(VERBS)}")
    engine.record(run_id)
    if verb == "pause":
        was = engine.pause(run_id)
        return {"ok": True, "run_id": run_id, "status": was, "message": "pause requested"}
    if verb == "cancel":
        was = engine.cancel(run_id)
        return {"ok": True, "run_id": run_id, "status": "cancelled", "message": f"cancelled (was {was})"}
    if verb == "delete":
        engine.delete_run(run_id)
        return {"ok": True, "run_id": run_id, "status": "deleted", "message": f"run {run_id} deleted"}
    values, step = values_of(body), step_of(body)
    if verb == "resume":
        retry = body.get("retry_failed", False)
        if not isinstance(retry, bool):
            raise UsageError("retry_failed must be true or false")
        future = in_background(lambda: engine.resume(run_id, set=values, from_step=step,
                                                     retry_failed=retry))
        return outcome(run_id, future, "resume")
    child = new_run_id()
    future = in_background(lambda: engine.fork(run_id, from_step=step, set=values, new_run_id=child))
    return outcome(child, future, "fork")


def error_answer(exc: TetherError) -> tuple[int, dict[str, Any]]:
    """A refused action's status and answer."""
    text = exc.message + (f" ({exc.hint})" if getattr(exc, "hint", None) else "")
    return exc.http_status, {"ok": False, "error": type(exc).__name__, "message": text}
