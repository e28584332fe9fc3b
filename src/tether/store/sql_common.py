"""What the SQL stores share: the methods that are the same on SQLite and PostgreSQL
but for the placeholder (``?`` in :mod:`tether.store.sql_statements` and here, rewritten
by :meth:`SQLCommon._q`)
and row locking (``_for_update``). Each store keeps its own connection handling
(``_tx``, ``_query``) and what differs: creating, claiming and committing runs, loop
starts, events and statistics."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from ..errors import ConflictError, CorruptRecord, LeaseLost, NotFound, StateMoved, StoreError
from . import codec, row_checks, sqlrows
from . import sql_statements as st
from .base import (
    Commit,
    CurrentVar,
    EventRecord,
    EventWrite,
    HistoryRecord,
    RunRecord,
    StepHead,
    StepRecord,
    VarRecord,
    VarWrite,
    now,
)
from .shared_vars_sql import SharedSQL
from .sql_blobs import SQLBlobs
from .sql_leases import SQLLeases
from .sql_loop_reads import SQLLoopReads
from .sql_retention import SQLRetention
from .sql_statements import (
    COUNT_CURRENT,
    CURRENT_NAMED,
    CURRENT_SINCE,
    FLUSH_READS,
    INSERT_EVENT,
    INSERT_HISTORY,
    LATEST,
    LOAD_RUN,
    RUN_EXISTS,
)
from .value_refs import lazy_decode


class SQLCommon(SQLLeases, SQLLoopReads, SQLRetention, SQLBlobs, SharedSQL):
    """Store methods written once for both SQL backends."""

    url: str
    _tx: Callable[[], AbstractContextManager[Any]]
    _query: Callable[..., list[tuple]]

    # ------------------------------------------------------------ values
    def _decode(self, data: Any, what: str) -> Any:
        return None if data is None else codec.decode(data, self.load_blob, what=what)

    def _insert_event(self, db: Any, run_id: str, seq: int, idx: int, e: EventWrite, t: float) -> None:
        db.execute(self._q(INSERT_EVENT), (run_id, seq, idx, e.type, e.step_id,
                                           None if e.data is None else codec.dumps_text(e.data), t))

    def _refusal(self, db: Any, c: Commit) -> ConflictError:
        """Why the fenced ``UPDATE runs`` of commit ``c`` matched no row (read in its transaction)."""
        row = db.execute(self._q(st.RUN_EPOCH_SEQ),
                         (c.run_id,)).fetchone()
        if row is not None and row[0] == c.epoch and c.fenced:
            return StateMoved(f"run {c.run_id} is at checkpoint {row[1]}, not {c.expected_seq}: someone else "
                              "committed since its state was read; nothing was written")
        return LeaseLost(f"run {c.run_id}: this process no longer holds the lease "
                         f"(epoch {c.epoch}); its write was refused")

    def _missing(self, run_id: str) -> NotFound:
        return NotFound(f"no run {run_id!r} in {self._where()}")

    def _where(self) -> str:
        return self.url

    # ------------------------------------------------------------ runs (leases: sql_leases.py)
    def load_run(self, run_id: str) -> RunRecord:
        rows = self._query(self._q(LOAD_RUN), (run_id,))
        if not rows:
            raise self._missing(run_id)
        return sqlrows.run_record(rows[0], self._decode)

    def list_runs(self, status: str | None = None, limit: int = 50,
                  before: str | None = None, parent: str | None = None) -> list[RunRecord]:
        params: list[Any] = []
        if status:
            params.append(status)
        if parent is not None:
            params.append(parent)
        if before:
            found = self._query(self._q(st.RUN_CREATED_AT), (before,))
            if not found:
                raise NotFound(f"no run {before!r} to list the runs before in {self._where()}")
            params += [found[0][0], found[0][0], before]
        sql = st.list_runs(bool(status), bool(before), parent is not None)
        params.append(int(limit))
        return [sqlrows.run_record(r, self._decode) for r in self._query(self._q(sql), tuple(params))]

    def count_runs(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._query(st.COUNT_RUNS_BY_STATUS)}

    def request(self, run_id: str, control: str | None) -> None:
        with self._tx() as db:
            cur = db.execute(self._q(st.SET_CONTROL), (control, run_id))
            if cur.rowcount != 1:
                raise self._missing(run_id)

    def flow_data(self, run_id: str) -> Any:
        rows = self._query(self._q(st.FLOW_DATA), (run_id,))
        if not rows:
            raise self._missing(run_id)
        return self._decode(rows[0][0], f"run {run_id}: flow")

    # ------------------------------------------------------------ variables
    def _write_vars(self, db: Any, run_id: str, writes: Iterable[VarWrite], seq: int,
                    t: float) -> dict[str, int]:
        """Append one history row per write; a variable's current value is its latest row."""
        versions: dict[str, int] = {}
        for w in writes:
            prev = db.execute(self._q(LATEST), (run_id, w.name)).fetchone()
            exists = prev is not None and not prev[1]
            version = (prev[0] if prev else 0) + 1  # versions continue across a deletion
            kind = None if w.type == "step_result" else w.type  # defaults are stored as NULL
            scope = None if w.scope == "run" else w.scope
            if w.delete:
                if not exists:
                    continue
                db.execute(self._q(INSERT_HISTORY), (run_id, w.name, version, seq, None, w.source_step, t, 1,
                                                     kind, scope, int(w.secret), None))
                versions[w.name] = 0
                continue
            db.execute(self._q(INSERT_HISTORY), (run_id, w.name, version, seq, self._put_blob(db, w.value),
                                                 w.source_step, t, 0, kind, scope, int(w.secret),
                                                 None if exists else t))
            versions[w.name] = version
        return versions

    def read_vars(self, run_id: str, since_seq: int = 0, *, refs: bool = False) -> dict[str, VarRecord]:
        rows = self._query(self._q(CURRENT_SINCE), (run_id, since_seq))
        decode = lazy_decode(self.load_blob) if refs else self._decode
        return {r[0]: sqlrows.var_record(run_id, r, decode) for r in rows if not r[12]}

    def read_state(self, run_id: str) -> dict[str, CurrentVar]:
        decode = lazy_decode(self.load_blob)
        return {r[0]: sqlrows.current_var(run_id, r, decode)
                for r in self._query(self._q(st.CURRENT_STATE), (run_id,)) if not r[6]}

    def read_var(self, run_id: str, name: str, *, count_access: bool = False) -> VarRecord:
        sql, params = self._q(CURRENT_NAMED), (run_id, name)
        rows = self._query(sql, params)
        if not rows or rows[0][12]:
            self.load_run(run_id)
            raise NotFound(f"run {run_id} has no variable {name!r}")
        if count_access:
            with self._tx() as db:
                db.execute(self._q(FLUSH_READS), (run_id, name, now(), 1))
            rows = self._query(sql, params)
        return sqlrows.var_record(run_id, rows[0], self._decode)

    def _lock_run(self, db: Any, run_id: str) -> None:
        """Check that the run exists (PostgreSQL: and lock its row, serialising its writers)."""
        if db.execute(self._q(RUN_EXISTS + self._for_update), (run_id,)).fetchone() is None:
            raise self._missing(run_id)

    def _current_version(self, db: Any, run_id: str, name: str) -> int:
        row = db.execute(self._q(LATEST), (run_id, name)).fetchone()
        return 0 if row is None or row[1] else row[0]

    def _external_seq(self, db: Any, run_id: str) -> int:
        row = db.execute(self._q(st.NEXT_SEQ),
                         (run_id,)).fetchone()
        if row is None:
            raise self._missing(run_id)
        return row[0]

    def set_var(self, run_id: str, write: VarWrite, expected_version: int | None = None) -> VarRecord:
        self.set_vars(run_id, (write,), None if expected_version is None else {write.name: expected_version})
        return self.read_var(run_id, write.name)

    def set_vars(self, run_id: str, writes: Sequence[VarWrite],
                 expected_versions: Mapping[str, int] | None = None) -> int:
        t = now()
        self._blobs_first(writes)
        with self._tx() as db:
            self._lock_run(db, run_id)
            for name, expected in (expected_versions or {}).items():
                current = self._current_version(db, run_id, name)
                if current != expected:
                    raise ConflictError(
                        f"variable {name!r} of run {run_id} is at version {current}, "
                        f"not {expected}; read it again and retry")
            seq = self._external_seq(db, run_id)
            self._write_vars(db, run_id, writes, seq, t)
            for idx, w in enumerate(writes):
                data = {"name": w.name, "source": w.source_step}
                self._insert_event(db, run_id, seq, idx, EventWrite("var.set", None, data), t)
        return seq

    def delete_var(self, run_id: str, name: str, source: str, expected_version: int | None = None) -> bool:
        t = now()
        with self._tx() as db:
            self._lock_run(db, run_id)
            current = self._current_version(db, run_id, name)
            if expected_version is not None and current != expected_version:
                raise ConflictError(f"variable {name!r} of run {run_id} is at version {current}, "
                                    f"not {expected_version}")
            if current == 0:
                return False
            seq = self._external_seq(db, run_id)
            self._write_vars(db, run_id, (VarWrite(name, None, source_step=source, delete=True),), seq, t)
            self._insert_event(db, run_id, seq, 0,
                               EventWrite("var.deleted", None, {"name": name, "source": source}), t)
        return True

    def var_history(self, run_id: str, name: str, last: int | None = None) -> list[HistoryRecord]:
        if last is None:
            rows = self._query(self._q(st.VAR_HISTORY), (run_id, name))
        else:
            rows = self._query(self._q(st.VAR_HISTORY_LAST), (run_id, name, max(int(last), 0)))[::-1]
        what = f"run {run_id}: variable {name} history"
        return [HistoryRecord(name, row_checks.integer(r[0], what, "version"),
                              row_checks.integer(r[1], what, "seq"),
                              self._decode(r[2], f"run {run_id}: {name} v{r[0]}"), r[3],
                              row_checks.real(r[4], what, "at"), bool(r[5]))
                for r in rows]

    def var_changes(self, run_id: str) -> list[tuple[int, str, float]]:
        out = []
        for seq, name, at in self._query(self._q(st.VAR_CHANGES), (run_id,)):
            what = f"run {run_id}: variable {name} history"
            out.append((row_checks.integer(seq, what, "seq"), name, row_checks.real(at, what, "at")))
        return out

    def iteration_checkpoints(self, run_id: str) -> list[tuple[int, str, int, float | None]]:
        out = []
        for seq, loop_key, idx, finished in self._query(self._q(st.ITERATION_CHECKPOINTS), (run_id,)):
            what = f"run {run_id}: loop {loop_key} iteration {idx}"
            out.append((row_checks.integer(seq, what, "seq"), loop_key, idx,
                        row_checks.real(finished, what, "finished_at", optional=True)))
        return out

    def state_at(self, run_id: str, seq: int) -> dict[str, Any]:
        rows = self._query(self._q(st.STATE_AT), (run_id, seq, run_id))
        return {r[0]: self._decode(r[1], f"run {run_id}: {r[0]}") for r in rows if not r[2]}

    # ------------------------------------------------------------ steps
    def steps(self, run_id: str, *, refs: bool = False) -> list[StepRecord]:
        found = self._query(self._q(st.STEPS), (run_id,))
        decode = lazy_decode(self.load_blob) if refs else self._decode
        return [sqlrows.step_record(run_id, r, decode) for r in found]

    def step_heads(self, run_id: str) -> list[StepHead]:
        heads = [sqlrows.step_head(run_id, r) for r in self._query(self._q(st.STEP_HEADS), (run_id,))]
        if not heads:
            self.load_run(run_id)  # NotFound for an unknown run
        return heads

    def step_at(self, run_id: str, seq: int, step_id: str) -> StepRecord:
        found = self._query(self._q(st.STEP_AT), (run_id, seq, step_id))
        if not found:
            raise NotFound(f"run {run_id} has no record of step {step_id!r} at checkpoint {seq}")
        return sqlrows.step_record(run_id, found[0], lazy_decode(self.load_blob))

    # ------------------------------------------------------------ events and statistics
    def _json_text(self, column: str, *path: str) -> str:
        """SQL for the text at ``path`` inside the JSON text in ``column``."""
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    _STEP_EVENT_DATA = "json_object('attempts', attempts, 'error', json(error))"

    def events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]:
        # a step record is its own step.<status> event: stored once, listed here
        sql = st.events(self._STEP_EVENT_DATA, limit is not None)
        params: tuple = (run_id, after_seq, run_id, after_seq)
        if limit is not None:
            params += (int(limit),)
        try:
            found = self._query(self._q(sql), params)
        except StoreError as exc:  # the error column of a step is not JSON
            raise CorruptRecord(f"run {run_id}: events cannot be read: {exc}") from None
        return [sqlrows.event_record(run_id, r) for r in found]

    def events_of_type(self, run_id: str, type_: str) -> list[EventRecord]:
        found = self._query(self._q(st.EVENTS_OF_TYPE), (run_id, type_))
        return [sqlrows.event_record(run_id, r) for r in found]

    def _bytes(self) -> int:
        """The space the store's tables take."""
        raise NotImplementedError

    def stats(self) -> dict[str, int]:
        out = {}
        for table in st.STATS_TABLES:
            out[table] = self._query(st.count_rows(table))[0][0]
        out["vars"] = self._query(COUNT_CURRENT)[0][0]
        row = self._query(st.template_cache_counts(self._json_text))[0]
        out["template_hits"], out["template_misses"] = int(row[0]), int(row[1])
        out["bytes"] = self._bytes()
        return out
