"""Retention on the SQL stores (the :class:`~tether.store.base.Retention` role): the same
statements on SQLite and PostgreSQL but for the placeholder, row locking and PostgreSQL's
lock on the blob table (``_lock_blobs``)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .base import BlobStore
from .records import Reclaimed, RunBrief
from .sql_statements import (
    BLOB_COLUMNS,
    BLOB_REFERENCED,
    BLOB_REFERRERS,
    BLOB_SIZE,
    BLOB_USAGE,
    DELETE_BLOB,
    RUN_BRIEFS,
    RUN_STATE,
    RUN_TABLES,
    children_of,
    run_rows,
    runs_state,
)


def _hashes(refs: Iterable[Any]) -> set[str]:
    """The blob hashes among a row's reference columns (``h`` + hex; NULL: none)."""
    out = set()
    for v in refs:
        if v is not None:
            raw = bytes(v)
            if raw[:1] == b"h":
                out.add(raw[1:].decode("ascii"))
    return out


class SQLRetention:
    """Retention methods written once for both SQL backends."""

    _tx: Callable[[], AbstractContextManager[Any]]
    _query: Callable[..., list[tuple]]
    _q: Callable[[str], str]
    _for_update: str
    _bytes: Callable[[], int]
    _external: bool
    blobs: BlobStore
    blobs_url: str | None
    #: the tables holding a run's rows, children first (PostgreSQL adds its own)
    _run_tables: tuple[tuple[str, str, tuple[str, ...]], ...] = RUN_TABLES

    def _lock_blobs(self, db: Any) -> None:
        """Keep commits from adding blob references while blobs are deleted (PostgreSQL;
        SQLite's write transaction already excludes every other writer)."""

    def _free_bytes(self) -> int:
        return 0

    def run_briefs(self) -> list[RunBrief]:
        return [RunBrief(*r) for r in self._query(RUN_BRIEFS)]

    def footprint(self, run_ids: Sequence[str]) -> Reclaimed:
        wanted = set(run_ids)
        found: list[str] = []
        rows = size = 0
        hashes: set[str] = set()
        for run_id in run_ids:
            if not self._query(self._q(RUN_STATE), (run_id,)):
                continue
            found.append(run_id)
            for table, payload, refs in self._run_tables:
                for r in self._query(self._q(run_rows(table, payload, refs, delete=False)), (run_id,)):
                    rows += 1
                    size += r[0] or 0
                    hashes |= _hashes(r[1:])
        blobs = blob_bytes = 0
        for h in sorted(hashes):
            ref = b"h" + h.encode()
            referrers = {r[0] for r in self._query(self._q(BLOB_REFERRERS), (ref,) * len(BLOB_COLUMNS))}
            got = self._query(self._q(BLOB_SIZE), (h,))
            if got and referrers <= wanted:
                blobs += 1
                blob_bytes += got[0][0]
        return Reclaimed(tuple(found), rows, size, blobs, blob_bytes)

    def delete_runs(self, runs: Sequence[RunBrief]) -> Reclaimed:
        rows = size = 0
        hashes: set[str] = set()
        chosen = {b.run_id: b for b in runs}
        if not chosen:
            return Reclaimed()
        ids = list(chosen)
        held = 0.0
        with self._tx() as db:
            held = time.perf_counter()  # the write lock is ours from here to the commit
            # still as chosen (PostgreSQL: and locked, so nobody takes them over meanwhile)
            ok = {r[0] for r in db.execute(self._q(runs_state(len(ids)) + self._for_update), ids).fetchall()
                  if (r[1], r[2], r[3]) == (chosen[r[0]].status, chosen[r[0]].seq, chosen[r[0]].lease_epoch)}
            # a parent whose child stays, stays (and then its own parent too)
            children = db.execute(self._q(children_of(len(ids))), ids).fetchall() if ok else []
            while True:
                kept = {parent for child, parent in children if parent in ok and child not in ok}
                if not kept:
                    break
                ok -= kept
            deleted = [i for i in ids if i in ok]
            if deleted:
                for t, p, refs in self._run_tables:
                    for r in db.execute(self._q(run_rows(t, p, refs, delete=True, runs=len(deleted))),
                                        deleted).fetchall():
                        rows += 1
                        size += r[0] or 0
                        hashes |= _hashes(r[1:])
            blobs, blob_bytes = self._release_blobs(db, hashes)
        return Reclaimed(tuple(deleted), rows, size, blobs, blob_bytes, time.perf_counter() - held)

    def release_blobs(self, hashes: Iterable[str]) -> tuple[int, int]:
        with self._tx() as db:
            return self._release_blobs(db, set(hashes))

    def _release_blobs(self, db: Any, hashes: set[str]) -> tuple[int, int]:
        """Inside transaction ``db``: delete the blobs of ``hashes`` no row references from the
        store's own table. With ``TETHER_BLOBS`` the blob store outside is swept by gc instead
        (:func:`tether.engine.retention.sweep_external_blobs`): a blob there is written before
        the commit that refers to it, so only blobs unused for a while may go."""
        if not hashes or self._external:
            return 0, 0
        self._lock_blobs(db)
        count = size = 0
        referenced, sized, delete = self._q(BLOB_REFERENCED), self._q(BLOB_SIZE), self._q(DELETE_BLOB)
        for h in sorted(hashes):
            if db.execute(referenced, (b"h" + h.encode(),) * len(BLOB_COLUMNS)).fetchone() is not None:
                continue
            row = db.execute(sized, (h,)).fetchone()
            if row is not None:
                db.execute(delete, (h,))
                count += 1
                size += row[0]
        return count, size

    def reclaim_space(self, max_pages: int = 2000) -> int:
        return 0

    def storage(self) -> dict[str, Any]:
        count, size = self._query(BLOB_USAGE)[0]
        blobs: dict[str, Any] = {"database": {"count": int(count), "bytes": int(size)}}
        if self._external and self.blobs_url:  # counted by listing it; sizes are not listed
            blobs[self.blobs_url.split(":", 1)[0]] = {"count": sum(1 for _ in self.blobs.iter_hashes()),
                                                      "bytes": None}
        return {"database_bytes": self._bytes(), "free_bytes": self._free_bytes(), "blobs": blobs}
