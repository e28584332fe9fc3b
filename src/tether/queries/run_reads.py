"""A run's records read from a store, checked and masked as every caller sees them: runs
by status, events, current variables and a variable's history (secret values ``***``)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..engine.lifecycle import check_status, status_of
from ..errors import NotFound
from ..ids import check_run_id, check_var_name
from ..store.base import EventRecord, HistoryRecord, RunRecord, Store, VarRecord

if TYPE_CHECKING:
    from ..vault import Vault


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


def variable(store: Store, vault: Callable[[], Vault], run_id: str, name: str, *, reveal: bool,
             ttl: float) -> VarRecord:
    """One variable with its metadata; counts as an access. A computed variable of the run's
    flow is evaluated now (``ttl``: the lease of the runner that evaluates it); NotFound when
    the run has neither. A secret's value is ``***`` unless ``reveal`` (decrypted by
    ``vault()``)."""
    from ..engine.var_writes import masked, revealed
    try:
        rec = store.read_var(check_run_id(run_id), check_var_name(name), count_access=True)
    except NotFound:
        from ..engine.stored_run import computed_var
        return computed_var(store, vault(), run_id, name, ttl)
    return revealed(vault(), rec) if reveal else masked(rec)


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
