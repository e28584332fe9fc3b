"""PostgreSQL's own statements, each written once (``%s`` placeholders): wake-ups, the
sweeper, its commit, shared loops, schema creation and migrations. What both SQL
stores run is in :mod:`tether.store.sql_statements`."""
from __future__ import annotations

# wake idle workers of this schema: a run became claimable, or loop work was published
NOTIFY_RUNS = "SELECT pg_notify('tether_runs', current_schema())"
LISTEN_RUNS = "LISTEN tether_runs"
# the sweeper's election: a session lock per schema, held until its connection closes
TRY_SWEEPER_LOCK = "SELECT pg_try_advisory_lock(hashtext(current_schema() || '/tether-sweeper'))"
UNLOCK_SWEEPER = "SELECT pg_advisory_unlock_all()"  # every hold of it: each successful try took one
# runs whose owner's lease expired go back to the queue (parameter: now); the owner stays named
# (not a run its owner stopped on purpose: records.HELD)
REQUEUE_EXPIRED = ("UPDATE runs SET status = 'pending' WHERE status = 'running' AND lease_expires < %s "
                   "AND (control IS NULL OR control <> 'held') RETURNING run_id")
# retention: PostgreSQL's own table of a run's rows (see sql_statements.RUN_TABLES)
LOOP_WORK_TABLE = ("loop_work", "coalesce(length(outcome), 0)", ())
# while retention deletes blobs: commits that insert a blob wait, and those that did
# have committed (their references are seen), so no blob is deleted as it gains a reference
LOCK_BLOBS = "LOCK TABLE blobs IN SHARE ROW EXCLUSIVE MODE"

# ---------------------------------------------------------------- the commit (store/pg_commit.py)
def _named(statement: str, names: tuple[str, ...]) -> str:
    """``statement`` with its ``?`` placeholders named, in order."""
    parts = statement.split("?")
    assert len(parts) == len(names) + 1, statement
    return parts[0] + "".join(f"%({n})s{rest}" for n, rest in zip(names, parts[1:], strict=True))


def _rows(param: str, columns: str, single: bool) -> str:
    """The rows of one part as a ``FROM`` item ``x`` with ``columns`` (``"name type, …"``):
    decoded from the JSON array ``%(param)s``, or (``single``) one row of typed parameters
    ``%(param_name)s``. One row is the usual commit (a step, an iteration), and reading it
    from parameters spares the server the JSON parse and the function scan: ~30-40 µs of a
    ~150 µs statement (docs/performance.md)."""
    if not single:
        return f"json_to_recordset(%({param})s::json) AS x({columns})"
    typed = (c.split() for c in columns.split(", "))
    return "(SELECT " + ", ".join(f"%({param}_{n})s::{t} AS {n}" for n, t in typed) + ") AS x"


_VAR_COLUMNS = "n text, v bytea, s text, d int, t text, c text, x int"


