"""Fixtures of the model tests: a fake OpenAI server on 127.0.0.1 and an engine on SQLite."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.model.fake_openai import FakeOpenAI
from tether import Engine
from tether.settings import Settings
from tether.tools import model_cassette


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    s = FakeOpenAI().start()
    yield s
    s.stop()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tether.db"


@pytest.fixture
def make_engine(db_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An Engine on SQLite whose Settings are ``TETHER_*`` values given as keywords."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    engines: list[Engine] = []
    model_cassette.forget()

    def make(**settings: object) -> Engine:
        e = Engine(f"sqlite:///{db_path}", settings=Settings(**settings))  # type: ignore[arg-type]
        engines.append(e)
        return e
    yield make
    for e in engines:
        e.close()
    model_cassette.forget()


def models_block(server: FakeOpenAI, name: str = "m", **extra: object) -> str:
    """A ``models:`` block naming ``name`` on the fake server."""
    fields = ", ".join(f"{k}: {v}" for k, v in {"base_url": server.url, **extra}.items())
    return f"models:\n  {name}: {{{fields}}}\n"
