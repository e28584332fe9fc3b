"""``tool: flow`` — run another flow file as a child run (``parent_id`` set).

The child's id is derived from the parent's step idempotency key, so running the
step again (a retry, or a resumed parent) finds the same child and resumes it
instead of starting a second one. The step's result is the child's outputs.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..errors import ToolError
from .base import ChildPaused, ToolContext, ToolResult


def child_run_id(parent_id: str, idempotency_key: str) -> str:
    """A run id for the child that a step (one visit of it) starts, stable across resumes."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]
    return f"{parent_id[:48]}-{digest}"


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    unknown = set(args) - {"path", "inputs"}
    if unknown:
        raise ToolError(f"flow: unknown argument(s) {sorted(unknown)}", type_="ArgumentError",
                        retryable=False)
    path = args.get("path")
    inputs = args.get("inputs") or {}
    if not isinstance(path, str) or not path:
        raise ToolError("flow: 'path' must be the child flow file, relative to this flow's folder",
                        type_="ArgumentError", retryable=False)
    if not isinstance(inputs, dict):
        raise ToolError("flow: 'inputs' must be a mapping", type_="ArgumentError", retryable=False)
    if ctx.run_child is None:
        raise ToolError("flow: sub-flows are not available here", retryable=False)
    child_id = child_run_id(ctx.run_id, ctx.idempotency_key)
    child = ctx.run_child(Path(ctx.base_dir) / path, inputs, child_id)
    meta = {"child_run_id": child.id, "child_status": child.status}
    if child.status == "completed":
        return ToolResult(child.outputs, meta)
    if child.status == "paused":
        raise ChildPaused(child.id, None)
    err = child.error or {}
    raise ToolError(f"child run {child.id} {child.status}: {err.get('type', '')}: {err.get('message', '')}",
                    type_="ChildRunFailed", result={"child_run_id": child.id, "status": child.status})


def is_child_run_id(parent_id: str, run_id: str) -> bool:
    """Whether ``run_id`` has the shape of a child that a step of run ``parent_id`` started
    (as opposed to a fork of it, which also names it as parent)."""
    prefix = f"{parent_id[:48]}-"
    tail = run_id[len(prefix):]
    return run_id.startswith(prefix) and len(tail) == 12 and all(c in "0123456789abcdef" for c in tail)
