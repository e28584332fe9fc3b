"""How the command line reports failures and pauses: the ``error`` document of ``--json``
(SPEC §8.1) and the lines people read (a loop's failed iterations, a python traceback)."""
from __future__ import annotations

from typing import Any

from ..errors import FlowError, TetherError, ToolError


def error_doc(exc: BaseException) -> dict[str, Any]:
    """The ``error`` member of a ``--json`` document for a command that failed:
    ``{type, message}``, plus ``hint`` and, for a flow that does not load, ``problems``
    as ``{file, line, column, message}``."""
    if not isinstance(exc, TetherError):
        return {"type": type(exc).__name__, "message": str(exc)}
    doc: dict[str, Any] = {"type": exc.type if isinstance(exc, ToolError) else type(exc).__name__,
                           "message": str(exc) if isinstance(exc, FlowError) else exc.message}
    if exc.hint:
        doc["hint"] = exc.hint
    if isinstance(exc, FlowError):
        doc["problems"] = exc.problem_docs()
    return doc


def error_lines(error: Any, traceback: bool = True) -> list[str]:
    """A step's or run's error for people: ``TYPE: message`` (a loop's message lists its
    failed iterations), then the traceback of the user's python code when there is one.
    Never empty."""
    if not isinstance(error, dict):
        return [str(error)]
    lines = f"{error.get('type')}: {error.get('message')}".splitlines() or [""]
    if traceback and error.get("traceback"):
        lines += str(error["traceback"]).rstrip("\n").splitlines()
    return lines


def error_block(error: Any, title: str | None = None) -> list[str]:
    """``error_lines`` under a title (default ``error in step ID``), indented for a report."""
    if title is None:
        step = error.get("step") if isinstance(error, dict) else None
        title = f"error in step {step}" if step else "error"
    first, *rest = error_lines(error)
    return [f"  {title}: {first}", *(f"    {line}" for line in rest)]


def pause_lines(run_id: str, pause: Any) -> list[str]:
    """Where and why a run paused (the pause step's message), and how to continue it."""
    pause = pause if isinstance(pause, dict) else {}
    where = f" at step {pause['step']}" if pause.get("step") else ""
    message = pause.get("message")
    return [f"  paused{where}" + (f": {message}" if message not in (None, "") else ""),
            f"  continue with: tether resume {run_id} [--set NAME=VALUE ...]"]


def money(cost: Any) -> str:
    """A cost for people: up to 6 decimals, trailing zeros dropped; empty for None."""
    if cost is None:
        return ""
    return f"{cost:.6f}".rstrip("0").rstrip(".") if cost else "0"


def usage_lines(by_step: dict[str, dict[str, Any]], total: dict[str, Any]) -> list[str]:
    """The model calls of a run for people: tokens and cost per step, then the run's total
    (child runs included). Nothing for a run that called no model."""
    if not total.get("calls"):
        return []

    def line(u: dict[str, Any]) -> str:
        cost = f", cost {money(u['cost'])}" if u.get("cost") is not None else ""
        calls = f"{u['calls']} call{'s' if u['calls'] != 1 else ''}"
        return f"{calls}, {u['input_tokens']} input + {u['output_tokens']} output tokens{cost}"
    out = ["  model usage:"]
    out += [f"    step {sid}: {line(u)}" for sid, u in by_step.items()]
    out.append(f"    total: {line(total)}")
    return out
