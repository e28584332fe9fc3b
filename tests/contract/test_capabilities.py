"""Optional capabilities: a backend declares each one it has (``isinstance`` against the
capability's protocol), and a backend that declares one keeps its promises. Tests of a
capability a backend does not declare are skipped, naming the capability."""
from __future__ import annotations

import time

import pytest

from tether.store import codec, open_store
from tether.store.base import Commit, EventWrite, IterationWrite, SharedLoopWork, SweeperElection, WakeUps

from .helpers import new_run, queued

# which backend declares which capability: a change here is a change of the contract
DECLARED = {
    "memory": set(),
    "sqlite": set(),
    "postgresql": {SharedLoopWork, WakeUps, SweeperElection},
}


def needs(store, capability: type) -> None:
    if not isinstance(store, capability):
        pytest.skip(f"{store.url.split(':')[0]} does not declare {capability.__name__}")


def test_each_backend_declares_its_capabilities(store):
    kind = store.url.split(":")[0]
    declared = {c for c in (SharedLoopWork, WakeUps, SweeperElection) if isinstance(store, c)}
    assert declared == DECLARED[kind]


def test_a_run_swept_back_to_pending_counts_as_a_recovery_when_claimed(store):
    needs(store, SweeperElection)
    new_run(store, "swept", owner="gone", ttl=-1.0)
    queued(store, "queued")
    assert store.requeue_expired() == ["swept"]
    got = {r.run_id: r.recoveries for r in (store.claim_run("w1", 30.0), store.claim_run("w2", 30.0))}
    assert got == {"swept": 1, "queued": 0}  # a queued run is no recovery


def test_one_store_at_a_time_is_the_sweeper(store):
    needs(store, SweeperElection)
    other = open_store(store.url)
    assert isinstance(other, SweeperElection)  # the same backend as store
    try:
        assert store.try_become_sweeper() and store.try_become_sweeper()  # it stays the sweeper
        assert not other.try_become_sweeper()
        store.release_sweeper()
        assert other.try_become_sweeper() and not store.try_become_sweeper()
        other.release_sweeper()
        other.release_sweeper()  # no error when not the sweeper
        assert store.try_become_sweeper()
    finally:
        other.close()


def test_a_notification_wakes_a_waiting_worker(store):
    needs(store, WakeUps)
    store.wait_for_work(0.05)  # starts listening (another test's notification may wake it)
    store.notify()
    assert store.wait_for_work(5.0)
    t = time.monotonic()
    store.wait_for_work(0.2)  # returns by its timeout at the latest, woken or not
    assert time.monotonic() - t < 3.0


def test_queueing_a_run_wakes_a_waiting_worker(store):
    needs(store, WakeUps)
    store.wait_for_work(0.05)
    queued(store, "q")
    assert store.wait_for_work(5.0)


def test_shared_loop_work_is_claimed_once_and_handed_back(store):
    needs(store, SharedLoopWork)
    run, _ = new_run(store)
    store.start_loop("r1", run.lease_epoch, "each", [codec.encode(i) for i in (10, 20, 30)],
                     EventWrite("loop.started", "each"))
    assert store.work_claim("w1", 30.0) is None  # nothing offered yet
    store.work_publish("r1", "each", [0, 1, 2])
    store.work_publish("r1", "each", [0])  # offered already: left as it is
    assert store.work_left("r1", "each") == 3
    assert store.work_claim("w1", 30.0) == ("r1", "each", 0, 10)
    assert store.work_claim("w2", 30.0, "r1", "each") == ("r1", "each", 1, 20)
    assert store.work_claim("w3", 30.0, "r1", "other") is None
    assert store.work_renew("r1", "each", 0, "w1", 30.0)
    assert not store.work_renew("r1", "each", 0, "w2", 30.0)  # not w2's claim
    assert store.work_done("r1", "each", 0, "w1", {"status": "completed", "result": 1})
    assert not store.work_done("r1", "each", 1, "w1", {"status": "completed"})  # w2 holds it
    assert not store.work_renew("r1", "each", 0, "w1", 30.0)  # done: no claim to renew
    assert store.work_collect("r1", "each") == [(0, {"status": "completed", "result": 1}, 10)]
    store.work_remove("r1", "each", [0])
    store.work_remove("r1", "each", [])
    assert store.work_collect("r1", "each") == [] and store.work_left("r1", "each") == 2


