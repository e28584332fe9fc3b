"""``tether --help`` (or ``-h``) and ``tether --version`` without importing Typer: the
help's text, exactly as the app prints it on a terminal of 80 columns or more (or
piped), for the console script and ``python -m tether``. Anything else (a narrower
terminal, more arguments, another platform) goes through the app.
``tests/cli/test_startup.py`` renders the app's help and checks that it is this text:
after changing a command's help, paste the new text here."""
from __future__ import annotations

import os
import sys

ROOT_HELP = """\
Usage: {prog} [OPTIONS] COMMAND [ARGS]...

  Tether runs YAML workflows whose variables and state survive every crash.

  The store is chosen by --db (before or after the command) or TETHER_DB
  (default sqlite:///.tether/tether.db).

Options:
  --db <str>  Store URL: sqlite:///path.db (default
              sqlite:///.tether/tether.db) or memory://  [env var: TETHER_DB]
  --debug     Show tracebacks and debug logs.
  --version   Print the version and exit.
  -h, --help  Show this message and exit.

Commands:
  run          Run FLOW to its end.
  resume       Continue a failed, interrupted or paused run.
  fork         Start and run a new run from RUN's state (RUN itself is...
  pause        Ask a running run to stop after its current step (status...
  cancel       Stop a run now; a running shell step's process group is...
  verify       Re-render every recorded template of the completed steps...
  checkpoints  The run's checkpoints: seq, step, time, variables changed.
  diff         Variables added, removed and changed between two checkpoints.
  runs         List runs, newest first.
  show         Show one run: status, outputs, error and its step records.
  trace        The run's event timeline.
  validate     Check FLOW without running it.
  schema       Print the JSON Schema of flow files (for editor completion...
  stats        Store counts and size, blobs by blob store, what `tether...
  gc           Delete finished runs and everything of theirs (steps,...
  rm           Delete one finished run (completed, failed or cancelled)...
  shared       Shared variables: values that outlive one run, read in...
  serve        The REST API (docs/api.md).
  worker       Claim queued runs (`run --detach`) and runs whose owner...
  vars         Read and write run variables.
"""


def program_name() -> str:
    """The program name the parser puts in its usage line (as click works it out)."""
    main = sys.modules.get("__main__")
    package = getattr(main, "__package__", None)
    if package in (None, ""):
        return os.path.basename(sys.argv[0])
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    module = package if name == "__main__" else f"{package}.{name}"
    return f"python -m {module.lstrip('.')}"


def columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size()`` gives it (``COLUMNS``, else the
    terminal of stdout, else 80), without importing shutil (and its compression modules)."""
    try:
        found = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        found = 0
    if found <= 0:
        try:
            found = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            found = 0
        found = found or 80
    return found


def version_text() -> str:
    """``tether VERSION`` and a newline: the installed package's version (its metadata),
    else the version of the source tree (``tether.__version__``, when run from a checkout)."""
    from importlib import metadata
    try:
        version = metadata.version("tether")
    except metadata.PackageNotFoundError:
        from .. import __version__ as version
    return f"tether {version}\n"


def root_help(args: list[str]) -> str | None:
    """The text of ``tether --help`` (or ``-h``) when ``args`` is just that and the app would
    print exactly it, ``tether --version``'s when ``args`` is just that, else None."""
    if args == ["--version"]:
        return version_text()
    if args not in (["--help"], ["-h"]) or os.name == "nt" or columns() < 80:
        return None
    prog = program_name()
    return ROOT_HELP.format(prog=prog) if 0 < len(prog) <= 40 else None
