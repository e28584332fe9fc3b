"""The bodies of the read commands `runs`, `show`, `vars RUN` and `vars get`: ``runs.py``
and ``vars.py`` declare them to the app. They read through a ``queries.Reader`` (no Engine)
and print through ``output.out``."""
from __future__ import annotations

from typing import Any

from .output import iso, out, print_json, short
from .session import open_reader


def runs(status: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    from ..engine.lifecycle import is_held, status_of, status_text
    from ..queries.usage import own_usage
    reader = open_reader()
    records = reader.runs(status, limit)
    texts = [status_text(r) for r in records]
    docs = [{"run_id": r.run_id, "name": r.name, "status": status_of(r), "held": is_held(r),
             "parent_id": r.parent_id,
             "created_at": iso(r.created_at), "finished_at": iso(r.finished_at), "seq": r.seq,
             "cost": own_usage(reader, r.run_id)[0]["cost"]}
            for r in records]
    if as_json:
        print_json(docs)
        return
    from .report import money
    costs = any(d["cost"] is not None for d in docs)
    out().table(("run", "flow", "status", "started", "checkpoints", *(["cost"] if costs else [])),
                [(d["run_id"], d["name"], text, (d["created_at"] or "")[:19], str(d["seq"]),
                  *([money(d["cost"])] if costs else [])) for d, text in zip(docs, texts, strict=True)],
                first_no_wrap=True)


def show(run_id: str, as_json: bool) -> None:
    """Show one run: status, outputs, error and its step records."""
    from ..engine.lifecycle import is_held, status_of, status_text
    from ..queries.usage import own_usage, usage
    from ..store.records import hidden_ranges, is_hidden
    from ..views import step_doc
    from .report import error_block, error_lines, pause_lines, usage_lines
    reader = open_reader()
    rec = reader.record(run_id)
    steps = reader.steps(run_id)
    hidden = hidden_ranges(rec.cursor)  # checkpoints undone by a rewind (resume --from, fork --from)
    doc = {"run_id": rec.run_id, "status": status_of(rec), "held": is_held(rec), "outputs": rec.outputs,
           "error": rec.error,
           "flow": rec.name, "parent_id": rec.parent_id, "created_at": iso(rec.created_at),
           "started_at": iso(rec.started_at), "finished_at": iso(rec.finished_at), "seq": rec.seq,
           "steps": [{**step_doc(s), "rewound": is_hidden(s.seq, hidden)} for s in steps],
           "usage": usage(reader, run_id)}
    if as_json:
        print_json(doc)
        return
    con = out()
    con.print(f"run [bold]{rec.run_id}[/] flow {rec.name}: {status_text(rec)} (checkpoint {rec.seq})")
    con.print(f"  started {doc['started_at']}"
              + (f"  finished {doc['finished_at']}" if doc["finished_at"] else ""), markup=False)
    pause = rec.cursor.get("pause") if isinstance(rec.cursor, dict) else None
    for line in pause_lines(rec.run_id, pause) if doc["status"] == "paused" else ():
        con.print(line, markup=False)
    for line in error_block(rec.error) if rec.error else ():
        con.print(line, markup=False)
    rows = []
    for s in steps:
        d = step_doc(s)
        rows.append((str(s.seq), s.step_id, f"{s.status} (rewound)" if is_hidden(s.seq, hidden) else s.status,
                     str(s.attempts),
                     f"{d['duration']:.3f}s" if d["duration"] is not None else "",
                     short(error_lines(s.error)[0] if s.error else loop_text(s) or s.result)))
    con.table(("seq", "step", "status", "attempts", "duration", "result / error"), rows)
    for s in steps:  # the failures the run went past (on_failure), in full
        if isinstance(s.error, dict) and s.status == "failed" and {**s.error, "step": s.step_id} != rec.error:
            for line in error_block(s.error, f"step {s.step_id} (checkpoint {s.seq}) failed"):
                con.print(line, markup=False)
    for line in usage_lines(own_usage(reader, run_id)[1], doc["usage"]):
        con.print(line, markup=False)
    for k, v in (rec.outputs or {}).items():
        con.print(f"  output {k} = {short(v, 200)}", markup=False)


def loop_text(s: Any) -> str | None:
    """A finished loop step's counts as its row in ``show`` reads them (its ``result``, the
    list of iteration results, is read from the iteration records by templates, not
    stored on the record: showing it would read every iteration); None for another step."""
    meta = s.meta if isinstance(s.meta, dict) else {}
    counts = meta.get("map")
    if s.result is not None or not isinstance(counts, dict):
        return None
    return (f"loop of {counts.get('total')}: {counts.get('successful')} successful, "
            f"{counts.get('failed')} failed, {counts.get('skipped')} skipped")


def vars_list(run_id: str, as_json: bool) -> None:
    """All variables of RUN."""
    values = open_reader().vars(run_id)
    if as_json:
        print_json(values)
        return
    out().table(("name", "value"), [(k, short(v, 100)) for k, v in values.items()])


def vars_get(run_id: str, name: str, reveal: bool, as_json: bool) -> None:
    """One variable with its metadata (counts as an access)."""
    from ..views import var_doc
    doc: dict[str, Any] = var_doc(open_reader().variable(run_id, name, reveal=reveal))
    if as_json:
        print_json(doc)
        return
    con = out()
    con.print(short(doc["value"], 10_000), markup=False)
    if doc["type"] == "computed":
        con.print("type computed: evaluated now from the run's committed state", style="dim", markup=False)
        return
    con.print(f"type {doc['type']}, scope {doc['scope']}, version {doc['version']}, "
              f"written by {doc['source_step']} at {doc['updated_at']}, read {doc['access_count']} times",
              style="dim", markup=False)
