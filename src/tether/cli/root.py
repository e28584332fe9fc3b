"""The Typer app of the ``tether`` command: its global options, the state one command
shares (store URL, ``--debug``, the run it started), and the one error boundary
(``guard`` around each command, ``main`` for the parser's own errors). Commands are
registered on it by ``tether.cli``."""
from __future__ import annotations

import os
import sys
from typing import Any

import typer

from .coerce import install as install_plain_coercion
from .output import print_json
from .session import open_engine, report_failure, set_options, settings, state

__all__ = ["app", "fail", "guard", "main", "open_engine", "settings", "state"]

install_plain_coercion()
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Tether runs YAML workflows whose variables and state survive every crash.\n\n"
                       "The store is chosen by --db or TETHER_DB (default sqlite:///.tether/tether.db).")


@app.callback()
def main_options(
    db: str | None = typer.Option(None, "--db", envvar="TETHER_DB",
                                  help="Store URL: sqlite:///path.db "
                                       "(default sqlite:///.tether/tether.db) or memory://"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    set_options(db, debug)


def fail(exc: BaseException, as_json: bool = False, run_id: str | None = None) -> None:
    """Report ``exc`` (see ``session.report_failure``) and exit with its exit code: a
    TetherError's own, 70 for anything else."""
    raise typer.Exit(report_failure(exc, as_json, run_id))


def guard(fn: Any) -> Any:
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
            fail(exc, bool(kwargs.get("as_json")),
                 state.run_id or (named if isinstance(named, str) else None))
    return wrapper


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
        shown: Any = exc  # click's exception (checked above: it has show() and an int exit_code)
        if "--json" in sys.argv[1:]:
            print_json({"error": {"type": "UsageError", "message": shown.format_message()}})
        shown.show()
        code = shown.exit_code
    sys.exit(code if isinstance(code, int) else 0)
