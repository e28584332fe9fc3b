"""Loop iterations shared between workers (PostgreSQL). The run's owner publishes a
loop's unfinished iterations; any worker claims one with ``FOR UPDATE SKIP LOCKED``,
runs its body and stores the outcome; the owner alone commits iterations, so variable
writes are still rendered one at a time against the latest values. A claim has a
lease: a worker that dies leaves its iterations to be claimed again."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from . import codec
from .base import SharedLoopWork, now
from .pg_statements import NOTIFY_RUNS


class LoopWork(SharedLoopWork):
    """The work-sharing methods (the :class:`SharedLoopWork` capability); mixed into
    :class:`PostgresStore`."""

    _tx: Callable[[], AbstractContextManager[Any]]
    _query: Callable[..., list[tuple]]
    _decode: Callable[[Any, str], Any]

    def work_publish(self, run_id: str, loop_key: str, indices: list[int]) -> None:
        """Offer these iterations (already offered or done ones are left as they are)."""
        with self._tx() as db:
            with db.cursor() as cur:
                cur.executemany("INSERT INTO loop_work (run_id, loop_key, idx, state) "
                                "VALUES (%s, %s, %s, 'open') ON CONFLICT DO NOTHING",
                                [(run_id, loop_key, i) for i in indices])
            db.execute(NOTIFY_RUNS)

    def work_claim(self, owner: str, ttl: float, run_id: str | None = None,
                   loop_key: str | None = None) -> tuple[str, str, int, Any] | None:
        """Claim one open iteration (or one whose claim expired), of any loop or of one:
        ``(run_id, loop_key, index, element)``."""
        t = now()
        where, params = "(w.state = 'open' OR (w.state = 'claimed' AND w.expires < %s))", list[Any]([t])
        if run_id is not None:
            where += " AND w.run_id = %s AND w.loop_key = %s"
            params += [run_id, loop_key]
        with self._tx() as db:
            row = db.execute(f"SELECT w.run_id, w.loop_key, w.idx, i.item FROM loop_work w JOIN loop_items i "
                             "ON i.run_id = w.run_id AND i.loop_key = w.loop_key AND i.idx = w.idx "
                             f"WHERE {where} ORDER BY w.idx LIMIT 1 FOR UPDATE OF w SKIP LOCKED",
                             params).fetchone()
            if row is None:
                return None
            db.execute("UPDATE loop_work SET state = 'claimed', owner = %s, expires = %s "
                       "WHERE run_id = %s AND loop_key = %s AND idx = %s", (owner, t + ttl, *row[:3]))
        return row[0], row[1], row[2], self._decode(row[3], f"run {row[0]}: loop {row[1]} element")

    def work_renew(self, run_id: str, loop_key: str, idx: int, owner: str, ttl: float) -> bool:
        with self._tx() as db:
            return db.execute("UPDATE loop_work SET expires = %s "
                              "WHERE run_id = %s AND loop_key = %s AND idx = %s "
                              "AND owner = %s AND state = 'claimed'",
                              (now() + ttl, run_id, loop_key, idx, owner)).rowcount == 1

    def work_done(self, run_id: str, loop_key: str, idx: int, owner: str, outcome: dict[str, Any]) -> bool:
        """Store the outcome if ``owner`` still holds the claim; False if it lost it."""
        with self._tx() as db:
            return db.execute("UPDATE loop_work SET state = 'done', outcome = %s "
                              "WHERE run_id = %s AND loop_key = %s AND idx = %s AND owner = %s "
                              "AND state = 'claimed'",
                              (codec.dumps_text(outcome), run_id, loop_key, idx, owner)).rowcount == 1

    def work_collect(self, run_id: str, loop_key: str, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        """Outcomes stored by workers, not yet committed by the owner."""
        return [(r[0], codec.loads(r[1])) for r in self._query(
            "SELECT idx, outcome FROM loop_work WHERE run_id = %s AND loop_key = %s AND state = 'done' "
            "ORDER BY idx LIMIT %s", (run_id, loop_key, limit))]

    def work_remove(self, run_id: str, loop_key: str, indices: list[int]) -> None:
        if indices:
            with self._tx() as db:
                db.execute("DELETE FROM loop_work WHERE run_id = %s AND loop_key = %s AND idx = ANY(%s)",
                           (run_id, loop_key, list(indices)))

    def work_left(self, run_id: str, loop_key: str) -> int:
        """Iterations still offered, claimed or done but not committed."""
        return self._query("SELECT count(*) FROM loop_work WHERE run_id = %s AND loop_key = %s",
                           (run_id, loop_key))[0][0]
