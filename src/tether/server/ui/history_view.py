"""View models of a variable's history (with a chart for numbers) and of the diff between
two checkpoints."""
from __future__ import annotations

import time
from typing import Any

from ... import queries
from ...errors import NotFound, UsageError
from .charts import numeric, sparkline
from .runs_view import run_row

HISTORY_CAP = 500


def var_page(engine: Any, run_id: str, name: str) -> dict[str, Any]:
    """One variable: its metadata now (None once deleted), its last ``HISTORY_CAP`` writes
    newest first with checkpoint and step (older ones are not read), and a chart of them
    when every value is a number.
    Secret values are ``***``. NotFound when the variable never existed."""
    rec = engine.record(run_id)
    rows = queries.history_tail(engine, run_id, name, HISTORY_CAP)
    try:
        current = queries.variable_doc(engine, run_id, name)
    except NotFound:
        current = None
    live = [h for h in rows if not h.deleted]
    ys = numeric([h.value for h in live])
    chart = sparkline([h.seq for h in live], ys, name) if ys else None
    return {"run": run_row(rec, time.time()), "name": name, "current": current, "chart": chart,
            "history": rows[::-1], "count": rows[-1].version, "cap": HISTORY_CAP}


def diff_page(engine: Any, run_id: str, a: str | None, b: str | None) -> dict[str, Any]:
    """The variables added, removed and changed from checkpoint ``a`` to ``b`` (numbers or
    step ids; default: the first and the last checkpoint)."""
    rec = engine.record(run_id)
    a = (a or "").strip()[:128] or "0"
    b = (b or "").strip()[:128] or str(rec.seq)
    if not (a.isascii() and b.isascii()):
        raise UsageError("a checkpoint is a number or a step id")
    return {"run": run_row(rec, time.time()), "diff": engine.diff(run_id, a, b), "a": a, "b": b,
            "last": rec.seq}
