"""The Typer app of the ``tether`` command: its global options, the state one command
shares (store URL, ``--debug``, the run it started), and the one error boundary
(``guard`` around each command, ``main`` for the parser's own errors). Commands are
registered on it by ``tether.cli``."""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import typer

from .coerce import install as install_plain_coercion
from .output import console, print_json
from .report import error_doc

install_plain_coercion()
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Tether runs YAML workflows whose variables and state survive every crash.\n\n"
                       "The store is chosen by --db or TETHER_DB (default sqlite:///.tether/tether.db).")


@dataclass
class CommandState:
    """What the global options set for the command being run, and the run it started
    once that run exists (named in error reports)."""
    db: str | None = None
    debug: bool = False
    run_id: str | None = None


state = CommandState()


@app.callback()
def main_options(
    db: str | None = typer.Option(None, "--db", envvar="TETHER_DB",
                                  help="Store URL: sqlite:///path.db "
                                       "(default sqlite:///.tether/tether.db) or memory://"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    state.db, state.debug = db, debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def settings() -> Any:
    """The Settings of this command: ``TETHER_*`` variables, with ``--db`` on top;
    UsageError (exit 2) naming a variable whose value does not parse."""
    from ..settings import Settings
    return Settings.from_env(db=state.db)


def open_engine() -> Any:
    """An Engine on the store chosen by ``--db`` / ``TETHER_DB``, configured by ``settings()``."""
    from ..engine.engine import Engine
    return Engine(settings=settings())


def status_now(run_id: str) -> str | None:
    """The run's status as committed, or None when it cannot be read (no such run, store down)."""
    try:
        from ..engine.lifecycle import status_of
        engine = open_engine()
        try:
            return status_of(engine.record(run_id))
        finally:
            engine.close()
    except Exception:  # only a detail of an error report: never a second error
        return None


def fail(exc: BaseException, as_json: bool = False, run_id: str | None = None) -> None:
    """Report ``exc`` (on stderr; with ``as_json`` also as one document on stdout) and exit
    with its exit code: a TetherError's own, 70 for anything else."""
    from ..errors import TetherError
    if state.debug:
        import traceback
        traceback.print_exception(exc)
    if as_json:  # stdout still gets its one document: the error, and the run where known
        doc: dict[str, Any] = {"error": error_doc(exc)}
        if run_id:
            doc["run_id"] = run_id
            status = status_now(run_id)
            if status is not None:
                doc["status"] = status
        print_json(doc)
    err = console(stderr=True)
    if isinstance(exc, TetherError):
        for line in str(exc).splitlines():
            err.print(f"error: {line}" if not line.startswith(("hint:", "  ")) else line, markup=False)
        raise typer.Exit(exc.exit_code)
    err.print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
              markup=False)
    raise typer.Exit(70)


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
