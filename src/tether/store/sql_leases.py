"""The runs-and-leases role on the SQL stores, written once for SQLite and PostgreSQL:
renewing, releasing and taking a run's lease (a takeover's first commit in the same
transaction), claiming a pending or abandoned run, and the fenced writes a lease holder
makes (its processes, its flow). Every write is fenced on the lease epoch."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, LeaseLost, NotFound
from . import codec, sqlrows
from . import sql_statements as st
from .base import EventWrite, RunRecord, Takeover, VarWrite, now
from .sql_blobs import SQLBlobs
from .sql_statements import LOAD_RUN


class SQLLeases(SQLBlobs):
    """The lease methods of :class:`~tether.store.sql_common.SQLCommon`."""

    _tx: Callable[[], AbstractContextManager[Any]]
    _query: Callable[..., list[tuple]]
    _for_update: str
    _skip_locked: str

    if TYPE_CHECKING:
        def _q(self, sql: str) -> str: ...
        def _decode(self, data: Any, what: str) -> Any: ...
        def _missing(self, run_id: str) -> NotFound: ...
        def _insert_event(self, db: Any, run_id: str, seq: int, idx: int, e: EventWrite,
                          t: float) -> None: ...
        def _write_vars(self, db: Any, run_id: str, writes: Iterable[VarWrite], seq: int,
                        t: float) -> dict[str, int]: ...

    def renew_lease(self, run_id: str, epoch: int, ttl: float) -> None:
        with self._tx() as db:
            cur = db.execute(self._q(st.RENEW_LEASE),
                             (now() + ttl, run_id, epoch))
            if cur.rowcount != 1:
                raise LeaseLost(f"run {run_id}: lease epoch {epoch} was taken over")

    def release_lease(self, run_id: str, epoch: int) -> None:
        with self._tx() as db:
            db.execute(self._q(st.RELEASE_LEASE), (run_id, epoch))

    def record_processes(self, run_id: str, epoch: int, processes: Any) -> None:
        with self._tx() as db:
            db.execute(self._q(st.RECORD_PROCESSES),
                       (codec.dumps_text(processes), run_id, epoch))

    def acquire_lease(self, run_id: str, owner: str, ttl: float,
                      steal_epoch: int | None = None, takeover: Takeover | None = None) -> RunRecord:
        t = now()
        self._blobs_first(takeover)
        with self._tx() as db:
            row = db.execute(self._q(st.LEASE_STATE + self._for_update), (run_id,)).fetchone()
            if row is None:
                raise self._missing(run_id)
            holder, epoch, expires, status = row
            free = holder is None or holder == owner or expires < t or steal_epoch == epoch
            if not free:
                raise ConflictError(f"run {run_id} is owned by {holder} (lease valid for "
                                    f"{expires - t:.0f}s more)")
            db.execute(self._q(st.TAKE_LEASE),
                       (owner, epoch + 1, t + ttl, run_id))
            if takeover is not None:
                if takeover.expect_status is not None and status not in takeover.expect_status:
                    raise ConflictError(f"run {run_id} is {status} now; it was taken over meanwhile")
                bump = 1 if (takeover.vars or takeover.events) else 0
                seq = db.execute(self._q(st.TAKEOVER_RESET),
                    (takeover.status, codec.dumps_text(takeover.cursor), bump, run_id)).fetchone()[0]
                if bump:
                    self._write_vars(db, run_id, takeover.vars, seq, t)
                    for idx, e in enumerate(takeover.events):
                        self._insert_event(db, run_id, seq, idx, e, t)
            out = db.execute(self._q(LOAD_RUN), (run_id,)).fetchone()
        return sqlrows.run_record(out, self._decode)

    def claim_run(self, owner: str, ttl: float,
                  abandoned: Iterable[tuple[str, int]] = ()) -> RunRecord | None:
        t = now()
        dead = [x for run_id, epoch in abandoned for x in (run_id, epoch)]
        with self._tx() as db:  # SQLite: BEGIN IMMEDIATE, one claimer at a time; PostgreSQL: SKIP LOCKED
            row = db.execute(self._q(st.claimable(len(dead) // 2) + self._skip_locked), (t, *dead)).fetchone()
            if row is None:
                return None
            run_id, old_seq, status, holder = row
            recovery = status == "running" or holder is not None  # a sweep leaves the dead owner named
            seq = db.execute(self._q(st.CLAIM_RUN_UPDATE),
                (owner, t + ttl, int(old_seq > 0), t, recovery, recovery, run_id)).fetchone()[0]
            self._insert_event(db, run_id, seq, 0, EventWrite("run.claimed", None, {"owner": owner}), t)
            out = db.execute(self._q(LOAD_RUN), (run_id,)).fetchone()
        return sqlrows.run_record(out, self._decode)

    def live_leases(self, owner_prefix: str) -> list[tuple[str, str, int]]:
        return [(r[0], r[1], r[2]) for r in self._query(self._q(st.LIVE_LEASES),
            (now(), len(owner_prefix), owner_prefix))]

    def set_flow(self, run_id: str, epoch: int, flow_text: str, flow_path: str | None,
                 flow_data: Any = None, flow_digest: str | None = None) -> None:
        with self._tx() as db:
            if not db.execute(self._q(st.RUN_AT_EPOCH + self._for_update),
                              (run_id, epoch)).fetchone():
                raise LeaseLost(f"run {run_id}: lease epoch {epoch} was taken over")
            db.execute(self._q(st.SET_FLOW),
                       (flow_text, flow_path,
                        None if flow_data is None else self._put_blob(db, codec.encode(flow_data)),
                        flow_digest, run_id))