def commit_statement(advance: str, names: tuple[str, ...], parts: frozenset[str],
                     single: frozenset[str] = frozenset()) -> str:
    """A whole commit as one statement (one round trip, its own transaction in autocommit):
    ``advance`` (a fenced ``UPDATE runs … RETURNING seq``, its placeholders ``names``), then
    the rows of the ``parts`` the commit has — ``vars`` (history rows, each name written once)
    or ``vars*`` (a name written more than once), ``steps``, ``events``, ``iterations``,
    ``work`` (with ``iterations``: remove their loop work rows), ``reads`` —
    each part's rows given as one JSON array of objects (parameters ``v``, ``s``, ``e``,
    ``i``, ``r``; byte values as ``\\x`` hex strings, see ``pg_commit._params``), or for a
    part in ``single`` as one row of parameters (``v_n``, ``v_v``, … ``s_i``, …: the JSON
    keys prefixed; never ``iterations`` with ``work``, which reads ``i``), and written only
    if the UPDATE matched. No row back: refused, nothing written; else the new seq, the run's
    control request, and the ``[name, version]`` pairs (version 0: deleted) of the history
    rows written, in version order, as JSON text — with ``vars`` in ``single``, that one
    variable's version as text instead (NULL: no row). A variable's version follows its
    latest row, read with the statement's snapshot: a writer committing in between also
    advanced the seq, so the fence refuses this commit."""
    adv = _named(advance, names).replace(" RETURNING seq", " RETURNING seq, control")
    ctes = [f"adv AS ({adv})"]
    history = "vars" in parts or "vars*" in parts
    if history:
        if "vars" in single:
            ctes.append(f"w AS (SELECT x.*, 1::bigint AS ord FROM {_rows('v', _VAR_COLUMNS, True)})")
        else:
            ctes.append(
                f"w AS (SELECT * FROM ROWS FROM (json_to_recordset(%(v)s::json) AS ({_VAR_COLUMNS})) "
                "WITH ORDINALITY AS w(n, v, s, d, t, c, x, ord))")
        latest = ("LEFT JOIN LATERAL (SELECT h.version, h.deleted FROM var_history h "
                  "WHERE h.run_id = %(run)s AND h.name = w.n ORDER BY h.version DESC LIMIT 1) p ON true")
        if "vars*" in parts:
            # whether the variable existed before each write: its latest row, or the write
            # before it in this commit; a deletion of a variable that does not exist writes
            # nothing and takes no version
            ctes.append(
                "x AS (SELECT w.*, p.version AS pv, CASE WHEN lag(w.d) OVER k IS NULL "
                f"THEN coalesce(p.deleted, 1) = 0 ELSE lag(w.d) OVER k = 0 END AS existed FROM w {latest} "
                "WINDOW k AS (PARTITION BY w.n ORDER BY w.ord))")
            ctes.append(
                "y AS (SELECT x.*, coalesce(x.pv, 0) + sum(CASE WHEN x.d = 0 OR x.existed "
                "THEN 1 ELSE 0 END) OVER (PARTITION BY x.n ORDER BY x.ord) AS version FROM x)")
        else:
            ctes.append(f"y AS (SELECT w.*, coalesce(p.version, 0) + 1 AS version, "
                        f"coalesce(p.deleted, 1) = 0 AS existed FROM w {latest})")
        ctes.append(
            "h AS (INSERT INTO var_history (run_id, name, version, seq, value, source_step, at, deleted, "
            "type, scope, secret, created_at) SELECT %(run)s, y.n, y.version, adv.seq, y.v, y.s, "
            "%(t)s::float8, y.d, y.t, y.c, y.x, "
            "CASE WHEN y.d = 1 OR y.existed THEN NULL ELSE %(t)s::float8 END "
            "FROM adv, y WHERE y.d = 0 OR y.existed RETURNING name, version, deleted)")
    if "steps" in parts:
        ctes.append(
            "s AS (INSERT INTO steps (run_id, seq, step_id, status, attempts, inputs, result, error, meta, "
            "started_at, finished_at, idempotency_key) SELECT %(run)s, adv.seq, x.* FROM adv, "
            + _rows("s", "i text, st text, a int, n bytea, r bytea, er text, m text, sa float8, fa float8, "
                    "k text", "steps" in single) + ")")
    if "events" in parts:
        ctes.append(
            "e AS (INSERT INTO events (run_id, seq, idx, type, step_id, data, at) SELECT %(run)s, adv.seq, "
            "x.*, %(t)s::float8 FROM adv, "
            + _rows("e", "i int, ty text, sp text, da text", "events" in single) + ")")
    if "iterations" in parts:
        ctes.append(
            "i AS (INSERT INTO iterations (run_id, loop_key, idx, status, attempts, result, error, seq, "
            "started_at, finished_at) SELECT %(run)s, x.k, x.i, x.st, x.a, x.r, x.er, adv.seq, x.sa, x.fa "
            "FROM adv, " + _rows("i", "k text, i int, st text, a int, r bytea, er text, sa float8, fa float8",
                                 "iterations" in single) + " "
            "ON CONFLICT (run_id, loop_key, idx) DO UPDATE SET status = excluded.status, "
            "attempts = excluded.attempts, result = excluded.result, error = excluded.error, "
            "seq = excluded.seq, started_at = excluded.started_at, finished_at = excluded.finished_at)")
    if "work" in parts:
        # a committed iteration of a shared loop is no longer loop work (store/pg_loop_work.py):
        # its row goes in the same transaction, so no claim of it can outlive its commit. The
        # rows by the primary key (loop_key = ANY, idx = ANY, then the exact pairs): a join with
        # the records got a generic plan that scanned every row of the run (2.5 ms at 5,000)
        ctes.append(
            "lw AS (DELETE FROM loop_work w USING adv WHERE w.run_id = %(run)s "
            "AND w.loop_key = ANY(ARRAY(SELECT DISTINCT x.k "
            "FROM json_to_recordset(%(i)s::json) AS x(k text))) "
            "AND w.idx = ANY(ARRAY(SELECT x.i FROM json_to_recordset(%(i)s::json) AS x(i int))) "
            "AND (w.loop_key, w.idx) IN (SELECT x.k, x.i "
            "FROM json_to_recordset(%(i)s::json) AS x(k text, i int)))")
    if "reads" in parts:
        ctes.append(
            "r AS (INSERT INTO var_reads (run_id, name, accessed_at, access_count) SELECT %(run)s, x.* "
            "FROM adv, " + _rows("r", "n text, at float8, c bigint", "reads" in single) + " "
            "ON CONFLICT (run_id, name) DO UPDATE SET access_count = var_reads.access_count + "
            "excluded.access_count, accessed_at = excluded.accessed_at)")
    one = "(SELECT (CASE WHEN deleted = 1 THEN 0 ELSE version END)::text FROM h)"
    written = ("NULL::text" if not history else one if "vars" in single
               else "(SELECT json_agg(json_build_array(name, CASE WHEN deleted = 1 THEN 0 ELSE version END) "
                    "ORDER BY version) FROM h)::text")
    return f"WITH {', '.join(ctes)} SELECT adv.seq, adv.control, {written} FROM adv"


