"""Bounded reads for the web UI's pages (over an engine, like ``documents``): one variable
without counting an access, the tail of a long history, runs filtered by flow and id with a
bounded scan, a loop's counts and first failed iterations, the environment report, a
run's children."""
from __future__ import annotations

from typing import Any

from ..views import var_doc


def variable_doc(engine: Any, run_id: str, name: str) -> dict[str, Any]:
    """One variable as ``var_doc`` (a secret's value ``***``), read without counting an
    access; NotFound for an unknown run or variable."""
    from ..ids import check_var_name
    engine.record(run_id)
    rec = engine.store.read_var(run_id, check_var_name(name))
    doc = var_doc(rec)
    if rec.secret:
        doc["value"] = "***"
    doc["secret"] = rec.secret
    return doc


def history_tail(engine: Any, run_id: str, name: str, last: int) -> list[Any]:
    """The latest ``last`` writes of a variable, oldest first, as ``HistoryRecord``s (a
    secret's values ``***``), read without the older ones; NotFound for an unknown run or a
    variable that never existed."""
    from dataclasses import replace

    from ..errors import NotFound
    from ..ids import check_var_name
    engine.record(run_id)
    rows = engine.store.var_history(run_id, check_var_name(name), last=last)
    if not rows:
        raise NotFound(f"run {run_id} has no variable {name!r}")
    try:
        secret = engine.store.read_var(run_id, name).secret
    except NotFound:  # deleted since: its history is kept, and shown masked to be safe
        secret = True
    return [replace(h, value=None if h.deleted else "***") for h in rows] if secret else rows


def scan_runs(engine: Any, *, status: str | None = None, flow: str | None = None,
              id_prefix: str | None = None, limit: int = 50, cursor: str | None = None,
              scan: int = 2000) -> tuple[list[Any], str | None]:
    """Runs newest first after ``cursor`` that match every given filter (flow name exact,
    run id prefix), at most ``limit``, and the cursor of the next page (None at the end).
    At most ``scan`` runs are read for one page, so a rare match costs a bounded read: the
    page may then be short, with a cursor to go on."""
    if not flow and not id_prefix:
        found = engine.runs(status, limit + 1, cursor)
        return found[:limit], (found[limit - 1].run_id if len(found) > limit else None)
    page: list[Any] = []
    read = 0
    after = cursor
    batch = min(max(limit * 4, 200), scan)
    while read < scan:
        found = engine.runs(status, batch, after)
        for rec in found:
            read += 1
            after = rec.run_id
            if (flow and rec.name != flow) or (id_prefix and not rec.run_id.startswith(id_prefix)):
                continue
            page.append(rec)
            if len(page) == limit:
                return page, rec.run_id
        if len(found) < batch:
            return page, None
    return page, after


def loop_summary(engine: Any, run_id: str, loop_key: str, failed_cap: int = 50,
                 counts: dict[str, int] | None = None) -> dict[str, Any]:
    """A loop's size, ``{status: count}`` of its iteration records (counted in the store
    unless ``counts`` gives them, e.g. from a finished loop step's record) and its first
    ``failed_cap`` failed iterations as ``{index, item, error, attempts}``: bounded reads
    whatever the loop's size."""
    store = engine.store
    total = store.loop_size(run_id, loop_key)
    counts = dict(store.iteration_counts(run_id, loop_key)) if counts is None else dict(counts)
    failed: list[dict[str, Any]] = []
    if counts.get("failed"):
        window, start = 10_000, 0
        while start < (total or 0) and len(failed) < failed_cap:
            for rec in store.iterations(run_id, loop_key, start, start + window, status="failed"):
                item = store.loop_items(run_id, loop_key, rec.idx, rec.idx + 1)
                failed.append({"index": rec.idx, "item": item[0] if item else None, "error": rec.error,
                               "attempts": rec.attempts})
                if len(failed) >= failed_cap:
                    break
            start += window
    return {"loop_key": loop_key, "total": total, "counts": counts, "failed": failed}


def env_report(engine: Any, run: Any, flow: Any = None) -> dict[str, Any]:
    """The run's environment snapshot (secret variables as ``set``/``unset`` only, never a
    value or hash) and how the current environment differs from it; ``flow``: the run's
    parsed flow when the caller has it (else it is loaded from the run)."""
    from ..engine.resume import compare_env
    from ..env import read_env_lenient
    from ..errors import TetherError
    snap = run.env_snapshot if isinstance(run.env_snapshot, dict) else {}
    rows = []
    for name, found in sorted((snap.get("vars") or {}).items()):
        entry = found if isinstance(found, dict) else {}
        secret = "hmac" in entry
        rows.append({"name": name, "set": bool(entry.get("set")), "secret": secret,
                     "value": "***" if secret and entry.get("set") else entry.get("value")})
    changes: list[dict[str, Any]] = []
    try:
        flow = flow if flow is not None else engine.stored_flow(run).flow
        found, _ = compare_env(flow, snap, read_env_lenient(flow), policy="warn")
        changes = [{"name": c.name, "change": c.change,
                    "recorded": "***" if c.secret else c.old,
                    "current": "***" if c.secret else c.new} for c in found]
    except TetherError:  # a damaged flow: show the snapshot alone
        changes = []
    platform = {k: snap.get(k) for k in ("python", "tether", "host", "cwd") if k in snap}
    return {"vars": rows, "changes": changes, "platform": platform}


def children(engine: Any, run: Any, limit: int = 500) -> list[Any]:
    """Runs whose parent is ``run`` (the child runs its ``flow`` steps started, and its
    forks), newest first, at most ``limit``: read through the store's index on
    ``parent_id``, never a scan of other runs."""
    return engine.store.list_runs(limit=limit, parent=run.run_id)

