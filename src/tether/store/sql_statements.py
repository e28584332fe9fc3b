"""The SQL statements both SQL stores run, each written once with ``?`` placeholders
(the PostgreSQL store rewrites them to ``%s`` once, at import). A store's own
statements stay with it; PostgreSQL's are in :mod:`tether.store.pg_statements`."""
from __future__ import annotations

from .sqlrows import RUN_COLS, RUNS

# ---------------------------------------------------------------- runs
LOAD_RUN = f"SELECT {RUN_COLS} FROM {RUNS} WHERE run_id = ?"
POLL = "SELECT seq, control FROM runs WHERE run_id = ?"
RUN_EXISTS = "SELECT 1 FROM runs WHERE run_id = ?"

# ---------------------------------------------------------------- a loop's collection
COUNT_LOOP_ITEMS = "SELECT count(*) FROM loop_items WHERE run_id = ? AND loop_key = ?"
INSERT_LOOP_ITEM = "INSERT INTO loop_items (run_id, loop_key, idx, item) VALUES (?, ?, ?, ?)"

# ---------------------------------------------------------------- variables, steps, events

LATEST = ("SELECT version, deleted FROM var_history WHERE run_id = ? AND name = ? "
          "ORDER BY version DESC LIMIT 1")
INSERT_HISTORY = ("INSERT INTO var_history (run_id, name, version, seq, value, source_step, at, deleted, "
                  "type, scope, secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
# the current row of each variable: its latest history row (deleted ones are filtered by
# the caller); parameters: run id, run id, then the extra condition's
CURRENT = ("SELECT h.name, h.value, coalesce(h.type, 'step_result'), coalesce(h.scope, 'run'), h.version, "
           "h.source_step, coalesce(h.created_at, (SELECT y.created_at FROM var_history y "
           "WHERE y.run_id = h.run_id AND y.name = h.name AND y.version < h.version "
           "AND y.created_at IS NOT NULL ORDER BY y.version DESC LIMIT 1)), "
           "h.at, r.accessed_at, coalesce(r.access_count, 0), h.secret, h.seq, h.deleted "
           "FROM var_history h "
           "LEFT JOIN var_reads r ON r.run_id = h.run_id AND r.name = h.name "
           "WHERE h.run_id = ? AND h.version = (SELECT max(x.version) FROM var_history x "
           "WHERE x.run_id = ? AND x.name = h.name)")
FLUSH_READS = ("INSERT INTO var_reads (run_id, name, accessed_at, access_count) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (run_id, name) DO UPDATE SET access_count = var_reads.access_count + "
               "excluded.access_count, accessed_at = excluded.accessed_at")
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


# ---------------------------------------------------------------- a run's creation
INSERT_RUN = ("INSERT INTO runs (run_id, name, status, parent_id, created_at, started_at, finished_at, seq, "
              "cursor, outputs, error, lease_owner, lease_epoch, lease_expires, durability, attempt, "
              "control) "
              "VALUES (?, ?, ?, ?, ?, ?, NULL, 0, ?, NULL, NULL, ?, 1, ?, ?, ?, NULL)")
INSERT_RUN_SPEC = ("INSERT INTO run_specs (run_id, flow_text, flow_path, inputs, env_snapshot, flow_data) "
                   "VALUES (?, ?, ?, ?, ?, ?)")

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
