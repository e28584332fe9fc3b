"""The ``tether`` command line. Every command has ``--json``; errors never show a
traceback unless ``--debug`` is given. A command imports only what it uses.

  root.py      the Typer app, global options, the error boundary, ``main``
  output.py    consoles, the JSON document, short texts;  args.py: NAME=VALUE values
  coerce.py    plain values coerced without pydantic;  help_text.py: ``tether --help``
  reads.py     the bodies of runs, show, vars, vars get (through queries.Reader, no engine)
  foreground.py  the body of run;  session.py: the global options, settings, store or
               engine, failure reports
  report.py    how failures and pauses read;  running.py: a run in the foreground
  runs.py      run, resume, fork, pause, cancel, runs, show
  vars.py      the ``vars`` sub-app;  inspect.py: verify, checkpoints, diff, trace,
               validate, schema, stats;  services.py: shared, serve, worker;
  retention.py gc, rm

This module knows every command (``COMMANDS``, in the order ``--help`` lists them) and
registers on the app only the one being run: `tether vars RUN` neither imports nor builds
the others. ``app`` (for tests and embedding) has all of them."""
from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing's, without importing typing on `tether --help`
if TYPE_CHECKING:
    from typing import Any

# name: (module, attribute); "vars" is the vars sub-app. The order is --help's.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("runs", "run"), "resume": ("runs", "resume"), "fork": ("runs", "fork"),
    "pause": ("runs", "pause"), "cancel": ("runs", "cancel"), "verify": ("inspect", "verify"),
    "checkpoints": ("inspect", "checkpoints"), "diff": ("inspect", "diff"), "runs": ("runs", "runs"),
    "show": ("runs", "show"), "vars": ("vars", "app"), "trace": ("inspect", "trace"),
    "validate": ("inspect", "validate"), "schema": ("inspect", "schema"), "stats": ("inspect", "stats"),
    "gc": ("retention", "gc"), "rm": ("retention", "rm"),
    "shared": ("services", "shared"), "serve": ("services", "serve"), "worker": ("services", "worker"),
}
_GLOBAL_OPTIONS_WITH_VALUE = ("--db",)
# commands that only read: logging is set up by what may log, not on every start
# (session.defer_logging; `vars set`/`rm`/`history` open an engine, which sets it up)
READS = ("runs", "show", "vars")


def command_at(args: list[str]) -> int | None:
    """Where the command is named on a command line (after the global options), or None
    (none named, or ``--help``/``-h`` before it: the root's help lists every command)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--help", "-h"):
            return None
        if arg in _GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
        elif arg.startswith("-"):
            i += 1
        else:
            return i
    return None


def command_word(args: list[str]) -> str | None:
    """The command named on a command line (see ``command_at``), or None."""
    at = command_at(args)
    return None if at is None else args[at]


_registered: list[Any] = []


def build(only: str | None = None, rest: list[str] | None = None) -> Any:
    """The Typer app with command ``only`` registered, or every command (when ``only`` is
    None or not a command: the parser then lists them or suggests one). ``rest``, what
    follows `vars` on the command line, narrows the vars sub-app to the verb it runs
    (``vars.app_for``); without it the sub-app has every verb."""
    import importlib

    from .root import app
    names = [only] if only in COMMANDS else list(COMMANDS)
    key = [names, rest if only == "vars" else None]
    if _registered == key:
        return app
    app.registered_commands.clear()
    app.registered_groups.clear()
    _registered[:] = key
    for name in names:
        module_name, attribute = COMMANDS[name]
        module = importlib.import_module(f"{__name__}.{module_name}")
        if name == "vars":
            app.add_typer(module.app if rest is None or only != "vars" else module.app_for(rest))
        elif name == "shared":
            app.command("shared", help=module.SHARED_HELP)(module.shared)
        else:
            app.command(name)(getattr(module, attribute))
    return app


def main() -> None:
    """Console-script entry point: ``tether --help`` from its text, any other command line
    through the app with only its command registered."""
    from .help_text import root_help
    text = root_help(sys.argv[1:])
    if text is not None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    args = sys.argv[1:]
    at = command_at(args)
    word = None if at is None else args[at]
    build(word, None if at is None else args[at + 1:])
    if word in READS:
        from .session import defer_logging
        defer_logging()
    from .root import main as run
    run()


def __getattr__(name: str) -> Any:
    if name == "app":
        return build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["COMMANDS", "READS", "app", "build", "command_at", "command_word", "main"]
