"""The commands about one run's life: `run`, `resume`, `fork`, `pause`, `cancel`, and
the reads `runs` and `show`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..views import run_doc, step_doc
from .args import pairs
from .output import console, iso, print_json, short
from .report import error_block, error_lines, money, pause_lines, usage_lines
from .root import guard, open_engine
from .running import announce, interruptible, with_progress

EXIT_BY_STATUS = {"completed": 0, "failed": 1, "cancelled": 1, "paused": 3, "running": 0, "pending": 0,
                  "interrupted": 1}


def report_run(run: Any, as_json: bool, engine: Any = None) -> None:
    """Print how ``run`` ended (for people, with its model usage when ``engine`` is given and
    it called a model) and exit with the code of its status."""
    if as_json:
        print_json(run_doc(run))
    else:
        con = console()
        colour = {"completed": "green", "failed": "red", "paused": "yellow"}.get(run.status, "cyan")
        con.print(f"run [bold]{run.id}[/] ({run.name}): [{colour}]{run.status}[/]")
        for line in error_block(run.error) if run.error else ():
            con.print(line, markup=False)
        for line in pause_lines(run.id, run.pause) if run.status == "paused" else ():
            con.print(line, markup=False)
        for k, v in (run.outputs or {}).items():
            con.print(f"  {k} = {short(v, 200)}", markup=False)
        if engine is not None:
            from ..queries import usage
            for line in usage_lines({}, usage(engine, run.id)):
                con.print(line, markup=False)
    raise typer.Exit(EXIT_BY_STATUS.get(run.status, 1))



@guard
def run(
    flow: Path = typer.Argument(..., help="Flow file (.yaml, .yml or .json)."),
    input_: list[str] | None = typer.Option(None, "-i", "--input", help="Input NAME=VALUE (JSON or text)."),
    inputs_file: Path | None = typer.Option(None, "--inputs", help="JSON file of inputs."),
    run_id: str | None = typer.Option(None, "--run-id", help="Run id; an existing id returns that run."),
    detach: bool = typer.Option(False, "--detach",
                                help="Queue the run for `tether worker` and print its id."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Run FLOW to its end. Exit 0 completed, 1 failed, 2 bad flow or input, 3 paused;
    SIGTERM, Ctrl-C or a hang-up stops the running step's processes and leaves the run
    interrupted (exit 143, 130 or 129), printing the `tether resume` command that continues it.
    With --detach: queue it (status pending), print its id and exit 0."""
    from ..errors import UsageError
    inputs: dict[str, Any] = {}
    if inputs_file is not None:
        import orjson

        from ..store import codec
        try:
            data = codec.loads_exact(inputs_file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise UsageError(f"--inputs {inputs_file}: cannot read a JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"--inputs {inputs_file}: must hold a JSON object")
        inputs.update(data)
    inputs.update(pairs(input_, "-i"))
    engine = open_engine()
    if detach:
        queued = engine.run(flow, inputs, run_id=run_id, detach=True)
        if as_json:
            print_json(run_doc(queued))
        else:
            print(queued.id)
        return
    result = interruptible(lambda: with_progress(engine, as_json, lambda: engine.run(
        flow, inputs, run_id=run_id, on_start=lambda rid: announce(rid, as_json))))
    if not result.created and not as_json:
        console(stderr=True).print(f"run {result.id} already exists; not started again", markup=False)
    report_run(result, as_json, engine)


def print_env_report(kind: str, data: Any) -> None:
    err = console(stderr=True)
    if kind == "flow":
        if not data:
            err.print("flow: no step changed", markup=False)
        for step_id, change in data:
            err.print(f"flow: step {step_id} {change}", markup=False)
        return
    if not data:
        return
    from rich.table import Table
    table = Table("variable", "change", "policy", "recorded", "now",
                  title="environment since the run started")
    for c in data:
        table.add_row(c.name, c.change, c.policy, "(secret)" if c.secret else str(c.old),
                      "(secret)" if c.secret else str(c.new))
    err.print(table)


@guard
def resume(
    run_id: str = typer.Argument(...),
    set_: list[str] | None = typer.Option(None, "--set",
                                          help="Write variable NAME=VALUE before anything runs, "
                                               "in the transaction that takes the run over."),
    from_step: str | None = typer.Option(None, "--from", help="Rewind to the checkpoint before STEP first "
                                                                 "started and continue from there."),
    retry_failed: bool = typer.Option(False, "--retry-failed",
                                      help="Re-run the failed iterations of loops (also "
                                           "in a completed run), then the steps after them."),
    flow: Path | None = typer.Option(None, "--flow", help="Continue with this new version of the flow file."),
    rerun_changed: bool = typer.Option(False, "--rerun-changed",
                                       help="With --flow: re-run the first changed "
                                            "step that had completed, and those after it."),
    env: list[str] | None = typer.Option(None, "--env", help="Environment override NAME=VALUE."),
    env_policy: str | None = typer.Option(None, "--env-policy",
                                          help="warn, fail or keep for every variable."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Continue a failed, interrupted or paused run. Completed steps never run again.

    Exit 0 completed, 1 failed, 3 paused again, 4 owned by another live process or
    environment refused (nothing changed)."""
    env_values = {k: v if isinstance(v, str) else __import__("orjson").dumps(v).decode()
                  for k, v in pairs(env, "--env").items()}
    engine = open_engine()
    result = interruptible(lambda: with_progress(engine, as_json, lambda: engine.resume(
        run_id, set=pairs(set_, "--set"), from_step=from_step, retry_failed=retry_failed, flow=flow,
        rerun_changed=rerun_changed, env=env_values, env_policy=env_policy, report=print_env_report)))
    report_run(result, as_json, engine)


@guard
def fork(
    run_id: str = typer.Argument(...),
    from_step: str | None = typer.Option(None, "--from",
                                         help="Start from the checkpoint before STEP first ran."),
    set_: list[str] | None = typer.Option(None, "--set", help="Variable NAME=VALUE for the new run."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Start and run a new run from RUN's state (RUN itself is not changed)."""
    engine = open_engine()
    report_run(interruptible(lambda: engine.fork(run_id, from_step=from_step, set=pairs(set_, "--set"))),
               as_json)


@guard
def pause(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Ask a running run to stop after its current step (status paused; resume continues it)."""
    open_engine().pause(run_id)
    if as_json:
        print_json({"run_id": run_id, "requested": "pause"})
    else:
        console().print(f"run {run_id}: pause requested; it stops after its current step", markup=False)


@guard
def cancel(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Stop a run now; a running shell step's process group is killed."""
    before = open_engine().cancel(run_id)
    msg = "cancel requested; its owner stops it now" if before == "running" else "cancelled"
    if as_json:
        print_json({"run_id": run_id, "requested": "cancel", "status_before": before})
    else:
        console().print(f"run {run_id}: {msg}", markup=False)


@guard
def runs(
    status: str | None = typer.Option(None, "--status", help="Only runs with this status."),
    limit: int = typer.Option(20, "--limit", min=1, max=10000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List runs, newest first."""
    engine = open_engine()
    records = engine.runs(status, limit)
    from ..engine.lifecycle import status_of
    from ..queries import own_usage
    docs = [{"run_id": r.run_id, "name": r.name, "status": status_of(r), "parent_id": r.parent_id,
             "created_at": iso(r.created_at), "finished_at": iso(r.finished_at), "seq": r.seq,
             "cost": own_usage(engine, r.run_id)[0]["cost"]}
            for r in records]
    if as_json:
        print_json(docs)
        return
    from rich.table import Table
    costs = any(d["cost"] is not None for d in docs)
    table = Table("run", "flow", "status", "started", "checkpoints", *(["cost"] if costs else []))
    table.columns[0].no_wrap = True
    for d in docs:
        table.add_row(d["run_id"], d["name"], d["status"], (d["created_at"] or "")[:19], str(d["seq"]),
                      *([money(d["cost"])] if costs else []))
    console().print(table)


@guard
def show(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one run: status, outputs, error and its step records."""
    from ..queries import own_usage, usage
    engine = open_engine()
    rec = engine.record(run_id)
    steps = engine.steps(run_id)
    from ..engine.lifecycle import status_of
    doc = {"run_id": rec.run_id, "status": status_of(rec), "outputs": rec.outputs, "error": rec.error,
           "flow": rec.name, "parent_id": rec.parent_id, "created_at": iso(rec.created_at),
           "started_at": iso(rec.started_at), "finished_at": iso(rec.finished_at), "seq": rec.seq,
           "steps": [step_doc(s) for s in steps], "usage": usage(engine, run_id)}
    if as_json:
        print_json(doc)
        return
    con = console()
    con.print(f"run [bold]{rec.run_id}[/] flow {rec.name}: {doc['status']} (checkpoint {rec.seq})")
    con.print(f"  started {doc['started_at']}"
              + (f"  finished {doc['finished_at']}" if doc["finished_at"] else ""), markup=False)
    pause = rec.cursor.get("pause") if isinstance(rec.cursor, dict) else None
    for line in pause_lines(rec.run_id, pause) if doc["status"] == "paused" else ():
        con.print(line, markup=False)
    for line in error_block(rec.error) if rec.error else ():
        con.print(line, markup=False)
    from rich.table import Table
    table = Table("seq", "step", "status", "attempts", "duration", "result / error")
    for s in steps:
        d = step_doc(s)
        table.add_row(str(s.seq), s.step_id, s.status, str(s.attempts),
                      f"{d['duration']:.3f}s" if d["duration"] is not None else "",
                      short(error_lines(s.error)[0] if s.error else s.result))
    con.print(table)
    for s in steps:  # the failures the run went past (on_failure), in full
        if isinstance(s.error, dict) and s.status == "failed" and {**s.error, "step": s.step_id} != rec.error:
            for line in error_block(s.error, f"step {s.step_id} (checkpoint {s.seq}) failed"):
                con.print(line, markup=False)
    for line in usage_lines(own_usage(engine, run_id)[1], doc["usage"]):
        con.print(line, markup=False)
    for k, v in (rec.outputs or {}).items():
        con.print(f"  output {k} = {short(v, 200)}", markup=False)
