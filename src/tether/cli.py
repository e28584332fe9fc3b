"""The ``tether`` command line. Every command has ``--json``; errors never show a
traceback unless ``--debug`` is given. Heavy modules are imported inside commands."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Tether runs YAML workflows whose variables and state survive every crash.\n\n"
                       "The store is chosen by --db or TETHER_DB (default sqlite:///.tether/tether.db).")

EXIT_BY_STATUS = {"completed": 0, "failed": 1, "cancelled": 1, "paused": 3, "running": 0, "pending": 0,
                  "interrupted": 1}


class _G:
    db: str | None = None
    debug: bool = False
    run_id: str | None = None  # the run this command started, once it exists (for error reports)


G = _G()

from .cli_report import error_block, error_doc, error_lines, pause_lines  # noqa: E402


@app.callback()
def main_options(
    db: Optional[str] = typer.Option(None, "--db", envvar="TETHER_DB",
                                     help="Store URL: sqlite:///path.db (default sqlite:///.tether/tether.db) "
                                          "or memory://"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    G.db, G.debug = db, debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


# ------------------------------------------------------------------ helpers

def _console(stderr: bool = False) -> Any:
    """A Rich console on stdout (or stderr). On a terminal, tables fit its width; piped or
    redirected output is read by programs (`tether runs | grep interrupted`), so no cell is
    cut or wrapped to a width there."""
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 1_000_000
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def _engine() -> Any:
    from .engine.engine import Engine
    return Engine(G.db)


def _print_json(doc: Any) -> None:
    import orjson
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


def _status_now(run_id: str) -> str | None:
    """The run's status as committed, or None when it cannot be read (no such run, store down)."""
    try:
        from .engine.lifecycle import status_of
        engine = _engine()
        try:
            return status_of(engine.record(run_id))
        finally:
            engine.close()
    except Exception:  # only a detail of an error report: never a second error
        return None


def _fail(exc: BaseException, as_json: bool = False, run_id: str | None = None) -> None:
    from .errors import TetherError
    if G.debug:
        import traceback
        traceback.print_exception(exc)
    if as_json:  # stdout still gets its one document: the error, and the run where known
        doc: dict[str, Any] = {"error": error_doc(exc)}
        if run_id:
            doc["run_id"] = run_id
            status = _status_now(run_id)
            if status is not None:
                doc["status"] = status
        _print_json(doc)
    err = _console(stderr=True)
    if isinstance(exc, TetherError):
        for line in str(exc).splitlines():
            err.print(f"error: {line}" if not line.startswith(("hint:", "  ")) else line, markup=False)
        raise typer.Exit(exc.exit_code)
    err.print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", markup=False)
    raise typer.Exit(70)


def _guard(fn: Any) -> Any:
    """The CLI boundary of a command: every error becomes a message on stderr and an exit
    code, and with ``--json`` also one JSON document ``{"error": {...}}`` on stdout."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            named = kwargs.get("run_id")
            _fail(exc, bool(kwargs.get("as_json")), G.run_id or (named if isinstance(named, str) else None))
    return wrapper


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses as JSON (integers kept exact, so one the
    store cannot hold is refused rather than turned into a float), else the text itself."""
    import orjson
    from .store import codec
    try:
        return codec.loads_exact(text)
    except orjson.JSONDecodeError:
        return text


def _pairs(items: list[str] | None, what: str) -> dict[str, Any]:
    from .errors import UsageError
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{what} must look like NAME=VALUE, not {item!r}")
        out[name.strip()] = parse_value(value)
    return out


def _iso(t: float | None) -> str | None:
    from .views import iso
    return iso(t)


class _LoopProgress:
    """A Rich progress bar per running loop (items/s and ETA), on a terminal only."""

    def __init__(self) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn)

        class Rate(TextColumn):
            def render(self, task: Any) -> Any:
                from rich.text import Text
                speed = task.finished_speed or task.speed
                return Text(f"{speed:,.0f} items/s" if speed else "")
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 Rate(""), TimeRemainingColumn(), console=_console(stderr=True), transient=False)
        self.tasks: dict[str, Any] = {}
        import threading
        self._lock = threading.Lock()  # parallel loop workers report at once

    def __call__(self, event: dict[str, Any]) -> None:
        key = event["loop_key"]
        with self._lock:
            if key not in self.tasks:
                self.tasks[key] = self.progress.add_task(key, total=event["total"], completed=event["done"] - 1)
            self.progress.update(self.tasks[key], completed=event["done"])

    def __enter__(self) -> "_LoopProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()


