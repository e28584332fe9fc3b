"""Retention on the memory store (the :class:`~tether.store.base.Retention` role), kept
out of ``memory.py``: the same promises as the SQL stores, over the store's dictionaries,
under its lock."""
from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

from .base import BlobStore
from .records import Reclaimed, RunBrief, RunRecord


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (bytes, str)) else 0


def _ref(value: Any) -> str | None:
    """The blob hash an encoded value references, if it is offloaded."""
    if isinstance(value, bytes) and value[:1] == b"h":
        return value[1:].decode("ascii")
    return None


class MemoryRetention:
    """Retention methods of :class:`~tether.store.memory.MemoryStore`."""

    _lock: threading.RLock
    _runs: dict[str, RunRecord]
    _vars: dict[str, dict[str, dict[str, Any]]]
    _history: dict[str, list[tuple]]
    _steps: dict[str, list[tuple]]
    _events: dict[str, list[tuple]]
    blobs: BlobStore
    blobs_url: str | None
    _loops: dict[tuple[str, str], list[bytes]]
    _iterations: dict[tuple[str, str], dict[int, tuple]]
    _recovery_seq: dict[str, int]

    def run_briefs(self) -> list[RunBrief]:
        with self._lock:
            runs = sorted(self._runs.values(), key=lambda r: (r.created_at, r.run_id), reverse=True)
            return [RunBrief(r.run_id, r.name, r.status, r.parent_id, r.created_at, r.finished_at, r.seq,
                             r.lease_owner, r.lease_epoch, r.lease_expires) for r in runs]

    def _values(self, run_id: str) -> Iterator[tuple[int, Any]]:
        """``(rows, value)`` for each stored row of the run: 1 and its first value, then 0
        and its other values (the run's row and spec count as two rows)."""
        yield 2, None
        for h in self._history[run_id]:
            yield 1, h[3]
        for s in self._steps[run_id]:
            yield 1, s[4]
            yield 0, s[5]
        yield len(self._events[run_id]), None
        for (rid, _), items in self._loops.items():
            if rid == run_id:
                for item in items:
                    yield 1, item
        for (rid, _), rows in self._iterations.items():
            if rid == run_id:
                for it in rows.values():
                    yield 1, it[2]

    def _measure(self, run_id: str) -> tuple[int, int, set[str]]:
        rows = size = 0
        refs: set[str] = set()
        for n, value in self._values(run_id):
            rows += n
            size += _size(value)
            h = _ref(value)
            if h is not None:
                refs.add(h)
        return rows, size, refs

    def footprint(self, run_ids: Sequence[str]) -> Reclaimed:
        with self._lock:
            found = [r for r in dict.fromkeys(run_ids) if r in self._runs]
            rows = size = 0
            refs: set[str] = set()
            for run_id in found:
                n, s, h = self._measure(run_id)
                rows, size, refs = rows + n, size + s, refs | h
            others = self._referenced(exclude=set(found))
            sizes = {h: len(self.blobs.get(h) or b"") for h in refs if h not in others}
            gone = [h for h in sizes if self.blobs.get(h) is not None]
            return Reclaimed(tuple(found), rows, size, len(gone), sum(sizes[h] for h in gone))

    def _referenced(self, exclude: Collection[str] = ()) -> set[str]:
        out: set[str] = set()
        for run_id in self._runs:
            if run_id not in exclude:
                out |= self._measure(run_id)[2]
        return out

    def delete_runs(self, runs: Sequence[RunBrief]) -> Reclaimed:
        with self._lock:
            deleted: list[str] = []
            rows = size = 0
            refs: set[str] = set()
            for b in runs:
                r = self._runs.get(b.run_id)
                if r is None or (r.status, r.seq, r.lease_epoch) != (b.status, b.seq, b.lease_epoch):
                    continue
                if any(o.parent_id == b.run_id for o in self._runs.values()):
                    continue
                n, s, h = self._measure(b.run_id)
                rows, size, refs = rows + n, size + s, refs | h
                for table in (self._runs, self._vars, self._history, self._steps, self._events,
                              self._recovery_seq):
                    table.pop(b.run_id, None)
                for keyed in (self._loops, self._iterations):
                    for key in [k for k in keyed if k[0] == b.run_id]:
                        del keyed[key]
                deleted.append(b.run_id)
            blobs, blob_bytes = self.release_blobs(refs)
            return Reclaimed(tuple(deleted), rows, size, blobs, blob_bytes)

    def release_blobs(self, hashes: Iterable[str]) -> tuple[int, int]:
        """Deletes from the store's own blobs; an external blob store (``TETHER_BLOBS``) is
        swept by gc instead (see :func:`tether.engine.retention.sweep_external_blobs`)."""
        with self._lock:
            if self.blobs_url is not None:
                return 0, 0
            payloads = {h: self.blobs.get(h) for h in hashes}
            wanted = [h for h, p in payloads.items() if p is not None]
            if not wanted:
                return 0, 0
            referenced = self._referenced()
            gone = [h for h in wanted if h not in referenced]
            self.blobs.delete(gone)
            return len(gone), sum(len(payloads[h] or b"") for h in gone)

    def reclaim_space(self, max_pages: int = 2000) -> int:
        return 0

    def storage(self) -> dict[str, Any]:
        with self._lock:
            sizes = [len(self.blobs.get(h) or b"") for h in self.blobs.iter_hashes()]
            where = "database" if self.blobs_url is None else self.blobs_url.split(":", 1)[0]
            return {"database_bytes": 0, "free_bytes": 0,
                    "blobs": {where: {"count": len(sizes), "bytes": sum(sizes)}}}
