"""The ``tether`` command line. Every command has ``--json``; errors never show a
traceback unless ``--debug`` is given. Heavy modules are imported inside commands.

  app.py       the Typer app, global options, the error boundary, ``main``
  output.py    consoles, the JSON document, short texts;  args.py: NAME=VALUE values
  report.py    how failures and pauses read;  running.py: a run in the foreground
  runs.py      run, resume, fork, pause, cancel, runs, show
  vars.py      the ``vars`` sub-app;  inspect.py: verify, checkpoints, diff, trace,
               validate, schema, stats;  services.py: shared, serve, worker;
  retention.py gc, rm

This module registers the commands on the app, in the order ``--help`` lists them."""
from __future__ import annotations

from . import inspect, retention, runs, services, vars
from .app import app, main
from .services import SHARED_HELP

for command in (runs.run, runs.resume, runs.fork, runs.pause, runs.cancel, inspect.verify,
                inspect.checkpoints, inspect.diff, runs.runs, runs.show):
    app.command()(command)
app.add_typer(vars.app)
for command in (inspect.trace, inspect.validate, inspect.schema, inspect.stats, retention.gc, retention.rm):
    app.command()(command)
app.command("shared", help=SHARED_HELP)(services.shared)
app.command()(services.serve)
app.command()(services.worker)

__all__ = ["app", "main"]