def test_several_outcomes_are_handed_back_in_one_call(store):
    needs(store, SharedLoopWork)
    run, _ = new_run(store)
    store.start_loop("r1", run.lease_epoch, "each", [codec.encode(i) for i in (10, 20, 30)],
                     EventWrite("loop.started", "each"))
    store.work_publish("r1", "each", [0, 1, 2])
    assert store.work_claim_many("w1", 30.0, "r1", "each", 2) == [(0, 10), (1, 20)]
    assert store.work_claim_many("w2", 30.0, "r1", "each", 1) == [(2, 30)]
    assert store.work_done_many("w1", []) == []
    assert store.work_done_many("w1", [("r1", "each", 1, {"status": "completed", "result": 2}),
                                       ("r1", "each", 2, {"status": "completed"}),  # w2's claim
                                       ("r1", "each", 0, {"status": "failed"})]) == [True, False, True]
    assert store.work_done_many("w1", [("r1", "each", 0, {"status": "completed"})]) == [False]  # done already
    assert store.work_collect("r1", "each") == [(0, {"status": "failed"}, 10),
                                                (1, {"status": "completed", "result": 2}, 20)]


def test_an_expired_claim_of_loop_work_is_claimed_again(store):
    needs(store, SharedLoopWork)
    run, _ = new_run(store)
    store.start_loop("r1", run.lease_epoch, "each", [codec.encode("a")], EventWrite("loop.started", "each"))
    store.work_publish("r1", "each", [0])
    assert store.work_claim("dead", -1.0) == ("r1", "each", 0, "a")
    assert store.work_claim("w", 30.0) == ("r1", "each", 0, "a")
    assert not store.work_done("r1", "each", 0, "dead", {"status": "completed"})
    assert store.work_done("r1", "each", 0, "w", {"status": "completed"})


def test_loop_work_is_claimed_in_batches_and_released(store):
    needs(store, SharedLoopWork)
    run, _ = new_run(store)
    store.start_loop("r1", run.lease_epoch, "each", [codec.encode(i) for i in (10, 20, 30, 40)],
                     EventWrite("loop.started", "each"))
    assert store.work_claim_many("w1", 30.0, "r1", "each", 3) == []  # nothing offered yet
    store.work_publish("r1", "each", [0, 1, 2, 3])
    assert store.work_claim_many("w1", 30.0, "r1", "each", 3) == [(0, 10), (1, 20), (2, 30)]
    assert store.work_claim_many("w2", 30.0, "r1", "other", 3) == []
    assert store.work_claim_many("w2", 30.0, "r1", "each", 0) == [(3, 40)]  # at least one
    assert store.work_claim_many("w2", 30.0, "r1", "each", 3) == []  # all held
    store.work_release("r1", "each", [1, 2, 3], "w1")  # 3 is w2's: left as it is
    store.work_release("r1", "each", [], "w1")
    assert store.work_claim_many("w3", 30.0, "r1", "each", 5) == [(1, 20), (2, 30)]
    assert not store.work_renew("r1", "each", 1, "w1", 30.0) and store.work_renew("r1", "each", 3, "w2", 30.0)
    assert store.work_left("r1", "each") == 4


def test_committing_an_iteration_removes_its_loop_work(store):
    needs(store, SharedLoopWork)
    run, _ = new_run(store)
    store.start_loop("r1", run.lease_epoch, "each", [codec.encode(i) for i in (10, 20, 30)],
                     EventWrite("loop.started", "each"))
    store.work_publish("r1", "each", [0, 1, 2])
    assert store.work_claim_many("w1", 30.0, "r1", "each", 2) == [(0, 10), (1, 20)]
    store.commit(Commit("r1", run.lease_epoch, iterations=(
        IterationWrite("each", 0, "completed", 1, codec.encode(1), None, 1.0, 2.0),
        IterationWrite("each", 2, "completed", 1, codec.encode(3), None, 1.0, 2.0))))
    assert store.work_left("r1", "each") == 1  # 1 is still claimed
    assert not store.work_done("r1", "each", 0, "w1", {"status": "completed"})  # committed: no claim left
    assert store.work_claim_many("w2", 30.0, "r1", "each", 3) == []
