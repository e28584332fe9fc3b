"""A run page's view model: the run, its timeline (Gantt rows on a time axis, loops as one
bar with their progress), its loops' failed iterations, children and parent, its
variables now or as of a checkpoint, and its environment. Reads are bounded: the timeline
is paged, a loop is counted and only its first failed iterations are read."""
from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from ... import queries
from ...errors import NotFound, TetherError, UsageError
from ...store.records import hidden_ranges, is_hidden
from .actions import offered
from .runs_view import run_row

TIMELINE_PAGE = 200
FAILED_CAP = 20  # on the run page; the loop step's own page lists more
VARS_CAP = 1000
LIVE = ("running", "pending")


@lru_cache(maxsize=32)
def parsed_flow(engine: Any, run_id: str, flow_text: str) -> Any:
    """The run's flow as parsed (``flow_text`` is part of the key: a run resumed with a new
    flow is parsed again); None when the stored flow no longer loads."""
    try:
        return engine.stored_flow(engine.record(run_id)).flow
    except TetherError:
        return None


def spend(usage: dict[str, Any]) -> dict[str, float]:
    """What the page shows of a run's model usage (``queries.usage``: its calls, loops and
    child runs): ``tokens`` (input + output) and ``cost`` when there is one; empty when the
    run called no model."""
    if not usage.get("calls"):
        return {}
    out: dict[str, float] = {"tokens": usage["input_tokens"] + usage["output_tokens"]}
    if usage.get("cost") is not None:
        out["cost"] = usage["cost"]
    return out


def timeline(rec: Any, steps: list[Any], offset: int, now: float) -> dict[str, Any]:
    """Rows of the Gantt chart: each step record (a retry after a resume is another bar on
    its step's row) placed on the run's time axis in percent, ``TIMELINE_PAGE`` records
    from ``offset``; ``current``: where the step in progress has run since the last commit."""
    t0 = rec.started_at or rec.created_at
    ends = [s.finished_at or s.started_at or t0 for s in steps]
    t1 = rec.finished_at or (now if rec.status in LIVE else max(ends, default=t0))
    span = max(t1 - t0, 1e-6)
    hidden = hidden_ranges(rec.cursor)
    rows = []
    for s in steps[offset:offset + TIMELINE_PAGE]:
        start = s.started_at or s.finished_at or t0
        end = s.finished_at or now
        left = min(max((start - t0) / span * 100, 0), 100)
        width = min(max((end - start) / span * 100, 0.3), 100 - left)
        meta = s.meta if isinstance(s.meta, dict) else {}
        counts = meta.get("map") if isinstance(meta.get("map"), dict) else None
        rows.append({"step_id": s.step_id, "status": s.status, "seq": s.seq, "attempts": s.attempts,
                     "left": round(left, 2), "width": round(width, 2), "undone": is_hidden(s.seq, hidden),
                     "duration": (s.finished_at - s.started_at) if s.finished_at and s.started_at else None,
                     "loop": counts})
    since = max((s.finished_at for s in steps if s.finished_at), default=t0)
    left = min(max((since - t0) / span * 100, 0), 99.5)
    return {"rows": rows, "span": span, "start": t0, "offset": offset, "total": len(steps),
            "page": TIMELINE_PAGE,
            "current": {"left": round(left, 2), "width": round(max(100 - left, 0.5), 2)}}


def final_counts(meta: dict[str, Any]) -> dict[str, int] | None:
    """``{status: count}`` of a finished loop from its step record's ``map`` aggregates
    (so a page need not count a large loop's iterations again), or None."""
    agg = meta.get("map")
    if not isinstance(agg, dict):
        return None
    pairs = (("completed", agg.get("successful")), ("failed", agg.get("failed")),
             ("skipped", agg.get("skipped")))
    if not all(isinstance(v, int) for _, v in pairs):
        return None
    return {k: int(v) for k, v in pairs if v}


