"""Loop storage of the SQLite store: each loop's collection, stored once element by
element, and one record per iteration, from which every aggregate is computed."""
from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from ..errors import LeaseLost
from . import codec
from .base import EventWrite, now
from .sql_statements import ADVANCE, COUNT_LOOP_ITEMS, INSERT_LOOP_ITEM, fenced


class SQLiteLoops:
    """The loop methods of the Store protocol; mixed into :class:`SQLiteStore`, whose
    connection, transactions and codec helpers they use."""

    _tx: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _query: Callable[..., list[tuple]]
    _decode: Callable[[bytes | None, str], Any]
    _put_blob: Callable[[sqlite3.Connection, codec.Encoded | None], bytes | None]
    _insert_event: Callable[[sqlite3.Connection, str, int, int, EventWrite, float], None]

    def start_loop(self, run_id: str, epoch: int, loop_key: str, items: Any, event: EventWrite) -> int:
        t = now()
        with self._tx() as db:
            existing = db.execute(COUNT_LOOP_ITEMS, (run_id, loop_key)).fetchone()[0]
            if existing:
                return existing
            row = db.execute(fenced(ADVANCE, False), (run_id, epoch)).fetchone()
            if row is None:
                raise LeaseLost(f"run {run_id}: this process no longer holds the lease (epoch {epoch})")
            n = 0
            batch: list[tuple] = []
            for enc in items:
                batch.append((run_id, loop_key, n, self._put_blob(db, enc)))
                n += 1
                if len(batch) >= 5000:
                    db.executemany(INSERT_LOOP_ITEM, batch)
                    batch.clear()
            if batch:
                db.executemany(INSERT_LOOP_ITEM, batch)
            self._insert_event(db, run_id, row[0], 0, EventWrite(event.type, event.step_id,
                                                                 dict(event.data or {}, total=n)), t)
        return n

