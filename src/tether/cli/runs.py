"""The commands about one run's life: `run`, `resume`, `fork`, `pause`, `cancel`, and
the reads `runs` and `show`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from . import foreground, reads
from .args import pairs
from .output import console, print_json
from .root import guard, open_engine
from .running import announce, interruptible, with_progress


def report_run(run: Any, as_json: bool, engine: Any = None) -> None:
    """Print how ``run`` ended (see ``foreground.report``) and exit with the code of its status."""
    raise typer.Exit(foreground.report(run, as_json, engine))


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
    raise typer.Exit(foreground.start(flow, input_, inputs_file, run_id, detach, as_json))


def print_env_report(kind: str, data: Any) -> None:
    """Print resume's flow change report, and the environment differences when there are
    any (with none, nothing is printed and Rich is not imported: a resume's usual case)."""
    if kind != "flow" and not data:
        return
    err = console(stderr=True)
    if kind == "flow":
        if not data:
            err.print("flow: no step changed", markup=False)
        for step_id, change in data:
            err.print(f"flow: step {step_id} {change}", markup=False)
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
    values = pairs(set_, "--set", strict=True)
    engine = open_engine()
    result = interruptible(lambda: with_progress(engine, as_json, lambda: engine.resume(
        run_id, set=values, from_step=from_step, retry_failed=retry_failed, flow=flow,
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
    values = pairs(set_, "--set", strict=True)
    report_run(interruptible(lambda: with_progress(engine, as_json, lambda: engine.fork(
        run_id, from_step=from_step, set=values, on_start=lambda rid: announce(rid, as_json)))),
        as_json, engine)


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
    reads.runs(status, limit, as_json)


@guard
def show(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one run: status, outputs, error and its step records."""
    reads.show(run_id, as_json)
