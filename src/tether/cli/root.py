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
from .session import open_engine, override_options, report_failure, set_options, settings, state

__all__ = ["App", "app", "fail", "guard", "main", "open_engine", "settings", "state"]

install_plain_coercion()
DB_HELP = "Store URL: sqlite:///path.db (default sqlite:///.tether/tether.db) or memory://"
DEBUG_HELP = "Show tracebacks and debug logs."
HELP_NAMES = {"help_option_names": ["-h", "--help"]}  # -h everywhere: subcommands inherit it


def with_global_options(fn: Any) -> Any:
    """``fn`` as a command that also takes the global options ``--db`` and ``--debug`` after
    its name (`tether runs --db URL`): two more Typer options in its signature, taken (over
    the ones given before the name: the root's callback has run by then) and not passed on."""
    import functools
    import inspect

    @functools.wraps(fn)
    def command(*args: Any, global_db: str | None = None, global_debug: bool = False,
                **kwargs: Any) -> Any:
        override_options(db=global_db, debug=global_debug)
        return fn(*args, **kwargs)

    signature = inspect.signature(fn)
    extra = [inspect.Parameter("global_db", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                               default=typer.Option(None, "--db", metavar="URL",
                                                    help=f"{DB_HELP}; as before the command")),
             inspect.Parameter("global_debug", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                               default=typer.Option(False, "--debug", help=DEBUG_HELP))]
    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *extra])
    command.__annotations__ = {**fn.__annotations__, "global_db": str | None, "global_debug": bool}
    return command


class App(typer.Typer):
    """A Typer app whose commands take the global options after their name too."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        register = super().command(*args, **kwargs)
        return lambda fn: register(with_global_options(fn))


def show_version(value: bool) -> None:
    """The callback of ``--version``: print ``tether VERSION`` and exit 0."""
    if value:
        from .help_text import version_text
        sys.stdout.write(version_text())
        raise typer.Exit()


app = App(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
          rich_markup_mode=None, context_settings=HELP_NAMES,
          help="Tether runs YAML workflows whose variables and state survive every crash.\n\n"
                 "The store is chosen by --db (before or after the command) or TETHER_DB\n"
                 "(default sqlite:///.tether/tether.db).")


@app.callback()
def main_options(
    db: str | None = typer.Option(None, "--db", envvar="TETHER_DB", help=DB_HELP),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=show_version,
                                 help="Print the version and exit."),
) -> None:
    # (no docstring: it would replace the app's help) --db and --debug may also follow the command
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
