"""Read-only queries that the CLI and the REST API answer alike, as the JSON documents of
``views.py``. The one place outside the engine that reads an engine's store: neither the
CLI nor the server touches ``engine.store`` for a read."""
from __future__ import annotations

from typing import Any

from .views import shared_doc, var_doc


def store_kind(engine: Any) -> str:
    """The scheme of the engine's store URL: ``sqlite``, ``postgresql`` or ``memory``."""
    return engine.store.url.split("://", 1)[0]


def stats(engine: Any) -> dict[str, Any]:
    """The store's counts, its URL, the template compile-cache hit rate over finished runs
    (None before any template was compiled), its size (``database_bytes``, ``free_bytes``),
    blobs by blob store, and what ``tether gc`` with its defaults would delete."""
    s: dict[str, Any] = dict(engine.store.stats())
    total = s["template_hits"] + s["template_misses"]
    s["template_hit_rate"] = round(s["template_hits"] / total, 6) if total else None
    s["store"] = engine.store.url
    storage = engine.store.storage()
    s["database_bytes"], s["free_bytes"] = storage["database_bytes"], storage["free_bytes"]
    s["blob_stores"] = storage["blobs"]
    would = engine.gc(dry_run=True)  # what `tether gc` with its defaults would delete
    s["gc_would_reclaim"] = {k: would[k] for k in ("runs", "rows", "bytes", "blobs", "blob_bytes")}
    return s


def shared_variables(engine: Any) -> list[dict[str, Any]]:
    """Every shared variable, as ``shared_doc``."""
    return [shared_doc(r) for r in engine.store.shared_list()]


def variables(engine: Any, run_id: str) -> dict[str, Any]:
    """A run's variables with their metadata, by name in name order (a secret's value is
    ``***``); NotFound for an unknown run."""
    engine.record(run_id)
    records = engine.store.read_vars(run_id)
    out: dict[str, Any] = {}
    for name in sorted(records):
        doc = var_doc(records[name])
        doc.pop("name")
        if records[name].secret:
            doc["value"] = "***"
        out[name] = doc
    return out
