"""Shared fixtures. Every test starts with no TETHER_* variables set."""
from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# A PostgreSQL server for the tests (scripts/test.sh starts one). Read at import: the
# autouse fixture below clears TETHER_* for each test.
PG_URL = os.environ.get("TETHER_TEST_PG")
PG_DATA = os.environ.get("TETHER_TEST_PG_DATA")  # set by scripts/postgres.sh: lets a test restart the server
PG_BIN = os.environ.get("TETHER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TETHER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tether.db'}"


def postgres_url() -> str:
    """A store URL on the test server, in a fresh schema of its own; fails in CI (and
    skips, saying why, elsewhere) when no server was started."""
    if not PG_URL:
        message = "no PostgreSQL server: run scripts/test.sh, which starts one and sets TETHER_TEST_PG"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return f"{PG_URL}?schema=t_{uuid.uuid4().hex[:16]}"


def drop_schema(url: str) -> None:
    import psycopg
    schema = url.rsplit("schema=", 1)[1]
    assert PG_URL
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _store_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """A URL of a fresh store of ``kind``; a PostgreSQL schema is dropped afterwards."""
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'tether.db'}"
    else:
        url = postgres_url()
        yield url
        drop_schema(url)


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL on SQLite and on PostgreSQL: for tests that run real processes."""
    yield from _store_url(request.param, tmp_path)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _store_url(request.param, tmp_path)


@pytest.fixture
def engine(store_url: str):
    from tether import Engine
    e = Engine(store_url)
    yield e
    e.close()


@pytest.fixture
def write_flow(tmp_path: Path):
    """Write flow text to a file and return its path."""
    def write(text: str, name: str = "flow.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


PYTHON = sys.executable
