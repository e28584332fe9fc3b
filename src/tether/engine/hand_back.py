"""The outcomes of shared-loop iterations a worker process ran for other processes' loops,
handed back to their runs' owners in groups (PostgreSQL, :class:`SharedLoopWork`).

Every helper thread of a ``tether worker`` hands back each outcome before it starts its next
body, so a worker that dies leaves at most one outcome per thread to be run again. One
statement per outcome made the hand-back a large part of a helper's cost (client and
server CPU per round trip); here the outcomes of the threads that finish while one group
is being written go together in the next statement, and a thread that finds others still
running bodies waits a moment (:data:`LINGER`) for theirs. A thread still returns only once
its own outcome is stored (or refused), so what a killed worker leaves is unchanged."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from ..store.base import SharedLoopWork

LINGER = 0.002  # seconds a thread that writes a group waits for threads still in a body
MOST = 16  # outcomes in one statement at most


@dataclass(eq=False)  # compared by identity: each is one thread's outcome
class _Outcome:
    key: tuple[str, str, int]
    outcome: dict[str, Any]
    stored: bool = False
    finished: bool = False
    error: BaseException | None = None


class HandBack:
    """Hands outcomes back for ``owner`` (this process) from any number of threads, grouping
    those that arrive together into one :meth:`SharedLoopWork.work_done_many`."""

    def __init__(self, work: SharedLoopWork, owner: str, linger: float = LINGER) -> None:
        self.work, self.owner, self.linger = work, owner, linger
        self._cond = threading.Condition()
        self._queue: list[_Outcome] = []
        self._writing = False
        self._busy = 0  # threads between enter() and leave(): in a body, or handing back

    def enter(self) -> None:
        """A thread starts running iterations here (it will hand back what it runs)."""
        with self._cond:
            self._busy += 1

    def leave(self) -> None:
        """A thread stops running iterations here."""
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def done(self, run_id: str, loop_key: str, idx: int, outcome: dict[str, Any]) -> bool:
        """Store the outcome if this owner still holds the claim, False if it lost it; returns
        once it is stored (in one statement with others handed back meanwhile)."""
        mine = _Outcome((run_id, loop_key, idx), outcome)
        with self._cond:
            self._queue.append(mine)
            while not mine.finished and (self._writing or mine not in self._queue[:MOST]):
                self._cond.wait()
            if mine.finished:
                return self._result(mine)
            self._writing = True  # write a group: what is queued, with what comes in a moment
            until = time.monotonic() + self.linger
            while len(self._queue) < min(self._busy, MOST) and (left := until - time.monotonic()) > 0:
                self._cond.wait(left)
            batch, self._queue = self._queue[:MOST], self._queue[MOST:]
        try:
            stored = self.work.work_done_many(self.owner, [(*o.key, o.outcome) for o in batch])
            error: BaseException | None = None
        except BaseException as exc:  # each thread of the group sees the error for its outcome
            stored, error = [False] * len(batch), exc
        with self._cond:
            for o, ok in zip(batch, stored, strict=True):
                o.stored, o.error, o.finished = ok, error, True
            self._writing = False
            self._cond.notify_all()
        return self._result(mine)

    @staticmethod
    def _result(o: _Outcome) -> bool:
        if o.error is not None:
            raise o.error
        return o.stored


__all__ = ["HandBack"]
