"""The Store contract: every backend must pass every test in this folder, unchanged. One
module per role of the protocol (``tether.store.base``); ``store`` is a fresh store of each
backend (``store_url``: memory, SQLite, PostgreSQL)."""
from __future__ import annotations

import pytest

from tether.store import open_store


@pytest.fixture
def store(store_url: str):
    s = open_store(store_url)
    yield s
    s.close()
