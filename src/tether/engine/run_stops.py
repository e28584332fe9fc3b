"""How a run's walk ends early, as control flow between the runner and a step: the run
fails at a step, or stops before one. Both are caught by ``Runner.execute``, which commits
the end; neither leaves the engine."""
from __future__ import annotations

from typing import Any

from .attempts import StepFailed


class FailRun(Exception):
    """The run fails; a resume continues at step ``at``."""

    def __init__(self, error: dict[str, Any], at: str | None = None) -> None:
        super().__init__(error.get("message"))
        self.error, self.at = error, at


class StopRun(Exception):
    """The run stops before step ``at`` as ``status`` (paused, cancelled or pending).

    Raised, never StepFailed, by a tool call that a stop request cut short (``cut``: the
    attempt it ended, for the step's record): whatever runs the tool — a step, a loop's
    iteration — stops with the run instead of counting a failure."""

    def __init__(self, status: str, at: str | None, pause: dict[str, Any] | None = None,
                 cut: StepFailed | None = None) -> None:
        super().__init__(status)
        self.status, self.at, self.pause, self.cut = status, at, pause, cut
