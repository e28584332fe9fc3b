"""Every SQL statement of the SQL stores written with ``?`` placeholders, each once, by
role: what both stores run (the PostgreSQL store rewrites ``?`` to ``%s``, through
``_q`` or once at import) and, in one marked section, SQLite's own (its PRAGMAs,
connection settings, stay in ``sqlite.py``). A statement built from parts at run time is
a small function here (``list_runs``, ``events``, ``claimable``, ``iterations_range``, …)
that gives the same text for the same arguments; the dialect's pieces (a JSON path, a
step's event data) are passed in, and a row lock (``_for_update``, ``_skip_locked``:
empty on SQLite) is appended where the statement runs. The role modules hold no
statement text; what stays with the stores is transaction control (``BEGIN``,
``COMMIT``, savepoints), SQLite's PRAGMAs and each dialect's JSON expressions
(``_json_text``, ``_STEP_EVENT_DATA``). PostgreSQL's own statements are in
:mod:`tether.store.pg_statements`."""
from __future__ import annotations

from collections.abc import Callable

from .sqlrows import ITERATION_COLS, RUN_COLS, RUNS, STEP_COLS

# ---------------------------------------------------------------- runs
LOAD_RUN = f"SELECT {RUN_COLS} FROM {RUNS} WHERE run_id = ?"
POLL = "SELECT seq, control FROM runs WHERE run_id = ?"
RUN_EXISTS = "SELECT 1 FROM runs WHERE run_id = ?"
# why a fenced commit matched no row: the run's epoch and seq
RUN_EPOCH_SEQ = "SELECT lease_epoch, seq FROM runs WHERE run_id = ?"
RUN_CREATED_AT = "SELECT created_at FROM runs WHERE run_id = ?"
COUNT_RUNS_BY_STATUS = "SELECT status, count(*) FROM runs GROUP BY status"
SET_CONTROL = "UPDATE runs SET control = ? WHERE run_id = ?"
FLOW_DATA = "SELECT flow_data FROM run_specs WHERE run_id = ?"
# a write from outside the run's lease (set_var, delete_var): the next checkpoint, unfenced
NEXT_SEQ = "UPDATE runs SET seq = seq + 1 WHERE run_id = ? RETURNING seq"


def list_runs(status: bool, before: bool, parent: bool = False) -> str:
    """A page of runs, newest first: with ``status`` (parameter: it), ``parent`` (parameter:
    the parent's run id; the ``runs_by_parent`` index), ``before`` (parameters: the
    created_at of the run listed before, twice, then its id), then the limit."""
    where = (["status = ?"] * status + ["parent_id = ?"] * parent
             + ["(created_at < ? OR (created_at = ? AND run_id < ?))"] * before)
    sql = f"SELECT {RUN_COLS} FROM {RUNS}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY created_at DESC, run_id DESC LIMIT ?"


# ---------------------------------------------------------------- a loop's collection
COUNT_LOOP_ITEMS = "SELECT count(*) FROM loop_items WHERE run_id = ? AND loop_key = ?"
# a loop's iteration record with the highest index (parameters: run id, loop key)
LAST_ITERATION = (f"SELECT {ITERATION_COLS} FROM iterations WHERE run_id = ? AND loop_key = ? "
                  "ORDER BY idx DESC LIMIT 1")
INSERT_LOOP_ITEM = "INSERT INTO loop_items (run_id, loop_key, idx, item) VALUES (?, ?, ?, ?)"

# ---------------------------------------------------------------- loop reads (store/sql_loop_reads.py)
# the last index by the primary key, backwards (max(idx) got a plan on PostgreSQL that read
# every element: 5-14 ms at 10,000); NULL when the loop has none
LOOP_SIZE = ("SELECT (SELECT idx FROM loop_items WHERE run_id = ? AND loop_key = ? "
             "ORDER BY idx DESC LIMIT 1) + 1")
# a loop's elements by index range (parameters: run id, loop key, start, stop)
LOOP_ITEMS_RANGE = ("SELECT item FROM loop_items WHERE run_id = ? AND loop_key = ? "
                    "AND idx >= ? AND idx < ? ORDER BY idx")
