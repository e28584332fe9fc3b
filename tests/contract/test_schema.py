"""Schemas: migrations are versioned and applied once, and a store opened on the schema of
an old version migrates it, keeping its runs, to exactly the schema a new store gets."""
from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from tether.store import codec, open_store

OLD_RUN = {"run_id": "old", "name": "f", "status": "completed", "flow_text": "name: f\nsteps: []\n",
           "inputs": {"a": 1}, "created_at": 100.0, "seq": 3, "cursor": {"next": None}}


def first_migration(dialect: str) -> str:
    folder = resources.files("tether.store") / "migrations" / dialect
    return min((e for e in folder.iterdir() if e.name.endswith(".sql")), key=lambda e: e.name).read_text()


def test_sqlite_schema_from_migrations_is_versioned(tmp_path: Path):
    from .helpers import new_run
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    new_run(s)
    s.close()
    db = sqlite3.connect(tmp_path / "m.db")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    assert version >= 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "steps", "var_history", "var_reads", "events", "blobs", "loop_items", "iterations"} <= tables
    before = sqlite_schema(db)
    assert before["runs"][0]  # the comparison below compares something
    db.close()
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}")  # re-opening does not re-apply migrations
    assert s.load_run("r1").inputs == {"a": 1}
    s.close()
    db = sqlite3.connect(tmp_path / "m.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == version and sqlite_schema(db) == before
    db.close()


def sqlite_schema(db: sqlite3.Connection) -> dict:
    """Every table's columns (name, type, not null, default, primary key) and every index's
    columns, uniqueness and condition."""
    out: dict = {}
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
        cols = [tuple(r[1:]) for r in db.execute(f'PRAGMA table_info("{table}")')]
        indexes = {}
        for r in db.execute(f'PRAGMA index_list("{table}")'):
            name, unique, origin, partial = r[1], r[2], r[3], r[4]
            if origin == "pk":
                name = "(primary key)"
            sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (r[1],)).fetchone()
            where = sql[0].split(" WHERE ", 1)[1] if sql and sql[0] and partial else None
            indexes[name] = (unique, [c[2] for c in db.execute(f'PRAGMA index_info("{r[1]}")')], where)
        out[table] = (sorted(cols), indexes)
    return out


def test_an_old_sqlite_schema_migrates_to_the_fresh_one_keeping_its_runs(tmp_path: Path):
    old = tmp_path / "old.db"
    db = sqlite3.connect(old)
    db.executescript(first_migration("sqlite"))
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO runs (run_id, name, status, flow_text, inputs, created_at, seq, cursor) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (OLD_RUN["run_id"], OLD_RUN["name"], OLD_RUN["status"], OLD_RUN["flow_text"],
                codec.encode(OLD_RUN["inputs"]).data, OLD_RUN["created_at"], OLD_RUN["seq"],
                codec.dumps_text(OLD_RUN["cursor"])))
    db.commit()
    db.close()
    s = open_store(f"sqlite:///{old}")
    run = s.load_run("old")
    s.close()
    assert (run.status, run.flow_text, run.inputs, run.created_at, run.seq, run.cursor) == \
        (OLD_RUN["status"], OLD_RUN["flow_text"], OLD_RUN["inputs"], OLD_RUN["created_at"], OLD_RUN["seq"],
         OLD_RUN["cursor"])
    open_store(f"sqlite:///{tmp_path / 'new.db'}").close()
    migrated, fresh = sqlite3.connect(old), sqlite3.connect(tmp_path / "new.db")
    try:
        assert migrated.execute("PRAGMA user_version").fetchone() == fresh.execute("PRAGMA user_version").fetchone()
        assert sqlite_schema(fresh)["runs"][0] and sqlite_schema(migrated) == sqlite_schema(fresh)
    finally:
        migrated.close()
        fresh.close()


def postgres_schema(conn, schema: str) -> dict:
    """Every table's columns (name, type, nullable, default) and every index's definition."""
    cols = conn.execute("SELECT table_name, column_name, data_type, is_nullable, column_default "
                        "FROM information_schema.columns WHERE table_schema = %s "
                        "ORDER BY table_name, column_name", (schema,)).fetchall()
    indexes = conn.execute("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s "
                           "ORDER BY indexname", (schema,)).fetchall()
    return {"columns": cols, "indexes": [(t, n, d.replace(f"{schema}.", "")) for t, n, d in indexes]}


