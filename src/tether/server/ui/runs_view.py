"""The runs page's view model: one page of runs, newest first, filtered, with what a row shows."""
from __future__ import annotations

import time
from typing import Any

from ... import queries
from ...engine.lifecycle import is_held, status_of
from ...errors import UsageError

STATUSES = ("pending", "running", "paused", "interrupted", "completed", "failed", "cancelled")
PAGE = 50


def run_row(rec: Any, at: float) -> dict[str, Any]:
    """What one run shows in a list: id, flow, status (and whether it is held: stopped on
    purpose, waiting for a resume or cancel), progress (checkpoints and the current step),
    when it started and how long it ran (until now if it still runs)."""
    status = status_of(rec)
    cursor = rec.cursor if isinstance(rec.cursor, dict) else {}
    start = rec.started_at or rec.created_at
    end = rec.finished_at or (at if status in ("running", "pending") else None)
    return {"run_id": rec.run_id, "flow": rec.name, "status": status, "held": is_held(rec),
            "created_at": rec.created_at,
            "checkpoints": rec.seq, "parent_id": rec.parent_id,
            "step": cursor.get("next") if status not in ("completed", "failed", "cancelled") else None,
            "duration": (end - start) if end and start else None}


def runs_page(engine: Any, params: dict[str, str]) -> dict[str, Any]:
    """One page of runs for the filters in ``params`` (``status``, ``flow``, ``q`` an id or
    its start, ``cursor``); UsageError for a status that does not exist."""
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise UsageError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    flow = (params.get("flow") or "").strip()[:128] or None
    q = (params.get("q") or "").strip()[:64] or None
    cursor = (params.get("cursor") or "").strip()[:64] or None
    found, next_cursor = queries.scan_runs(engine, status=status, flow=flow, id_prefix=q, limit=PAGE,
                                           cursor=cursor)
    at = time.time()
    rows = [run_row(r, at) for r in found]
    for row in rows:  # a run's own model cost (its children are rows of their own)
        row["cost"] = queries.own_usage(engine, row["run_id"])[0]["cost"]
    keep = {k: v for k, v in (("status", status), ("flow", flow), ("q", q)) if v}
    return {"runs": rows, "next_cursor": next_cursor, "filters": keep,
            "statuses": STATUSES, "paged": cursor is not None}
