"""Loop iterations shared between workers (PostgreSQL). The run's owner publishes a
loop's unfinished iterations; any worker claims one with ``FOR UPDATE SKIP LOCKED``,
runs its body and stores the outcome; the owner alone commits iterations, so variable
writes are still rendered one at a time against the latest values. A claim has a
lease: a worker that dies leaves its iterations to be claimed again. The owner's commit
of an iteration deletes its row in the same statement (:func:`pg_statements.commit_statement`).

Each call is one statement in one round trip. Claims, renewals, outcomes and removals
commit without waiting for the WAL flush (:data:`pg_statements.ASYNC`): one lost
to a server crash is done again, and the owner's commit of an iteration, which is
synchronous, flushes every earlier record with it."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import Any

from ..errors import StoreError
from . import codec
from .base import SharedLoopWork, now
from .pg_statements import (
    NOTIFY_RUNS,
    WORK_CLAIM_ANY,
    WORK_CLAIM_LOOP,
    WORK_COLLECT,
    WORK_DONE,
    WORK_LEFT,
    WORK_PUBLISH,
    WORK_RELEASE,
    WORK_REMOVE,
    WORK_RENEW,
    work_done_many,
)


@lru_cache(maxsize=64)
def _done_many(n: int) -> str:
    return work_done_many(n)


class LoopWork(SharedLoopWork):
    """The work-sharing methods (the :class:`SharedLoopWork` capability); mixed into
    :class:`PostgresStore`."""

    _tx: Callable[[], AbstractContextManager[Any]]
    _query: Callable[..., list[tuple]]
    _decode: Callable[[Any, str], Any]
    _psycopg: Any
    _connection: Callable[[], Any]
    _pool: Any
    _where: Callable[[], str]
    _committed: dict[str, tuple[int, str | None]]
    _published: set[tuple[str, str]]  # whose iterations' commits remove their loop work (pg_commit.py)

    def _unflushed(self, sql: str, params: Any) -> tuple[list[tuple], int]:
        """Run one writing statement (of those joining :data:`pg_statements.ASYNC`) as its own
        transaction, committed without waiting for the WAL flush, in one round trip; its
        rows and row count."""
        self._committed.clear()  # a write of ours: poll() must look
        conn = self._connection()
        try:
            cur = conn.execute(sql, params)
            return (cur.fetchall() if cur.description else []), cur.rowcount
        except self._psycopg.Error as exc:
            try:
                if not conn.closed and conn.info.transaction_status != 0:
                    conn.execute("ROLLBACK")
            except Exception:  # a broken connection: the pool discards it
                pass
            raise StoreError(f"write to {self._where()} failed: {str(exc).strip() or type(exc).__name__}") \
                from None
        finally:
            self._pool.putconn(conn)

    def work_publish(self, run_id: str, loop_key: str, indices: list[int]) -> None:
        """Offer these iterations (already offered or done ones are left as they are);
        durable when it returns. From now on this store's commits of the loop's iterations
        remove their rows."""
        self._published.add((run_id, loop_key))
        with self._tx() as db:
            db.execute(WORK_PUBLISH, (run_id, loop_key, list(indices)))
            db.execute(NOTIFY_RUNS)

    def work_claim(self, owner: str, ttl: float, run_id: str | None = None,
                   loop_key: str | None = None) -> tuple[str, str, int, Any] | None:
        """Claim one open iteration (or one whose claim expired), of any loop or of one:
        ``(run_id, loop_key, index, element)``."""
        claims = self._claim(owner, ttl, run_id, loop_key, 1)
        return claims[0] if claims else None

    def work_claim_many(self, owner: str, ttl: float, run_id: str, loop_key: str,
                        n: int) -> list[tuple[int, Any]]:
        """Claim up to ``n`` open iterations (or ones whose claim expired) of one loop in one
        round trip: ``(index, element)`` by index."""
        return [(c[2], c[3]) for c in self._claim(owner, ttl, run_id, loop_key, max(1, n))]

    def _claim(self, owner: str, ttl: float, run_id: str | None, loop_key: str | None,
               n: int) -> list[tuple[str, str, int, Any]]:
        t = now()
        sql = WORK_CLAIM_ANY if run_id is None else WORK_CLAIM_LOOP
        rows, _ = self._unflushed(sql, {"owner": owner, "expires": t + ttl, "now": t, "n": n, "run": run_id,
                                        "loop": loop_key})
        return [(r[0], r[1], r[2], self._decode(r[3], f"run {r[0]}: loop {r[1]} element")) for r in rows]

    def work_renew(self, run_id: str, loop_key: str, idx: int, owner: str, ttl: float) -> bool:
        return self._unflushed(WORK_RENEW, (now() + ttl, run_id, loop_key, idx, owner))[1] == 1

    def work_done(self, run_id: str, loop_key: str, idx: int, owner: str, outcome: dict[str, Any]) -> bool:
        """Store the outcome if ``owner`` still holds the claim; False if it lost it."""
        return self._unflushed(WORK_DONE, (codec.dumps_text(outcome), run_id, loop_key, idx, owner))[1] == 1

    def work_done_many(self, owner: str, outcomes: list[tuple[str, str, int, dict[str, Any]]]) -> list[bool]:
        """Store several outcomes, ``(run_id, loop_key, index, outcome)`` each, in one round
        trip: each only if ``owner`` still holds its claim; whether it was stored, in order."""
        if not outcomes:
            return []
        params: dict[str, Any] = {"o": owner}
        for k, (run_id, loop_key, idx, outcome) in enumerate(outcomes):
            params.update({f"r{k}": run_id, f"l{k}": loop_key, f"i{k}": idx,
                           f"x{k}": codec.dumps_text(outcome)})
        rows, _ = self._unflushed(_done_many(len(outcomes)), params)
        stored = {(r[0], r[1], r[2]) for r in rows}
        return [(o[0], o[1], o[2]) in stored for o in outcomes]

    def work_collect(self, run_id: str, loop_key: str,
                     limit: int = 500) -> list[tuple[int, dict[str, Any], Any]]:
        """Outcomes stored by workers, not yet committed by the owner, with their elements."""
        return [(r[0], codec.loads(r[1]), self._decode(r[2], f"run {run_id}: loop {loop_key} element"))
                for r in self._query(WORK_COLLECT, (run_id, loop_key, limit))]

    def work_remove(self, run_id: str, loop_key: str, indices: list[int]) -> None:
        if indices:
            self._unflushed(WORK_REMOVE, (run_id, loop_key, list(indices)))

    def work_release(self, run_id: str, loop_key: str, indices: list[int], owner: str) -> None:
        """Open again those of these iterations that ``owner`` still holds a claim of."""
        if indices:
            self._unflushed(WORK_RELEASE, (run_id, loop_key, list(indices), owner))

    def work_left(self, run_id: str, loop_key: str) -> int:
        """Iterations still offered, claimed or done but not committed."""
        return self._query(WORK_LEFT, (run_id, loop_key))[0][0]
