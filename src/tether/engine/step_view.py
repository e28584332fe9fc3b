"""How templates see a step's record as ``steps.ID`` (the runner's scope and ``verify``)."""
from __future__ import annotations

from typing import Any

from ..sandbox import AttrView
from ..store.base import StepRecord, Store
from ..views import iso
from .loops import MapView, loop_results


def step_view(rec: StepRecord, store: Store, run_id: str) -> AttrView:
    """How templates see a step's record as ``steps.ID``: times as ISO-8601 text, and for a
    loop step its result list and ``map`` aggregates, read from its iteration records when asked."""
    data = {"result": rec.result, "status": rec.status, "error": rec.error, "attempts": rec.attempts,
            "started_at": rec.started_at, "finished_at": rec.finished_at,
            "duration": (rec.finished_at - rec.started_at) if rec.finished_at and rec.started_at else None,
            "meta": rec.meta or {}}
    loop = rec.meta.get("loop_key") if isinstance(rec.meta, dict) else None
    total = rec.meta.get("total", 0) if loop is not None else 0
    if loop is not None:
        data["map"] = MapView(store, run_id, loop, total)
    cache: list[Any] = []

    def get(key: str) -> Any:
        if key == "result" and loop is not None:
            if not cache:
                cache.append(loop_results(store, run_id, loop, total))
            return cache[0]
        value = data[key]
        return iso(value) if key in ("started_at", "finished_at") else value
    return AttrView(get, data.keys, f"steps.{rec.step_id}")


def with_own_record(steps: AttrView, own: AttrView, step_id: str) -> AttrView:
    """``steps`` in which ``steps.STEP_ID`` is ``own``: the record a step is about to commit,
    so that its own ``vars`` and ``next`` can read ``steps.ID.status``, ``.result``, ``.error``."""
    return AttrView(lambda k: own if k == step_id else steps[k],
                    lambda: list(dict.fromkeys([*steps, step_id])), "steps")
