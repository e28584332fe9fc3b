"""The loop-storage reads on the SQL stores, written once for SQLite and PostgreSQL: a
loop's size and items by range, its iteration records by range, the last one, which
indices finished, and counts by status. (Starting a loop and committing iterations are
each dialect's own: ``sqlite_loops.py``, ``postgres.py``.)"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import sql_statements as st
from . import sqlrows
from .base import IterationRecord
from .sql_statements import LAST_ITERATION


class SQLLoopReads:
    """The loop-storage reads of :class:`~tether.store.sql_common.SQLCommon`."""

    _query: Callable[..., list[tuple]]

    if TYPE_CHECKING:
        def _q(self, sql: str) -> str: ...
        def _decode(self, data: Any, what: str) -> Any: ...
        def _json_text(self, column: str, *path: str) -> str: ...

    def loop_size(self, run_id: str, loop_key: str) -> int | None:
        rows = self._query(self._q(st.LOOP_SIZE),
                           (run_id, loop_key))
        if rows[0][0] is not None:
            return rows[0][0]
        started = self._query(self._q(st.loop_started(self._json_text)),
                              (run_id, loop_key))
        return 0 if started else None

    def loop_items(self, run_id: str, loop_key: str, start: int, stop: int) -> list[Any]:
        rows = self._query(self._q(st.LOOP_ITEMS_RANGE), (run_id, loop_key, start, stop))
        return [self._decode(r[0], f"run {run_id}: loop {loop_key} element") for r in rows]

    def iterations(self, run_id: str, loop_key: str, start: int = 0, stop: int | None = None,
                   status: str | None = None) -> list[IterationRecord]:
        params: tuple = (run_id, loop_key, start, stop if stop is not None else 2 ** 31 - 1)
        if status is not None:
            params += (status,)
        return [sqlrows.iteration_record(run_id, loop_key, r, self._decode)
                for r in self._query(self._q(st.iterations_range(status is not None)), params)]

    def last_iteration(self, run_id: str, loop_key: str) -> IterationRecord | None:
        rows = self._query(self._q(LAST_ITERATION), (run_id, loop_key))
        return sqlrows.iteration_record(run_id, loop_key, rows[0], self._decode) if rows else None

    def finished_indices(self, run_id: str, loop_key: str, start: int, stop: int,
                         include_failed: bool = True) -> set[int]:
        return {r[0] for r in self._query(self._q(st.finished_indices(include_failed)),
                                          (run_id, loop_key, start, stop))}

    def finished_per_batch(self, run_id: str, loop_key: str, batch: int,
                           include_failed: bool = True) -> dict[int, int]:
        return {r[0]: r[1] for r in self._query(self._q(st.finished_per_batch(include_failed)),
                                                (int(batch), run_id, loop_key))}

    def iteration_counts_by_batch(self, run_id: str, loop_key: str, batch: int) -> dict[tuple[int, str], int]:
        return {(r[0], r[1]): r[2] for r in self._query(self._q(st.ITERATION_COUNTS_BY_BATCH),
                                                        (int(batch), run_id, loop_key))}

    def iteration_counts(self, run_id: str, loop_key: str) -> dict[str, int]:
        return {r[0]: r[1] for r in self._query(self._q(st.ITERATION_COUNTS),
            (run_id, loop_key))}
