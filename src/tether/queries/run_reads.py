"""A run's records read from a store, checked and masked as every caller sees them: runs
by status, events, current variables and a variable's history (secret values ``***``)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..engine.lifecycle import check_status, status_of
from ..errors import NotFound
from ..ids import check_run_id, check_var_name
from ..store.base import EventRecord, HistoryRecord, RunRecord, Store


def runs(store: Store, status: str | None = None, limit: int = 50,
         before: str | None = None) -> list[RunRecord]:
    """Runs, newest first; ``status`` may be ``interrupted``; UsageError for a status
    that does not exist."""
    if check_status(status) in ("interrupted", "running"):
        return [r for r in store.list_runs("running", limit * 4, before)
                if status_of(r) == status][:limit]
    return store.list_runs(status, limit, before)


def events(store: Store, run_id: str, after_seq: int = 0) -> list[EventRecord]:
    """A run's events after checkpoint ``after_seq``; NotFound for an unknown run."""
    check_run_id(run_id)
    store.load_run(run_id)
    return store.events(run_id, after_seq)


def current_vars(store: Store, run_id: str) -> dict[str, Any]:
    """``{name: value}`` of the run's current variables, by name (secret ones as ``***``)."""
    check_run_id(run_id)
    store.load_run(run_id)
    return {n: ("***" if v.secret else v.value) for n, v in sorted(store.read_vars(run_id).items())}


def history(store: Store, run_id: str, name: str) -> list[HistoryRecord]:
    """Every write of the variable, oldest first (a secret's values ``***``); NotFound if it
    never existed."""
    check_run_id(run_id)
    check_var_name(name)
    store.load_run(run_id)
    rows = store.var_history(run_id, name)
    if not rows:
        raise NotFound(f"run {run_id} has no variable {name!r}")
    try:
        secret = store.read_var(run_id, name).secret
    except NotFound:
        secret = False
    if secret:
        rows = [replace(h, value=None if h.deleted else "***") for h in rows]
    return rows
