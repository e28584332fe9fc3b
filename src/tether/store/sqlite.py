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
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConflictError, CorruptRecord, LeaseLost, NotFound, StoreError, UsageError
from . import codec, sqlrows, typed
from .shared_sql import SharedSQL
from .sqlite_loops import SQLiteLoops
from .base import (Commit, CommitResult, EventRecord, EventWrite, HistoryRecord, RunRecord,
                   StepRecord, Takeover, VarRecord, VarWrite, now)

PAGE_SIZE = 1024
WAL_CHECKPOINT_PAGES = 16_000
WAL_CHECKPOINT_PAGES_FULL = 300  # measured best of 100-1000 for durability: full
_RUNS, _RUN_COLS = sqlrows.RUNS, sqlrows.RUN_COLS
_LATEST = ("SELECT version, deleted FROM var_history WHERE run_id = ? AND name = ? ORDER BY version DESC LIMIT 1")
_INSERT_HISTORY = ("INSERT INTO var_history (run_id, name, version, seq, value, source_step, at, deleted, type, "
                   "scope, secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
# the current row of each variable: its latest history row (deleted ones are filtered by the caller)
_CURRENT = ("SELECT h.name, h.value, coalesce(h.type, 'step_result'), coalesce(h.scope, 'run'), h.version, "
            "h.source_step, coalesce(h.created_at, (SELECT y.created_at FROM var_history y WHERE y.run_id = h.run_id "
            "AND y.name = h.name AND y.version < h.version AND y.created_at IS NOT NULL ORDER BY y.version DESC "
            "LIMIT 1)), h.at, r.accessed_at, coalesce(r.access_count, 0), h.secret, h.seq, h.deleted "
            "FROM var_history h "
            "LEFT JOIN var_reads r ON r.run_id = h.run_id AND r.name = h.name "
            "WHERE h.run_id = ?1 AND h.version = (SELECT max(x.version) FROM var_history x "
            "WHERE x.run_id = ?1 AND x.name = h.name)")
_FLUSH_READS = ("INSERT INTO var_reads (run_id, name, accessed_at, access_count) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id, name) DO UPDATE SET access_count = access_count + excluded.access_count, "
                "accessed_at = excluded.accessed_at")
_INSERT_STEP = ("INSERT INTO steps (run_id, seq, step_id, status, attempts, inputs, result, error, "
                "meta, started_at, finished_at, idempotency_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_UPSERT_ITERATION = ("INSERT OR REPLACE INTO iterations (run_id, loop_key, idx, status, attempts, result, error, "
                     "seq, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_EVENT = "INSERT INTO events (run_id, seq, idx, type, step_id, data, at) VALUES (?, ?, ?, ?, ?, ?, ?)"


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("tether.store") / "migrations" / "sqlite"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


_opt_json = codec.loads_optional



def _cause(exc: sqlite3.Error) -> str:
    """The driver's message with SQLite's error name, and what to do for disk errors."""
    name = getattr(exc, "sqlite_errorname", None)
    text = f"{exc} ({name})" if name else str(exc)
    if name and name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        text += "; the disk may be full or failing: free space or repair it, then `tether resume` the run"
    return text

class SQLiteStore(SQLiteLoops, SharedSQL):
    """A Store on one SQLite file (or ``:memory:``)."""

    def __init__(self, path: str | os.PathLike[str], *, url: str | None = None) -> None:
        self.path = str(path)
        self.url = url or f"sqlite:///{self.path}"
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._polled: dict[str, tuple[int, int, int, str | None]] = {}
        self._own_seq: dict[str, int] = {}
        self._local = 0  # writes through this connection that poll() must not miss
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                       check_same_thread=False, cached_statements=256)
            if self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                # A new file: small pages, because a commit rewrites one leaf page per
                # table it touches and its rows are small (large values are compressed
                # or offloaded by the codec). Must precede WAL mode.
                self._db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            self._db.execute("PRAGMA journal_mode=WAL")
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
    def _migrate(self) -> None:
        current = self._db.execute("PRAGMA user_version").fetchone()[0]
        for version, sql in _migrations():
            if version <= current:
                continue
            with self._tx():
                for statement in sql.split(";\n"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {int(version)}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; driver errors become StoreError naming the file."""
        with self._lock:
            self._local += 1  # poll() must look again after any write not made by commit()
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to {self.path}: {_cause(exc)}") from None
            try:
                yield self._db
            except BaseException as exc:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"write to {self.path} failed: {_cause(exc)}") from None
                raise
            else:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
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

    def _insert_event(self, db: sqlite3.Connection, run_id: str, seq: int, idx: int, e: EventWrite,
                      t: float) -> None:
        db.execute(_INSERT_EVENT, (run_id, seq, idx, e.type, e.step_id,
                                   None if e.data is None else codec.dumps_text(e.data), t))

    def _load_blob(self, digest: str) -> bytes | None:
        rows = self._query("SELECT data FROM blobs WHERE hash = ?", (digest,))
        return rows[0][0] if rows else None

    def _decode(self, data: bytes | None, what: str) -> Any:
        return None if data is None else codec.decode(data, self._load_blob, what=what)

    def _put_blob(self, enc: codec.Encoded | None) -> bytes | None:
        if enc is None:
            return None
        if enc.blob is not None:
            self._db.execute("INSERT OR IGNORE INTO blobs (hash, data) VALUES (?, ?)", enc.blob)
        return enc.data

    def _run_from_row(self, row: tuple) -> RunRecord:
        return sqlrows.run_record(row, self._decode)

    def _var_from_row(self, run_id: str, row: tuple) -> VarRecord:
        return sqlrows.var_record(run_id, row, self._decode)

    # ------------------------------------------------------------ runs
    def create_run(self, run: RunRecord, owner: str, ttl: float) -> tuple[RunRecord, bool]:
        inputs = codec.encode(run.inputs)
        t = now()
        with self._tx() as db:
            existing = db.execute(f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE run_id = ?",
                                  (run.run_id,)).fetchone()
            if existing is not None:
                return self._run_from_row(existing), False
            db.execute(
                "INSERT INTO runs (run_id, name, status, parent_id, created_at, started_at, finished_at, seq, "
                "cursor, outputs, error, lease_owner, lease_epoch, lease_expires, durability, attempt, control) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL, 0, ?, NULL, NULL, ?, 1, ?, ?, ?, NULL)",
                (run.run_id, run.name, run.status, run.parent_id, run.created_at or t, run.started_at,
                 codec.dumps_text(run.cursor), owner, t + ttl, run.durability, run.attempt))
            db.execute(
                "INSERT INTO run_specs (run_id, flow_text, flow_path, inputs, env_snapshot, flow_data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run.run_id, run.flow_text, run.flow_path, self._put_blob(inputs), codec.dumps_text(run.env_snapshot),
                 None if run.flow_data is None else self._put_blob(codec.encode(run.flow_data))))
            row = db.execute(f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE run_id = ?", (run.run_id,)).fetchone()
        return self._run_from_row(row), True

    def load_run(self, run_id: str) -> RunRecord:
        rows = self._query(f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE run_id = ?", (run_id,))
        if not rows:
            raise NotFound(f"no run {run_id!r} in {self.url}")
        return self._run_from_row(rows[0])

    def list_runs(self, status: str | None = None, limit: int = 50,
                  before: str | None = None) -> list[RunRecord]:
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if before:
            where.append("run_id < ?")
            params.append(before)
        sql = f"SELECT {_RUN_COLS} FROM {_RUNS}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY run_id DESC LIMIT ?"
        params.append(int(limit))
        return [self._run_from_row(r) for r in self._query(sql, tuple(params))]

    def poll(self, run_id: str) -> tuple[int, str | None]:
        with self._lock:
            # data_version changes only when another connection commits; our own writes
            # other than fenced commits are counted in _local. Unchanged: the cached answer
            # (or, for a run we committed to since, our own seq) is still true.
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            cached = self._polled.get(run_id)
            if cached is not None and cached[0] == version and cached[1] == self._local:
                return self._own_seq.get(run_id, cached[2]), cached[3]
            rows = self._db.execute("SELECT seq, control FROM runs WHERE run_id = ?", (run_id,)).fetchall()
            if not rows:
                raise NotFound(f"no run {run_id!r} in {self.url}")
            self._polled[run_id] = (version, self._local, rows[0][0], rows[0][1])
            self._own_seq.pop(run_id, None)
            return rows[0][0], rows[0][1]

    def request(self, run_id: str, control: str | None) -> None:
        with self._tx() as db:
            if db.execute("UPDATE runs SET control = ? WHERE run_id = ?", (control, run_id)).rowcount != 1:
                raise NotFound(f"no run {run_id!r} in {self.url}")

    # ------------------------------------------------------------ leases
    def acquire_lease(self, run_id: str, owner: str, ttl: float,
                      steal_epoch: int | None = None, takeover: Takeover | None = None) -> RunRecord:
        t = now()
        with self._tx() as db:
            row = db.execute("SELECT lease_owner, lease_epoch, lease_expires, status FROM runs WHERE run_id = ?",
                             (run_id,)).fetchone()
            if row is None:
                raise NotFound(f"no run {run_id!r} in {self.url}")
            holder, epoch, expires, status = row
            free = holder is None or holder == owner or expires < t or steal_epoch == epoch
            if not free:
                raise ConflictError(f"run {run_id} is owned by {holder} (lease valid for "
                                    f"{expires - t:.0f}s more)")
            db.execute("UPDATE runs SET lease_owner = ?, lease_epoch = ?, lease_expires = ? "
                       "WHERE run_id = ?", (owner, epoch + 1, t + ttl, run_id))
            if takeover is not None:
                if takeover.expect_status is not None and status not in takeover.expect_status:
                    raise ConflictError(f"run {run_id} is {status} now; it was taken over meanwhile")
                bump = 1 if (takeover.vars or takeover.events) else 0
                seq = db.execute(
                    "UPDATE runs SET status = ?, cursor = ?, attempt = attempt + 1, control = NULL, error = NULL, "
                    "finished_at = NULL, seq = seq + ? WHERE run_id = ? RETURNING seq",
                    (takeover.status, codec.dumps_text(takeover.cursor), bump, run_id)).fetchone()[0]
                if bump:
                    self._write_vars(db, run_id, takeover.vars, seq, t)
                    for idx, e in enumerate(takeover.events):
                        self._insert_event(db, run_id, seq, idx, e, t)
            out = db.execute(f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE run_id = ?", (run_id,)).fetchone()
        return self._run_from_row(out)

    def claim_run(self, owner: str, ttl: float) -> RunRecord | None:
        t = now()
        with self._tx() as db:  # BEGIN IMMEDIATE: one claimer at a time
            row = db.execute("SELECT run_id, seq FROM runs WHERE status = 'pending' OR (status = 'running' AND "
                             "lease_expires < ?) ORDER BY created_at, run_id LIMIT 1", (t,)).fetchone()
            if row is None:
                return None
            run_id, old_seq = row
            seq = db.execute(
                "UPDATE runs SET status = 'running', lease_owner = ?, lease_epoch = lease_epoch + 1, "
                "lease_expires = ?, attempt = attempt + ?, control = NULL, error = NULL, finished_at = NULL, "
                "started_at = coalesce(started_at, ?), "
                "seq = seq + 1 WHERE run_id = ? RETURNING seq", (owner, t + ttl, int(old_seq > 0), t, run_id)).fetchone()[0]
            self._insert_event(db, run_id, seq, 0, EventWrite("run.claimed", None, {"owner": owner}), t)
            out = db.execute(f"SELECT {_RUN_COLS} FROM {_RUNS} WHERE run_id = ?", (run_id,)).fetchone()
        return self._run_from_row(out)

    def renew_lease(self, run_id: str, epoch: int, ttl: float) -> None:
        with self._tx() as db:
            cur = db.execute("UPDATE runs SET lease_expires = ? WHERE run_id = ? AND lease_epoch = ?",
                             (now() + ttl, run_id, epoch))
            if cur.rowcount != 1:
                raise LeaseLost(f"run {run_id}: lease epoch {epoch} was taken over")

    def release_lease(self, run_id: str, epoch: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET lease_owner = NULL, lease_expires = 0 "
                       "WHERE run_id = ? AND lease_epoch = ?", (run_id, epoch))

    def set_flow(self, run_id: str, epoch: int, flow_text: str, flow_path: str | None,
                 flow_data: Any = None) -> None:
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM runs WHERE run_id = ? AND lease_epoch = ?", (run_id, epoch)).fetchone():
                raise LeaseLost(f"run {run_id}: lease epoch {epoch} was taken over")
            cur = db.execute("UPDATE run_specs SET flow_text = ?, flow_path = ?, flow_data = ? WHERE run_id = ?",
                             (flow_text, flow_path, None if flow_data is None else
                              self._put_blob(codec.encode(flow_data)), run_id))
            if cur.rowcount != 1:
                raise LeaseLost(f"run {run_id}: lease epoch {epoch} was taken over")

    # ------------------------------------------------------------ commit
    def commit(self, c: Commit) -> CommitResult:
        t = now()
        with self._lock:
            if c.durability != self._sync:  # pragmas that cannot change inside a transaction
                full = c.durability == "full"
                self._db.execute("PRAGMA synchronous=FULL" if full else "PRAGMA synchronous=NORMAL")
                # full fsyncs every commit: a small WAL that is reused in place avoids paying
                # for file growth in each fsync; normal fsyncs only at checkpoints: fewer is better
                self._db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES_FULL if full else WAL_CHECKPOINT_PAGES}")
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
            if r is None:
                row = db.execute("UPDATE runs SET seq = seq + 1 WHERE run_id = ? AND lease_epoch = ? "
                                 "RETURNING seq", (c.run_id, c.epoch)).fetchone()
            elif r.status is None and not r.finished and r.outputs is None and r.error is None:
                row = db.execute("UPDATE runs SET seq = seq + 1, cursor = ? WHERE run_id = ? AND "
                                 "lease_epoch = ? RETURNING seq",
                                 (codec.dumps_text(r.cursor), c.run_id, c.epoch)).fetchone()
            else:
                row = db.execute(
                    "UPDATE runs SET seq = seq + 1, cursor = ?, status = coalesce(?, status), "
                    "outputs = coalesce(?, outputs), error = ?, "
                    "finished_at = CASE WHEN ? THEN ? ELSE finished_at END "
                    "WHERE run_id = ? AND lease_epoch = ? RETURNING seq",
                    (codec.dumps_text(r.cursor), r.status, self._put_blob(r.outputs),
                     None if r.error is None else codec.dumps_text(r.error), r.finished, t,
                     c.run_id, c.epoch)).fetchone()
            if row is None:
                raise LeaseLost(f"run {c.run_id}: this process no longer holds the lease "
                                f"(epoch {c.epoch}); its write was refused")
            seq = row[0]
            versions = self._write_vars(db, c.run_id, c.vars, seq, t)
            for s in c.steps:
                db.execute(_INSERT_STEP, (
                    c.run_id, seq, s.step_id, s.status, s.attempts, self._put_blob(s.inputs),
                    self._put_blob(s.result), None if s.error is None else codec.dumps_text(s.error),
                    None if s.meta is None else codec.dumps_text(s.meta), s.started_at,
                    s.finished_at, sqlrows.compact_key(c.run_id, s.step_id, s.idempotency_key)))
            for idx, e in enumerate(c.events, start=len(c.steps)):  # step records take idx 0..
                self._insert_event(db, c.run_id, seq, idx, e, t)
            for it in c.iterations:
                db.execute(_UPSERT_ITERATION, (c.run_id, it.loop_key, it.idx, it.status, it.attempts,
                                               self._put_blob(it.result),
                                               None if it.error is None else codec.dumps_text(it.error), seq,
                                               it.started_at, it.finished_at))
            for name, count, at in c.accesses:
                db.execute(_FLUSH_READS, (c.run_id, name, at, count))
        self._local = local  # a fenced commit is accounted for by _own_seq, not as an outside write
        foreign = c.expected_seq is not None and seq != c.expected_seq + 1
        return CommitResult(seq, versions, foreign)

    def _write_vars(self, db: sqlite3.Connection, run_id: str, writes: tuple[VarWrite, ...] | list,
                    seq: int, t: float) -> dict[str, int]:
        """Append one history row per write; a variable's current value is its latest row."""
        versions: dict[str, int] = {}
        for w in writes:
            prev = db.execute(_LATEST, (run_id, w.name)).fetchone()
            exists = prev is not None and not prev[1]
            version = (prev[0] if prev else 0) + 1  # versions continue across a deletion
            kind = None if w.type == "step_result" else w.type  # defaults are stored as NULL
            scope = None if w.scope == "run" else w.scope
            if w.delete:
                if not exists:
                    continue
                db.execute(_INSERT_HISTORY, (run_id, w.name, version, seq, None, w.source_step, t, 1, kind, scope,
                                             int(w.secret), None))
                versions[w.name] = 0
                continue
            db.execute(_INSERT_HISTORY, (run_id, w.name, version, seq, self._put_blob(w.value), w.source_step, t, 0,
                                         kind, scope, int(w.secret), None if exists else t))
            versions[w.name] = version
        return versions

    def flow_data(self, run_id: str) -> Any:
        rows = self._query("SELECT flow_data FROM run_specs WHERE run_id = ?", (run_id,))
        if not rows:
            raise NotFound(f"no run {run_id!r} in {self.url}")
        return self._decode(rows[0][0], f"run {run_id}: flow")

    # ------------------------------------------------------------ variables
    def read_vars(self, run_id: str, since_seq: int = 0) -> dict[str, VarRecord]:
        rows = self._query(_CURRENT + " AND h.seq > ?2", (run_id, since_seq))
        return {r[0]: self._var_from_row(run_id, r) for r in rows if not r[12]}

    def read_var(self, run_id: str, name: str, *, count_access: bool = False) -> VarRecord:
        rows = self._query(_CURRENT + " AND h.name = ?2", (run_id, name))
        if not rows or rows[0][12]:
            self.load_run(run_id)
            raise NotFound(f"run {run_id} has no variable {name!r}")
        if count_access:
            with self._tx() as db:
                db.execute(_FLUSH_READS, (run_id, name, now(), 1))
            rows = self._query(_CURRENT + " AND h.name = ?2", (run_id, name))
        return self._var_from_row(run_id, rows[0])

    def _current_version(self, db: sqlite3.Connection, run_id: str, name: str) -> int:
        row = db.execute(_LATEST, (run_id, name)).fetchone()
        return 0 if row is None or row[1] else row[0]

    def _external_seq(self, db: sqlite3.Connection, run_id: str) -> int:
        row = db.execute("UPDATE runs SET seq = seq + 1 WHERE run_id = ? RETURNING seq", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"no run {run_id!r} in {self.url}")
        return row[0]

    def set_var(self, run_id: str, write: VarWrite, expected_version: int | None = None) -> VarRecord:
        t = now()
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                raise NotFound(f"no run {run_id!r} in {self.url}")
            if expected_version is not None:
                current = self._current_version(db, run_id, write.name)
                if current != expected_version:
                    raise ConflictError(
                        f"variable {write.name!r} of run {run_id} is at version {current}, "
                        f"not {expected_version}; read it again and retry")
            seq = self._external_seq(db, run_id)
            self._write_vars(db, run_id, (write,), seq, t)
            self._insert_event(db, run_id, seq, 0, EventWrite("var.set", None,
                                                              {"name": write.name, "source": write.source_step}), t)
        return self.read_var(run_id, write.name)

    def delete_var(self, run_id: str, name: str, source: str,
                   expected_version: int | None = None) -> bool:
        t = now()
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                raise NotFound(f"no run {run_id!r} in {self.url}")
            current = self._current_version(db, run_id, name)
            if expected_version is not None and current != expected_version:
                raise ConflictError(f"variable {name!r} of run {run_id} is at version {current}, "
                                    f"not {expected_version}")
            if current == 0:
                return False
            seq = self._external_seq(db, run_id)
            self._write_vars(db, run_id, (VarWrite(name, None, source_step=source, delete=True),), seq, t)
            self._insert_event(db, run_id, seq, 0, EventWrite("var.deleted", None, {"name": name, "source": source}),
                               t)
        return True

    def var_history(self, run_id: str, name: str) -> list[HistoryRecord]:
        rows = self._query("SELECT version, seq, value, source_step, at, deleted FROM var_history "
                           "WHERE run_id = ? AND name = ? ORDER BY version", (run_id, name))
        what = f"run {run_id}: variable {name} history"
        return [HistoryRecord(name, typed.integer(r[0], what, "version"), typed.integer(r[1], what, "seq"),
                              self._decode(r[2], f"run {run_id}: {name} v{r[0]}"), r[3], r[4], bool(r[5]))
                for r in rows]

    def var_changes(self, run_id: str) -> list[tuple[int, str]]:
        return [(typed.integer(r[0], f"run {run_id}: variable {r[1]} history", "seq"), r[1]) for r in self._query(
            "SELECT seq, name FROM var_history WHERE run_id = ? ORDER BY seq, name", (run_id,))]

    def state_at(self, run_id: str, seq: int) -> dict[str, Any]:
        rows = self._query(
            "SELECT h.name, h.value, h.deleted FROM var_history h JOIN ("
            " SELECT name, max(version) AS v FROM var_history WHERE run_id = ? AND seq <= ? GROUP BY name"
            ") last ON h.name = last.name AND h.version = last.v WHERE h.run_id = ?",
            (run_id, seq, run_id))
        return {r[0]: self._decode(r[1], f"run {run_id}: {r[0]}") for r in rows if not r[2]}

    # ------------------------------------------------------------ steps and events
    def steps(self, run_id: str) -> list[StepRecord]:
        found = self._query(f"SELECT {sqlrows.STEP_COLS} FROM steps WHERE run_id = ? ORDER BY seq", (run_id,))
        return [sqlrows.step_record(run_id, r, self._decode) for r in found]

    def events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]:
        # a step record is its own step.<status> event: stored once, listed here
        sql = ("SELECT seq, idx, type, step_id, data, at FROM events WHERE run_id = ?1 AND seq > ?2 "
               "UNION ALL SELECT seq, (SELECT count(*) FROM steps p WHERE p.run_id = s.run_id AND p.seq = s.seq "
               "AND p.step_id < s.step_id), 'step.' || status, step_id, "
               "json_object('attempts', attempts, 'error', json(error)), finished_at "
               "FROM steps s WHERE run_id = ?1 AND seq > ?2 ORDER BY 1, 2")
        params: tuple = (run_id, after_seq)
        if limit is not None:
            sql += " LIMIT ?"
            params += (int(limit),)
        try:
            found = self._query(sql, params)
        except StoreError as exc:  # json(error) of a step whose error is not JSON
            raise CorruptRecord(f"run {run_id}: events cannot be read: {exc}") from None
        return [sqlrows.event_record(run_id, r) for r in found]

    def stats(self) -> dict[str, int]:
        out = {}
        for table in ("runs", "steps", "var_history", "events", "blobs"):
            out[table] = self._query(f"SELECT count(*) FROM {table}")[0][0]
        out["vars"] = self._query(
            "SELECT count(*) FROM var_history h WHERE deleted = 0 AND version = (SELECT max(version) "
            "FROM var_history x WHERE x.run_id = h.run_id AND x.name = h.name)")[0][0]
        row = self._query(
            "SELECT coalesce(sum(json_extract(data, '$.template_cache.hits')), 0), "
            "coalesce(sum(json_extract(data, '$.template_cache.misses')), 0) FROM events "
            "WHERE type IN ('run.completed', 'run.failed', 'run.paused', 'run.cancelled')")[0]
        out["template_hits"], out["template_misses"] = int(row[0]), int(row[1])
        page_size = self._query("PRAGMA page_size")[0][0]
        out["bytes"] = page_size * self._query("PRAGMA page_count")[0][0]
        return out

    def checkpoint_wal(self) -> None:
        """Fold the WAL into the database file (used by benchmarks measuring size)."""
        self._query("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_sqlite(url: str) -> SQLiteStore:
    """Open ``sqlite:///relative/or/absolute/path`` (``sqlite:///:memory:`` too)."""
    path = url[len("sqlite://"):]
    if path.startswith("/"):
        path = path[1:]  # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
    if not path:
        raise UsageError(f"invalid SQLite URL {url!r}: expected sqlite:///path/to.db")
    return SQLiteStore(path, url=url)
