"""Every error Tether raises derives from :class:`TetherError`.

Each class carries the CLI exit code and the HTTP status it maps to, so neither the
CLI nor the REST API needs a table of its own and a new error cannot be forgotten there.
"""
from __future__ import annotations


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


class TemplateError(TetherError):
    """A template that does not compile, names something undefined, breaks the
    sandbox or exceeds a limit."""


class ToolError(TetherError):
    """A tool attempt failed. ``retryable`` says whether ``retry`` may try again."""

    def __init__(self, message: str, *, type_: str = "ToolError", retryable: bool = True,
                 result: object = None) -> None:
        super().__init__(message)
        self.type = type_
        self.retryable = retryable
        self.result = result


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


class RunFailed(TetherError):
    """Raised by callers who asked for an exception instead of a failed Run."""
