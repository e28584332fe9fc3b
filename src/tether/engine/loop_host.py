"""What a loop needs from the run it belongs to (:class:`LoopHost`), so the loop modules
know the runner only through these names and never import it."""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Protocol, TypeVar

from ..spec import LoadedFlow
from ..spec.models import Step
from ..store.base import IterationWrite, Store, VarWrite
from ..variables import VarState

T = TypeVar("T")


class LoopHost(Protocol):
    """The run a loop belongs to (implemented by :class:`~tether.engine.runner.Runner`)."""

    store: Store
    loaded: LoadedFlow
    run_id: str
    epoch: int
    ttl: float
    state: VarState             # the run's variables in memory; a batch renders against them
    secrets: list[str]          # texts masked out of anything stored or shown
    commit_lock: threading.RLock  # held by whoever commits for the run (loop threads included)
    emit: Callable[[str, dict[str, Any]], None]
    listening: Callable[[], bool]

    def commit(self, *, writes: Iterable[VarWrite] = (), iterations: tuple[IterationWrite, ...] = ()) -> int:
        """One fenced commit of the run; StateMoved (nothing written) if anyone else committed since."""

    def settle(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` (render, then one :meth:`commit`) until its commit is accepted,
        reloading what others committed in between."""

    def took_commit(self, seq: int) -> None:
        """The store committed for the run outside :meth:`commit` (a loop's start), and the run is at ``seq`` now."""

    def call_tool(self, step: Step, args: dict[str, Any], key: str,
                  where: str | None = None) -> tuple[Any, dict[str, Any], int, dict[str, Any]]:
        """Run a step's tool through its attempts: ``(result, meta, attempts, context writes)``."""

    def render_block(self, block: dict[str, Any], scope: dict[str, Any], sid: str, field: str) -> dict[str, Any]:
        """Render a ``vars`` block against one state."""

    def stage_writes(self, values: dict[str, Any], vtype: str, source: str, block: str = "vars") -> list[VarWrite]:
        """Apply ``values`` to :attr:`state` and return the writes of those that changed."""

    def stopping(self) -> bool:
        """Whether the run was asked to stop taking work."""

    def stop_status(self) -> str:
        """The status a stop ends in."""
