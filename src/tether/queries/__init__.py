"""Read-only queries, the one place that reads a store for a caller. Two layers:

* over a store, below the engine (the engine's read methods delegate to them):
  ``checkpoints`` (time travel: checkpoints, a checkpoint by step, state at one, diff)
  and ``run_reads`` (runs by status, events, current variables, a variable's history);
* over an engine, for the CLI and the REST API alike: ``documents``, as the JSON
  documents of ``views.py``, re-exported here (``from tether import queries;
  queries.run_detail(engine, run_id)``). Neither the CLI nor the server touches
  ``engine.store`` for a read;
* bounded reads for the web UI's pages, over an engine: ``pages``;
* ``reader.Reader``: the engine's reads of one store without an Engine (the CLI's read
  commands), through the same functions."""
from __future__ import annotations

from .documents import (
    events,
    run_detail,
    runs_page,
    shared_variables,
    stats,
    step,
    steps,
    store_kind,
    stream_end,
    var_history,
    variables,
)
from .pages import children, env_report, history_tail, loop_summary, scan_runs, variable_doc
from .usage import child_runs, own_usage, usage

__all__ = [
    "child_runs",
    "children",
    "env_report",
    "events",
    "history_tail",
    "loop_summary",
    "own_usage",
    "run_detail",
    "runs_page",
    "scan_runs",
    "shared_variables",
    "stats",
    "step",
    "steps",
    "store_kind",
    "stream_end",
    "usage",
    "var_history",
    "variable_doc",
    "variables",
]
