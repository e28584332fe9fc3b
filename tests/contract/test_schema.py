"""Schemas: migrations are versioned, applied once, and a migrated schema equals a fresh one."""
from __future__ import annotations

from pathlib import Path

from tether.store import open_store

def test_sqlite_schema_from_migrations_is_versioned(tmp_path: Path):
    import sqlite3
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    s.close()
    db = sqlite3.connect(tmp_path / "m.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] >= 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "steps", "var_history", "var_reads", "events", "blobs", "loop_items", "iterations"} <= tables
    db.close()
    open_store(f"sqlite:///{tmp_path / 'm.db'}").close()  # re-opening does not re-apply migrations
