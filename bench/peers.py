"""The peers' side of the per-step and queue scenarios that are not on SQLite: DBOS on
PostgreSQL (the same server as Tether's, ``synchronous_commit`` on, its default), DBOS
without a sync per commit (``synchronous_commit=off``), Prefect 3 with results persisted,
LangGraph without a sync per commit, and DBOS's queue. Each function returns what
``bench.worker.measure`` runs once per counted run, in the peer's own process (run by
the peers' interpreter: ``python -m bench --peers-python /tmp/peers/bin/python``).

The PostgreSQL server is named by ``TETHER_BENCH_PG`` (set by ``python -m bench``).
"""
from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

STEPS = 1000
PREFECT_STEPS = 200  # ~10 ms a task: 200 keep a run short; the figure is per task


def pg_url() -> str:
    url = os.environ.get("TETHER_BENCH_PG") or os.environ.get("TETHER_TEST_PG")
    if not url:
        raise SystemExit("TETHER_BENCH_PG (a postgresql:// URL) is not set")
    return url


def _database(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead."""
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


def _drop(url: str, name: str) -> None:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def dbos_workflow_us(url: str) -> float:
    """One DBOS workflow of ``STEPS`` ``@DBOS.step`` calls on the system database ``url``:
    microseconds per step, from the workflow's start to its result."""
    import logging
    logging.disable(logging.INFO)
    from dbos import DBOS
    DBOS(config={"name": "bench", "system_database_url": url})

    @DBOS.step()
    def inc(c: int) -> int:
        return c + 1

    @DBOS.workflow()
    def wf(n: int) -> int:
        c = 0
        for _ in range(n):
            c = inc(c)
        return c
    DBOS.launch()
    t = time.perf_counter()
    assert wf(STEPS) == STEPS
    elapsed = time.perf_counter() - t
    DBOS.destroy(destroy_registry=True)
    return elapsed / STEPS * 1e6


def dbos_pg_steps(sync: bool = True) -> Callable[[Path], tuple[float, int]]:
    """One workflow of 1,000 ``@DBOS.step`` calls on a fresh PostgreSQL database."""
    base = pg_url()

    def once(folder: Path) -> tuple[float, int]:
        name = f"bench_dbos_{uuid.uuid4().hex[:10]}"
        url = _database(base, name) + ("" if sync else "?options=-c%20synchronous_commit%3Doff")
        us = dbos_workflow_us(url)
        _drop(base, name)
        return us, 0
    return once


def dbos_queue(items: int, ms: float, concurrency: int = 16) -> Callable[[Path], float]:
    """``items`` steps of ``ms`` milliseconds each through a DBOS queue of ``concurrency``:
    iterations (workflows) per second from the first enqueue to the last result."""
    import logging
    logging.disable(logging.INFO)
    from dbos import DBOS
    base = pg_url()

    def once(folder: Path) -> float:
        name = f"bench_dbosq_{uuid.uuid4().hex[:10]}"
        DBOS(config={"name": "benchq", "system_database_url": _database(base, name)})

        @DBOS.step()
        def work(n: int) -> int:
            time.sleep(ms / 1000)
            return n

        @DBOS.workflow()
        def item(n: int) -> int:
            return work(n)
        DBOS.launch()
        # polled every 10 ms (its default, 1 s, would bound it to 16 workflows a second)
        queue = DBOS.register_queue("bench", concurrency=concurrency, polling_interval_sec=0.01)
        t = time.perf_counter()
        handles = [queue.enqueue(item, n) for n in range(items)]
        assert sum(h.get_result() for h in handles) == items * (items - 1) // 2
        elapsed = time.perf_counter() - t
        DBOS.destroy(destroy_registry=True)
        _drop(base, name)
        return items / elapsed
    return once


def prefect_steps() -> Callable[[Path], tuple[float, int]]:
    """One Prefect 3 flow calling a task 200 times, results persisted, its ephemeral
    server's SQLite database in one PREFECT_HOME for the process (its server starts once);
    that database's bytes per task so far, scaled to 1,000 tasks."""
    tasks = [0]

    def once(folder: Path) -> tuple[float, int]:
        home = folder.parent / "prefect"
        os.environ.update(PREFECT_HOME=str(home), PREFECT_RESULTS_PERSIST_BY_DEFAULT="true",
                          PREFECT_LOCAL_STORAGE_PATH=str(home / "storage"), PREFECT_LOGGING_LEVEL="WARNING",
                          PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
                          PREFECT_SERVER_ANALYTICS_ENABLED="false",
                          PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home}/prefect.db",
                          PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home}/prefect.db")
        from prefect import flow, task

        @task(persist_result=True)
        def inc(c: int) -> int:
            return c + 1

        @flow(persist_result=True)
        def wf(n: int) -> int:
            c = 0
            for _ in range(n):
                c = inc(c)
            return c
        wf(2)  # the ephemeral server is up
        tasks[0] += 2 + PREFECT_STEPS
        t = time.perf_counter()
        assert wf(PREFECT_STEPS) == PREFECT_STEPS
        elapsed = time.perf_counter() - t
        size = 0
        for db in home.glob("*.db"):
            con = sqlite3.connect(db)
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.close()
            size += db.stat().st_size
        return elapsed / PREFECT_STEPS * 1e6, size * STEPS // tasks[0]
    return once


def langgraph_nosync_steps() -> Callable[[Path], tuple[float, int]]:
    """LangGraph's SqliteSaver as in ``bench.worker.langgraph_steps``, its connection in WAL
    mode with ``synchronous=NORMAL`` (no sync per commit, like Tether's ``normal``)."""
    from bench.worker import langgraph_steps
    return langgraph_steps(nosync=True)


PEER_SYSTEMS: dict[str, Callable[[], Callable[[Path], Any]]] = {
    "dbos-pg": dbos_pg_steps, "dbos-pg-nosync": lambda: dbos_pg_steps(sync=False),
    "prefect": prefect_steps, "langgraph-nosync": langgraph_nosync_steps,
}
