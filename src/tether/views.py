"""JSON documents of runs, steps and variables: one shape for the CLI's ``--json`` and
the REST API."""
from __future__ import annotations

import datetime as _dt
from typing import Any


def iso(t: float | None) -> str | None:
    """ISO-8601 UTC text of an epoch time (None stays None)."""
    return None if t is None else _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat()


def run_doc(run: Any) -> dict[str, Any]:
    return {"run_id": run.id, "status": run.status, "outputs": run.outputs, "error": run.error}


def step_doc(s: Any) -> dict[str, Any]:
    return {"step_id": s.step_id, "status": s.status, "seq": s.seq, "attempts": s.attempts,
            "inputs": s.inputs, "result": s.result, "error": s.error, "meta": s.meta,
            "started_at": iso(s.started_at), "finished_at": iso(s.finished_at),
            "duration": (s.finished_at - s.started_at) if s.started_at and s.finished_at else None,
            "idempotency_key": s.idempotency_key}


def var_doc(v: Any) -> dict[str, Any]:
    return {"name": v.name, "value": v.value, "type": v.type, "scope": v.scope, "version": v.version,
            "source_step": v.source_step, "created_at": iso(v.created_at), "updated_at": iso(v.updated_at),
            "accessed_at": iso(v.accessed_at), "access_count": v.access_count}


def event_doc(e: Any) -> dict[str, Any]:
    return {"seq": e.seq, "idx": e.idx, "type": e.type, "step_id": e.step_id, "data": e.data, "at": iso(e.at)}


def shared_doc(rec: Any) -> dict[str, Any]:
    return {"name": rec.name, "value": rec.value, "version": rec.version, "immutable": rec.immutable,
            "updated_at": iso(rec.updated_at)}