def test_an_old_postgres_schema_migrates_to_the_fresh_one_keeping_its_runs():
    psycopg = pytest.importorskip("psycopg")
    from tests.conftest import PG_URL, drop_schema, postgres_url
    old_url, new_url = postgres_url(), postgres_url()
    old_schema, new_schema = (u.rsplit("schema=", 1)[1] for u in (old_url, new_url))
    try:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{old_schema}"')
            conn.execute(f'SET search_path TO "{old_schema}"')
            with conn.transaction():
                conn.execute(first_migration("postgres"))
                conn.execute("CREATE TABLE tether_schema (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO tether_schema (version) VALUES (1)")
                conn.execute("INSERT INTO runs (run_id, name, status, created_at, seq, cursor) "
                             "VALUES (%s, %s, %s, %s, %s, %s)",
                             (OLD_RUN["run_id"], OLD_RUN["name"], OLD_RUN["status"], OLD_RUN["created_at"],
                              OLD_RUN["seq"], codec.dumps_text(OLD_RUN["cursor"])))
                conn.execute("INSERT INTO run_specs (run_id, flow_text, inputs) VALUES (%s, %s, %s)",
                             (OLD_RUN["run_id"], OLD_RUN["flow_text"], codec.encode(OLD_RUN["inputs"]).data))
        s = open_store(old_url)
        run = s.load_run("old")
        s.close()
        assert (run.status, run.flow_text, run.inputs, run.created_at, run.seq, run.cursor) == \
            (OLD_RUN["status"], OLD_RUN["flow_text"], OLD_RUN["inputs"], OLD_RUN["created_at"], OLD_RUN["seq"],
             OLD_RUN["cursor"])
        open_store(new_url).close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            versions = [conn.execute(f'SELECT max(version) FROM "{s}".tether_schema').fetchone()[0]
                        for s in (old_schema, new_schema)]
            assert versions[0] == versions[1] > 1
            migrated, fresh = postgres_schema(conn, old_schema), postgres_schema(conn, new_schema)
            assert fresh["columns"] and fresh["indexes"]
            assert migrated == fresh
    finally:
        drop_schema(old_url)
        drop_schema(new_url)


def var_current_version(dialect: str) -> int:
    folder = resources.files("tether.store") / "migrations" / dialect
    (entry,) = (e for e in folder.iterdir() if e.name.endswith("_var_current.sql"))
    return int(entry.name.split("_", 1)[0])


def written(store) -> dict:
    """A run whose variables were written, rewritten, deleted and recreated; its read-back."""
    from tether.store.base import Commit

    from .helpers import new_run, var
    run, _ = new_run(store)
    for value in range(5):
        store.commit(Commit("r1", run.lease_epoch, vars=(var("n", value), var("gone", value))))
    store.delete_var("r1", "gone", "cli")
    store.commit(Commit("r1", run.lease_epoch, vars=(var("t", 1),)))
    store.delete_var("r1", "t", "cli")
    store.commit(Commit("r1", run.lease_epoch, vars=(var("t", 2),)))
    return {n: (r.value, r.version, r.created_at, r.updated_at, r.seq) for n, r in store.read_vars("r1").items()}


def test_a_sqlite_database_from_before_var_current_is_backfilled(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    s = open_store(url)
    expected = written(s)
    s.close()
    db = sqlite3.connect(tmp_path / "b.db")
    db.execute("DROP TRIGGER var_history_current")
    db.execute("DROP TABLE var_current")
    db.execute("ALTER TABLE run_specs DROP COLUMN flow_digest")  # a later migration's (SQLite cannot re-add it)
    db.execute(f"PRAGMA user_version = {var_current_version('sqlite') - 1}")
    db.commit()
    db.close()
    s = open_store(url)
    try:
        assert {n: (r.value, r.version, r.created_at, r.updated_at, r.seq)
                for n, r in s.read_vars("r1").items()} == expected
        assert expected.keys() == {"n", "t"} and expected["t"][1] == 3
    finally:
        s.close()


def test_a_postgres_schema_from_before_var_current_is_backfilled():
    psycopg = pytest.importorskip("psycopg")
    from tests.conftest import PG_URL, drop_schema, postgres_url
    url = postgres_url()
    schema = url.rsplit("schema=", 1)[1]
    try:
        s = open_store(url)
        expected = written(s)
        s.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn, conn.transaction():
            conn.execute(f'SET search_path TO "{schema}"')
            conn.execute("DROP TRIGGER var_history_current ON var_history")
            conn.execute("DROP FUNCTION tether_var_current()")
            conn.execute("DROP TABLE var_current")
            conn.execute("DELETE FROM tether_schema WHERE version >= %s", (var_current_version("postgres"),))
        s = open_store(url)
        try:
            assert {n: (r.value, r.version, r.created_at, r.updated_at, r.seq)
                    for n, r in s.read_vars("r1").items()} == expected
        finally:
            s.close()
    finally:
        drop_schema(url)
