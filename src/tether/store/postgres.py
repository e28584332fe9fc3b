"""The PostgreSQL store: the same tables and semantics as SQLite, for many processes on
many machines.

Every write is one transaction on a pooled connection (psycopg 3, psycopg_pool); the
run's row is locked first (``UPDATE … WHERE lease_epoch = …`` or ``SELECT … FOR
UPDATE``), which serialises writers of one run and fences a stale owner. Commits are
synchronous for both durabilities: a committed step survives a crash of the client,
of the server (``pg_ctl -m immediate``) and of the machine. The URL may name a schema
(``postgresql://host/db?schema=name``) so that several stores share one database.
"""
from __future__ import annotations

import atexit
import contextlib
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import LeaseLost, NotFound, StoreError, UsageError
from . import codec, sqlrows
from .base import EventWrite, RunRecord, SweeperElection, WakeUps, now
from .pg_commit import PgCommit
from .pg_loop_work import LoopWork
from .pg_statements import (
    CREATE_VERSION_TABLE,
    INSERT_SCHEMA_VERSION,
    LISTEN_RUNS,
    LOCK_BLOBS,
    LOOP_WORK_TABLE,
    MIGRATE_LOCK,
    NOTIFY_RUNS,
    REQUEUE_EXPIRED,
    SCHEMA_CREATE_LOCK,
    SCHEMA_VERSION,
    STORE_BYTES,
    TRY_SWEEPER_LOCK,
    UNLOCK_SWEEPER,
    create_schema,
)
from .sql_common import SQLCommon
from .sql_statements import (
    COUNT_LOOP_ITEMS,
    INSERT_RUN,
    INSERT_RUN_SPEC,
    LOAD_RUN,
    POLL,
    RUN_AT_EPOCH,
    RUN_EXISTS,
)

if TYPE_CHECKING:
    from .base import BlobStore

_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_INSERT_RUN = INSERT_RUN.replace("?", "%s") + " ON CONFLICT (run_id) DO NOTHING"
_INSERT_RUN_SPEC = INSERT_RUN_SPEC.replace("?", "%s")
_LOAD_RUN, _POLL = LOAD_RUN.replace("?", "%s"), POLL.replace("?", "%s")
_COUNT_LOOP_ITEMS = COUNT_LOOP_ITEMS.replace("?", "%s")
_LOCK_RUN = RUN_EXISTS.replace("?", "%s") + " FOR UPDATE"  # the run's row lock (hold)
_LOCK_RUN_AT_EPOCH = RUN_AT_EPOCH.replace("?", "%s") + " FOR UPDATE"
_RETRIES = 5  # a lost connection is retried with backoff before an operation fails
_CONNECT_TIMEOUT = 10  # seconds for one connection attempt (a host that never answers)
# How long a process's first connection is tried again, by what the server said: a server
# (re)starting or full comes back; nothing listening may be one restarting, briefly;
# anything else (no such database or role, a wrong password, an unknown host) is final.
_FIRST_CONNECT_WAITS = (
    (("the database system is starting up", "the database system is shutting down",
      "the database system is in recovery mode", "the database system is not yet accepting connections",
      "too many clients already"), 30.0),
    (("Connection refused",), 3.0),
)


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("tether.store") / "migrations" / "postgres"
    return sorted((int(e.name.split("_", 1)[0]), e.read_text())
                  for e in folder.iterdir() if e.name.endswith(".sql"))