# ---------------------------------------------------------------- shared loops (store/pg_loop_work.py)
# Loop work rows are bookkeeping: a claim, outcome or removal lost to a server crash is
# done again (an iteration's body may run twice, its commit never), so their transactions
# do not wait for the WAL flush. A loop's publication does. Each writing statement is its
# own transaction (autocommit) and turns the flush wait off for it by joining ASYNC, a
# one-row subquery calling set_config(..., is_local => true): the setting lasts until that
# transaction's end, which is when it is read; one statement in one round trip, where
# BEGIN; SET LOCAL; …; COMMIT in a pipeline cost the client and the server four.
ASYNC = "(SELECT set_config('synchronous_commit', 'off', true)) AS cfg"
WORK_PUBLISH = ("INSERT INTO loop_work (run_id, loop_key, idx, state) "
                "SELECT %s, %s, unnest(%s::int[]), 'open' "
                "ON CONFLICT DO NOTHING")
# claim up to n open iterations (or ones whose claim expired) and return them with their
# elements; parameters: owner, expires, now, n, and (one loop's) the run and loop. Two texts, not one
# with an optional filter: each keeps a generic plan that uses its index. Of any loop, in no
# order: an ORDER BY there sorted every row of the table before taking one (13 ms a claim
# at 5,000 rows, and each helper's turn starts with one)
def _work_claim(where: str, order: str) -> str:
    return ("WITH c AS (SELECT w.run_id, w.loop_key, w.idx FROM loop_work w "
            f"WHERE (w.state = 'open' OR (w.state = 'claimed' AND w.expires < %(now)s)){where} "
            f"{order}LIMIT %(n)s FOR UPDATE SKIP LOCKED), "
            "u AS (UPDATE loop_work w SET state = 'claimed', owner = %(owner)s, expires = %(expires)s "
            f"FROM c, {ASYNC} "
            "WHERE w.run_id = c.run_id AND w.loop_key = c.loop_key AND w.idx = c.idx "
            "RETURNING w.run_id, w.loop_key, w.idx) "
            "SELECT u.run_id, u.loop_key, u.idx, i.item FROM u JOIN loop_items i "
            "ON i.run_id = u.run_id AND i.loop_key = u.loop_key AND i.idx = u.idx ORDER BY u.idx")


