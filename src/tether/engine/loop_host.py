"""What a loop needs from the run it belongs to (:class:`LoopHost`), so the loop modules
know the runner only through these names and never import it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..flow import LoadedFlow
from ..flow.models import Step
from ..store.base import Store
from .run_commits import RunCommits


class LoopHost(Protocol):
    """The run a loop belongs to (implemented by :class:`~tether.engine.runner.Runner`)."""

    store: Store
    loaded: LoadedFlow
    run_id: str
    epoch: int
    ttl: float
    commits: RunCommits         # the run's variables in memory and its commits (lock, settle, staged writes)
    secrets: list[str]          # texts masked out of anything stored or shown
    emit: Callable[[str, dict[str, Any]], None]
    listening: Callable[[], bool]

    def call_tool(self, step: Step, args: dict[str, Any], key: str,
                  where: str | None = None) -> tuple[Any, dict[str, Any], int, dict[str, Any]]:
        """Run a step's tool through its attempts: ``(result, meta, attempts, context writes)``."""

    def render_block(self, block: dict[str, Any], scope: dict[str, Any], sid: str,
                     field: str) -> dict[str, Any]:
        """Render a ``vars`` block against one state."""

    def stopping(self) -> bool:
        """Whether the run was asked to stop taking work."""

    def stop_status(self) -> str:
        """The status a stop ends in."""
