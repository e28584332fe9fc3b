"""The embedded default store: one SQLite file in WAL mode.

One connection per store object, guarded by a lock; every write is one
``BEGIN IMMEDIATE`` transaction, so several processes can share one file.
``durability: normal`` maps to ``synchronous=NORMAL`` (survives a process
crash), ``full`` to ``synchronous=FULL`` (also survives power loss).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from ..errors import CorruptRecord, NotFound, StoreError, UsageError
from . import codec, sqlrows
from .base import BlobStore, Commit, CommitResult, Reclaimed, RunBrief, RunRecord, now
from .sql_common import SQLCommon
from .sql_statements import (
    ADVANCE,
    ADVANCE_CURSOR,
    ADVANCE_RUN,
    FLUSH_READS,
    INSERT_RUN,
    INSERT_RUN_SPEC,
    INSERT_STEP,
    LOAD_RUN,
    POLL,
    RUN_EXISTS,
    SQLITE_OBJECTS,
    SQLITE_UPSERT_ITERATION,
    fenced,
)
from .sqlite_loops import SQLiteLoops

PAGE_SIZE = 1024
BUSY_SECONDS = 30  # how long a statement waits for another process's lock
WAL_CHECKPOINT_PAGES = 16_000
WAL_CHECKPOINT_PAGES_FULL = 300  # measured best of 100-1000 for durability: full
GC_CHECKPOINT_PAGES = 1000  # while gc deletes (see delete_runs)
# the fenced commit's first statement, by (which run fields it writes, fenced)
_ADVANCE = {(kind, fence): fenced(sql, fence)
            for kind, sql in (("none", ADVANCE), ("cursor", ADVANCE_CURSOR), ("run", ADVANCE_RUN))
            for fence in (False, True)}
_FOLDER = Path(__file__).resolve().parent / "migrations" / "sqlite"


def _latest_migration() -> int:
    """The highest migration number, from the file names alone (no file read, and no
    ``importlib.resources`` import when the package is a folder, as installed)."""
    if _FOLDER.is_dir():
        return max(int(name.split("_", 1)[0]) for name in os.listdir(_FOLDER) if name.endswith(".sql"))
    return _migrations()[-1][0]


def _migrations() -> list[tuple[int, str]]:
    from importlib import resources
    folder = resources.files("tether.store") / "migrations" / "sqlite"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


def _cause(exc: sqlite3.Error) -> str:
    """The driver's message with SQLite's error name, and what to do for disk errors."""
    name = getattr(exc, "sqlite_errorname", None)
    text = f"{exc} ({name})" if name else str(exc)
    if name and name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        text += "; the disk may be full or failing: free space or repair it, then `tether resume` the run"
    return text

def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` says another connection holds a lock (worth waiting for)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc)


class SQLiteStore(SQLiteLoops, SQLCommon):
    """A Store on one SQLite file (or ``:memory:``)."""

    def __init__(self, path: str | os.PathLike[str], *, url: str | None = None,
                 blobs: BlobStore | None = None) -> None:
        self.path = str(path)
        self.url = url or f"sqlite:///{self.path}"
        self._init_blobs(blobs)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._polled: dict[str, tuple[int, int, int, str | None]] = {}
        self._own_seq: dict[str, int] = {}
        self._local = 0  # writes through this connection that poll() must not miss
        self._held = False  # inside hold(): transactions are savepoints of the held one
        try:
            # timeout: the busy timeout, set as the connection opens, before any statement
            self._db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None,
                                       check_same_thread=False, cached_statements=256)
            if self._db.execute(SQLITE_OBJECTS).fetchone()[0] == 0:
                # A new file: small pages, because a commit rewrites one leaf page per
                # table it touches and its rows are small (large values are compressed
                # or offloaded by the codec). Must precede WAL mode.
                self._db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                # Pages freed by `tether gc` go back to the file system as each of its
                # transactions commits (FULL: the free list is cut en bloc; INCREMENTAL's
                # page-by-page search of it is quadratic in its length, measured ~250 µs a
                # page). Only settable before the first table exists (docs/guide.md#retention).
                self._db.execute("PRAGMA auto_vacuum = FULL")
            self._wal()
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint the WAL every ~16 MiB (the default, 1,000 pages, is only 1 MiB with
            # our 1 KiB pages): each checkpoint fsyncs, so fewer of them is faster; a commit
            # is exactly as durable either way. The file is cut back to 16 MiB afterwards.
            self._db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            self._db.execute(f"PRAGMA journal_size_limit = {WAL_CHECKPOINT_PAGES * PAGE_SIZE}")
            self._db.execute("PRAGMA foreign_keys=OFF")
            self._sync = "normal"
            self._migrate()
            self._commits = 0
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the SQLite store {self.path}: {_cause(exc)}") from None
        except UnicodeDecodeError:
            raise StoreError(f"cannot open the SQLite store {self.path}: its schema is damaged "
                             "(text that is not UTF-8)") from None

    # ------------------------------------------------------------ plumbing
    def _wal(self) -> None:
        """Switch to WAL mode. The switch needs a lock the busy handler does not always wait
        for (another process may be creating the file or switching it too): retried until
        the busy timeout has passed."""
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    raise
                mode = None
            if mode == "wal":
                return
            if time.monotonic() > deadline:
                raise StoreError(f"cannot open the SQLite store {self.path}: it stays in {mode} journal mode")
            time.sleep(0.01)

    def _migrate(self) -> None:
        """Apply the missing migrations. Safe under any number of processes opening a new
        file at once: the version is read again inside the write transaction (``BEGIN
        IMMEDIATE``, which waits for the others) that applies every missing migration and
        records the new version, so exactly one opener applies each."""
        if self._db.execute("PRAGMA user_version").fetchone()[0] >= _latest_migration():
            return  # up to date: no write lock needed to find out
        migrations = _migrations()
        with self._tx() as db:
            current = db.execute("PRAGMA user_version").fetchone()[0]
            for version, sql in migrations:
                if version <= current:
                    continue
                for statement in sql.split(";\n"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {int(version)}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (inside :meth:`hold`, a savepoint of the held one); driver
        errors become StoreError naming the file."""
        with self._lock:
            self._local += 1  # poll() must look again after any write not made by commit()
            nested = self._held
            try:
                self._db.execute("SAVEPOINT tether_tx" if nested else "BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to {self.path}: {_cause(exc)}") from None
            try:
                yield self._db
            except BaseException as exc:
                try:
                    self._db.execute("ROLLBACK TO tether_tx" if nested else "ROLLBACK")
                    if nested:
                        self._db.execute("RELEASE tether_tx")
                except sqlite3.Error:
                    pass
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"write to {self.path} failed: {_cause(exc)}") from None
                raise
            else:
                try:
                    self._db.execute("RELEASE tether_tx" if nested else "COMMIT")
                except sqlite3.Error as exc:
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise StoreError(f"commit to {self.path} failed: {_cause(exc)}") from None

    @contextmanager
    def hold(self, run_id: str) -> Iterator[None]:
        with self._lock:
            self._local += 1
            try:
                self._db.execute("BEGIN IMMEDIATE")  # the write lock: other processes wait
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to {self.path}: {_cause(exc)}") from None
            self._held = True
            try:
                if self._db.execute(RUN_EXISTS, (run_id,)).fetchone() is None:
                    raise self._missing(run_id)
                yield
            finally:
                self._held = False
                try:
                    self._db.execute("COMMIT")  # what the block committed is kept, whatever it raised
                except sqlite3.Error as exc:
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise StoreError(f"commit to {self.path} failed: {_cause(exc)}") from None

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"read from {self.path} failed: {_cause(exc)}") from None
            except UnicodeDecodeError:  # only a damaged file or a foreign writer stores such text
                owner = f"run {params[0]}: " if params and isinstance(params[0], str) else ""
                raise CorruptRecord(f"{owner}a text stored in {self.path} is not valid UTF-8") from None

    # ------------------------------------------------------------ runs
    def create_run(self, run: RunRecord, owner: str | None, ttl: float) -> tuple[RunRecord, bool]:
        inputs = codec.encode(run.inputs)
        t = now()
        with self._tx() as db:
            existing = db.execute(LOAD_RUN, (run.run_id,)).fetchone()
            if existing is not None:
                return sqlrows.run_record(existing, self._decode), False
            db.execute(INSERT_RUN, (run.run_id, run.name, run.status, run.parent_id, run.created_at or t,
                                    run.started_at, codec.dumps_text(run.cursor), owner, t + ttl,
                                    run.durability, run.attempt))
            db.execute(INSERT_RUN_SPEC, (
                run.run_id, run.flow_text, run.flow_path, self._put_blob(db, inputs),
                codec.dumps_text(run.env_snapshot),
                None if run.flow_data is None else self._put_blob(db, codec.encode(run.flow_data)),
                run.flow_digest))
            row = db.execute(LOAD_RUN, (run.run_id,)).fetchone()
        return sqlrows.run_record(row, self._decode), True

    def poll(self, run_id: str) -> tuple[int, str | None]:
        with self._lock:
            # data_version changes only when another connection commits; our own writes
            # other than fenced commits are counted in _local. Unchanged: the cached answer
            # (or, for a run we committed to since, our own seq) is still true.
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            cached = self._polled.get(run_id)
            if cached is not None and cached[0] == version and cached[1] == self._local:
                return self._own_seq.get(run_id, cached[2]), cached[3]
            rows = self._db.execute(POLL, (run_id,)).fetchall()
            if not rows:
                raise NotFound(f"no run {run_id!r} in {self.url}")
            self._polled[run_id] = (version, self._local, rows[0][0], rows[0][1])
            self._own_seq.pop(run_id, None)
            return rows[0][0], rows[0][1]

    # ------------------------------------------------------------ leases
    # ------------------------------------------------------------ commit
    def commit(self, c: Commit) -> CommitResult:
        t = now()
        self._blobs_first(c)  # TETHER_BLOBS: durable before the transaction that refers to them
        with self._lock:
            if c.durability != self._sync:  # pragmas that cannot change inside a transaction
                full = c.durability == "full"
                self._db.execute("PRAGMA synchronous=FULL" if full else "PRAGMA synchronous=NORMAL")
                # full fsyncs every commit: a small WAL that is reused in place avoids paying
                # for file growth in each fsync; normal fsyncs only at checkpoints: fewer is better
                pages = WAL_CHECKPOINT_PAGES_FULL if full else WAL_CHECKPOINT_PAGES
                self._db.execute(f"PRAGMA wal_autocheckpoint = {pages}")
                self._sync = c.durability
            result = self._commit(c, t)
            self._own_seq[c.run_id] = result.seq
            if result.foreign:
                self._local += 1
            self._commits += 1
            return result

    def _commit(self, c: Commit, t: float) -> CommitResult:
        local = self._local
        with self._tx() as db:
            r = c.run
            fenced_on = (c.expected_seq,) if c.fenced else ()
            if r is None:
                row = db.execute(_ADVANCE["none", c.fenced], (c.run_id, c.epoch, *fenced_on)).fetchone()
            elif r.status is None and not r.finished and r.outputs is None and r.error is None:
                row = db.execute(_ADVANCE["cursor", c.fenced],
                                 (codec.dumps_text(r.cursor), c.run_id, c.epoch, *fenced_on)).fetchone()
            else:
                row = db.execute(_ADVANCE["run", c.fenced], (
                    codec.dumps_text(r.cursor), r.status, self._put_blob(db, r.outputs),
                    None if r.error is None else codec.dumps_text(r.error), r.finished, t,
                    c.run_id, c.epoch, *fenced_on)).fetchone()
            if row is None:
                raise self._refusal(db, c)
            seq = row[0]
            versions = self._write_vars(db, c.run_id, c.vars, seq, t)
            for s in c.steps:
                db.execute(INSERT_STEP, (
                    c.run_id, seq, s.step_id, s.status, s.attempts, self._put_blob(db, s.inputs),
                    self._put_blob(db, s.result), None if s.error is None else codec.dumps_text(s.error),
                    None if s.meta is None else codec.dumps_text(s.meta), s.started_at,
                    s.finished_at, sqlrows.compact_key(c.run_id, s.step_id, s.idempotency_key)))
            for idx, e in enumerate(c.events, start=len(c.steps)):  # step records take idx 0..
                self._insert_event(db, c.run_id, seq, idx, e, t)
            for it in c.iterations:
                db.execute(SQLITE_UPSERT_ITERATION, (c.run_id, it.loop_key, it.idx, it.status, it.attempts,
                                               self._put_blob(db, it.result),
                                               None if it.error is None else codec.dumps_text(it.error), seq,
                                               it.started_at, it.finished_at))
            for name, count, at in c.accesses:
                db.execute(FLUSH_READS, (c.run_id, name, at, count))
        self._local = local  # a fenced commit is accounted for by _own_seq, not as an outside write
        foreign = c.expected_seq is not None and seq != c.expected_seq + 1
        return CommitResult(seq, versions, foreign)

    # ------------------------------------------------------------ variables
    # ------------------------------------------------------------ steps and events
    def _bytes(self) -> int:
        return self._query("PRAGMA page_size")[0][0] * self._query("PRAGMA page_count")[0][0]

    def delete_runs(self, runs: Sequence[RunBrief]) -> Reclaimed:
        """As :meth:`SQLRetention.delete_runs`, checkpointing the WAL every ~1 MiB meanwhile:
        gc writes much, and a WAL left to grow to 16 MiB would be checkpointed inside some
        other process's commit (measured: commits blocked up to ~400 ms instead of <100)."""
        with self._lock:
            self._db.execute(f"PRAGMA wal_autocheckpoint = {GC_CHECKPOINT_PAGES}")
            try:
                return super().delete_runs(runs)
            finally:
                pages = WAL_CHECKPOINT_PAGES_FULL if self._sync == "full" else WAL_CHECKPOINT_PAGES
                self._db.execute(f"PRAGMA wal_autocheckpoint = {pages}")

    def _free_bytes(self) -> int:
        return self._query("PRAGMA page_size")[0][0] * self._query("PRAGMA freelist_count")[0][0]

    def reclaim_space(self, max_pages: int = 2000) -> int:
        """Incremental vacuum of up to ``max_pages`` free pages, in one write transaction, for
        a file in auto_vacuum=INCREMENTAL mode. New files are in FULL mode, where each commit
        gives its freed pages back (nothing is left to do here); a file made before either
        gives nothing back: its free pages are reused by later writes (docs/guide.md#retention)."""
        with self._lock:
            if self._query("PRAGMA auto_vacuum")[0][0] != 2:
                return 0
            before = self._query("PRAGMA page_count")[0][0]
            self._local += 1
            try:
                # executescript steps the pragma to its end (execute() frees one page only)
                self._db.executescript(f"PRAGMA incremental_vacuum({int(max_pages)});")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot give space back in {self.path}: {_cause(exc)}") from None
            return (before - self._query("PRAGMA page_count")[0][0]) * self._query("PRAGMA page_size")[0][0]

    def checkpoint_wal(self) -> None:
        """Fold the WAL into the database file (used by benchmarks measuring size)."""
        self._query("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_sqlite(url: str, *, create_folder: bool = True, blobs: BlobStore | None = None) -> SQLiteStore:
    """Open ``sqlite:///relative/or/absolute/path`` (``sqlite:///:memory:`` too). Without
    ``create_folder``, a folder that does not exist is a UsageError. ``blobs``: where
    offloaded values go (None: the database's own table)."""
    path = url[len("sqlite://"):]
    if path.startswith("/"):
        path = path[1:]  # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
    if not path:
        raise UsageError(f"invalid SQLite URL {url!r}: expected sqlite:///path/to.db")
    folder = Path(path).parent
    if not create_folder and path != ":memory:" and not folder.is_dir():
        raise UsageError(f"store {url}: the folder {folder} does not exist",
                         hint="create it first, or check the path (sqlite:///relative.db, sqlite:////absolute.db)")
    return SQLiteStore(path, url=url, blobs=blobs)
