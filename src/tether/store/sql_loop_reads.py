"""The loop-storage reads on the SQL stores, written once for SQLite and PostgreSQL: a
loop's size and items by range, its iteration records by range, the last one, which
indices finished, and counts by status. (Starting a loop and committing iterations are
each dialect's own: ``sqlite_loops.py``, ``postgres.py``.)"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
        rows = self._query(self._q("SELECT max(idx) + 1 FROM loop_items WHERE run_id = ? AND loop_key = ?"),
                           (run_id, loop_key))
        if rows[0][0] is not None:
            return rows[0][0]
        started = self._query(self._q("SELECT 1 FROM events WHERE run_id = ? AND type = 'loop.started' AND "
                                      f"{self._json_text('data', 'loop_key')} = ? LIMIT 1"),
                              (run_id, loop_key))
        return 0 if started else None

    def loop_items(self, run_id: str, loop_key: str, start: int, stop: int) -> list[Any]:
        rows = self._query(self._q("SELECT item FROM loop_items WHERE run_id = ? AND loop_key = ? "
                                   "AND idx >= ? AND idx < ? ORDER BY idx"), (run_id, loop_key, start, stop))
        return [self._decode(r[0], f"run {run_id}: loop {loop_key} element") for r in rows]

    def iterations(self, run_id: str, loop_key: str, start: int = 0, stop: int | None = None,
                   status: str | None = None) -> list[IterationRecord]:
        sql = (f"SELECT {sqlrows.ITERATION_COLS} FROM iterations "
               "WHERE run_id = ? AND loop_key = ? AND idx >= ? AND idx < ?")
        params: tuple = (run_id, loop_key, start, stop if stop is not None else 2 ** 31 - 1)
        if status is not None:
            sql += " AND status = ?"
            params += (status,)
        return [sqlrows.iteration_record(run_id, loop_key, r, self._decode)
                for r in self._query(self._q(sql + " ORDER BY idx"), params)]

    def last_iteration(self, run_id: str, loop_key: str) -> IterationRecord | None:
        rows = self._query(self._q(LAST_ITERATION), (run_id, loop_key))
        return sqlrows.iteration_record(run_id, loop_key, rows[0], self._decode) if rows else None

    def finished_indices(self, run_id: str, loop_key: str, start: int, stop: int,
                         include_failed: bool = True) -> set[int]:
        extra = "" if include_failed else " AND status != 'failed'"
        return {r[0] for r in self._query(self._q(
            "SELECT idx FROM iterations WHERE run_id = ? AND loop_key = ? AND idx >= ? AND idx < ?" + extra),
            (run_id, loop_key, start, stop))}

    def finished_per_batch(self, run_id: str, loop_key: str, batch: int,
                           include_failed: bool = True) -> dict[int, int]:
        extra = "" if include_failed else " AND status != 'failed'"
        return {r[0]: r[1] for r in self._query(self._q(
            "SELECT idx / ?, count(*) FROM iterations WHERE run_id = ? AND loop_key = ?"
            + extra + " GROUP BY 1"),
            (int(batch), run_id, loop_key))}

    def iteration_counts(self, run_id: str, loop_key: str) -> dict[str, int]:
        return {r[0]: r[1] for r in self._query(self._q(
            "SELECT status, count(*) FROM iterations WHERE run_id = ? AND loop_key = ? GROUP BY status"),
            (run_id, loop_key))}