ITERATION_COUNTS = "SELECT status, count(*) FROM iterations WHERE run_id = ? AND loop_key = ? GROUP BY status"
_NOT_FAILED = " AND status != 'failed'"


def loop_started(json_text: Callable[..., str]) -> str:
    """Whether a run started a loop, its ``loop.started`` event naming the key (parameters:
    run id, loop key; ``json_text(column, *path)``: the dialect's text at a path in JSON)."""
    return ("SELECT 1 FROM events WHERE run_id = ? AND type = 'loop.started' AND "
            f"{json_text('data', 'loop_key')} = ? LIMIT 1")


def iterations_range(status: bool) -> str:
    """A loop's iteration records by index range (parameters: run id, loop key, start, stop,
    and the status when ``status``)."""
    sql = (f"SELECT {ITERATION_COLS} FROM iterations "
           "WHERE run_id = ? AND loop_key = ? AND idx >= ? AND idx < ?")
    return (sql + " AND status = ?" if status else sql) + " ORDER BY idx"


def finished_indices(include_failed: bool) -> str:
    """The indices of a loop's iteration records in a range (parameters: run id, loop key,
    start, stop)."""
    return ("SELECT idx FROM iterations WHERE run_id = ? AND loop_key = ? AND idx >= ? AND idx < ?"
            + ("" if include_failed else _NOT_FAILED))


def finished_per_batch(include_failed: bool) -> str:
    """How many iteration records each batch of a loop has (parameters: batch size, run id,
    loop key)."""
    return ("SELECT idx / ?, count(*) FROM iterations WHERE run_id = ? AND loop_key = ?"
            + ("" if include_failed else _NOT_FAILED) + " GROUP BY 1")


# a loop's iteration records counted by batch and status (parameters: batch size, run id, loop key)
ITERATION_COUNTS_BY_BATCH = ("SELECT idx / ?, status, count(*) FROM iterations "
                             "WHERE run_id = ? AND loop_key = ? GROUP BY 1, 2")


# ---------------------------------------------------------------- variables, steps, events

LATEST = ("SELECT version, deleted FROM var_history WHERE run_id = ? AND name = ? "
          "ORDER BY version DESC LIMIT 1")