def loops(engine: Any, rec: Any, steps: list[Any], current: str | None) -> list[dict[str, Any]]:
    """Each loop of the run (the latest record of each loop key, and the loop running now)
    with its counts and first failed iterations."""
    keys: dict[str, tuple[str, dict[str, int] | None]] = {}
    for s in steps:
        meta = s.meta if isinstance(s.meta, dict) else {}
        if isinstance(meta.get("loop_key"), str):
            keys[meta["loop_key"]] = (s.step_id, final_counts(meta))
    if current and current not in keys and rec.status in LIVE + ("paused", "failed"):
        keys[current] = (current, None)
    out = []
    for key, (step_id, counts) in keys.items():
        summary = queries.loop_summary(engine, rec.run_id, key, FAILED_CAP, counts)
        if summary["total"] is None:
            continue
        done = sum(summary["counts"].values())
        summary.update(step_id=step_id, done=done,
                       pct=round(done / summary["total"] * 100, 1) if summary["total"] else 100.0)
        out.append(summary)
    return out


def variables(engine: Any, run_id: str, at: int | None) -> dict[str, Any]:
    """The run's variables now (with metadata), or as of checkpoint ``at`` (values; the
    metadata of those that still exist)."""
    now_vars = queries.variables(engine, run_id)
    if at is None:
        rows = [{"name": n, **d} for n, d in now_vars.items()]
    else:
        state = engine.state_at(run_id, at)
        rows = [{"name": n, **{k: v for k, v in now_vars.get(n, {}).items() if k == "type"},
                 "value": state[n], "past": True} for n in sorted(state)]
    return {"rows": rows[:VARS_CAP], "count": len(rows), "cap": VARS_CAP}


def run_page(engine: Any, run_id: str, at_text: str | None, tl_text: str | None) -> dict[str, Any]:
    """Everything the run page shows; NotFound for an unknown run, UsageError for a
    checkpoint that is not a number."""
    rec = engine.record(run_id)
    at = None
    if at_text not in (None, ""):
        if not (str(at_text).isascii() and str(at_text).isdigit()):
            raise UsageError(f"at must be a checkpoint number, not {at_text!r}")
        at = engine.checkpoint_of(run_id, int(str(at_text)))
    offset = int(tl_text) if tl_text and tl_text.isascii() and tl_text.isdigit() else 0
    now = time.time()
    steps = engine.steps(run_id)
    row = run_row(rec, now)
    cursor = rec.cursor if isinstance(rec.cursor, dict) else {}
    parent = None
    if rec.parent_id:
        try:
            parent = engine.record(rec.parent_id)
        except NotFound:
            parent = None
    started = list(dict.fromkeys(s.step_id for s in steps))  # in the order they first ran
    return {"run": row, "rec": rec, "error": rec.error, "inputs": rec.inputs, "outputs": rec.outputs,
            "pause": cursor.get("pause") if row["status"] == "paused" else None,
            "timeline": timeline(rec, steps, offset, now), "loops": loops(engine, rec, steps, row["step"]),
            "vars": variables(engine, run_id, at), "at": at,
            "env": queries.env_report(engine, rec, parsed_flow(engine, run_id, rec.flow_text)),
            "children": [run_row(c, now) for c in queries.children(engine, rec)],
            "parent": run_row(parent, now) if parent else None, "spend": spend(queries.usage(engine, run_id)),
            "started_steps": started, "actions": offered(row["status"]),
            "live": row["status"] in LIVE}


def step_page(engine: Any, run_id: str, step_id: str) -> dict[str, Any]:
    """Every record of one step (attempts across resumes), with its loop when it is one;
    NotFound when the step has no record in the run."""
    rec = engine.record(run_id)
    records = [s for s in engine.steps(run_id) if s.step_id == step_id]
    if not records:
        raise NotFound(f"run {run_id} has no record of step {step_id!r}")
    hidden = hidden_ranges(rec.cursor)
    loop = None
    meta = records[-1].meta if isinstance(records[-1].meta, dict) else {}
    if isinstance(meta.get("loop_key"), str):
        loop = queries.loop_summary(engine, run_id, meta["loop_key"], 200, final_counts(meta))
    return {"run": run_row(rec, time.time()), "step_id": step_id, "loop_info": loop,
            "records": [{"r": s, "undone": is_hidden(s.seq, hidden),
                         "duration": (s.finished_at - s.started_at)
                         if s.finished_at and s.started_at else None} for s in records]}
