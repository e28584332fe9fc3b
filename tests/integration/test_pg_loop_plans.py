"""The plans PostgreSQL keeps for the statements of a shared loop (store/pg_statements.py)
look rows up by key instead of reading every row of the loop. psycopg prepares a statement
after a few executions and the server then keeps a generic plan, made without the values
and, in a new schema, without statistics: a statement whose generic plan scans or sorts the
loop's rows costs milliseconds per call at 10,000 iterations (and grows with the loop)."""
from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import drop_schema, postgres_url

N = 2_000  # the loop's elements: enough for a scan to be a choice the planner could make


def _dollars(sql: str) -> tuple[str, int]:
    """``sql`` with psycopg's placeholders (``%s``, ``%(name)s``) as ``$n``, and their number."""
    names: dict[str, int] = {}
    count = 0

    def one(m: re.Match[str]) -> str:
        nonlocal count
        if m.group(1) is None:
            count += 1
            return f"${count}"
        if m.group(1) not in names:
            count += 1
            names[m.group(1)] = count
        return f"${names[m.group(1)]}"

    return re.sub(r"%(?:\((\w+)\))?s", one, sql), count


def _generic_plan(conn, sql: str) -> str:
    """The plan the server keeps for ``sql`` once it is prepared and planned generically."""
    text, n = _dollars(sql)
    conn.execute("DEALLOCATE ALL")
    conn.execute(f"PREPARE s AS {text}")
    args = ", ".join(["NULL"] * n)
    return "\n".join(r[0] for r in conn.execute(f"EXPLAIN EXECUTE s({args})" if n else "EXPLAIN EXECUTE s"))


@pytest.fixture
def loop_schema():
    """A store with one run whose loop of N elements is published (nothing analysed yet)."""
    import psycopg

    from tests.contract.helpers import new_run
    from tether.store import codec, open_store
    from tether.store.base import EventWrite
    url = postgres_url()
    store: Any = open_store(url)  # PostgreSQL: has the SharedLoopWork capability
    try:
        run, _ = new_run(store)
        store.start_loop("r1", run.lease_epoch, "each", [codec.encode(i) for i in range(N)],
                         EventWrite("loop.started", "each"))
        store.work_publish("r1", "each", list(range(N)))
        schema = url.rsplit("schema=", 1)[1]
        with psycopg.connect(url.split("?", 1)[0], autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            conn.execute("SET plan_cache_mode = force_generic_plan")
            yield conn
    finally:
        store.close()
        drop_schema(url)


def test_a_commit_removes_its_loop_work_by_key(loop_schema):
    from tether.store.pg_statements import commit_statement
    sql = commit_statement("UPDATE runs SET seq = seq + 1 WHERE run_id = ? AND lease_epoch = ? AND seq = ? "
                           "RETURNING seq", ("run", "epoch", "seq"), frozenset({"iterations", "work"}))
    plan = _generic_plan(loop_schema, sql)
    assert "Seq Scan on loop_work" not in plan, plan  # was a hash join over every row of the run
    assert "Index Cond: ((run_id = $1) AND (loop_key" in plan, plan


def test_a_claim_of_any_loop_does_not_sort_the_table(loop_schema):
    from tether.store.pg_statements import WORK_CLAIM_ANY
    plan = _generic_plan(loop_schema, WORK_CLAIM_ANY)
    claim = plan.split("CTE c", 1)[1].split("CTE u", 1)[0]  # the selection of the rows to claim
    assert "Sort" not in claim, plan  # sorted every row of the table to take one


def test_a_loops_size_reads_its_last_element_only(loop_schema):
    from tether.store.sql_statements import LOOP_SIZE
    plan = _generic_plan(loop_schema, LOOP_SIZE.replace("?", "%s"))
    assert "Backward" in plan and "Limit" in plan, plan  # max(idx) read every element
    assert loop_schema.execute(LOOP_SIZE.replace("?", "%s"), ("r1", "each")).fetchone() == (N,)
    assert loop_schema.execute(LOOP_SIZE.replace("?", "%s"), ("r1", "none")).fetchone() == (None,)


def test_the_owner_reads_handed_back_outcomes_only(loop_schema):
    from tether.store.pg_statements import WORK_COLLECT
    plan = _generic_plan(loop_schema, WORK_COLLECT)
    assert "loop_work_done" in plan, plan  # read every row of the loop still in loop_work
