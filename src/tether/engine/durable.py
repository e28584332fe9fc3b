"""Durable tool results: what a tool that declares its result durable (``tool: model``)
returned is committed on its own the moment the tool returns, as a ``tool.result`` event
keyed by the step execution's idempotency key, before the step's ``vars`` are rendered.
A later execution under the same key (a resume after a crash or after the step failed in
its ``vars``/``next``, ``resume --flow``, ``--retry-failed``) reuses it instead of
calling the tool again. A rewind (``resume --from``) hides it like any other record, so
the tool is called again there.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..env import mask
from ..store.base import EventWrite, Store, is_hidden

EVENT = "tool.result"

Outcome = tuple[Any, dict[str, Any], int, dict[str, Any]]  # result, meta, attempts, context writes


class DurableResults:
    """A run's committed durable results, read from its events once, on first use (those of
    earlier executions only: what this process records is not kept in memory)."""

    def __init__(self, store: Store, run_id: str, hidden: Any, secrets: list[str],
                 commit: Callable[[EventWrite], object]) -> None:
        self.store, self.run_id, self.hidden, self.secrets = store, run_id, hidden, secrets
        self._commit = commit
        self._lock = threading.Lock()
        self._saved: dict[str, dict[str, Any]] | None = None
        # a worker helping with another process's loop never commits to the run: it reuses
        # committed results but records none (its outcome goes back to the owner)
        self.read_only = False

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._saved is None:
            saved: dict[str, dict[str, Any]] = {}
            for e in self.store.events_of_type(self.run_id, EVENT):
                if isinstance(e.data, dict) and not is_hidden(e.seq, self.hidden):
                    saved[str(e.data.get("key"))] = e.data
            self._saved = saved
        return self._saved

    def lookup(self, key: str) -> Outcome | None:
        """The outcome committed under ``key`` (its meta marked ``reused``), or None. Each key
        is looked up once per execution, so it is dropped from memory here."""
        with self._lock:
            data = self._load().pop(key, None)
        if data is None:
            return None
        meta = dict(data.get("meta") or {})
        meta["reused"] = True
        return data.get("result"), meta, int(data.get("attempts") or 1), dict(data.get("writes") or {})

    def record(self, step_id: str, key: str, outcome: Outcome) -> None:
        """Commit ``outcome`` under ``key`` now (masked like every stored value); nothing when
        :attr:`read_only`."""
        if self.read_only:
            return
        result, meta, attempts, writes = outcome
        data = mask({"key": key, "result": result, "meta": meta, "attempts": attempts, "writes": writes},
                    self.secrets)
        self._commit(EventWrite(EVENT, step_id, data))  # not kept in memory: this execution used it


__all__ = ["EVENT", "DurableResults", "Outcome"]
