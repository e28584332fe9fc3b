"""How a command runs a run in the foreground: loop progress bars on a terminal, the
announcement of the run's id, and SIGTERM/SIGINT/SIGHUP turned into an interrupted run."""
from __future__ import annotations

import sys
from typing import Any

from .output import console, out
from .session import state


class LoopProgress:
    """A Rich progress bar per running loop (items/s and ETA), on a terminal only."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        class Rate(TextColumn):
            def render(self, task: Any) -> Any:
                from rich.text import Text
                speed = task.finished_speed or task.speed
                return Text(f"{speed:,.0f} items/s" if speed else "")
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 Rate(""), TimeRemainingColumn(), console=console(stderr=True),
                                 transient=False)
        self.tasks: dict[str, Any] = {}
        import threading
        self._lock = threading.Lock()  # parallel loop workers report at once

    def __call__(self, event: dict[str, Any]) -> None:
        key = event["loop_key"]
        with self._lock:
            if key not in self.tasks:
                self.tasks[key] = self.progress.add_task(key, total=event["total"],
                                                         completed=event["done"] - 1)
            self.progress.update(self.tasks[key], completed=event["done"])

    def __enter__(self) -> LoopProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()


def with_progress(engine: Any, as_json: bool, fn: Any) -> Any:
    """Run ``fn()`` with loop progress bars when stderr is a terminal and output is for people."""
    if as_json or not sys.stderr.isatty():
        return fn()
    bars = LoopProgress()
    engine.on("loop.progress", bars)
    with bars:
        return fn()


def interruptible(fn: Any) -> Any:
    """Run ``fn()`` (which runs a run in this thread) with SIGTERM, SIGINT and SIGHUP (a
    closed terminal) raising Interrupted: the engine stops the run's step processes and
    hands the run back as interrupted; then the run id and the command that continues it
    are printed on stderr and the process exits 128 + the signal (143 for SIGTERM, 130 for
    SIGINT, 129 for SIGHUP): SystemExit, which Typer's app lets through as it lets
    ``typer.Exit`` out."""
    import signal

    from ..errors import Interrupted
    raised: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        if not raised:  # a second signal must not interrupt the hand-back
            raised.append(signum)
            raise Interrupted(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        return fn()
    except Interrupted as stop:
        import contextlib
        err = console(stderr=True)
        name = signal.Signals(stop.signum).name
        # the run handed back, else the one announced (the signal came before its first step)
        run_id = stop.run_id or state.run_id
        with contextlib.suppress(OSError):  # a hung-up terminal cannot be written to
            if run_id:
                err.print(f"run {run_id} interrupted by {name}; its steps' processes were stopped",
                          markup=False)
                err.print(f"continue it with: tether resume {run_id}", markup=False)
            else:
                err.print(f"interrupted by {name}", markup=False)
        raise SystemExit(128 + stop.signum) from None  # Typer lets SystemExit through as it does typer.Exit
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def announce(run_id: str, as_json: bool) -> None:
    """Say which run started, before its first step, so that a Ctrl-C or a crash leaves the
    user with an id to resume. On stderr: always for people; with ``--json`` only when
    stderr is a terminal (stdout keeps its single document either way)."""
    state.run_id = run_id
    if not as_json or sys.stderr.isatty():
        out(stderr=True).print(f"run {run_id} started; if it stops, continue it with: "
                                   f"tether resume {run_id}", markup=False)
