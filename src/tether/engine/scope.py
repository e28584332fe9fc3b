"""The names a step's templates see, built in one place for the runner, ``verify`` and a
worker that runs another process's loop iteration, so that a re-render sees what ran.

A scope is a dict: ``inputs`` (also ``workload``), ``vars``, ``env``, ``steps``, ``run``,
``shared``, then per step ``step`` (and ``error`` after a failure that the flow handled),
and the bare-name lookup under :data:`~tether.templates.BARE_KEY` (``{{ name }}`` is a
``let`` value, a variable, a step, an input or a ``run`` field, in that order).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..store.base import RunRecord
from ..templates import MISSING, AttrView
from ..variables import VarState
from ..views import iso


def idempotency_key(run_id: str, step_id: str, visit: int) -> str:
    """A step execution's idempotency key: the same for every attempt and every resume of
    the ``visit``-th execution of ``step_id`` (0 first; a ``next`` loop's later ones count up)."""
    return f"{run_id}/{step_id}/{visit}"


def top_loop_key(step_id: str, visit: int) -> str:
    """The key naming the stored collection and records of a top-level loop step's
    ``visit``-th execution: the step id, with ``#VISIT`` after the first."""
    return step_id if visit == 0 else f"{step_id}#{visit}"


def loop_step_key(run_id: str, loop_key: str) -> tuple[str, str]:
    """The step id and idempotency key of the loop step whose top-level loop is ``loop_key``
    (made by :func:`top_loop_key`)."""
    step_id, _, visit = loop_key.partition("#")
    return step_id, idempotency_key(run_id, step_id, int(visit or 0))


def run_fields(record: RunRecord) -> dict[str, Any]:
    """``run``: the run's id, name, start time (ISO-8601), attempt and parent."""
    return {"id": record.run_id, "name": record.name, "started_at": iso(record.started_at),
            "attempt": record.attempt, "resumed": record.attempt > 1, "parent_id": record.parent_id}


def run_scope(*, inputs: Mapping[str, Any], state: VarState, env: Mapping[str, str | None], steps: AttrView,
              run: dict[str, Any], shared: AttrView) -> dict[str, Any]:
    """The names every template of a run sees (without the bare-name lookup: see :func:`bare_lookup`)."""
    inputs_view = AttrView.of(inputs, "inputs")
    return {"inputs": inputs_view, "workload": inputs_view, "vars": state.view,
            "env": AttrView.of_set(env, "env"), "steps": steps, "run": run, "shared": shared}


def bare_lookup(state: VarState, step: Callable[[str], Any], inputs: Mapping[str, Any],
                run: Mapping[str, Any], let: Mapping[str, Any] | None = None) -> Callable[[str], Any]:
    """How a bare ``{{ name }}`` resolves: a ``let`` value, a variable, a step (``step(name)``,
    MISSING when there is none), an input, a ``run`` field; MISSING when none has it."""

    def bare(name: str) -> Any:
        if let is not None and name in let:
            return let[name]
        value = state.lookup(name)
        if value is not MISSING:
            return value
        value = step(name)
        if value is not MISSING:
            return value
        if name in inputs:
            return inputs[name]
        if name in run:
            return run[name]
        return MISSING
    return bare


def step_scope(base: dict[str, Any], step_id: str, attempt: int, key: str | None,
               error: dict[str, Any] | None = None) -> dict[str, Any]:
    """A step's own scope: the run's names, ``step`` (id, attempt, idempotency key) and
    ``error`` when the step follows a failure the flow handled."""
    scope = dict(base)
    scope["step"] = {"id": step_id, "attempt": attempt, "idempotency_key": key}
    if error is not None:
        scope["error"] = error
    return scope


__all__ = ["bare_lookup", "idempotency_key", "loop_step_key", "run_fields", "run_scope", "step_scope",
           "top_loop_key"]
