"""Run ownership: the owner id of this process and the heartbeat that renews a lease."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..errors import LeaseLost, StoreError
from ..store.base import Store

log = logging.getLogger(__name__)
_NONCE = os.urandom(3).hex()  # as secrets.token_hex(3), without importing secrets (hashlib, hmac)


class Clock(Protocol):
    """The time a heartbeat and a named lock keep: tests give one that advances only when
    told, so renewals are exact and no test sleeps for a lease's time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait up to ``seconds`` for ``event``; whether it is set."""


class SystemClock:
    """The real clock: ``time.monotonic`` and ``Event.wait``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(seconds)


SYSTEM_CLOCK = SystemClock()


def owner_id() -> str:
    """``host:pid:nonce`` — names this process as a lease holder."""
    import socket  # here: a read command never needs it
    return f"{socket.gethostname()}:{os.getpid()}:{_NONCE}"


class Heartbeat:
    """Renews a run's lease every third of its time-to-live until stopped.

    When another owner took the run over, renewals stop (with a warning); the runner's
    next commit is refused by the store anyway (fencing), so nothing is written. Between
    renewals it polls the run every ``POLL_SECONDS`` for a cancel or pause request.
    """

    POLL_SECONDS = 0.5

    def __init__(self, store: Store, run_id: str, epoch: int, ttl: float,
                 on_control: Callable[[str], None] | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store, self.run_id, self.epoch, self.ttl = store, run_id, epoch, ttl
        self.on_control, self.clock = on_control, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"tether-lease-{run_id}")

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _loop(self) -> None:
        renew_every = self.ttl / 3
        clock = self.clock
        next_renewal = clock.monotonic() + renew_every
        while not clock.wait(self._stop, min(self.POLL_SECONDS, renew_every)):
            if self.on_control is not None:  # a cancel must reach a step that is running now
                try:
                    control = self.store.poll(self.run_id)[1]
                except StoreError:
                    control = None
                if control:
                    self.on_control(control)
            if clock.monotonic() < next_renewal:
                continue
            next_renewal = clock.monotonic() + renew_every
            try:
                self.store.renew_lease(self.run_id, self.epoch, self.ttl)
            except LeaseLost:
                log.warning("run %s: lease lost to another owner", self.run_id, extra={"run_id": self.run_id})
                return
            except StoreError as exc:
                log.warning("run %s: lease renewal failed: %s", self.run_id, exc,
                            extra={"run_id": self.run_id})

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


class LockStopped(Exception):
    """Waiting for a named lock ended because the run was asked to stop."""


class NamedLock:
    """A step's ``lock:``: held from before the step until after its commit, exclusive
    across runs, processes and machines sharing the store; renewed every third of its
    time-to-live, so a holder that dies frees it within ``ttl`` seconds. Waiting polls
    with a growing pause (up to 0.2 s) and gives up when ``stopping()`` becomes true."""

    def __init__(self, store: Store, name: str, owner: str, ttl: float, stopping: Callable[[], bool],
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.store, self.name, self.owner, self.ttl, self.stopping = store, name, owner, ttl, stopping
        self.clock = clock
        self._done = threading.Event()

    def __enter__(self) -> NamedLock:
        pause = 0.005
        while not self.store.lock_acquire(self.name, self.owner, self.ttl):
            if self.stopping():
                raise LockStopped(self.name)
            self.clock.wait(self._done, pause)  # not set while waiting: a sleep on the clock
            pause = min(pause * 1.5, 0.2)
        threading.Thread(target=self._renew, daemon=True, name=f"tether-lock-{self.name}").start()
        return self

    def _renew(self) -> None:
        while not self.clock.wait(self._done, self.ttl / 3):
            try:
                if not self.store.lock_renew(self.name, self.owner, self.ttl):
                    log.warning("lock %s: lost (held longer than its lease without renewal)", self.name)
                    return
            except StoreError as exc:
                log.warning("lock %s: renewal failed: %s", self.name, exc)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        try:
            self.store.lock_release(self.name, self.owner)
        except StoreError as err:  # it expires on its own
            log.warning("lock %s: release failed: %s", self.name, err)
