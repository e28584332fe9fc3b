"""A step's tool: called through its attempts (:func:`call_tool`), the ``pause`` tool
(:func:`pause_step`), and a step's ``share`` block written to the shared variables
(:func:`share`). Each works on the step's run through :class:`~.step_host.StepHost`."""
from __future__ import annotations

import logging
import time
from typing import Any

from ..env import mask
from ..errors import ConflictError, UnstorableValue
from ..flow.models import Step
from ..store.base import EventWrite, VarWrite
from ..store.value_refs import ResolvedMapping
from ..templates import render_deep
from ..tools import ToolContext, get_tool, is_durable
from ..tools.base import ChildPaused
from ..views import iso
from .attempts import NO_RETRY, StepFailed, run_attempts
from .run_stops import StopRun
from .step_host import StepHost

log = logging.getLogger("tether.engine.runner")  # the retry log keeps the name it always had


def call_tool(h: StepHost, step: Step, args: dict[str, Any], key: str,
              where: str | None = None) -> tuple[Any, dict[str, Any], int, dict[str, Any]]:
    """Run ``step``'s tool with ``args`` through its attempts (retries, timeout, cancel):
    ``(result, meta, attempts, what it set through its context)``; StepFailed when the
    last attempt failed. An attempt that failed once the run was cancelled (its process
    group killed, a retry's wait cut short) raises StopRun with ``cut`` set instead: a
    cancel is never a step's or an iteration's failure."""
    retry = step.retry or h.flow.defaults.retry or NO_RETRY
    timeout = step.timeout if step.timeout is not None else h.flow.defaults.timeout

    def make_ctx(attempt: int) -> ToolContext:
        return ToolContext(h.run_id, step.id, attempt, key, ResolvedMapping(h.state.values),
                           h.loaded.base_dir, timeout, h.store.url, h.cancel,
                           run_child=h.run_child, blobs_url=h.store.blobs_url,
                           _save=lambda n, d: h.save_checkpoint(step.id, n, d),
                           _load=h.load_checkpoint, processes=h.processes,
                           flow=h.flow, settings=h.settings)

    def on_retry(attempt: int, error: dict[str, Any], delay: float) -> None:
        log.info("run %s: step %s attempt %d failed (%s); retrying in %.2fs", h.run_id, step.id,
                 attempt, mask(error["message"], h.secrets), delay, extra={"run_id": h.run_id})
    durable = is_durable(step.tool)  # type: ignore[arg-type]  # a step with a tool
    if durable and (saved := h.durable.lookup(key)) is not None:
        return saved  # committed by an earlier execution of this step: not called again
    try:
        outcome = run_attempts(get_tool(step.tool), args, retry, make_ctx, h.cancel,
                               on_retry, where or f"step {step.id!r}")
    except ChildPaused as paused:  # a paused sub-flow pauses this run at this step
        raise StopRun("paused", step.id, {"step": step.id, "child": paused.child_id,
                                        "message": paused.message}) from None
    except StepFailed as failed:
        if h.cancel.is_set():  # cut short by a cancel (or a signal's hand-back): not a failure
            raise StopRun("cancelled", step.id, cut=failed) from None
        raise
    if durable:
        h.durable.record(step.id, key, outcome)  # before vars are rendered: paid once
    return outcome


def pause_step(h: StepHost, step: Step, scope: dict[str, Any], key: str, writes: list[VarWrite]) -> Any:
    """``tool: pause``: the first time, stop the run as paused here; when resumed, the
    step completes with ``{message, resumed_at, set}``."""
    if h.paused_at is not None and h.paused_at.get("step") == step.id:
        pause, h.paused_at = h.paused_at, None
        return {"message": pause.get("message"), "resumed_at": iso(time.time()), "set": h.resume_set}
    args = render_deep(step.with_, scope, f"step {step.id!r}, field 'with'")
    message = mask(args.get("message"), h.secrets) if isinstance(args, dict) else None
    h.commits.commit(writes=writes, events=(EventWrite("step.started", step.id,
                                                   {"attempt": 1, "idempotency_key": key}),))
    raise StopRun("paused", step.id, {"step": step.id, "message": message})


def share(h: StepHost, step: Step, scope: dict[str, Any]) -> None:
    """Write the step's ``share`` block to the shared variables, before the step commits
    (a crash in between writes them again on resume: at least once)."""
    values = {name: render_deep(tmpl, scope, f"step {step.id!r}, field 'share.{name}'")
              for name, tmpl in step.share.items()}
    for name, value in values.items():
        try:
            h.store.shared_set(name, value)
        except UnstorableValue as exc:
            raise exc.at(f"step {step.id!r}") from None
        except ConflictError as exc:
            raise StepFailed({"type": "ConflictError", "message": exc.message}, None, 1) from None
