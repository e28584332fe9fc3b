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


# the PostgreSQL half of process tests whose mechanism does not depend on the store (signals,
# process groups): it runs in the long mode (TETHER_CHAOS=long, README), the suite runs SQLite
LONG_ONLY = pytest.mark.skipif(os.environ.get("TETHER_CHAOS", "quick") != "long",
                               reason="on PostgreSQL in the long mode (TETHER_CHAOS=long): "
                                      "what this tests does not depend on the store")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=LONG_ONLY)])
def process_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Like ``sql_url``, with its PostgreSQL half in the long mode only."""
    yield from _store_url(request.param, tmp_path)


# the PostgreSQL half of process-heavy tests (many CLI processes, or writers racing gc) runs in
# the full suite only: the quick subset (-m "not slow", README) keeps their SQLite half
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def quick_sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Like ``sql_url``, with its PostgreSQL half marked slow (full suite, not the quick subset)."""
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


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-protocol server on 127.0.0.1 (moto's standalone server, a subprocess of its
    own, spoken to over HTTP by boto3): its endpoint URL. Skips, saying why, when moto's
    server is not installed (fails in CI)."""
    import importlib.util
    import socket
    import subprocess
    import time
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        message = "no moto server: pip install 'moto[server]' (the dev extra has it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    proc = subprocess.Popen([PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3_blobs_url(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://BUCKET/prefix`` of a fresh bucket on the test S3 server, with the AWS_* variables
    boto3 reads pointing at it."""
    import boto3
    for name, value in (("AWS_ENDPOINT_URL", s3_server), ("AWS_ACCESS_KEY_ID", "test"),
                        ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/tether/blobs"


@pytest.fixture(params=["file", "s3"])
def blobs_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ``TETHER_BLOBS`` value of each kind: a fresh folder (``file://``) and a fresh S3
    bucket on the test server (``s3://``)."""
    return f"file://{tmp_path / 'blobs'}" if request.param == "file" else request.getfixturevalue("s3_blobs_url")
