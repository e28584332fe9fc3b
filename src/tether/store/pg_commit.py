"""The PostgreSQL store's commit: a run's checkpoint as one statement, in one round trip.

The statement (:func:`pg_statements.commit_statement`) advances the run's seq with the
fenced ``UPDATE runs`` and writes the history rows, step records, events, iterations and
read counts only if that UPDATE matched; its text depends only on which parts a commit
has (the rows travel as arrays), so psycopg prepares each variant once per connection
(used 5 times) and the server keeps a generic plan of it. On its own (autocommit) it is its
own transaction; when the commit offloads large values into ``blobs``, or runs inside
:meth:`PostgresStore.hold`, it travels in one pipeline with those inserts between BEGIN
and COMMIT (a savepoint inside a hold). Commits are synchronous: a commit returns once the
server has flushed it to its WAL.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..errors import ConflictError, StoreError
from . import codec, sqlrows
from .base import Commit, CommitResult, now
from .pg_statements import commit_statement
from .sql_statements import ADVANCE, ADVANCE_RUN, fenced

_RUN = ("run", "epoch")
_RUN_FIELDS = ("cursor", "status", "outputs", "error", "finished", "t")
# the commit statements, by (run fields given, fenced on the seq, the parts it writes)
_COMMIT: dict[tuple[bool, bool, frozenset[str]], str] = {}


def _statement(given: bool, fence: bool, parts: frozenset[str]) -> str:
    """The commit statement for a commit with run fields (``given``), fenced on the seq
    (``fence``), writing ``parts``; built once per variant."""
    key = (given, fence, parts)
    sql = _COMMIT.get(key)
    if sql is None:
        advance = fenced(ADVANCE_RUN if given else ADVANCE, fence)
        names = (_RUN_FIELDS if given else ()) + _RUN + (("expected",) if fence else ())
        sql = _COMMIT[key] = commit_statement(advance, names, parts)
    return sql


class PgCommit:
    """:meth:`commit` for :class:`PostgresStore` (mixed in)."""

    _psycopg: Any
    _held: threading.local
    _pool: Any
    _connection: Callable[[], Any]
    _refusal: Callable[[Any, Commit], ConflictError]
    _where: Callable[[], str]
    _put_blob: Callable[[Any, codec.Encoded | None], bytes | None]
    _blobs_first: Callable[[Any], None]
    _external: bool
    # the (seq, control) each run's latest commit through this store returned
    _committed: dict[str, tuple[int, str | None]]
    _published: set[tuple[str, str]]

    def commit(self, c: Commit) -> CommitResult:
        """Apply ``c`` whole or not at all, advancing the run's seq by one; LeaseLost or
        (fenced) StateMoved, with nothing written, when the fence refuses it. Durable when
        it returns (synchronous commit)."""
        self._blobs_first(c)  # TETHER_BLOBS: durable before the transaction that refers to them
        blobs: list[codec.Encoded] = []
        params, parts = _params(c, blobs, self._published)
        if self._external:
            blobs = []  # stored above: nothing goes into the table
        sql = _statement(c.run is not None, c.fenced, parts)
        held = getattr(self._held, "conn", None)
        conn = held or self._connection()
        # inside hold(): a savepoint of the held transaction, on its connection
        begin, end, undo = (("SAVEPOINT tether_commit", "RELEASE SAVEPOINT tether_commit",
                             "ROLLBACK TO SAVEPOINT tether_commit") if held
                            else ("BEGIN", "COMMIT", "ROLLBACK"))
        try:
            if held is None and not blobs:
                row = conn.execute(sql, params).fetchone()
            else:  # blobs go in first, in the same transaction: a refusal keeps only them
                with conn.pipeline():
                    conn.execute(begin)
                    for enc in blobs:
                        self._put_blob(conn, enc)
                    cur = conn.execute(sql, params)
                    conn.execute(end)
                row = cur.fetchone()
            refusal = self._refusal(conn, c) if row is None else None  # read now: nothing was written
        except self._psycopg.Error as exc:
            _undo(conn, undo)
            raise StoreError(f"write to {self._where()} failed: {_cause(exc)}") from None
        except BaseException:
            _undo(conn, undo)
            raise
        finally:
            if held is None:
                self._pool.putconn(conn)
        if refusal is not None:
            raise refusal
        seq, control, names, versions_ = row
        self._committed[c.run_id] = (seq, control)
        versions = dict(zip(names or (), versions_ or (), strict=True))  # each name's last write
        foreign = c.expected_seq is not None and seq != c.expected_seq + 1
        return CommitResult(seq, versions, foreign)


def _params(c: Commit, blobs: list[codec.Encoded],
            shared: set[tuple[str, str]]) -> tuple[dict[str, Any], frozenset[str]]:
    """The commit statement's parameters and the parts it writes (see
    :func:`pg_statements.commit_statement`); offloaded payloads are added to ``blobs``.
    Iterations of a loop in ``shared`` (``(run, loop)`` published as loop work) also
    remove their loop work."""
    def data(enc: codec.Encoded | None) -> bytes | None:
        if enc is None:
            return None
        if enc.blob is not None:
            blobs.append(enc)
        return enc.data

    p: dict[str, Any] = {"run": c.run_id, "epoch": c.epoch, "expected": c.expected_seq, "t": now()}
    r = c.run
    if r is not None:
        p.update(cursor=codec.dumps_text(r.cursor), status=r.status, outputs=data(r.outputs),
                 error=None if r.error is None else codec.dumps_text(r.error), finished=bool(r.finished))
    parts: list[str] = []
    ws = c.vars
    if ws:
        names = [w.name for w in ws]
        parts.append("vars" if len(set(names)) == len(names) else "vars*")
        p.update(v_name=names, v_value=[None if w.delete else data(w.value) for w in ws],
                 v_src=[w.source_step for w in ws], v_del=[int(w.delete) for w in ws],
                 v_type=[None if w.type == "step_result" else w.type for w in ws],
                 v_scope=[None if w.scope == "run" else w.scope for w in ws],
                 v_secret=[int(w.secret) for w in ws])
    ss = c.steps
    if ss:
        parts.append("steps")
        p.update(s_id=[s.step_id for s in ss], s_status=[s.status for s in ss],
                 s_attempts=[s.attempts for s in ss],
                 s_inputs=[data(s.inputs) for s in ss], s_result=[data(s.result) for s in ss],
                 s_error=[None if s.error is None else codec.dumps_text(s.error) for s in ss],
                 s_meta=[None if s.meta is None else codec.dumps_text(s.meta) for s in ss],
                 s_started=[s.started_at for s in ss], s_finished=[s.finished_at for s in ss],
                 s_key=[sqlrows.compact_key(c.run_id, s.step_id, s.idempotency_key) for s in ss])
    es = c.events  # step records take idx 0..
    if es:
        parts.append("events")
        p.update(e_idx=list(range(len(ss), len(ss) + len(es))), e_type=[e.type for e in es],
                 e_step=[e.step_id for e in es],
                 e_data=[None if e.data is None else codec.dumps_text(e.data) for e in es],
                 e_at=[p["t"]] * len(es))
    its = c.iterations
    if its:
        parts.append("iterations")
        if shared and any((c.run_id, it.loop_key) in shared for it in its):
            parts.append("work")
        p.update(i_key=[it.loop_key for it in its], i_idx=[it.idx for it in its],
                 i_status=[it.status for it in its],
                 i_attempts=[it.attempts for it in its], i_result=[data(it.result) for it in its],
                 i_error=[None if it.error is None else codec.dumps_text(it.error) for it in its],
                 i_started=[it.started_at for it in its], i_finished=[it.finished_at for it in its])
    acc = c.accesses
    if acc:
        parts.append("reads")
        p.update(r_name=[a[0] for a in acc], r_count=[a[1] for a in acc], r_at=[a[2] for a in acc])
    return p, frozenset(parts)


def _undo(conn: Any, statement: str = "ROLLBACK") -> None:
    """End a failed transaction (or undo to a savepoint) so the connection can be used again;
    a held transaction that did not fail is left as it is."""
    try:
        status = conn.info.transaction_status  # 0: idle, 2: in a transaction, 3: failed in one
        if not conn.closed and (status == 3 or (status != 0 and statement == "ROLLBACK")):
            conn.execute(statement)
    except Exception:  # a broken connection: the pool discards it
        pass


def _cause(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