class PostgresStore(PgCommit, LoopWork, SQLCommon, WakeUps, SweeperElection):
    """A Store on a PostgreSQL database (or one schema of it)."""

    _placeholder = "%s"
    _for_update = " FOR UPDATE"
    _skip_locked = " FOR UPDATE SKIP LOCKED"

    _run_tables = (*SQLCommon._run_tables[:-1], LOOP_WORK_TABLE, SQLCommon._run_tables[-1])

    def _lock_blobs(self, db: Any) -> None:
        db.execute(LOCK_BLOBS)

    _STEP_EVENT_DATA = "json_build_object('attempts', attempts, 'error', error::json)::text"

    def _where(self) -> str:
        return _safe(self.url)

    def _json_text(self, column: str, *path: str) -> str:
        return f"({column}::json #>> '{{{','.join(path)}}}')"

    def _bytes(self) -> int:
        return int(self._query(STORE_BYTES)[0][0])

    def __init__(self, url: str, *, pool_size: int = 4, blobs: BlobStore | None = None) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool
        self._psycopg = psycopg
        self._held = threading.local()  # the connection of this thread's hold(), if any
        self._listener: Any = None  # wait_for_work's connection, LISTENing on tether_runs
        self._sweeper: Any = None  # the connection holding the sweeper's session lock
        self._listening, self._sweeping = threading.Lock(), threading.Lock()
        self._committed: dict[str, tuple[int, str | None]] = {}
        self._published: set[tuple[str, str]] = set()  # (run, loop) this store shared (pg_loop_work.py)
        self.url = url
        self._init_blobs(blobs)
        conninfo, schema = _conninfo(url)
        self.schema = schema
        kwargs: dict[str, Any] = {"autocommit": True}  # transactions are explicit: conn.transaction()
        # statements run 5 times are prepared (psycopg); a generic plan spares the commit
        # statement (pg_commit.py) a re-plan on every execution: half its server time
        kwargs["options"] = "-c plan_cache_mode=force_generic_plan"
        if schema:
            kwargs["options"] += f" -c search_path={schema}"
        self._conninfo, self._kwargs = conninfo, kwargs
        first = _first_connection(psycopg, url, conninfo, kwargs)  # a bad URL fails now, with the reason
        try:
            with first:
                if schema:  # the schema must exist before the pool's connections search it
                    with first.transaction():
                        # two first openers' CREATE SCHEMA IF NOT EXISTS can both try to create it
                        first.execute(SCHEMA_CREATE_LOCK, (f"{schema}/tether-schema",))
                        first.execute(create_schema(schema))
                # later connections (a server restarting during a run) are waited for and retried
                self._pool = ConnectionPool(conninfo, min_size=1, max_size=pool_size, kwargs=kwargs,
                                            open=True, timeout=30, name="tether")
                atexit.register(self.close)  # a pool left open makes noise as the interpreter exits
                self._migrate(first)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the PostgreSQL store {_safe(url)}: {_cause(exc)}") from None

    # ------------------------------------------------------------ plumbing
    def _migrate(self, conn: Any) -> None:
        """Apply the missing migrations on ``conn``, one opener at a time: the version is
        read after the advisory lock is taken, in the transaction that applies them."""
        with conn.transaction():
            conn.execute(MIGRATE_LOCK)
            conn.execute(CREATE_VERSION_TABLE)
            row = conn.execute(SCHEMA_VERSION).fetchone()
            current = row[0] or 0
            for version, sql in _migrations():
                if version > current:
                    conn.execute(sql)
                    conn.execute(INSERT_SCHEMA_VERSION, (version,))

    def _connection(self) -> Any:
        """A pooled connection; a failure to get one is retried with backoff."""
        for attempt in range(_RETRIES):
            try:
                return self._pool.getconn()
            except Exception as exc:  # PoolTimeout, or every connect failing (server down)
                if attempt == _RETRIES - 1:
                    raise StoreError(f"cannot reach the PostgreSQL store {_safe(self.url)}: {exc}") from None
                time.sleep(0.2 * 2 ** attempt)
        raise AssertionError("unreachable")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction (inside :meth:`hold`, a savepoint of the held one: another
        connection would wait for the run's row lock this thread holds); driver errors
        become StoreError naming the store."""
        self._committed.clear()  # a write of ours: poll() must look
        held = getattr(self._held, "conn", None)
        conn = held or self._connection()
        try:
            with conn.transaction():
                yield conn
        except self._psycopg.Error as exc:
            raise StoreError(f"write to {_safe(self.url)} failed: {_cause(exc)}") from None
        finally:
            if held is None:
                self._pool.putconn(conn)

    def _query(self, sql: str, params: Any = ()) -> list[tuple]:
        """One read; a connection lost meanwhile is replaced and the read retried. Inside
        :meth:`hold`, on the held connection (in a savepoint: a failed read undoes nothing
        else), so a hold needs one connection of the pool, never two."""
        held = getattr(self._held, "conn", None)
        if held is not None:
            try:
                with held.transaction():
                    return held.execute(sql, params).fetchall()
            except self._psycopg.Error as exc:
                raise StoreError(f"read from {_safe(self.url)} failed: {_cause(exc)}") from None
        for attempt in range(_RETRIES):
            conn = self._connection()
            try:
                return conn.execute(sql, params).fetchall()
            except self._psycopg.OperationalError as exc:
                if attempt == _RETRIES - 1:
                    raise StoreError(f"read from {_safe(self.url)} failed: {_cause(exc)}") from None
                time.sleep(0.2 * 2 ** attempt)
            except self._psycopg.Error as exc:
                raise StoreError(f"read from {_safe(self.url)} failed: {_cause(exc)}") from None
            finally:
                self._pool.putconn(conn)
        raise AssertionError("unreachable")

    def _run_row(self, db: Any, run_id: str) -> tuple | None:
        return db.execute(_LOAD_RUN, (run_id,)).fetchone()

    # ------------------------------------------------------------ runs
    def create_run(self, run: RunRecord, owner: str | None, ttl: float) -> tuple[RunRecord, bool]:
        inputs = codec.encode(run.inputs)
        t = now()
        with self._tx() as db:
            inserted = db.execute(_INSERT_RUN, (
                run.run_id, run.name, run.status, run.parent_id, run.created_at or t, run.started_at,
                codec.dumps_text(run.cursor), owner, t + ttl, run.durability, run.attempt)).rowcount
            if inserted:
                db.execute(_INSERT_RUN_SPEC, (
                    run.run_id, run.flow_text, run.flow_path, self._put_blob(db, inputs),
                    codec.dumps_text(run.env_snapshot),
                    None if run.flow_data is None else self._put_blob(db, codec.encode(run.flow_data)),
                    run.flow_digest))
            if inserted and run.status == "pending":
                db.execute(NOTIFY_RUNS)
            row = self._run_row(db, run.run_id)
            assert row is not None  # inserted or found above, in this transaction
        return sqlrows.run_record(row, self._decode), bool(inserted)

    def poll(self, run_id: str) -> tuple[int, str | None]:
        """The run's seq and control request as of this call, or — once after each commit
        through this store, without a round trip — as the commit left them (its UPDATE
        returned both, under the run's row lock): what others wrote since then is seen by
        the next poll or refuses the next fenced commit, and a request reaches the run by its
        next commit or the heartbeat's next poll."""
        answer = self._committed.pop(run_id, None)
        if answer is not None:
            return answer
        rows = self._query(_POLL, (run_id,))
        if not rows:
            raise NotFound(f"no run {run_id!r} in {_safe(self.url)}")
        return rows[0][0], rows[0][1]

    # ------------------------------------------------------------ wake-ups and the sweeper
    def _own_connection(self) -> Any:
        """A new connection of its own (not pooled), for LISTEN and session advisory locks."""
        return self._psycopg.connect(self._conninfo, connect_timeout=_CONNECT_TIMEOUT, **self._kwargs)

    def notify(self) -> None:
        with self._tx() as db:
            db.execute(NOTIFY_RUNS)

    def wait_for_work(self, timeout: float) -> bool:
        with self._listening:
            try:
                if self._listener is None:
                    conn = self._own_connection()
                    conn.execute(LISTEN_RUNS)
                    self._listener = conn
                for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                    return True
                return False
            except self._psycopg.Error as exc:  # the server restarted: listen anew next time
                self._listener = _closed(self._listener)
                raise StoreError(f"waiting for work on {_safe(self.url)} failed: {_cause(exc)}") from None

    def try_become_sweeper(self) -> bool:
        with self._sweeping:
            try:
                if self._sweeper is None:
                    self._sweeper = self._own_connection()
                return bool(self._sweeper.execute(TRY_SWEEPER_LOCK).fetchone()[0])
            except self._psycopg.Error as exc:
                self._sweeper = _closed(self._sweeper)
                raise StoreError(f"the sweeper's election on {_safe(self.url)} failed: "
                                 f"{_cause(exc)}") from None

    def release_sweeper(self) -> None:
        with self._sweeping:
            if self._sweeper is not None:
                # at once: closing alone frees the lock only once the server notices;
                # a lost connection holds no lock
                with contextlib.suppress(self._psycopg.Error):
                    self._sweeper.execute(UNLOCK_SWEEPER)
            self._sweeper = _closed(self._sweeper)

    def requeue_expired(self) -> list[str]:
        with self._tx() as db:
            ids = [r[0] for r in db.execute(REQUEUE_EXPIRED, (now(),)).fetchall()]
            if ids:
                db.execute(NOTIFY_RUNS)
        return ids

    @contextmanager
    def hold(self, run_id: str) -> Iterator[None]:
        conn = self._connection()
        try:
            conn.execute("BEGIN")
            # the run's row lock: every writer of the run takes it first, so they wait
            if conn.execute(_LOCK_RUN, (run_id,)).fetchone() is None:
                raise self._missing(run_id)
            self._held.conn = conn  # this thread's commits join the held transaction
            try:
                yield
            finally:
                self._held.conn = None
                conn.execute("COMMIT")  # what the block committed is kept, whatever it raised
        except self._psycopg.Error as exc:
            raise StoreError(f"write to {_safe(self.url)} failed: {_cause(exc)}") from None
        finally:
            _rollback(conn)
            self._pool.putconn(conn)

    # ------------------------------------------------------------ variables
    # ------------------------------------------------------------ steps and events
    # ------------------------------------------------------------ loops
    def start_loop(self, run_id: str, epoch: int, loop_key: str, items: Any, event: EventWrite) -> int:
        t = now()
        with self._tx() as db:
            if not db.execute(_LOCK_RUN_AT_EPOCH, (run_id, epoch)).fetchone():
                raise LeaseLost(f"run {run_id}: this process no longer holds the lease (epoch {epoch})")
            existing = db.execute(_COUNT_LOOP_ITEMS, (run_id, loop_key)).fetchone()[0]
            if existing:
                return existing
            seq = self._external_seq(db, run_id)
            n = 0
            batch: list[tuple] = []
            for enc in items:
                batch.append((run_id, loop_key, n, self._put_blob(db, enc)))  # blobs before the COPY
                n += 1
                if len(batch) >= 5000:
                    self._copy_items(db, batch)
            self._copy_items(db, batch)
            self._insert_event(db, run_id, seq, 0, EventWrite(event.type, event.step_id,
                                                              dict(event.data or {}, total=n)), t)
        return n

    @staticmethod
    def _copy_items(db: Any, batch: list[tuple]) -> None:
        if batch:
            with db.cursor() as cur, \
                    cur.copy("COPY loop_items (run_id, loop_key, idx, item) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
            batch.clear()

    def close(self) -> None:
        with self._listening:
            self._listener = _closed(self._listener)
        self.release_sweeper()
        self._pool.close()


def _first_connection(psycopg: Any, url: str, conninfo: str, kwargs: dict[str, Any]) -> Any:
    """A process's first connection to the store. StoreError, with the server's reason and
    the URL without its password, as soon as the failure is final, or once a transient one
    (see ``_FIRST_CONNECT_WAITS``) has lasted its time."""
    started, delay = time.monotonic(), 0.1
    while True:
        try:
            return psycopg.connect(conninfo, connect_timeout=_CONNECT_TIMEOUT, **kwargs)
        except psycopg.Error as exc:
            text = str(exc)
            wait = next((w for markers, w in _FIRST_CONNECT_WAITS if any(m in text for m in markers)), 0.0)
            if time.monotonic() - started + delay > wait:
                raise StoreError(f"cannot connect to the PostgreSQL store {_safe(url)}: "
                                 f"{_cause(exc)}") from None
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _conninfo(url: str) -> tuple[str, str | None]:
    """The libpq URL without Tether's own ``schema`` parameter, and that schema."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", None)
    if schema is not None and not _SCHEMA_RE.fullmatch(schema):
        raise UsageError(f"invalid schema name {schema!r} in the store URL: "
                         "use lower-case letters, digits and _")
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment)), schema


def _closed(conn: Any) -> Any:
    """Close ``conn`` if there is one, ignoring a connection already broken; always None
    (what the attribute that held it becomes)."""
    if conn is not None:
        with contextlib.suppress(Exception):  # already broken: nothing left to release
            conn.close()
    return None


def _rollback(conn: Any, statement: str = "ROLLBACK") -> None:
    """End a failed transaction (or undo to a savepoint) so the connection can be used again."""
    try:
        if not conn.closed and conn.info.transaction_status != 0:  # 0: idle
            conn.execute(statement)
    except Exception:  # a broken connection: the pool discards it
        pass


def _safe(url: str) -> str:
    """``url`` with its password hidden."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def _cause(exc: Exception) -> str:
    """The first line of the driver's message (without psycopg's "connection failed: ")."""
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].removeprefix("connection failed: ").split()) if text \
        else type(exc).__name__


def open_postgres(url: str, blobs: BlobStore | None = None) -> PostgresStore:
    """Open ``postgresql://user:password@host:port/db[?schema=name]``."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        raise UsageError("the PostgreSQL store needs psycopg and psycopg_pool: "
                         "pip install 'tether[postgres]'") from None
    return PostgresStore(url, blobs=blobs)