WORK_CLAIM_ANY = _work_claim("", "")
WORK_CLAIM_LOOP = _work_claim(" AND w.run_id = %(run)s AND w.loop_key = %(loop)s", "ORDER BY w.idx ")
WORK_RENEW = (f"UPDATE loop_work w SET expires = %s FROM {ASYNC} WHERE w.run_id = %s AND w.loop_key = %s "
              "AND w.idx = %s AND w.owner = %s AND w.state = 'claimed'")
WORK_DONE = (f"UPDATE loop_work w SET state = 'done', outcome = %s FROM {ASYNC} WHERE w.run_id = %s "
             "AND w.loop_key = %s AND w.idx = %s AND w.owner = %s AND w.state = 'claimed'")


def work_done_many(n: int) -> str:
    """The outcomes of ``n`` claims of one owner in one statement: one UPDATE per row, each by
    its whole primary key (a unique-index lookup whatever the statistics: an ``idx = ANY``
    or a join with ``unnest`` got generic plans that read every row of the loop, 2 ms a call
    at 10,000). Parameters: ``o`` the owner, and ``r<k>``, ``l<k>``, ``i<k>``, ``x<k>`` the
    run, loop, index and outcome of claim k; the stored ones come back (run, loop, index)."""
    ups = [f"u{k} AS (UPDATE loop_work w SET state = 'done', outcome = %(x{k})s FROM {ASYNC} "
           f"WHERE w.run_id = %(r{k})s AND w.loop_key = %(l{k})s AND w.idx = %(i{k})s AND w.owner = %(o)s "
           "AND w.state = 'claimed' RETURNING w.run_id, w.loop_key, w.idx)" for k in range(n)]
    return f"WITH {', '.join(ups)} " + " UNION ALL ".join(f"SELECT * FROM u{k}" for k in range(n))


# the outcomes workers handed back, with their elements (the owner commits them); the
# element by a subquery on loop_items' key, which a join's generic plan did not always use
WORK_COLLECT = ("SELECT w.idx, w.outcome, (SELECT i.item FROM loop_items i WHERE i.run_id = w.run_id "
                "AND i.loop_key = w.loop_key AND i.idx = w.idx) FROM loop_work w WHERE w.run_id = %s "
                "AND w.loop_key = %s AND w.state = 'done' ORDER BY w.idx LIMIT %s")
WORK_REMOVE = (f"DELETE FROM loop_work w USING {ASYNC} WHERE w.run_id = %s AND w.loop_key = %s "
               "AND w.idx = ANY(%s)")
WORK_RELEASE = (f"UPDATE loop_work w SET state = 'open', owner = NULL, expires = 0 FROM {ASYNC} "
                "WHERE w.run_id = %s AND w.loop_key = %s AND w.idx = ANY(%s) AND w.owner = %s "
                "AND w.state = 'claimed'")
WORK_LEFT = "SELECT count(*) FROM loop_work WHERE run_id = %s AND loop_key = %s"


# ---------------------------------------------------------------- the store's own (store/postgres.py)
# (block added by the sqlplace branch: postgres.py's statements, moved here unchanged)
# the bytes of the schema's tables, their indexes and TOAST included
STORE_BYTES = ("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
               "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'")
# two first openers' CREATE SCHEMA IF NOT EXISTS can both try to create it: one at a time
# (parameter: "<schema>/tether-schema")
SCHEMA_CREATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s))"


def create_schema(schema: str) -> str:
    """Create the schema ``schema`` (a checked name: lower-case letters, digits, ``_``)."""
    return f'CREATE SCHEMA IF NOT EXISTS "{schema}"'


# migrations: one opener at a time, the version read after the lock is taken
MIGRATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/tether-migrate'))"
CREATE_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS tether_schema (version INTEGER NOT NULL)"
SCHEMA_VERSION = "SELECT max(version) FROM tether_schema"
INSERT_SCHEMA_VERSION = "INSERT INTO tether_schema (version) VALUES (%s)"
