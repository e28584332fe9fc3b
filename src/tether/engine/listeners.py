"""The callbacks of ``Engine.on``: registered by event name or family, called after each
committed event in the run's thread; a failing callback is logged and never affects the run."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..errors import UsageError

log = logging.getLogger("tether.engine.engine")  # the name this log always had
EVENT_KINDS = ("run.", "step.", "var.")
Callback = Callable[[dict[str, Any]], None]


class Listeners:
    """Callbacks by event name (``step.completed``), family (``step.*``) or ``*``."""

    def __init__(self) -> None:
        self._by_event: dict[str, list[Callback]] = {}
        self._lock = threading.Lock()

    def add(self, event: str, callback: Callback) -> None:
        """Call ``callback`` after each committed event ``event``; UsageError for a name
        that is no event, family or ``*``."""
        if not (event == "*" or event.startswith(EVENT_KINDS) or event.startswith("loop.")):
            raise UsageError(f"unknown event {event!r}: use run.*, step.*, var.* or an exact name")
        with self._lock:
            self._by_event.setdefault(event, []).append(callback)

    def any(self) -> bool:
        """Whether anyone listens (events are only built then)."""
        return bool(self._by_event)

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        """Call every callback of ``event``, its family and ``*`` with ``{event, **payload}``."""
        if not self._by_event:
            return
        family = event.split(".", 1)[0] + ".*"
        for key in (event, family, "*"):
            for cb in self._by_event.get(key, ()):
                try:
                    cb({"event": event, **payload})
                except Exception:  # a listener's bug must not break the run
                    log.exception("event listener for %s failed", event)
