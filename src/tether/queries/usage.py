"""A run's model usage: tokens and cost summed from its ``tool.result`` events (one per
call of a tool whose result is durable: ``tool: model``), its loops and its child runs."""
from __future__ import annotations

from typing import Any

MODEL_EVENT = "tool.result"  # engine/durable.py: one per call of a tool with a durable result


def _add(total: dict[str, Any], meta: Any) -> None:
    if not isinstance(meta, dict) or (meta.get("input_tokens") is None and meta.get("output_tokens") is None):
        return
    total["calls"] += 1
    total["input_tokens"] += int(meta.get("input_tokens") or 0)
    total["output_tokens"] += int(meta.get("output_tokens") or 0)
    if isinstance(meta.get("cost"), (int, float)):
        total["cost"] = round((total["cost"] or 0.0) + meta["cost"], 10)


def _empty() -> dict[str, Any]:
    return {"input_tokens": 0, "output_tokens": 0, "cost": None, "calls": 0}


def own_usage(engine: Any, run_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The tokens and cost of the model calls one run made (loop iterations included, child
    runs not), in total and by step id. Every call that returned counts once: a committed
    answer that a resume reused is not paid again, one hidden by a rewind was paid."""
    total = _empty()
    by_step: dict[str, dict[str, Any]] = {}
    for e in engine.store.events_of_type(run_id, MODEL_EVENT):
        if isinstance(e.data, dict):
            meta = e.data.get("meta")
            _add(total, meta)
            _add(by_step.setdefault(str(e.step_id), _empty()), meta)
    return total, {k: v for k, v in by_step.items() if v["calls"]}


def child_runs(engine: Any, run_id: str) -> list[str]:
    """The ids of the runs that ``run_id``'s ``flow`` steps started, their children too
    (forks are not children), oldest first. Reads only the family's rows (the store's
    index on ``parent_id``), however many other runs the store holds."""
    found: list[str] = []
    todo = [run_id]
    while todo:
        parent = todo.pop()
        before = None
        while True:
            page = engine.store.list_runs(limit=500, before=before, parent=parent)
            if not page:  # most runs: no child, and no import of the tools (nor of OpenSSL) to read one
                break
            from ..tools.flow import is_child_run_id
            kids = [r for r in page if is_child_run_id(parent, r.run_id)]
            found += [r.run_id for r in sorted(kids, key=lambda r: (r.created_at, r.run_id))]
            todo += [r.run_id for r in kids]
            if len(page) < 500:
                break
            before = page[-1].run_id
    return found


def usage(engine: Any, run_id: str) -> dict[str, Any]:
    """``{input_tokens, output_tokens, cost, calls}`` summed over a run's model calls, its loops
    and its child runs; ``cost`` is None when no call had a price."""
    total, _ = own_usage(engine, run_id)
    for child in child_runs(engine, run_id):
        sub, _ = own_usage(engine, child)
        total["calls"] += sub["calls"]
        total["input_tokens"] += sub["input_tokens"]
        total["output_tokens"] += sub["output_tokens"]
        if sub["cost"] is not None:
            total["cost"] = round((total["cost"] or 0.0) + sub["cost"], 10)
    return total
