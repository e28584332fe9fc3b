"""PostgreSQL's own statements (wake-ups, the sweeper), each written once. What both SQL
stores run is in :mod:`tether.store.sql_statements`."""
from __future__ import annotations

# wake idle workers of this schema: a run became claimable, or loop work was published
NOTIFY_RUNS = "SELECT pg_notify('tether_runs', current_schema())"
LISTEN_RUNS = "LISTEN tether_runs"
# the sweeper's election: a session lock per schema, held until its connection closes
TRY_SWEEPER_LOCK = "SELECT pg_try_advisory_lock(hashtext(current_schema() || '/tether-sweeper'))"
UNLOCK_SWEEPER = "SELECT pg_advisory_unlock_all()"  # every hold of it: each successful try took one
# runs whose owner's lease expired go back to the queue (parameter: now); the owner stays named
REQUEUE_EXPIRED = ("UPDATE runs SET status = 'pending' WHERE status = 'running' AND lease_expires < %s "
                   "RETURNING run_id")
# retention: PostgreSQL's own table of a run's rows (see sql_statements.RUN_TABLES)
LOOP_WORK_TABLE = ("loop_work", "coalesce(length(outcome), 0)", ())
# while retention deletes blobs: commits that insert a blob wait, and those that did
# have committed (their references are seen), so no blob is deleted as it gains a reference
LOCK_BLOBS = "LOCK TABLE blobs IN SHARE ROW EXCLUSIVE MODE"
