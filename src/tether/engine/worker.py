"""``tether worker``: processes that claim queued and abandoned runs and execute them.

Guarantees: each claimed run is executed by exactly one worker at a time (claims are
fenced by the run's lease); a worker that dies leaves runs whose lease expires and
which any worker then takes over; a stopping worker (SIGTERM) finishes the step each
run is in, hands the run back as ``pending`` and exits. On PostgreSQL a worker with no
run to claim runs iterations that other workers' parallel loops published, idle
workers wake when the store says a run became claimable instead of polling, and one
worker at a time (elected through the store) sweeps runs with expired leases back to
``pending``. Every worker runs a retention sweeper (:mod:`.retention`), of which one at a
time deletes the finished runs that ``retention:`` or ``TETHER_RETENTION`` expire.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from ..errors import TetherError
from ..store.base import SharedLoopWork, Store, SweeperElection, WakeUps
from .hand_back import HandBack
from .lease import owner_id
from .loop_shared import Claims

log = logging.getLogger(__name__)
IDLE_POLL = 1.0  # seconds between claims when idle and nothing wakes us
ONCE_RECHECK = 0.2  # with --once: seconds before the claim that decides nothing is left
HELP_SECONDS = 2.0  # a helper's turn at one loop, before it looks for runs to claim again


class Worker:
    """Claims and executes runs on ``concurrency`` threads until :meth:`stop`."""

    def __init__(self, engine: Any, concurrency: int = 1, *, once: bool = False) -> None:
        self.engine = engine
        self.concurrency = max(1, int(concurrency))
        self.once = once  # exit when nothing is left to claim (tests, batch jobs)
        self.owner = owner_id()
        self.done = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._active: set[threading.Event] = set()
        store = engine.store  # the outcomes of other processes' iterations go back in groups
        self.hand_back = HandBack(store, self.owner) if isinstance(store, SharedLoopWork) else None

    def wake(self) -> None:
        """A run was just queued here: idle threads look for it now."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; every run in progress stops after its current step and goes
        back to ``pending`` for another worker."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            for release in self._active:
                release.set()

    def abort(self) -> None:
        """Stop now: like :meth:`stop`, but the runs in progress do not finish their step:
        its processes are killed and each run is handed back as ``interrupted``, which a
        worker takes over (a recovery, see ``TETHER_MAX_RECOVERIES``)."""
        self.stop()
        for run_id in self.engine.interrupt_all():
            log.warning("worker: run %s interrupted; its step's processes were killed", run_id)

    def serve(self) -> int:
        """Work until stopped (or, with ``once``, until nothing is claimable); the number
        of runs this worker executed."""
        helpers = []
        if isinstance(self.engine.store, WakeUps):
            helpers.append(threading.Thread(target=self._listen, name="tether-listen", daemon=True))
        if isinstance(self.engine.store, SweeperElection):
            helpers.append(threading.Thread(target=self._sweep, name="tether-sweep", daemon=True))
        for t in helpers:
            t.start()
        from .retention import RetentionSweeper  # retention: and TETHER_RETENTION, one sweeper at a time
        sweeper = RetentionSweeper(self.engine.store, self.engine.settings.retention, self.owner).start()
        threads = [threading.Thread(target=self._loop, name=f"tether-worker-{i}")
                   for i in range(self.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._stop.set()
        sweeper.stop()
        return self.done

    def _loop(self) -> None:
        idle_rounds = 0
        while not self._stop.is_set():
            release = threading.Event()
            with self._lock:
                self._active.add(release)
            try:
                run = self.engine.work_once(self.owner, release)
            except TetherError as exc:  # e.g. the store went away, or another owner fenced us
                log.warning("worker: %s", exc.message)
                run = None
                self._wake.wait(IDLE_POLL)
            finally:
                with self._lock:
                    self._active.discard(release)
            if run is not None:
                idle_rounds = 0
                with self._lock:
                    self.done += 1
                log.info("worker: run %s ended %s", run.id, run.status)
                continue
            try:
                # iterations of another worker's loop
                if help_once(self.engine, self.owner, self.hand_back):
                    continue
            except TetherError as exc:
                log.warning("worker: %s", exc.message)
            if self.once:
                # A claim passes over a row another transaction holds (SKIP LOCKED), such as
                # the sweeper requeueing an expired run at that moment: only a second empty
                # round, after that transaction had time to commit, means nothing is left.
                idle_rounds += 1
                if idle_rounds >= 2:
                    return
                self._stop.wait(ONCE_RECHECK)
                continue
            self._wake.wait(IDLE_POLL)
            if not self._stop.is_set():  # stopping: the wake stays set for every thread
                self._wake.clear()

    def _listen(self) -> None:
        """Wake idle threads when the store says a run became claimable."""
        store = self.engine.store
        while not self._stop.is_set():
            try:
                if store.wait_for_work(1.0):
                    self._wake.set()
            except TetherError as exc:  # the server restarted: listen again after a pause
                log.info("worker: listening again after %s", exc.message)
                self._stop.wait(IDLE_POLL)

    def _sweep(self) -> None:
        """While this worker is the elected sweeper, requeue runs with expired leases."""
        store = self.engine.store
        period = max(1.0, self.engine.lease_seconds / 2)
        while not self._stop.is_set():
            try:
                while not self._stop.is_set():
                    if store.try_become_sweeper():
                        for run_id in store.requeue_expired():
                            log.info("worker: requeued run %s (its owner's lease expired)", run_id)
                    self._stop.wait(period)
            except TetherError as exc:
                log.info("worker: sweeping again after %s", exc.message)
                store.release_sweeper()
                self._stop.wait(IDLE_POLL)
        store.release_sweeper()


def help_once(engine: Any, owner: str, hand_back: HandBack | None = None) -> bool:
    """Run iterations that another process's loop published (PostgreSQL): one of any loop,
    then more of the same loop, claimed a few at a time (:class:`Claims`), for up to
    :data:`HELP_SECONDS`; False when there is none. Each outcome goes back to the run's
    owner, which commits it, before the next iteration starts (through ``hand_back``, which
    groups the outcomes of this process's threads into one statement)."""
    store: Store = engine.store
    if not isinstance(store, SharedLoopWork):
        return False
    claim = store.work_claim(owner, engine.lease_seconds)
    if claim is None:
        return False
    run_id, loop_key, idx, item = claim
    from ..env import read_env, secret_values
    from ..flow import computed_dependencies
    from .runner import Runner
    from .scope import loop_step_key
    record = store.load_run(run_id)
    loaded = engine.stored_flow(record)
    env = read_env(loaded.flow, dict(os.environ))
    runner = Runner(store, loaded, record, env=env, secrets=secret_values(loaded.flow, env),
                    ttl=engine.lease_seconds, emit=lambda *_: None,
                    computed_deps=computed_dependencies(loaded.flow),
                    vault=engine.vault, listening=lambda: False)
    runner.load_committed()  # read only: this process never commits to the run
    runner.processes.persist = None  # nor records its processes there (they still die with it)
    runner.durable.read_only = True  # nor commits durable tool results (a model answer is at least once here)
    runner.settings = engine.settings
    step_id, key = loop_step_key(run_id, loop_key)
    step = loaded.flow.steps[loaded.flow.step_index()[step_id]]
    total = store.loop_size(run_id, loop_key) or 0  # stored when the loop started: read once
    stop = threading.Event()
    current = [idx]

    def renew() -> None:
        while not stop.wait(engine.lease_seconds / 3):  # a lost claim's outcome is refused
            store.work_renew(run_id, loop_key, current[0], owner, engine.lease_seconds)

    threading.Thread(target=renew, daemon=True, name=f"tether-help-{run_id}").start()
    claims = Claims(store, owner, engine.lease_seconds, run_id, loop_key)
    hand_back = hand_back or HandBack(store, owner, linger=0.0)
    hand_back.enter()
    until = time.monotonic() + HELP_SECONDS
    try:
        while True:  # the outcome of each iteration goes back as soon as it is known
            scope = runner.step_scope(step, 1, key)
            outcome = runner.loops.help(step, loop_key, key, idx, item, total, scope)
            hand_back.done(run_id, loop_key, idx, outcome)
            nxt = None if time.monotonic() > until else claims.next()
            if nxt is None:
                return True
            idx, item = nxt
            current[0] = idx
            claims.ran()
    finally:
        hand_back.leave()
        stop.set()
        claims.release()
