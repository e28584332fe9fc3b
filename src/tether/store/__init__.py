"""State stores: the protocol, its backends and the codec they share."""
from __future__ import annotations

from ..errors import UsageError
from .base import Store

DEFAULT_URL = "sqlite:///.tether/tether.db"


def open_store(url: str | None = None) -> Store:
    """Open the store named by ``url``, ``TETHER_DB`` or the default SQLite file. Only the
    default file's folder is created; a named SQLite file's folder must exist (UsageError),
    so a mistyped path is an error rather than a new, empty store somewhere else."""
    if not url:
        from ..settings import Settings
        url = Settings.from_env().db or DEFAULT_URL
    if url.startswith("sqlite:"):
        from .sqlite import open_sqlite
        return open_sqlite(url, create_folder=url == DEFAULT_URL)
    if url.startswith("memory:"):
        from .memory import MemoryStore
        return MemoryStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        from .postgres import open_postgres
        return open_postgres(url)
    raise UsageError(f"unknown store URL {url!r}: use sqlite:///path/to.db, postgresql://host/db or memory://")


__all__ = ["DEFAULT_URL", "Store", "open_store"]
