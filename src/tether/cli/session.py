"""What one ``tether`` command shares, without Typer: the global options (``--db``,
``--debug``), the run it started, its settings, a store or an engine opened on them, and
how a failure is reported (on stderr, and as the one JSON document of ``--json``)."""
from __future__ import annotations

import sys
from typing import Any


class CommandState:
    """What the global options set for the command being run, the run it started once
    that run exists (named in error reports), and whether its logging waits for code that
    logs (``defer_logging``). A plain class: a dataclass costs its creation on every start."""

    __slots__ = ("db", "debug", "logging_deferred", "run_id")

    def __init__(self) -> None:
        self.db: str | None = None
        self.debug = False
        self.run_id: str | None = None
        self.logging_deferred = False


state = CommandState()


def defer_logging() -> None:
    """The command being run is a read (`runs`, `show`, `vars`): ``set_options`` leaves
    logging alone unless ``--debug``, and what may log sets it up first (``open_engine``,
    which `vars set`/`rm`/`history` use). A read imports no module that logs
    (tests/cli/test_startup.py), so nothing can be logged before that; the one exception,
    `vars get` of a computed variable, evaluates it with ``Runner.load_committed``, which
    logs nothing. It saves importing and configuring ``logging`` (~3 ms) on every read."""
    state.logging_deferred = True


def set_options(db: str | None, debug: bool) -> None:
    """Take the global options: the store URL and ``--debug`` (debug logs, tracebacks);
    logs go to stderr as ``LEVEL name: message`` (see ``log_to_stderr``)."""
    state.db, state.debug = db, debug
    if debug or not state.logging_deferred:
        log_to_stderr()


def log_to_stderr() -> None:
    """From now on, logs go to stderr as ``LEVEL name: message``, from DEBUG with
    ``--debug``, else from WARNING (idempotent: ``logging.basicConfig``)."""
    import logging
    logging.basicConfig(level=logging.DEBUG if state.debug else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def override_options(db: str | None = None, debug: bool = False) -> None:
    """Take a global option given after the command's name, over the one given before:
    the store URL when ``db`` is given, debug logs when ``debug``."""
    if db is not None:
        state.db = db
    if debug:
        import logging
        state.debug = True
        log_to_stderr()  # set up here when a read deferred it
        logging.getLogger().setLevel(logging.DEBUG)


def settings() -> Any:
    """The Settings of this command: ``TETHER_*`` variables, with ``--db`` on top;
    UsageError (exit 2) naming a variable whose value does not parse."""
    from ..settings import Settings
    return Settings.from_env(db=state.db)


def open_engine() -> Any:
    """An Engine on the store chosen by ``--db`` / ``TETHER_DB``, configured by ``settings()``."""
    from ..engine.engine import Engine
    log_to_stderr()
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
