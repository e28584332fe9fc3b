"""The memory store's history reads: a variable's versions, the changes and iteration
checkpoints a timeline draws, the state at a seq, a run's step records and its events, read
from the store's dictionaries behind its lock."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from .base import EventRecord, HistoryRecord, RunRecord, StepHead, StepRecord
from .value_refs import lazy_decode


class MemoryHistory:
    """The history and event reads of :class:`~tether.store.memory.MemoryStore`."""

    _lock: threading.RLock
    _history: dict[str, list[tuple]]
    _steps: dict[str, list[tuple]]
    _events: dict[str, list[tuple]]
    _iterations: dict[tuple[str, str], dict[int, tuple]]

    if TYPE_CHECKING:
        def _run(self, run_id: str) -> RunRecord: ...
        def _decode(self, data: bytes | None, what: str) -> Any: ...
        def load_blob(self, digest: str) -> bytes | None: ...

    def var_history(self, run_id: str, name: str, last: int | None = None) -> list[HistoryRecord]:
        with self._lock:
            self._run(run_id)
            rows = sorted((h for h in self._history[run_id] if h[0] == name), key=lambda h: h[1])
            if last is not None:
                rows = rows[len(rows) - max(int(last), 0):]
            return [HistoryRecord(name, h[1], h[2], self._decode(h[3], f"run {run_id}: {name}"),
                                  h[4], h[5], h[6]) for h in rows]

    def var_changes(self, run_id: str) -> list[tuple[int, str, float]]:
        with self._lock:
            self._run(run_id)
            return sorted((h[2], h[0], h[5]) for h in self._history[run_id])

    def iteration_checkpoints(self, run_id: str) -> list[tuple[int, str, int, float | None]]:
        with self._lock:
            self._run(run_id)
            return sorted((r[4], key, idx, r[6])
                          for (rid, key), rows in self._iterations.items() if rid == run_id
                          for idx, r in rows.items())

    def state_at(self, run_id: str, seq: int) -> dict[str, Any]:
        with self._lock:
            self._run(run_id)
            last: dict[str, tuple] = {}
            for h in self._history[run_id]:
                if h[2] <= seq and (h[0] not in last or h[1] > last[h[0]][1]):
                    last[h[0]] = h
            return {n: self._decode(h[3], f"run {run_id}: {n}") for n, h in last.items() if not h[6]}

    def steps(self, run_id: str, *, refs: bool = False) -> list[StepRecord]:
        decode = lazy_decode(self.load_blob) if refs else self._decode
        with self._lock:
            self._run(run_id)
            return [StepRecord(r[0], r[1], r[2], r[3], decode(r[4], "step inputs"),
                               decode(r[5], "step result"), r[6], r[7], r[8], r[9], r[10])
                    for r in self._steps[run_id]]

    def step_heads(self, run_id: str) -> list[StepHead]:
        with self._lock:
            self._run(run_id)
            return [StepHead(r[0], r[1], r[2], r[7]) for r in self._steps[run_id]]

    def step_at(self, run_id: str, seq: int, step_id: str) -> StepRecord:
        for rec in self.steps(run_id, refs=True):
            if rec.seq == seq and rec.step_id == step_id:
                return rec
        raise NotFound(f"run {run_id} has no record of step {step_id!r} at checkpoint {seq}")

    def events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]:
        with self._lock:
            self._run(run_id)
            out = [EventRecord(*e) for e in self._events[run_id] if e[0] > after_seq]
            by_seq: dict[int, list[tuple]] = {}
            for r in self._steps[run_id]:
                if r[2] > after_seq:
                    by_seq.setdefault(r[2], []).append(r)
            for seq, rows in by_seq.items():  # a step record is its own step.<status> event
                for idx, r in enumerate(sorted(rows, key=lambda r: r[0])):
                    out.append(EventRecord(seq, idx, f"step.{r[1]}", r[0],
                                           {"attempts": r[3], "error": r[6]}, r[9]))
        out.sort(key=lambda e: (e.seq, e.idx))
        return out if limit is None else out[:limit]

    def events_of_type(self, run_id: str, type_: str) -> list[EventRecord]:
        with self._lock:
            self._run(run_id)
            return [EventRecord(*e) for e in self._events[run_id] if e[2] == type_]
