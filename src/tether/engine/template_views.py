"""What templates see of a run's records: ``steps.ID`` (a step's record), ``map`` (a
loop's aggregates) and a loop step's result list, each read from the store when a
template asks. The runner, the loops and ``verify`` all build them here, so a
template sees the same thing whichever of them renders it."""
from __future__ import annotations

import itertools
from typing import Any

from ..sandbox import AttrView
from ..store.base import StepRecord, Store
from ..store.value_refs import remembered, resolved
from ..views import iso


class MapView(AttrView):
    """``map.*`` of one loop, computed from its stored iteration records."""

    def __init__(self, store: Any, run_id: str, loop_key: str, total: int) -> None:
        self._store, self._run_id, self._loop_key, self._total = store, run_id, loop_key, total
        self._counts: dict[str, int] | None = None
        super().__init__(self._value, lambda: MAP_KEYS, f"map of {loop_key}")

    @staticmethod
    def counts(by_status: dict[str, int], total: int) -> dict[str, Any]:
        """The scalar ``map.*`` aggregates (SPEC §5) from ``{iteration status: count}``:
        ``completed`` counts every finished iteration, successful or not. The loop step's
        ``meta.map`` is this same document, so the two never disagree."""
        ok = by_status.get("completed", 0)
        failed = by_status.get("failed", 0)
        skipped = by_status.get("skipped", 0)
        ran = total - skipped
        return {"total": total, "completed": ok + failed, "successful": ok, "failed": failed,
                "skipped": skipped, "pending": total - ok - failed - skipped,
                "success_rate": ok / ran if ran > 0 and (ok + failed) else 0}

    def _value(self, key: str) -> Any:
        if key not in MAP_KEYS:
            raise KeyError(key)
        if key == "results":
            return [r.result
                    for r in self._store.iterations(self._run_id, self._loop_key, status="completed")]
        if key == "failures":
            out = []
            for r in self._store.iterations(self._run_id, self._loop_key, status="failed"):
                item = self._store.loop_items(self._run_id, self._loop_key, r.idx, r.idx + 1)
                out.append({"index": r.idx, "item": item[0] if item else None, "error": r.error})
            return out
        if self._counts is None:
            self._counts = self.counts(self._store.iteration_counts(self._run_id, self._loop_key),
                                       self._total)
        return self._counts[key]


MAP_KEYS = ("total", "completed", "successful", "failed", "skipped", "pending", "success_rate", "results",
            "failures")


def loop_results(store: Any, run_id: str, loop_key: str, total: int) -> list[Any]:
    """The loop step's result: each iteration's result in input order (None where it failed or
    was skipped)."""
    out: list[Any] = [None] * total
    for r in store.iterations(run_id, loop_key):
        if r.status == "completed" and r.idx < total:
            out[r.idx] = r.result
    return out


_VIEWS = itertools.count()


def step_view(rec: StepRecord, store: Store, run_id: str) -> AttrView:
    """How templates see a step's record as ``steps.ID``: times as ISO-8601 text, a result
    held as a :class:`~tether.store.value_refs.StoredValue` read back when asked, and for a
    loop step its result list and ``map`` aggregates, read from its iteration records when asked."""
    data = {"result": rec.result, "status": rec.status, "error": rec.error, "attempts": rec.attempts,
            "started_at": rec.started_at, "finished_at": rec.finished_at,
            "duration": (rec.finished_at - rec.started_at) if rec.finished_at and rec.started_at else None,
            "meta": rec.meta or {}}
    loop = rec.meta.get("loop_key") if isinstance(rec.meta, dict) else None
    total = rec.meta.get("total", 0) if loop is not None else 0
    if loop is not None:
        data["map"] = MapView(store, run_id, loop, total)
    token = f"loop result {next(_VIEWS)}" if loop is not None else ""  # this view's own key

    def get(key: str) -> Any:
        if key == "result" and loop is not None:  # built once while among the values read last
            return remembered(token, lambda: loop_results(store, run_id, loop, total))
        value = data[key]
        if key == "result":
            return resolved(value)  # a large result is read back from the blob store
        return iso(value) if key in ("started_at", "finished_at") else value
    return AttrView(get, data.keys, f"steps.{rec.step_id}")


def with_own_record(steps: AttrView, own: AttrView, step_id: str) -> AttrView:
    """``steps`` in which ``steps.STEP_ID`` is ``own``: the record a step is about to commit,
    so that its own ``vars`` and ``next`` can read ``steps.ID.status``, ``.result``, ``.error``."""
    return AttrView(lambda k: own if k == step_id else steps[k],
                    lambda: list(dict.fromkeys([*steps, step_id])), "steps")


def body_step_view(data: dict[str, Any], sid: str) -> AttrView:
    """How a loop body's later steps see body step ``sid`` of the same iteration as
    ``steps.ID``: ``status``, ``result``, ``error``, ``attempts`` and an empty ``meta``."""
    data.setdefault("meta", {})
    return AttrView.of(data, f"steps.{sid}")


__all__ = ["MAP_KEYS", "MapView", "body_step_view", "loop_results", "step_view", "with_own_record"]
