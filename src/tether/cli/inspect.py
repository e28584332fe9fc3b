"""The commands that look into runs and flows without changing them: `verify`,
`checkpoints`, `diff`, `trace`, `validate`, `schema` and `stats`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..views import event_doc
from .output import console, iso, print_json, short
from .report import error_doc, error_lines
from .root import guard, open_engine


@guard
def verify(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Re-render every recorded template of the completed steps against the state as of that step
    and report results that differ (exit 1 if any). Templates calling now(), timestamp() or uuid(),
    or reading run.attempt, run.resumed or a secret env variable, are reported as volatile."""
    report = open_engine().verify(run_id)
    if as_json:
        print_json(report)
    else:
        con = console()
        for d in report["differences"]:
            con.print(f"DIFFERS step {d['step']} (checkpoint {d['seq']}) {d['field']}: recorded "
                      f"{short(d['recorded'], 60)}, re-rendered {short(d['rendered'], 60)}", markup=False)
        for v in report["volatile"]:
            con.print(f"volatile step {v['step']} {v['field']} ({v['reason']}; not compared)", markup=False)
        con.print(f"{report['checked']} completed steps checked: "
                  f"{'clean' if report['ok'] else str(len(report['differences'])) + ' difference(s)'}",
                  markup=False)
    raise typer.Exit(0 if report["ok"] else 1)


@guard
def checkpoints(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """The run's checkpoints: seq, step, time, variables changed."""
    rows = open_engine().checkpoints(run_id)
    docs = [{**r, "at": iso(r["at"])} for r in rows]
    if as_json:
        print_json(docs)
        return
    from rich.table import Table
    table = Table("seq", "at", "step", "events", "variables changed")
    for d in docs:
        table.add_row(str(d["seq"]), (d["at"] or "")[11:23], ", ".join(d["steps"]), ", ".join(d["events"]),
                      ", ".join(d["vars"]))
    console().print(table)


@guard
def diff(run_id: str = typer.Argument(...), a: str = typer.Argument(..., help="Checkpoint seq or step id."),
         b: str = typer.Argument(..., help="Checkpoint seq or step id."),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Variables added, removed and changed between two checkpoints."""
    d = open_engine().diff(run_id, a, b)
    if as_json:
        print_json(d)
        return
    con = console()
    con.print(f"checkpoint {d['from']} -> {d['to']}", markup=False)
    for n, v in d["added"].items():
        con.print(f"+ {n} = {short(v, 100)}", style="green", markup=False)
    for n, v in d["removed"].items():
        con.print(f"- {n} = {short(v, 100)}", style="red", markup=False)
    for n, v in d["changed"].items():
        con.print(f"~ {n}: {short(v['from'], 48)} -> {short(v['to'], 48)}", style="yellow", markup=False)
    if not (d["added"] or d["removed"] or d["changed"]):
        con.print("no differences", markup=False)


@guard
def trace(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """The run's event timeline."""
    events = open_engine().events(run_id)
    docs = [event_doc(e) for e in events]
    if as_json:
        print_json(docs)
        return
    from rich.table import Table
    table = Table("seq", "at", "event", "step", "data")
    for d in docs:
        table.add_row(str(d["seq"]), (d["at"] or "")[11:23], d["type"], d["step_id"] or "",
                      event_text(d["data"]))
    console().print(table)


def event_text(data: Any) -> str:
    """An event's data in the trace table: a failure's error in full (a loop's lists its
    failed iterations), anything else shortened."""
    error = data.get("error") if isinstance(data, dict) else None
    if error:
        return "\n".join(error_lines(error, traceback=False))
    return short(data, 80) if data else ""


@guard
def validate(flow: Path = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Check FLOW without running it. Prints every problem as file:line:col: message; exit 2 if any."""
    from ..errors import FlowError
    from ..flow import load_flow
    try:
        loaded = load_flow(flow)
    except FlowError as exc:
        if as_json:
            print_json({"valid": False, "problems": exc.problem_docs(), "error": error_doc(exc)})
        else:
            err = console(stderr=True)
            for p in exc.problems:
                err.print(p, markup=False)
            err.print(f"{len(exc.problems)} problem(s) found", markup=False)
        raise typer.Exit(2) from None
    if as_json:
        print_json({"valid": True, "problems": [], "name": loaded.flow.name, "steps": len(loaded.flow.steps)})
    else:
        console().print(f"{flow}: ok ({loaded.flow.name}, {len(loaded.flow.steps)} steps)", markup=False)


@guard
def schema() -> None:
    """Print the JSON Schema of flow files (for editor completion and checking)."""
    from ..flow import json_schema
    print_json(json_schema())


@guard
def stats(as_json: bool = typer.Option(False, "--json")) -> None:
    """Store counts and size, blobs by blob store, what `tether gc` would reclaim, and the
    template compile-cache hit rate over finished runs."""
    from ..queries import stats as store_stats
    s = store_stats(open_engine())
    if as_json:
        print_json(s)
        return
    from rich.table import Table
    table = Table("what", "value")
    for k in ("store", "runs", "steps", "vars", "var_history", "events", "blobs", "bytes",
              "database_bytes", "free_bytes", "template_hits", "template_misses", "template_hit_rate"):
        v = s.get(k)
        table.add_row(k, f"{v:.2%}" if k == "template_hit_rate" and v is not None else str(v))
    for name, b in s["blob_stores"].items():
        table.add_row(f"blobs in {name}", f"{b['count']} ({b['bytes']} bytes)")
    g = s["gc_would_reclaim"]
    table.add_row("gc would reclaim",
                  f"{g['runs']} run(s), {g['rows']} rows, {g['bytes'] + g['blob_bytes']} bytes")
    console().print(table)
