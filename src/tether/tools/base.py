"""What a tool receives and returns."""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ToolContext:
    """The step context a tool (and a python callable's ``ctx`` parameter) sees.

    ``vars`` is a read-only snapshot of the run's variables when the attempt started;
    a tool that starts a process makes it die with this one (``tether.procs.die_with_parent``),
    reports its group to ``processes`` and waits for it in the calling thread;
    ``set_var`` buffers a write that is committed together with the step, so a
    failed or re-run step never leaves a half-applied write behind.
    """

    run_id: str
    step_id: str
    attempt: int
    idempotency_key: str
    vars: Mapping[str, Any]
    base_dir: str
    timeout: float | None
    db_url: str
    cancel: threading.Event = field(default_factory=threading.Event)
    writes: dict[str, Any] = field(default_factory=dict)
    run_child: Callable[..., Any] | None = None
    processes: Any = None  # tether.procs.ProcessGroups: a tool that starts processes registers their groups
    flow: Any = None       # the run's Flow: top-level blocks a tool reads (``models:``)
    settings: Any = None   # the engine's tether.settings.Settings (None: read from the environment)
    blobs_url: str | None = None  # the store's TETHER_BLOBS, for the processes a step starts
    _save: Callable[[str, Any], None] | None = None
    _load: Callable[[str], Any] | None = None

    def set_var(self, name: str, value: Any) -> None:
        """Set run variable ``name`` when this step commits."""
        from ..ids import check_var_name
        from ..store import codec
        check_var_name(name)
        codec.checked(value, f"ctx.set_var({name!r})")
        self.writes[name] = value


    def checkpoint(self, name: str, data: Any) -> None:
        """Commit ``data`` under ``name`` at once, so that after a crash :meth:`restore`
        returns it and a long task can continue where it was."""
        from ..ids import check_var_name
        from ..store import codec
        check_var_name(name)
        codec.checked(data, f"ctx.checkpoint({name!r})")
        if self._save is None:
            raise RuntimeError("checkpoints are not available in this context")
        self._save(name, data)

    def restore(self, name: str) -> Any:
        """The last data saved with :meth:`checkpoint` under ``name`` in this run, or None."""
        if self._load is None:
            return None
        return self._load(name)


class ChildPaused(Exception):
    """Raised by the flow tool when its child run paused: the parent pauses too."""

    def __init__(self, child_id: str, message: Any) -> None:
        super().__init__(child_id)
        self.child_id, self.message = child_id, message


@dataclass(frozen=True)
class ToolResult:
    """A tool's result (any JSON value) and its metadata (duration, exit code, status...)."""

    result: Any
    meta: dict[str, Any] = field(default_factory=dict)


class Tool(Protocol):
    def __call__(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Run one attempt. Raise ToolError to fail it (``retryable`` decides retries)."""
