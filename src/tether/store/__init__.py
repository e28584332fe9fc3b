"""State stores: the protocol, its backends and the codec they share."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageError
from .base import Store

if TYPE_CHECKING:
    from ..settings import Settings

DEFAULT_URL = "sqlite:///.tether/tether.db"


def open_store(url: str | None = None, *, settings: Settings | None = None) -> Store:
    """Open the store named by ``url``, ``TETHER_DB`` or the default SQLite file, keeping
    offloaded values where ``TETHER_BLOBS`` says (unset: the database's own table);
    ``settings`` default to the environment's. Only the default file's folder is created;
    a named SQLite file's folder must exist (UsageError), so a mistyped path is an error
    rather than a new, empty store somewhere else."""
    if settings is None:
        from ..settings import Settings
        settings = Settings.from_env()
    url = url or settings.db or DEFAULT_URL
    blobs = None
    if settings.blobs and not url.startswith("memory:"):
        from .blobs import open_blobs
        blobs = open_blobs(settings.blobs)
    if url.startswith("sqlite:"):
        from .sqlite import open_sqlite
        return open_sqlite(url, create_folder=url == DEFAULT_URL, blobs=blobs)
    if url.startswith("memory:"):
        from .memory import MemoryStore
        return MemoryStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        from .postgres import open_postgres
        return open_postgres(url, blobs=blobs)
    raise UsageError(f"unknown store URL {url!r}: use sqlite:///path/to.db, postgresql://host/db or memory://")


__all__ = ["DEFAULT_URL", "Store", "open_store"]
