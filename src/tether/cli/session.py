"""What one ``tether`` command shares, without Typer: the global options (``--db``,
``--debug``), the run it started, its settings, a store or an engine opened on them, and
how a failure is reported (on stderr, and as the one JSON document of ``--json``)."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any


@dataclass
class CommandState:
    """What the global options set for the command being run, and the run it started
    once that run exists (named in error reports)."""
    db: str | None = None
    debug: bool = False
    run_id: str | None = None


state = CommandState()


def set_options(db: str | None, debug: bool) -> None:
    """Take the global options: the store URL and ``--debug`` (debug logs, tracebacks);
    logs go to stderr as ``LEVEL name: message``."""
    import logging
    state.db, state.debug = db, debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def override_options(db: str | None = None, debug: bool = False) -> None:
    """Take a global option given after the command's name, over the one given before:
    the store URL when ``db`` is given, debug logs when ``debug``."""
    import logging
    if db is not None:
        state.db = db
    if debug:
        state.debug = True
        logging.getLogger().setLevel(logging.DEBUG)


def settings() -> Any:
    """The Settings of this command: ``TETHER_*`` variables, with ``--db`` on top;
    UsageError (exit 2) naming a variable whose value does not parse."""
    from ..settings import Settings
    return Settings.from_env(db=state.db)


def open_engine() -> Any:
    """An Engine on the store chosen by ``--db`` / ``TETHER_DB``, configured by ``settings()``."""
    from ..engine.engine import Engine
    return Engine(settings=settings())


def open_reader() -> Any:
    """A Reader (reads only, no Engine) on the store an Engine of ``open_engine()`` would open."""
    from ..queries.reader import Reader
    return Reader(settings())


def status_now(run_id: str) -> str | None:
    """The run's status as committed, or None when it cannot be read (no such run, store down)."""
    try:
        from ..engine.lifecycle import status_of
        reader = open_reader()
        try:
            return status_of(reader.record(run_id))
        finally:
            reader.close()
    except Exception:  # only a detail of an error report: never a second error
        return None


def report_failure(exc: BaseException, as_json: bool = False, run_id: str | None = None) -> int:
    """Report ``exc`` (on stderr; with ``as_json`` also as one document on stdout); the exit
    code to leave with: a TetherError's own, 70 for anything else."""
    from ..errors import TetherError
    from .output import out, print_json
    from .report import error_doc
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
    err = out(stderr=True)
    if isinstance(exc, TetherError):
        for line in str(exc).splitlines():
            err.print(f"error: {line}" if not line.startswith(("hint:", "  ")) else line, markup=False)
        return exc.exit_code
    err.print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
              markup=False)
    return 70