def _with_progress(engine: Any, as_json: bool, fn: Any) -> Any:
    """Run ``fn()`` with loop progress bars when stderr is a terminal and output is for people."""
    if as_json or not sys.stderr.isatty():
        return fn()
    bars = _LoopProgress()
    engine.on("loop.progress", bars)
    with bars:
        return fn()


def _interruptible(fn: Any) -> Any:
    """Run ``fn()`` (which runs a run in this thread) with SIGTERM and SIGINT raising
    Interrupted: the engine stops the run's step processes and hands the run back as
    interrupted; then the run id and the command that continues it are printed on stderr
    and the process exits 128 + the signal (143 for SIGTERM, 130 for SIGINT)."""
    import signal
    from .errors import Interrupted
    raised: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        if not raised:  # a second signal must not interrupt the hand-back
            raised.append(signum)
            raise Interrupted(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return fn()
    except Interrupted as stop:
        err = _console(stderr=True)
        name = signal.Signals(stop.signum).name
        if stop.run_id:
            err.print(f"run {stop.run_id} interrupted by {name}; its steps' processes were stopped", markup=False)
            err.print(f"continue it with: tether resume {stop.run_id}", markup=False)
        else:
            err.print(f"interrupted by {name}", markup=False)
        raise typer.Exit(128 + stop.signum) from None
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


from .views import event_doc as _event_doc, run_doc as _run_doc, step_doc as _step_doc, var_doc as _var_doc  # noqa: E402


def _short(value: Any, width: int = 60) -> str:
    import orjson
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def _report_run(run: Any, as_json: bool) -> None:
    if as_json:
        _print_json(_run_doc(run))
    else:
        con = _console()
        colour = {"completed": "green", "failed": "red", "paused": "yellow"}.get(run.status, "cyan")
        con.print(f"run [bold]{run.id}[/] ({run.name}): [{colour}]{run.status}[/]")
        for line in error_block(run.error) if run.error else ():
            con.print(line, markup=False)
        for line in pause_lines(run.id, run.pause) if run.status == "paused" else ():
            con.print(line, markup=False)
        for k, v in (run.outputs or {}).items():
            con.print(f"  {k} = {_short(v, 200)}", markup=False)
    raise typer.Exit(EXIT_BY_STATUS.get(run.status, 1))


def _announce(run_id: str, as_json: bool) -> None:
    """Say which run started, before its first step, so that a Ctrl-C or a crash leaves the
    user with an id to resume. On stderr: always for people; with ``--json`` only when
    stderr is a terminal (stdout keeps its single document either way)."""
    G.run_id = run_id
    if not as_json or sys.stderr.isatty():
        _console(stderr=True).print(f"run {run_id} started; if it stops, continue it with: tether resume {run_id}",
                                    markup=False)


# ------------------------------------------------------------------ commands

@app.command()
@_guard
def run(
    flow: Path = typer.Argument(..., help="Flow file (.yaml, .yml or .json)."),
    input_: Optional[List[str]] = typer.Option(None, "-i", "--input", help="Input NAME=VALUE (JSON or text)."),
    inputs_file: Optional[Path] = typer.Option(None, "--inputs", help="JSON file of inputs."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Run id; an existing id returns that run."),
    detach: bool = typer.Option(False, "--detach", help="Queue the run for `tether worker` and print its id."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Run FLOW to its end. Exit 0 completed, 1 failed, 2 bad flow or input, 3 paused;
    SIGTERM or Ctrl-C stops the running step's processes and leaves the run interrupted
    (exit 143 or 130), printing the `tether resume` command that continues it.
    With --detach: queue it (status pending), print its id and exit 0."""
    from .errors import UsageError
    inputs: dict[str, Any] = {}
    if inputs_file is not None:
        import orjson
        from .store import codec
        try:
            data = codec.loads_exact(inputs_file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise UsageError(f"--inputs {inputs_file}: cannot read a JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"--inputs {inputs_file}: must hold a JSON object")
        inputs.update(data)
    inputs.update(_pairs(input_, "-i"))
    engine = _engine()
    if detach:
        queued = engine.run(flow, inputs, run_id=run_id, detach=True)
        if as_json:
            _print_json(_run_doc(queued))
        else:
            print(queued.id)
        return
    result = _interruptible(lambda: _with_progress(engine, as_json, lambda: engine.run(
        flow, inputs, run_id=run_id, on_start=lambda rid: _announce(rid, as_json))))
    if not result.created and not as_json:
        _console(stderr=True).print(f"run {result.id} already exists; not started again", markup=False)
    _report_run(result, as_json)


def _print_env_report(kind: str, data: Any) -> None:
    err = _console(stderr=True)
    if kind == "flow":
        if not data:
            err.print("flow: no step changed", markup=False)
        for step_id, change in data:
            err.print(f"flow: step {step_id} {change}", markup=False)
        return
    if not data:
        return
    from rich.table import Table
    table = Table("variable", "change", "policy", "recorded", "now", title="environment since the run started")
    for c in data:
        table.add_row(c.name, c.change, c.policy, "(secret)" if c.secret else str(c.old),
                      "(secret)" if c.secret else str(c.new))
    err.print(table)


@app.command()
@_guard
def resume(
    run_id: str = typer.Argument(...),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Write variable NAME=VALUE before anything "
                                                                 "runs, in the transaction that takes the run over."),
    from_step: Optional[str] = typer.Option(None, "--from", help="Rewind to the checkpoint before STEP first "
                                                                 "started and continue from there."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Re-run the failed iterations of loops (also "
                                                                    "in a completed run), then the steps after them."),
    flow: Optional[Path] = typer.Option(None, "--flow", help="Continue with this new version of the flow file."),
    rerun_changed: bool = typer.Option(False, "--rerun-changed", help="With --flow: re-run the first changed "
                                                                      "step that had completed, and those after it."),
    env: Optional[List[str]] = typer.Option(None, "--env", help="Environment override NAME=VALUE."),
    env_policy: Optional[str] = typer.Option(None, "--env-policy", help="warn, fail or keep for every variable."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Continue a failed, interrupted or paused run. Completed steps never run again.

    Exit 0 completed, 1 failed, 3 paused again, 4 owned by another live process or
    environment refused (nothing changed)."""
    env_values = {k: v if isinstance(v, str) else __import__("orjson").dumps(v).decode()
                  for k, v in _pairs(env, "--env").items()}
    engine = _engine()
    result = _interruptible(lambda: _with_progress(engine, as_json, lambda: engine.resume(
        run_id, set=_pairs(set_, "--set"), from_step=from_step, retry_failed=retry_failed, flow=flow,
        rerun_changed=rerun_changed, env=env_values, env_policy=env_policy, report=_print_env_report)))
    _report_run(result, as_json)


@app.command()
@_guard
def fork(
    run_id: str = typer.Argument(...),
    from_step: Optional[str] = typer.Option(None, "--from", help="Start from the checkpoint before STEP first ran."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Variable NAME=VALUE for the new run."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Start and run a new run from RUN's state (RUN itself is not changed)."""
    engine = _engine()
    _report_run(_interruptible(lambda: engine.fork(run_id, from_step=from_step, set=_pairs(set_, "--set"))), as_json)


@app.command()
@_guard
def pause(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Ask a running run to stop after its current step (status paused; resume continues it)."""
    _engine().pause(run_id)
    if as_json:
        _print_json({"run_id": run_id, "requested": "pause"})
    else:
        _console().print(f"run {run_id}: pause requested; it stops after its current step", markup=False)


@app.command()
@_guard
def cancel(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Stop a run now; a running shell step's process group is killed."""
    before = _engine().cancel(run_id)
    msg = "cancel requested; its owner stops it now" if before == "running" else "cancelled"
    if as_json:
        _print_json({"run_id": run_id, "requested": "cancel", "status_before": before})
    else:
        _console().print(f"run {run_id}: {msg}", markup=False)


@app.command()
@_guard
def verify(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Re-render every recorded template of the completed steps against the state as of that step
    and report results that differ (exit 1 if any). Templates calling now(), timestamp() or uuid(),
    or reading run.attempt or run.resumed, are reported as volatile."""
    report = _engine().verify(run_id)
    if as_json:
        _print_json(report)
    else:
        con = _console()
        for d in report["differences"]:
            con.print(f"DIFFERS step {d['step']} (checkpoint {d['seq']}) {d['field']}: recorded "
                      f"{_short(d['recorded'], 60)}, re-rendered {_short(d['rendered'], 60)}", markup=False)
        for v in report["volatile"]:
            con.print(f"volatile step {v['step']} {v['field']} (calls now/timestamp/uuid or reads "
                      "run.attempt/run.resumed; not compared)",
                      markup=False)
        con.print(f"{report['checked']} completed steps checked: "
                  f"{'clean' if report['ok'] else str(len(report['differences'])) + ' difference(s)'}", markup=False)
    raise typer.Exit(0 if report["ok"] else 1)


@app.command()
@_guard
def checkpoints(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """The run's checkpoints: seq, step, time, variables changed."""
    rows = _engine().checkpoints(run_id)
    docs = [{**r, "at": _iso(r["at"])} for r in rows]
    if as_json:
        _print_json(docs)
        return
    from rich.table import Table
    table = Table("seq", "at", "step", "events", "variables changed")
    for d in docs:
        table.add_row(str(d["seq"]), (d["at"] or "")[11:23], ", ".join(d["steps"]), ", ".join(d["events"]),
                      ", ".join(d["vars"]))
    _console().print(table)


@app.command()
@_guard
def diff(run_id: str = typer.Argument(...), a: str = typer.Argument(..., help="Checkpoint seq or step id."),
         b: str = typer.Argument(..., help="Checkpoint seq or step id."),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Variables added, removed and changed between two checkpoints."""
    d = _engine().diff(run_id, a, b)
    if as_json:
        _print_json(d)
        return
    con = _console()
    con.print(f"checkpoint {d['from']} -> {d['to']}", markup=False)
    for n, v in d["added"].items():
        con.print(f"+ {n} = {_short(v, 100)}", style="green", markup=False)
    for n, v in d["removed"].items():
        con.print(f"- {n} = {_short(v, 100)}", style="red", markup=False)
    for n, v in d["changed"].items():
        con.print(f"~ {n}: {_short(v['from'], 48)} -> {_short(v['to'], 48)}", style="yellow", markup=False)
    if not (d["added"] or d["removed"] or d["changed"]):
        con.print("no differences", markup=False)


@app.command()
@_guard
def runs(
    status: Optional[str] = typer.Option(None, "--status", help="Only runs with this status."),
    limit: int = typer.Option(20, "--limit", min=1, max=10000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List runs, newest first."""
    records = _engine().runs(status, limit)
    from .engine.lifecycle import status_of
    docs = [{"run_id": r.run_id, "name": r.name, "status": status_of(r), "parent_id": r.parent_id,
             "created_at": _iso(r.created_at), "finished_at": _iso(r.finished_at), "seq": r.seq}
            for r in records]
    if as_json:
        _print_json(docs)
        return
    from rich.table import Table
    table = Table("run", "flow", "status", "started", "checkpoints")
    table.columns[0].no_wrap = True
    for d in docs:
        table.add_row(d["run_id"], d["name"], d["status"], (d["created_at"] or "")[:19], str(d["seq"]))
    _console().print(table)


@app.command()
@_guard
def show(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one run: status, outputs, error and its step records."""
    engine = _engine()
    rec = engine.record(run_id)
    steps = engine.steps(run_id)
    from .engine.lifecycle import status_of
    doc = {"run_id": rec.run_id, "status": status_of(rec), "outputs": rec.outputs, "error": rec.error,
           "flow": rec.name, "parent_id": rec.parent_id, "created_at": _iso(rec.created_at),
           "started_at": _iso(rec.started_at), "finished_at": _iso(rec.finished_at), "seq": rec.seq,
           "steps": [_step_doc(s) for s in steps]}
    if as_json:
        _print_json(doc)
        return
    con = _console()
    con.print(f"run [bold]{rec.run_id}[/] flow {rec.name}: {doc['status']} (checkpoint {rec.seq})")
    con.print(f"  started {doc['started_at']}" + (f"  finished {doc['finished_at']}" if doc["finished_at"] else ""),
              markup=False)
    pause = rec.cursor.get("pause") if isinstance(rec.cursor, dict) else None
    for line in pause_lines(rec.run_id, pause) if doc["status"] == "paused" else ():
        con.print(line, markup=False)
    for line in error_block(rec.error) if rec.error else ():
        con.print(line, markup=False)
    from rich.table import Table
    table = Table("seq", "step", "status", "attempts", "duration", "result / error")
    for s in steps:
        d = _step_doc(s)
        table.add_row(str(s.seq), s.step_id, s.status, str(s.attempts),
                      f"{d['duration']:.3f}s" if d["duration"] is not None else "",
                      _short(error_lines(s.error)[0] if s.error else s.result))
    con.print(table)
    for s in steps:  # the failures the run went past (on_failure), in full
        if isinstance(s.error, dict) and s.status == "failed" and {**s.error, "step": s.step_id} != rec.error:
            for line in error_block(s.error, f"step {s.step_id} (checkpoint {s.seq}) failed"):
                con.print(line, markup=False)
    for k, v in (rec.outputs or {}).items():
        con.print(f"  output {k} = {_short(v, 200)}", markup=False)


VARS_HELP = """Read and write run variables.

\b
  tether vars RUN                          all variables
  tether vars get RUN NAME [--reveal]      one variable with metadata
  tether vars set RUN NAME VALUE [--expect-version N] [--secret] [--temp]
  tether vars rm RUN NAME [--expect-version N]
  tether vars history RUN NAME             every write, with its checkpoint

VALUE is parsed as JSON when it parses, else taken as text."""


@app.command("vars", help=VARS_HELP)
@_guard
def vars_(
    args: List[str] = typer.Argument(..., metavar="[get|set|rm|history] RUN [NAME] [VALUE]"),
    expect_version: Optional[int] = typer.Option(None, "--expect-version", min=0,
                                                 help="Refuse the write unless the variable is at this "
                                                      "version (0: must not exist). Exit 4 otherwise."),
    temp: bool = typer.Option(False, "--temp", help="With set: a temp variable, removed when the run ends."),
    secret: bool = typer.Option(False, "--secret", help="With set: store the value encrypted; shown as ***."),
    reveal: bool = typer.Option(False, "--reveal", help="With get: show a secret variable's value."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    from .errors import UsageError
    engine = _engine()
    verbs = {"get": 2, "set": 3, "rm": 2, "history": 2}
    if args[0] in verbs and len(args) > 1:
        verb, rest = args[0], args[1:]
        if len(rest) != verbs[verb]:
            raise UsageError(f"usage: tether vars {verb} RUN NAME" + (" VALUE" if verb == "set" else ""))
    elif len(args) == 1:
        verb, rest = "list", args
    else:
        raise UsageError("usage: tether vars RUN | tether vars get|set|rm|history RUN NAME [VALUE]")
    con = _console()
    if verb == "list":
        values = engine.vars(rest[0])
        if as_json:
            _print_json(values)
            return
        from rich.table import Table
        table = Table("name", "value")
        for k, v in values.items():
            table.add_row(k, _short(v, 100))
        con.print(table)
    elif verb == "get":
        doc = _var_doc(engine.variable(rest[0], rest[1], reveal=reveal))
        if as_json:
            _print_json(doc)
            return
        con.print(_short(doc["value"], 10_000), markup=False)
        if doc["type"] == "computed":
            con.print("type computed: evaluated now from the run's committed state", style="dim", markup=False)
            return
        con.print(f"type {doc['type']}, scope {doc['scope']}, version {doc['version']}, "
                  f"written by {doc['source_step']} at {doc['updated_at']}, read {doc['access_count']} times",
                  style="dim", markup=False)
    elif verb == "set":
        rec = engine.set_var(rest[0], rest[1], parse_value(rest[2]), expect_version,
                             scope="temp" if temp else "run", source="cli", secret=secret)
        if as_json:
            _print_json(_var_doc(rec))
        else:
            con.print(f"{rec.name} = {_short(rec.value, 200)} (version {rec.version})", markup=False)
    elif verb == "rm":
        engine.delete_var(rest[0], rest[1], expect_version, source="cli")
        if as_json:
            _print_json({"run_id": rest[0], "var_name": rest[1], "deleted": True})
        else:
            con.print(f"removed {rest[1]}", markup=False)
    else:
        rows = engine.history(rest[0], rest[1])
        docs = [{"version": h.version, "value": None if h.deleted else h.value, "seq": h.seq,
                 "source_step": h.source_step, "at": _iso(h.at), **({"deleted": True} if h.deleted else {})}
                for h in rows]
        if as_json:
            _print_json(docs)
            return
        from rich.table import Table
        table = Table("version", "checkpoint", "written by", "at", "value")
        for d in docs:
            table.add_row(str(d["version"]), str(d["seq"]), str(d["source_step"]), (d["at"] or "")[:23],
                          "(deleted)" if d.get("deleted") else _short(d["value"], 80))
        con.print(table)


@app.command()
@_guard
def trace(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """The run's event timeline."""
    events = _engine().events(run_id)
    docs = [_event_doc(e) for e in events]
    if as_json:
        _print_json(docs)
        return
    from rich.table import Table
    table = Table("seq", "at", "event", "step", "data")
    for d in docs:
        table.add_row(str(d["seq"]), (d["at"] or "")[11:23], d["type"], d["step_id"] or "", _event_text(d["data"]))
    _console().print(table)


def _event_text(data: Any) -> str:
    """An event's data in the trace table: a failure's error in full (a loop's lists its
    failed iterations), anything else shortened."""
    error = data.get("error") if isinstance(data, dict) else None
    if error:
        return "\n".join(error_lines(error, traceback=False))
    return _short(data, 80) if data else ""


@app.command()
@_guard
def validate(flow: Path = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Check FLOW without running it. Prints every problem as file:line:col: message; exit 2 if any."""
    from .errors import FlowError
    from .spec import load_flow
    try:
        loaded = load_flow(flow)
    except FlowError as exc:
        if as_json:
            _print_json({"valid": False, "problems": exc.problem_docs(), "error": error_doc(exc)})
        else:
            err = _console(stderr=True)
            for p in exc.problems:
                err.print(p, markup=False)
            err.print(f"{len(exc.problems)} problem(s) found", markup=False)
        raise typer.Exit(2)
    if as_json:
        _print_json({"valid": True, "problems": [], "name": loaded.flow.name, "steps": len(loaded.flow.steps)})
    else:
        _console().print(f"{flow}: ok ({loaded.flow.name}, {len(loaded.flow.steps)} steps)", markup=False)


@app.command()
@_guard
def schema() -> None:
    """Print the JSON Schema of flow files (for editor completion and checking)."""
    from .spec import json_schema
    _print_json(json_schema())


@app.command()
@_guard
def stats(as_json: bool = typer.Option(False, "--json")) -> None:
    """Store counts and the template compile-cache hit rate over finished runs."""
    engine = _engine()
    s = dict(engine.store.stats())
    total = s["template_hits"] + s["template_misses"]
    s["template_hit_rate"] = round(s["template_hits"] / total, 6) if total else None
    s["store"] = engine.store.url
    if as_json:
        _print_json(s)
        return
    from rich.table import Table
    table = Table("what", "value")
    for k in ("store", "runs", "steps", "vars", "var_history", "events", "blobs", "bytes",
              "template_hits", "template_misses", "template_hit_rate"):
        v = s.get(k)
        table.add_row(k, f"{v:.2%}" if k == "template_hit_rate" and v is not None else str(v))
    _console().print(table)


from . import cli_services  # noqa: E402,F401  (registers `tether shared`, `worker` and `serve`)


def main() -> None:
    """Console-script entry point. A usage error found while parsing the command line
    (unknown option, missing argument) is reported like any other: with ``--json``, also
    as one JSON document on stdout."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        print("Aborted!", file=sys.stderr)
        code = 1
    except Exception as exc:  # the parser's errors (click's UsageError and kin) can show themselves
        if not (hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int)):
            raise
        if "--json" in sys.argv[1:]:
            _print_json({"error": {"type": "UsageError", "message": exc.format_message()}})
        exc.show()
        code = exc.exit_code
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
