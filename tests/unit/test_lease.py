"""The heartbeat and named locks on a clock that moves only when the test says so: each
renewal and poll is checked at the exact tick it is due, on a real SQLite store, without
sleeping for a lease's time."""
from __future__ import annotations

import threading

import pytest

from tether.engine.lease import Heartbeat, LockStopped, NamedLock
from tether.store import open_store
from tether.store.base import RunRecord


class TickClock:
    """Time stands still until ``tick()``: each tick lets one wait of the clock's user
    pass (advancing the time by what it waited for) and returns once the user waits
    again (True) or has stopped waiting (False, after ``timeout``)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._ticks = threading.Semaphore(0)
        self._waiting = threading.Event()

    def monotonic(self) -> float:
        return self.now

    def wait(self, event: threading.Event, seconds: float) -> bool:
        self._waiting.set()
        while not self._ticks.acquire(timeout=0.005):
            if event.is_set():
                return True
        self.now += seconds
        return event.is_set()

    def tick(self, timeout: float = 5.0) -> bool:
        assert self._waiting.wait(timeout), "nobody waits on the clock"
        self._waiting.clear()
        self._ticks.release()
        return self._waiting.wait(timeout)


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 't.db'}")
    yield s
    s.close()


def new_run(store, ttl: float) -> RunRecord:
    rec = RunRecord(run_id="r1", name="f", status="running", flow_text="name: f", flow_path=None,
                    inputs={}, cursor={"next": "s1"})
    return store.create_run(rec, "me", ttl)[0]


def test_the_heartbeat_renews_the_lease_every_third_of_its_ttl(store):
    run = new_run(store, 3.0)
    clock = TickClock()
    beat = Heartbeat(store, "r1", run.lease_epoch, 30.0, clock=clock).start()  # renews every 10 s
    try:
        expires = store.load_run("r1").lease_expires
        for _ in range(19):  # polls every 0.5 s: 9.5 s, no renewal due yet
            assert clock.tick()
            assert store.load_run("r1").lease_expires == expires
        assert clock.tick()  # 10 s: renewed, now for 30 s
        renewed = store.load_run("r1").lease_expires
        assert renewed > expires + 20
        for _ in range(19):
            assert clock.tick()
        assert store.load_run("r1").lease_expires == renewed
        assert clock.tick()
        assert store.load_run("r1").lease_expires >= renewed
    finally:
        beat.stop()


def test_the_heartbeat_passes_a_cancel_on_at_its_next_poll(store):
    run = new_run(store, 30.0)
    clock, seen = TickClock(), list[str]()
    beat = Heartbeat(store, "r1", run.lease_epoch, 30.0, on_control=seen.append, clock=clock).start()
    try:
        assert clock.tick() and seen == []
        store.request("r1", "cancel")
        assert clock.tick() and seen == ["cancel"]
    finally:
        beat.stop()


def test_the_heartbeat_stops_renewing_a_lease_taken_over(store, caplog):
    run = new_run(store, 3.0)
    clock = TickClock()
    beat = Heartbeat(store, "r1", run.lease_epoch, 3.0, clock=clock).start()  # renews every second
    try:
        taken = store.acquire_lease("r1", "other", 60.0, steal_epoch=run.lease_epoch)
        assert clock.tick()  # 0.5 s: nothing due
        assert not clock.tick(timeout=0.5)  # 1 s: the renewal is refused and the heartbeat ends
        assert "lease lost to another owner" in caplog.text
        now = store.load_run("r1")
        assert (now.lease_owner, now.lease_epoch, now.lease_expires) == ("other", taken.lease_epoch,
                                                                          taken.lease_expires)
    finally:
        beat.stop()


def test_waiting_for_a_held_lock_polls_until_the_run_stops(store):
    assert store.lock_acquire("db", "other", 30.0)
    clock, stop, outcome = TickClock(), threading.Event(), list[str]()

    def take() -> None:
        try:
            with NamedLock(store, "db", "me", 30.0, stop.is_set, clock=clock):
                outcome.append("held")
        except LockStopped:
            outcome.append("stopped")
    waiter = threading.Thread(target=take)
    waiter.start()
    for _ in range(3):
        assert clock.tick()  # still held by the other owner: it polls again
    stop.set()
    assert not clock.tick(timeout=0.5)  # asked to stop: it gives up at its next poll
    waiter.join(timeout=5)
    assert outcome == ["stopped"]
    assert store.lock_acquire("db", "other", 30.0)  # never taken from its holder