INSERT_HISTORY = ("INSERT INTO var_history (run_id, name, version, seq, value, source_step, at, deleted, "
                  "type, scope, secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
# the current row of each variable: the history row ``var_current`` points at (kept by a
# trigger on every history insert, so this costs O(variables), never O(history); deleted
# ones are filtered by the caller); parameters: run id, then the extra condition's
CURRENT = ("SELECT h.name, h.value, coalesce(h.type, 'step_result'), coalesce(h.scope, 'run'), h.version, "
           "h.source_step, c.created_at, h.at, r.accessed_at, coalesce(r.access_count, 0), h.secret, h.seq, "
           "h.deleted "
           "FROM var_current c CROSS JOIN var_history h "  # CROSS: SQLite walks var_current first
           "LEFT JOIN var_reads r ON r.run_id = c.run_id AND r.name = c.name "
           "WHERE c.run_id = ? AND h.run_id = c.run_id AND h.name = c.name AND h.version = c.version")
# what a run loading its state needs of each current variable (no reads, times or source)
CURRENT_STATE = ("SELECT h.name, h.value, h.type, h.scope, h.version, h.secret, h.deleted "
                 "FROM var_current c CROSS JOIN var_history h "
                 "WHERE c.run_id = ? AND h.run_id = c.run_id AND h.name = c.name AND h.version = c.version")
CURRENT_SINCE = CURRENT + " AND h.seq > ?"  # a run's variables changed after a seq
CURRENT_NAMED = CURRENT + " AND c.name = ?"  # one variable
# how many variables exist (not deleted) across every run
COUNT_CURRENT = ("SELECT count(*) FROM var_current c JOIN var_history h "
                 "ON h.run_id = c.run_id AND h.name = c.name AND h.version = c.version WHERE h.deleted = 0")
FLUSH_READS = ("INSERT INTO var_reads (run_id, name, accessed_at, access_count) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (run_id, name) DO UPDATE SET access_count = var_reads.access_count + "
               "excluded.access_count, accessed_at = excluded.accessed_at")
# a variable's history, oldest first (VAR_HISTORY_LAST: its last ? rows, newest first)
VAR_HISTORY = ("SELECT version, seq, value, source_step, at, deleted FROM var_history "
               "WHERE run_id = ? AND name = ? ORDER BY version")
VAR_HISTORY_LAST = VAR_HISTORY + " DESC LIMIT ?"
VAR_CHANGES = "SELECT seq, name, at FROM var_history WHERE run_id = ? ORDER BY seq, name"
ITERATION_CHECKPOINTS = ("SELECT seq, loop_key, idx, finished_at FROM iterations WHERE run_id = ? "
                         "ORDER BY seq, loop_key, idx")
# a run's variables as of a seq (parameters: run id, seq, run id)
STATE_AT = ("SELECT h.name, h.value, h.deleted FROM var_history h JOIN ("
            " SELECT name, max(version) AS v FROM var_history WHERE run_id = ? AND seq <= ? GROUP BY name"
            ") last ON h.name = last.name AND h.version = last.v WHERE h.run_id = ?")
STEPS = f"SELECT {STEP_COLS} FROM steps WHERE run_id = ? ORDER BY seq"
STEP_HEADS = "SELECT step_id, status, seq, meta FROM steps WHERE run_id = ? ORDER BY seq"
STEP_AT = f"SELECT {STEP_COLS} FROM steps WHERE run_id = ? AND seq = ? AND step_id = ?"
EVENTS_OF_TYPE = ("SELECT seq, idx, type, step_id, data, at FROM events "
                  "WHERE run_id = ? AND type = ? ORDER BY seq, idx")


def events(step_event_data: str, limit: bool) -> str:
    """A run's events after a seq, each step record listed as its own ``step.<status>``
    event (``step_event_data``: the dialect's JSON of its attempts and error); parameters:
    run id, seq, run id, seq, and the limit when ``limit``."""
    sql = ("SELECT seq, idx, type, step_id, data, at FROM events WHERE run_id = ? AND seq > ? "
           "UNION ALL SELECT seq, (SELECT count(*) FROM steps p "
           "WHERE p.run_id = s.run_id AND p.seq = s.seq AND p.step_id < s.step_id), "
           f"'step.' || status, step_id, {step_event_data}, finished_at "
           "FROM steps s WHERE run_id = ? AND seq > ? ORDER BY 1, 2")
    return sql + " LIMIT ?" if limit else sql


# ---------------------------------------------------------------- statistics
STATS_TABLES = ("runs", "steps", "var_history", "events", "blobs")


def count_rows(table: str) -> str:
    return f"SELECT count(*) FROM {table}"


def template_cache_counts(json_text: Callable[..., str]) -> str:
    """The template cache's hits and misses summed over the runs' end events
    (``json_text(column, *path)``: the dialect's text at a path in a JSON column)."""
    hits, misses = (f"coalesce(sum(CAST({json_text('data', 'template_cache', k)} AS BIGINT)), 0)"
                    for k in ("hits", "misses"))
    return (f"SELECT {hits}, {misses} FROM events "
            "WHERE type IN ('run.completed', 'run.failed', 'run.paused', 'run.cancelled')")


INSERT_STEP = ("INSERT INTO steps (run_id, seq, step_id, status, attempts, inputs, result, error, "
               "meta, started_at, finished_at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_EVENT = "INSERT INTO events (run_id, seq, idx, type, step_id, data, at) VALUES (?, ?, ?, ?, ?, ?, ?)"
# A run's recoveries after one more automatic takeover (see Store.claim_run): one more
# when every checkpoint since the previous takeover only announced a step or the claim
# (the run died again before making progress), else 1. Read on takeovers only.
NEXT_RECOVERIES = ("CASE WHEN recovery_seq IS NOT NULL AND seq - recovery_seq <= "
                   "(SELECT count(DISTINCT e.seq) FROM events e "
                   "WHERE e.run_id = runs.run_id AND e.seq > runs.recovery_seq "
                   "AND e.type IN ('step.started', 'run.claimed')) THEN recoveries + 1 ELSE 1 END")


# ---------------------------------------------------------------- leases (store/sql_leases.py)
# Every write is fenced on the lease epoch. A statement a store runs with a row lock gets
# its ``_for_update`` (or ``_skip_locked``) appended where it runs; SQLite's are empty.
RENEW_LEASE = "UPDATE runs SET lease_expires = ? WHERE run_id = ? AND lease_epoch = ?"
RELEASE_LEASE = "UPDATE runs SET lease_owner = NULL, lease_expires = 0 WHERE run_id = ? AND lease_epoch = ?"
RECORD_PROCESSES = "UPDATE runs SET processes = ? WHERE run_id = ? AND lease_epoch = ?"
LEASE_STATE = "SELECT lease_owner, lease_epoch, lease_expires, status FROM runs WHERE run_id = ?"
# parameters: owner, the new epoch, expires, run id
TAKE_LEASE = "UPDATE runs SET lease_owner = ?, lease_epoch = ?, lease_expires = ? WHERE run_id = ?"
# a takeover's first commit (parameters: status, cursor, 1 when it writes variables or events, run id)
TAKEOVER_RESET = ("UPDATE runs SET status = ?, cursor = ?, attempt = attempt + 1, control = NULL, "
                  "error = NULL, outputs = NULL, finished_at = NULL, recoveries = 0, recovery_seq = NULL, "
                  "seq = seq + ? "
                  "WHERE run_id = ? RETURNING seq")


# a running run that no worker may take over: its owner stopped it on purpose (records.HELD)
NOT_HELD = "(control IS NULL OR control <> 'held')"


def claimable(abandoned: int) -> str:
    """The first run a claimer may take: pending, its lease expired (unless its owner held
    it: ``control`` is ``records.HELD``), or one of ``abandoned`` runs at the epoch their
    dead owner held (parameters: now, then each one's id and epoch)."""
    return ("SELECT run_id, seq, status, lease_owner FROM runs "
            "WHERE status = 'pending' OR (status = 'running' AND lease_expires < ? "
            f"AND {NOT_HELD})"
            + " OR (status = 'running' AND run_id = ? AND lease_epoch = ?)" * abandoned
            + " ORDER BY created_at, run_id LIMIT 1")


# claim a run (parameters: owner, expires, 1 unless it never checkpointed, now, whether it
# is a recovery (twice), run id)
CLAIM_RUN_UPDATE = (
    "UPDATE runs SET status = 'running', lease_owner = ?, lease_epoch = lease_epoch + 1, "
    "lease_expires = ?, attempt = attempt + ?, control = NULL, error = NULL, finished_at = NULL, "
    f"started_at = coalesce(started_at, ?), recoveries = CASE WHEN ? THEN {NEXT_RECOVERIES} "
    "ELSE recoveries END, recovery_seq = CASE WHEN ? THEN seq + 1 ELSE recovery_seq END, "
    "seq = seq + 1 WHERE run_id = ? RETURNING seq")
# the runs whose live lease is held by an owner with a prefix (parameters: now, its length, it)
LIVE_LEASES = ("SELECT run_id, lease_owner, lease_epoch FROM runs "
               "WHERE status = 'running' AND lease_expires >= ? AND substr(lease_owner, 1, ?) = ?")
RUN_AT_EPOCH = "SELECT 1 FROM runs WHERE run_id = ? AND lease_epoch = ?"
SET_FLOW = ("UPDATE run_specs SET flow_text = ?, flow_path = ?, flow_data = ?, flow_digest = ? "
            "WHERE run_id = ?")

# ---------------------------------------------------------------- a run's creation
INSERT_RUN = ("INSERT INTO runs (run_id, name, status, parent_id, created_at, started_at, finished_at, seq, "
              "cursor, outputs, error, lease_owner, lease_epoch, lease_expires, durability, attempt, "
              "control) "
              "VALUES (?, ?, ?, ?, ?, ?, NULL, 0, ?, NULL, NULL, ?, 1, ?, ?, ?, NULL)")
INSERT_RUN_SPEC = ("INSERT INTO run_specs (run_id, flow_text, flow_path, inputs, env_snapshot, flow_data, "
                   "flow_digest) VALUES (?, ?, ?, ?, ?, ?, ?)")

# ---------------------------------------------------------------- the fenced commit
# A commit's first statement: the next checkpoint, only while the writer holds the lease
# epoch (parameters end with run id and epoch). No row: LeaseLost, or StateMoved when fenced.
ADVANCE = "UPDATE runs SET seq = seq + 1 WHERE run_id = ? AND lease_epoch = ?"
ADVANCE_CURSOR = "UPDATE runs SET seq = seq + 1, cursor = ? WHERE run_id = ? AND lease_epoch = ?"
# parameters: cursor, status, outputs, error, finished, its time, then run id and epoch
ADVANCE_RUN = ("UPDATE runs SET seq = seq + 1, cursor = ?, status = coalesce(?, status), "
               "outputs = coalesce(?, outputs), error = ?, "
               "finished_at = CASE WHEN ? THEN ? ELSE finished_at END "
               "WHERE run_id = ? AND lease_epoch = ?")
FENCE_SEQ = " AND seq = ?"  # a fenced commit: and nobody else committed since (parameter: the seq)
RETURNING_SEQ = " RETURNING seq"


def fenced(statement: str, fence: bool) -> str:
    """``statement`` (one of the ADVANCE statements) with the seq fence when ``fence``,
    returning the new seq."""
    return statement + FENCE_SEQ + RETURNING_SEQ if fence else statement + RETURNING_SEQ


# ------------------------------------------------ shared variables and locks (store/shared_vars_sql.py)
_SHARED_ROWS = "SELECT name, value, version, immutable, updated_at FROM shared_vars "
SHARED_GET = _SHARED_ROWS + "WHERE name = ? AND deleted = 0"
SHARED_LIST = _SHARED_ROWS + "WHERE deleted = 0 ORDER BY name"
# a deleted placeholder row for a name that has none, so that there is a row to lock
# (parameters: name, now)
SHARED_RESERVE = ("INSERT INTO shared_vars (name, value, version, immutable, deleted, updated_at) "
                  "VALUES (?, NULL, 0, 0, 1, ?) ON CONFLICT (name) DO NOTHING")
SHARED_STATE = "SELECT version, immutable, deleted FROM shared_vars WHERE name = ?"  # + the row lock
SHARED_SET = ("UPDATE shared_vars SET value = ?, version = ?, immutable = ?, deleted = 0, "
              "updated_at = ? WHERE name = ?")
SHARED_DELETE = ("UPDATE shared_vars SET value = NULL, version = ?, deleted = 1, "
                 "updated_at = ? WHERE name = ?")
# take a named lock that is free, expired or already the owner's (parameters: name, owner,
# expires, now)
LOCK_ACQUIRE = ("INSERT INTO locks (name, owner, expires) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET owner = excluded.owner, expires = excluded.expires "
                "WHERE locks.expires < ? OR locks.owner = excluded.owner")
LOCK_RENEW = "UPDATE locks SET expires = ? WHERE name = ? AND owner = ?"
LOCK_RELEASE = "DELETE FROM locks WHERE name = ? AND owner = ?"

# ---------------------------------------------------------------- SQLite's own (store/sqlite.py)
# (its PRAGMAs, connection settings, stay where the connection is opened and tuned)
SQLITE_OBJECTS = "SELECT count(*) FROM sqlite_master"  # 0: a new file
SQLITE_UPSERT_ITERATION = ("INSERT OR REPLACE INTO iterations (run_id, loop_key, idx, status, attempts, "
                           "result, error, seq, started_at, finished_at) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

# ---------------------------------------------------------------- the blobs table
GET_BLOB = "SELECT data FROM blobs WHERE hash = ?"
PUT_BLOB = "INSERT INTO blobs (hash, data) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING"
LIST_BLOBS = "SELECT hash FROM blobs"
DELETE_BLOB = "DELETE FROM blobs WHERE hash = ?"
# the digest of every offloaded value a row refers to (tag b"h", then the digest); one
# parameter per column, each b"h"
BLOB_COLUMNS = (("run_specs", "inputs"), ("run_specs", "flow_data"), ("runs", "outputs"),
                ("steps", "inputs"), ("steps", "result"), ("iterations", "result"),
                ("var_history", "value"), ("loop_items", "item"))
REFERENCED_BLOBS = " UNION ".join(f"SELECT substr({col}, 2) FROM {table} WHERE substr({col}, 1, 1) = ?"
                                  for table, col in BLOB_COLUMNS)

# ---------------------------------------------------------------- retention
# A value offloaded to the blob table is stored in its row as "h" + 64 hex digits: 65 bytes.
# The partial indexes of the retention migration (WHERE length(col) = 65) find the rows that
# reference a blob without a scan; each query below repeats that condition so that they apply.
BLOB_REF_LENGTH = 65
# The tables holding a run's rows, children before the run's own row: (table, the bytes of
# a row's values and texts, the columns that may reference a blob).
RUN_TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("steps", "coalesce(length(inputs), 0) + coalesce(length(result), 0) + coalesce(length(error), 0) "
              "+ coalesce(length(meta), 0)", ("inputs", "result")),
    ("var_history", "coalesce(length(value), 0)", ("value",)),
    ("var_reads", "0", ()),
    ("var_current", "0", ()),
    ("events", "coalesce(length(data), 0)", ()),
    ("loop_items", "length(item)", ("item",)),
    ("iterations", "coalesce(length(result), 0) + coalesce(length(error), 0)", ("result",)),
    ("run_specs", "length(flow_text) + length(inputs) + coalesce(length(env_snapshot), 0) "
                  "+ coalesce(length(flow_data), 0)", ("inputs", "flow_data")),
    ("runs", "coalesce(length(outputs), 0) + coalesce(length(error), 0) + coalesce(length(cursor), 0)",
     ("outputs",)),
)
RUN_BRIEFS = ("SELECT run_id, name, status, parent_id, created_at, finished_at, seq, lease_owner, "
              "lease_epoch, lease_expires FROM runs ORDER BY created_at DESC, run_id DESC")
RUN_STATE = "SELECT status, seq, lease_epoch FROM runs WHERE run_id = ?"
# is a blob referenced by any row? (parameter: the reference, once per column)
BLOB_REFERENCED = "SELECT 1 WHERE " + " OR ".join(
    f"EXISTS (SELECT 1 FROM {t} WHERE {c} = ? AND length({c}) = {BLOB_REF_LENGTH})" for t, c in BLOB_COLUMNS)
# the runs whose rows reference a blob (parameter: the reference, once per column)
BLOB_REFERRERS = " UNION ".join(
    f"SELECT run_id FROM {t} WHERE {c} = ? AND length({c}) = {BLOB_REF_LENGTH}" for t, c in BLOB_COLUMNS)
BLOB_SIZE = "SELECT length(data) FROM blobs WHERE hash = ?"
BLOB_USAGE = "SELECT count(*), coalesce(sum(length(data)), 0) FROM blobs"


def _among(n: int, column: str = "run_id") -> str:
    return f"{column} IN (" + ", ".join("?" * n) + ")"


def runs_state(n: int) -> str:
    """``(run_id, status, seq, lease_epoch)`` of ``n`` runs (parameters: their ids)."""
    return f"SELECT run_id, status, seq, lease_epoch FROM runs WHERE {_among(n)}"


def children_of(n: int) -> str:
    """``(run_id, parent_id)`` of the children of ``n`` runs (parameters: their ids)."""
    return "SELECT run_id, parent_id FROM runs WHERE " + _among(n, "parent_id")


def run_rows(table: str, payload: str, refs: tuple[str, ...], *, delete: bool, runs: int = 1) -> str:
    """The statement that deletes (or, without ``delete``, reads) the rows of ``table`` of
    ``runs`` runs (parameters: their ids), giving each row's bytes and its blob references
    (NULL where a column holds none)."""
    cols = ", ".join([payload, *(f"CASE WHEN length({c}) = {BLOB_REF_LENGTH} THEN {c} END" for c in refs)])
    if delete:
        return f"DELETE FROM {table} WHERE {_among(runs)} RETURNING {cols}"
    return f"SELECT {cols} FROM {table} WHERE {_among(runs)}"
