"""Every error Tether raises derives from :class:`TetherError`.

Each class carries the CLI exit code and the HTTP status it maps to, so neither the
CLI nor the REST API needs a table of its own and a new error cannot be forgotten there.
"""
from __future__ import annotations

import re


class TetherError(Exception):
    """Root of every error Tether raises on purpose."""

    exit_code = 1
    http_status = 400  # bad input unless a subclass says otherwise

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class UsageError(TetherError):
    """Bad argument from the caller: an invalid id, a malformed NAME=VALUE."""

    exit_code = 2


class UnstorableValue(UsageError):
    """A value the store cannot hold: larger than the value limit, nested too deeply, not
    JSON, or a number JSON cannot hold (NaN, ±Infinity, an integer beyond 64 bits).

    ``field`` names the value (``result``, ``vars.x``, ``result[3].id``), ``reason`` says
    which limit it broke, ``where`` (e.g. ``step 'fetch'``) who produced it.
    ``retryable`` is False when no retry can help (a type JSON has no form for)."""

    def __init__(self, field: str, reason: str, *, where: str | None = None, retryable: bool = True) -> None:
        super().__init__(f"{where}, field '{field}': {reason}" if where else f"{field}: {reason}")
        self.field, self.reason, self.where, self.retryable = field, reason, where, retryable

    def at(self, where: str) -> UnstorableValue:
        """The same error, said of the value that ``where`` produced."""
        return UnstorableValue(self.field, self.reason, where=where, retryable=self.retryable)

    def error(self) -> dict[str, str]:
        """The ``{type, message}`` a failed step or run records."""
        return {"type": "UnstorableValue", "message": self.message}


class FlowError(TetherError):
    """A flow file that cannot be loaded or does not validate.

    ``problems`` holds every problem found, each already formatted as
    ``file:line:col: message``.
    """

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]

    def __str__(self) -> str:
        return "\n".join(self.problems)

    def problem_docs(self) -> list[dict[str, object]]:
        """Each problem as ``{file, line, column, message}``; line and column are None for a
        problem about the whole file (missing, too large)."""
        out: list[dict[str, object]] = []
        for text in self.problems:
            m = _WHERE.match(text)
            if m:
                out.append({"file": m["file"], "line": int(m["line"]), "column": int(m["column"]),
                            "message": m["message"]})
            else:
                file, sep, message = text.partition(": ")
                out.append({"file": file if sep else None, "line": None, "column": None,
                            "message": message if sep else text})
        return out


_WHERE = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<column>\d+): (?P<message>.*)$", re.S)


class TemplateError(TetherError):
    """A template that does not compile, names something undefined, breaks the
    sandbox or exceeds a limit."""


class InputFileError(TemplateError):
    """A loop's ``foreach_file`` that is missing, not a regular file or not JSON: it fails
    the loop step as a template error does, named as what it is."""


class ToolError(TetherError):
    """A tool attempt failed. ``retryable`` says whether ``retry`` may try again."""

    def __init__(self, message: str, *, type_: str = "ToolError", retryable: bool = True,
                 result: object = None, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.type = type_
        self.retryable = retryable
        self.result = result
        self.details = details or {}  # more members of the step's error, e.g. ``traceback``


class StoreError(TetherError):
    """The state store failed: a driver error, a full disk, a locked database."""

    http_status = 503


class CorruptRecord(StoreError):
    """A stored row that cannot be decoded; names the run and the record."""

    http_status = 500


class ConflictError(TetherError):
    """A write lost a race: a stale variable version, a lease held by another owner."""

    exit_code = 4
    http_status = 409


class LeaseLost(ConflictError):
    """This process no longer owns the run; its writes are refused (fencing)."""


class StateMoved(ConflictError):
    """Someone else committed to the run since the writer last read its state, so a write
    fenced on that state (``Commit.fenced``) was refused; nothing was written."""


class EnvironmentMismatch(ConflictError):
    """The environment changed in a way the flow refuses to resume with."""


class NotFound(TetherError):
    """A run, variable, step or checkpoint that does not exist."""

    exit_code = 5
    http_status = 404


class MaxRecoveriesExceeded(TetherError):
    """A run was taken over from a dead owner too many times without making progress:
    something in it keeps killing the process that runs it. A person's resume still works."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM, SIGINT or SIGHUP reached the process while it ran a run (raised by the CLI's signal
    handler in the main thread). Like KeyboardInterrupt, and unlike every TetherError, no
    error handler may swallow it: it must unwind the run. ``run_id`` names the run that was
    handed back (the outermost one, for a sub-flow)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.run_id: str | None = None
