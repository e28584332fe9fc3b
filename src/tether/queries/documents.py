"""Read-only queries that the CLI and the REST API answer alike, as the JSON documents of
``views.py``: neither the CLI nor the server touches ``engine.store`` for a read."""
from __future__ import annotations

from typing import Any

from ..engine.lifecycle import is_held, status_of
from ..errors import TetherError
from ..store.records import HELD, hidden_ranges, is_hidden
from ..views import event_doc, iso, shared_doc, step_doc, var_doc
from .usage import usage


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


FINAL = ("completed", "failed", "cancelled")


def run_detail(engine: Any, run_id: str) -> dict[str, Any]:
    """One run as the API shows it: status (``held`` when it is an interrupted run stopped
    on purpose, waiting for a resume or cancel), outputs, error, times, checkpoints, the step
    it is at, its completed and pending steps, progress and model usage; NotFound for an
    unknown run."""
    rec = engine.record(run_id)
    steps = engine.steps(run_id)
    done = [s.step_id for s in steps if s.status in ("completed", "skipped")]
    try:
        flow_steps = [s.id for s in engine.stored_flow(rec).flow.steps]
    except TetherError:
        flow_steps = []
    pending = [s for s in flow_steps if s not in done]
    cursor = rec.cursor if isinstance(rec.cursor, dict) else {}
    return {"run_id": rec.run_id, "flow": rec.name, "status": status_of(rec), "held": is_held(rec),
            "outputs": rec.outputs,
            "error": rec.error, "parent_id": rec.parent_id, "created_at": iso(rec.created_at),
            "started_at": iso(rec.started_at), "finished_at": iso(rec.finished_at),
            "checkpoints": rec.seq,
            "current_step": cursor.get("next") if status_of(rec) not in FINAL else None,
            "completed_steps": done, "pending_steps": pending,
            "progress": {"done": len(set(done) & set(flow_steps)), "total": len(flow_steps)},
            "usage": usage(engine, rec.run_id)}


def runs_page(engine: Any, status: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
    """At most ``limit`` runs, newest first, before the run id ``cursor``, with ``status``
    as shown (``interrupted`` included); ``next_cursor`` is None on the last page."""
    stored = "running" if status == "interrupted" else status
    found = engine.runs(stored, limit + 1, cursor)
    if status is not None:
        found = [r for r in found if status_of(r) == status]
    page = found[:limit]
    return {"runs": [{"run_id": r.run_id, "flow": r.name, "status": status_of(r), "held": is_held(r),
                      "created_at": iso(r.created_at), "started_at": iso(r.started_at),
                      "finished_at": iso(r.finished_at), "checkpoints": r.seq}
                     for r in page],
            "next_cursor": page[-1].run_id if len(found) > limit else None}


def steps(engine: Any, run_id: str) -> list[dict[str, Any]]:
    """Every step record of a run, in commit order, as ``step_doc`` with ``rewound`` (a
    record a rewind undid: ``resume --from``, ``fork --from``); NotFound for an unknown run."""
    hidden = hidden_ranges(engine.record(run_id).cursor)
    return [{**step_doc(s), "rewound": is_hidden(s.seq, hidden)} for s in engine.steps(run_id)]


def step(engine: Any, run_id: str, step_id: str) -> dict[str, Any] | None:
    """The latest record of one step, as ``step_doc``; None when the run has none of it,
    NotFound for an unknown run."""
    engine.record(run_id)
    found = [s for s in engine.steps(run_id) if s.step_id == step_id]
    return step_doc(found[-1]) if found else None


def events(engine: Any, run_id: str, after: int = 0) -> list[dict[str, Any]]:
    """A run's events after checkpoint ``after``, as ``event_doc``."""
    return [event_doc(e) for e in engine.events(run_id, after)]


def stream_end(engine: Any, run_id: str) -> str | None:
    """The status that ends a run's event stream: ``completed``, ``failed``, ``cancelled``,
    ``paused``, or ``interrupted`` when its owner stopped it on purpose (it waits for a
    resume); None while the run may still write events on its own."""
    record = engine.record(run_id)
    status = status_of(record)
    if status in FINAL or status == "paused" or (status == "interrupted" and record.control == HELD):
        return status
    return None


def var_history(engine: Any, run_id: str, name: str) -> list[dict[str, Any]]:
    """Every version of a variable, oldest first (a deletion's value is None)."""
    return [{"version": h.version, "value": None if h.deleted else h.value, "seq": h.seq,
             "source_step": h.source_step, "at": iso(h.at), "deleted": h.deleted}
            for h in engine.history(run_id, name)]
