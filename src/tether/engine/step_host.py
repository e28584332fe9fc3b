"""What one step uses of its run (:class:`StepHost`), implemented by
:class:`~tether.engine.runner.Runner` and used by :mod:`.step_run` and :mod:`.tool_call`."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..flow import LoadedFlow
from ..flow.models import Flow, Step
from ..procs import ProcessGroups
from ..store.base import StepRecord, Store
from ..variables import VarState
from .durable import DurableResults
from .run_commits import RunCommits

if TYPE_CHECKING:
    from .loops import Loops


class StepHost(Protocol):
    """What a step uses of its run (implemented by :class:`~tether.engine.runner.Runner`)."""

    store: Store
    loaded: LoadedFlow
    flow: Flow
    index: dict[str, int]
    run_id: str
    ttl: float
    commits: RunCommits         # the run's variables in memory and its commits
    state: VarState
    base: dict[str, Any]        # the run's template scope
    secrets: list[str]
    loops: Loops
    cancel: threading.Event
    release: threading.Event
    processes: ProcessGroups
    run_child: Callable[..., Any] | None
    settings: Any               # the engine's Settings, handed to tools
    durable: DurableResults     # committed results of tools whose result is durable (tool: model)
    visits: dict[str, int]      # step id -> finished executions (the idempotency key's visit)
    last_error: dict[str, str] | None
    retry_loops: dict[str, str]
    resuming_failed: str | None
    paused_at: dict[str, Any] | None
    resume_set: dict[str, Any]

    def step_scope(self, step: Step, attempt: int, key: str) -> dict[str, Any]: ...
    def bare_lookup(self, let: dict[str, Any] | None) -> Callable[[str], Any]: ...
    def render_block(self, block: dict[str, Any], scope: dict[str, Any], sid: str,
                     field: str) -> dict[str, Any]: ...
    def cursor_at(self, nxt: str | None, pause: dict[str, Any] | None = None) -> dict[str, Any]: ...
    def set_view(self, rec: StepRecord) -> None: ...
    def remember(self, rec: StepRecord) -> None: ...
    def stopping(self) -> bool: ...
    def stop_status(self) -> str: ...
    def save_checkpoint(self, step_id: str, name: str, data: Any) -> None: ...
    def load_checkpoint(self, name: str) -> Any: ...
