"""The memory store's loop storage role: a loop's collection, stored once when the loop
starts (fenced on the lease), and its iteration records, read by range, by index and as
counts, in the store's dictionaries behind its lock."""
from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import LeaseLost
from . import codec
from .base import EventWrite, IterationRecord, RunRecord, now


class MemoryLoops:
    """The loop methods of :class:`~tether.store.memory.MemoryStore`."""

    _lock: threading.RLock
    _runs: dict[str, RunRecord]
    _events: dict[str, list[tuple]]
    _loops: dict[tuple[str, str], list[bytes]]
    _iterations: dict[tuple[str, str], dict[int, tuple]]

    if TYPE_CHECKING:
        def _run(self, run_id: str) -> RunRecord: ...
        def _decode(self, data: bytes | None, what: str) -> Any: ...
        def _keep(self, enc: codec.Encoded | None) -> bytes | None: ...

    def start_loop(self, run_id: str, epoch: int, loop_key: str, items: Any, event: EventWrite) -> int:
        with self._lock:
            run = self._run(run_id)
            if (run_id, loop_key) in self._loops:
                return len(self._loops[(run_id, loop_key)])
            if run.lease_epoch != epoch:
                raise LeaseLost(f"run {run_id}: this process no longer holds the lease (epoch {epoch})")
            stored = [self._keep(enc) for enc in items]
            self._loops[(run_id, loop_key)] = stored  # type: ignore[assignment]
            self._runs[run_id] = replace(run, seq=run.seq + 1)
            self._events[run_id].append((run.seq + 1, 0, event.type, event.step_id,
                                         dict(event.data or {}, total=len(stored)), now()))
            return len(stored)

    def loop_size(self, run_id: str, loop_key: str) -> int | None:
        with self._lock:
            items = self._loops.get((run_id, loop_key))
            return None if items is None else len(items)

    def loop_items(self, run_id: str, loop_key: str, start: int, stop: int) -> list[Any]:
        with self._lock:
            items = self._loops.get((run_id, loop_key), [])[start:stop]
        return [self._decode(i, f"run {run_id}: loop {loop_key} element") for i in items]

    def iterations(self, run_id: str, loop_key: str, start: int = 0, stop: int | None = None,
                   status: str | None = None) -> list[IterationRecord]:
        with self._lock:
            rows = dict(self._iterations.get((run_id, loop_key), {}))
        return [IterationRecord(loop_key, idx, r[0], r[1], self._decode(r[2], "iteration"), *r[3:7])
                for idx, r in sorted(rows.items())
                if idx >= start and (stop is None or idx < stop) and (status is None or r[0] == status)]

    def last_iteration(self, run_id: str, loop_key: str) -> IterationRecord | None:
        with self._lock:
            last = max(self._iterations.get((run_id, loop_key), {}), default=None)
        return None if last is None else self.iterations(run_id, loop_key, last, last + 1)[0]

    def finished_indices(self, run_id: str, loop_key: str, start: int, stop: int,
                         include_failed: bool = True) -> set[int]:
        with self._lock:
            rows = self._iterations.get((run_id, loop_key), {})
            return {i for i, r in rows.items() if start <= i < stop and (include_failed or r[0] != "failed")}

    def finished_per_batch(self, run_id: str, loop_key: str, batch: int,
                           include_failed: bool = True) -> dict[int, int]:
        with self._lock:
            out: dict[int, int] = {}
            for i, r in self._iterations.get((run_id, loop_key), {}).items():
                if include_failed or r[0] != "failed":
                    out[i // batch] = out.get(i // batch, 0) + 1
            return out

    def iteration_counts_by_batch(self, run_id: str, loop_key: str, batch: int) -> dict[tuple[int, str], int]:
        with self._lock:
            out: dict[tuple[int, str], int] = {}
            for i, r in self._iterations.get((run_id, loop_key), {}).items():
                out[i // batch, r[0]] = out.get((i // batch, r[0]), 0) + 1
            return out

    def iteration_counts(self, run_id: str, loop_key: str) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for r in self._iterations.get((run_id, loop_key), {}).values():
                counts[r[0]] = counts.get(r[0], 0) + 1
            return counts
