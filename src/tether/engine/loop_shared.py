"""A parallel loop whose iterations any worker may run (a store that shares loops:
PostgreSQL). The run's owner publishes the unfinished iterations; its own threads and
idle workers elsewhere claim them; the owner commits every one, its own as they finish
and the others' outcomes as they arrive, each at most once."""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any, cast

from ..flow.models import Step
from ..store.base import SharedLoopWork
from .lease import owner_id
from .loop_commit import Iteration, IterationCommits
from .loop_host import LoopHost

POLL = 0.02  # seconds between looks at a shared loop's outcomes (collector) or its end (loop threads)
IDLE_COLLECT = 0.1  # at most, between the collector's looks after 0.1 s without any


class Claims:
    """One loop thread's claims of a shared loop's iterations, taken a few at a time in
    one round trip (1, doubling while every claim is granted and a batch runs well within
    a claim's lease, up to :data:`MOST`). A claim held past a third of its lease is renewed
    before its body starts, and skipped if it was lost; those never started are released
    (open again) when the thread ends."""

    MOST = 8

    def __init__(self, work: SharedLoopWork, owner: str, ttl: float, run_id: str, loop_key: str) -> None:
        self.work, self.owner, self.ttl, self.run_id, self.loop_key = work, owner, ttl, run_id, loop_key
        self.n = 1
        self.held: deque[tuple[int, Any]] = deque()
        self.claimed_at = 0.0
        self.started = 0

    def next(self) -> tuple[int, Any] | None:
        """The next claimed iteration to run, ``(index, element)``; None if none is open."""
        while True:
            if not self.held:
                self._claim()
                if not self.held:
                    return None
            idx, element = self.held.popleft()
            if time.monotonic() - self.claimed_at < self.ttl / 3 or \
                    self.work.work_renew(self.run_id, self.loop_key, idx, self.owner, self.ttl):
                return idx, element

    def ran(self) -> None:
        """The claim returned by :meth:`next` was started."""
        self.started += 1

    def _claim(self) -> None:
        if self.started:  # how the last batch went
            took = time.monotonic() - self.claimed_at
            if self.started == self.n and took < self.ttl / 6:
                self.n = min(self.n * 2, self.MOST)
            elif took > self.ttl / 6:
                self.n = max(1, self.n // 2)
        self.started = 0
        self.claimed_at = time.monotonic()
        self.held.extend(self.work.work_claim_many(self.owner, self.ttl, self.run_id, self.loop_key, self.n))

    def release(self) -> None:
        """Give back the claims never started (best effort: else they expire)."""
        if self.held:
            with suppress(Exception):  # else they expire
                self.work.work_release(self.run_id, self.loop_key, [i for i, _ in self.held], self.owner)
            self.held.clear()


class SharedLoop:
    """Runs one run's shared loops; ``iteration`` runs one iteration's body (the owner's
    :meth:`Loops.iteration`), with ``replay`` for an outcome another worker recorded."""

    def __init__(self, host: LoopHost, commits: IterationCommits,
                 iteration: Callable[..., Iteration]) -> None:
        self.host, self.commits, self.iteration = host, commits, iteration

    def run(self, step: Step, scope: dict[str, Any], loop_key: str, key: str, total: int, pending: list[int],
            state: dict[str, Any], allowed: int, retry_failed: bool, errors: list[BaseException]) -> None:
        """Publish ``pending`` (the unfinished iterations); ``parallel`` threads here and any
        idle worker elsewhere claim and run them; return once every one is committed or the
        loop stops (``state["stop"]``, too many failures, the run stopping). An exception of
        a thread is appended to ``errors``."""
        host, commits, iteration = self.host, self.commits, self.iteration
        store, run_id = host.store, host.run_id
        work = cast(SharedLoopWork, store)  # run only on a store that declares it (Loops._shares)
        work.work_publish(run_id, loop_key, pending)
        # committed already (by this run's earlier owners too): a claim of one of them, left
        # by an owner that died between its commit and removing the claim, is dropped
        # (none when every iteration is pending: nothing to read)
        done_before = set() if len(pending) == total else \
            store.finished_indices(run_id, loop_key, 0, total, include_failed=not retry_failed)
        me = f"{owner_id()}/{run_id}"
        lock = threading.Lock()

        def count(its: list[Iteration]) -> None:
            with lock:
                for it in its:
                    state["done"] += 1
                    state["failed"] += it.status == "failed"

        def stopped() -> bool:
            return bool(state["stop"]) or state["failed"] > allowed or host.stopping()

        def local() -> None:
            claims = Claims(work, me, host.ttl, run_id, loop_key)
            try:
                while not stopped():
                    claim = claims.next()
                    if claim is None:
                        if work.work_left(run_id, loop_key) == 0:
                            return
                        time.sleep(POLL)  # others hold the rest; a dead worker's claims expire
                        continue
                    if claim[0] in done_before:
                        work.work_remove(run_id, loop_key, [claim[0]])
                        continue
                    it = iteration(step, loop_key, key, claim[0], claim[1], total, scope)
                    claims.ran()
                    commits.submit(it)  # its loop_work row goes with its commit
                    count([it])
            except BaseException as exc:
                errors.append(exc)
                state["stop"] = "error"
            finally:
                claims.release()

        ended = threading.Event()  # every loop thread has returned

        def collect() -> None:
            # longer while no worker hands anything back (each look scans the loop's rows)
            empty = 0
            try:
                while not stopped():
                    done = work.work_collect(run_id, loop_key)
                    if not done:
                        if ended.is_set():
                            return
                        empty += 1
                        ended.wait(POLL if empty * POLL < IDLE_COLLECT else IDLE_COLLECT)
                        continue
                    empty = 0
                    indices = [i for i, _, _ in done]
                    # committed already, by this run's earlier owners or here (the set commits
                    # keeps up to date): no read of the store needed
                    batch = []
                    for idx, outcome, element in done:
                        if idx in done_before:
                            continue
                        it = iteration(step, loop_key, key, idx, element, total, scope,
                                       replay=outcome["bodies"])
                        it.started, it.finished = outcome["started"], outcome["finished"]
                        batch.append(it)
                    if batch:  # with the loop threads' iterations ready by then, in one commit
                        commits.submit_all(batch)  # their loop_work rows go with the commit
                        count(batch)
                    ran = {it.idx for it in batch}
                    work.work_remove(run_id, loop_key, [i for i in indices if i not in ran])
            except BaseException as exc:
                errors.append(exc)
                state["stop"] = "error"

        threads = [threading.Thread(target=local, name=f"tether-{step.id}-{i}", daemon=True)
                   for i in range(step.parallel)]
        collector = threading.Thread(target=collect, name=f"tether-{step.id}-collect", daemon=True)
        with commits.shared(loop_key, done_before), commits.grouped(loop_key, f"tether-{step.id}-commit"):
            for t in threads:
                t.start()
            collector.start()
            for t in threads:
                t.join()
            ended.set()
            collector.join()


__all__ = ["SharedLoop"]
