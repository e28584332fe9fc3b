"""The PostgreSQL store's commit: a run's checkpoint as one statement, in one round trip.

The statement (:func:`pg_statements.commit_statement`) advances the run's seq with the
fenced ``UPDATE runs`` and writes the history rows, step records, events, iterations and
read counts only if that UPDATE matched; its text depends only on which parts a commit
has (each part's rows travel as one JSON document), so each variant is prepared once per
connection and the server keeps a generic plan of it. On its own (autocommit) it is its
own transaction, run over libpq directly (:mod:`tether.store.pg_prepared`); when the
commit offloads large values into ``blobs``, or runs inside :meth:`PostgresStore.hold`,
it travels through psycopg in one pipeline with those inserts between BEGIN and COMMIT
(a savepoint inside a hold). Commits are synchronous: a commit returns once the
server has flushed it to its WAL.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import orjson

from ..errors import ConflictError, StoreError
from . import codec, sqlrows
from .base import Commit, CommitResult, now
from .pg_prepared import Prepared, ServerError, execute, positional
from .pg_statements import commit_statement
from .sql_statements import ADVANCE, ADVANCE_RUN, fenced

_RUN = ("run", "epoch")
_RUN_FIELDS = ("cursor", "status", "outputs", "error", "finished", "t")
# the commit statements, by (run fields given, fenced on the seq, the parts it writes, those
# of them with one row): the text psycopg runs, and the same prepared for pg_prepared
_COMMIT: dict[tuple[bool, bool, frozenset[str], frozenset[str]], tuple[str, Prepared]] = {}


def _statement(given: bool, fence: bool, parts: frozenset[str],
               single: frozenset[str] = frozenset()) -> tuple[str, Prepared]:
    """The commit statement for a commit with run fields (``given``), fenced on the seq
    (``fence``), writing ``parts`` (those in ``single`` as one row of parameters); built
    once per variant, prepared under a name taken from its text (so two texts never share
    a name on a connection)."""
    key = (given, fence, parts, single)
    found = _COMMIT.get(key)
    if found is None:
        advance = fenced(ADVANCE_RUN if given else ADVANCE, fence)
        names = (_RUN_FIELDS if given else ()) + _RUN + (("expected",) if fence else ())
        sql = commit_statement(advance, names, parts, single)
        name = "tether_commit_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
        found = _COMMIT[key] = (sql, positional(name, sql))
    return found


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
        params, parts, single = _params(c, blobs, self._published)
        if self._external:
            blobs = []  # stored above: nothing goes into the table
        sql, prepared = _statement(c.run is not None, c.fenced, parts, single)
        held = getattr(self._held, "conn", None)
        conn = held or self._connection()
        # inside hold(): a savepoint of the held transaction, on its connection
        begin, end, undo = (("SAVEPOINT tether_commit", "RELEASE SAVEPOINT tether_commit",
                             "ROLLBACK TO SAVEPOINT tether_commit") if held
                            else ("BEGIN", "COMMIT", "ROLLBACK"))
        row: Any
        try:
            if held is None and not blobs:  # the statement is its own transaction
                row = execute(conn, prepared, params)
                if row is not None:
                    row = (int(row[0]), None if row[1] is None else row[1].decode(), row[2])
            else:  # blobs go in first, in the same transaction: a refusal keeps only them
                with conn.pipeline():
                    conn.execute(begin)
                    for enc in blobs:
                        self._put_blob(conn, enc)
                    cur = conn.execute(sql, params)
                    conn.execute(end)
                row = cur.fetchone()
            refusal = self._refusal(conn, c) if row is None else None  # read now: nothing was written
        except (self._psycopg.Error, ServerError) as exc:
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
        seq, control, written = row
        self._committed[c.run_id] = (seq, control)
        if written is None:
            versions = {}
        elif "vars" in single:  # the one variable's version
            versions = {c.vars[0].name: int(written)}
        else:  # each name's last write
            versions = dict(orjson.loads(written))
        foreign = c.expected_seq is not None and seq != c.expected_seq + 1
        return CommitResult(seq, versions, foreign)


def _params(c: Commit, blobs: list[codec.Encoded], shared: set[tuple[str, str]]
            ) -> tuple[dict[str, Any], frozenset[str], frozenset[str]]:
    """The commit statement's parameters, the parts it writes and those of them written
    as one row (see :func:`pg_statements.commit_statement`): each part's rows as one JSON
    array of objects, or its one row as parameters named by part and key; byte values as
    ``\\x`` hex strings (what ``bytea`` reads); offloaded payloads are added to ``blobs``.
    Iterations of a loop in ``shared`` (``(run, loop)`` published as loop work) also
    remove their loop work."""
    def data(enc: codec.Encoded | None) -> bytes | None:
        if enc is None:
            return None
        if enc.blob is not None:
            blobs.append(enc)
        return enc.data

    def hexed(enc: codec.Encoded | None) -> str | None:
        if enc is None:
            return None
        if enc.blob is not None:
            blobs.append(enc)
        return "\\x" + enc.data.hex()

    text = codec.dumps_text
    p: dict[str, Any] = {"run": c.run_id, "epoch": c.epoch, "expected": c.expected_seq, "t": now()}
    r = c.run
    if r is not None:
        p.update(cursor=text(r.cursor), status=r.status, outputs=data(r.outputs),
                 error=None if r.error is None else text(r.error), finished=bool(r.finished))
    parts: list[str] = []
    one: list[str] = []
    ws = c.vars
    if ws:
        names = {w.name for w in ws}
        parts.append("vars" if len(names) == len(ws) else "vars*")
        _put(p, one, "v", "vars", [
            {"n": w.name, "v": None if w.delete else hexed(w.value), "s": w.source_step, "d": int(w.delete),
             "t": None if w.type == "step_result" else w.type, "c": None if w.scope == "run" else w.scope,
             "x": int(w.secret)} for w in ws])
    ss = c.steps
    if ss:
        parts.append("steps")
        _put(p, one, "s", "steps", [
            {"i": s.step_id, "st": s.status, "a": s.attempts, "n": hexed(s.inputs), "r": hexed(s.result),
             "er": None if s.error is None else text(s.error), "m": None if s.meta is None else text(s.meta),
             "sa": s.started_at, "fa": s.finished_at,
             "k": sqlrows.compact_key(c.run_id, s.step_id, s.idempotency_key)} for s in ss])
    es = c.events  # step records take idx 0..
    if es:
        parts.append("events")
        _put(p, one, "e", "events", [
            {"i": k, "ty": e.type, "sp": e.step_id, "da": None if e.data is None else text(e.data)}
            for k, e in enumerate(es, len(ss))])
    its = c.iterations
    if its:
        parts.append("iterations")
        work = bool(shared) and any((c.run_id, it.loop_key) in shared for it in its)
        if work:
            parts.append("work")
        _put(p, one, "i", "iterations", [
            {"k": it.loop_key, "i": it.idx, "st": it.status, "a": it.attempts, "r": hexed(it.result),
             "er": None if it.error is None else text(it.error), "sa": it.started_at, "fa": it.finished_at}
            for it in its], alone=not work)  # the loop work's removal reads the JSON document
    acc = c.accesses
    if acc:
        parts.append("reads")
        _put(p, one, "r", "reads", [{"n": a[0], "c": a[1], "at": a[2]} for a in acc])
    return p, frozenset(parts), frozenset(one)


def _put(p: dict[str, Any], one: list[str], key: str, part: str, rows: list[dict[str, Any]],
         alone: bool = True) -> None:
    """A part's rows as the parameter ``key`` (a JSON array), or (``alone`` allowing) its one
    row as the parameters ``key_field`` (``part`` added to ``one``)."""
    if alone and len(rows) == 1:
        one.append(part)
        p.update({f"{key}_{k}": v for k, v in rows[0].items()})
    else:
        p[key] = orjson.dumps(rows).decode()


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
