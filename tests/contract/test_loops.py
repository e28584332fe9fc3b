"""Loop storage: a loop's collection stored once, element by element, and one record per
iteration, from which every count is computed."""
from __future__ import annotations

import pytest

from tether.errors import LeaseLost
from tether.store import codec
from tether.store.base import Commit, EventWrite, IterationWrite

from .helpers import new_run


def started(store, items=(10, 20, 30, 40, 50)):
    run, _ = new_run(store)
    n = store.start_loop("r1", run.lease_epoch, "each", [codec.encode(i) for i in items],
                         EventWrite("loop.started", "each", {"k": 1}))
    return run, n


def iteration(idx: int, status: str = "completed", result=None) -> IterationWrite:
    return IterationWrite("each", idx, status, 1, None if result is None else codec.encode(result),
                          {"type": "Boom"} if status == "failed" else None, 1.0, 2.0)


def test_start_loop_stores_the_collection_once_as_one_checkpoint(store):
    run, n = started(store)
    assert n == 5 and store.loop_size("r1", "each") == 5 and store.loop_size("r1", "other") is None
    assert store.load_run("r1").seq == 1
    (ev,) = store.events("r1")
    assert (ev.seq, ev.type, ev.step_id, ev.data) == (1, "loop.started", "each", {"k": 1, "total": 5})
    assert store.loop_items("r1", "each", 0, 5) == [10, 20, 30, 40, 50]
    assert store.loop_items("r1", "each", 1, 3) == [20, 30]
    # a loop that has its collection keeps it: no second checkpoint, the first size
    again = store.start_loop("r1", run.lease_epoch, "each", [codec.encode(1)], EventWrite("loop.started", "each"))
    assert again == 5 and store.loop_items("r1", "each", 0, 10) == [10, 20, 30, 40, 50]
    assert store.load_run("r1").seq == 1


def test_start_loop_is_refused_without_the_lease(store):
    run, _ = new_run(store)
    store.acquire_lease("r1", "other", 30.0, steal_epoch=run.lease_epoch)
    with pytest.raises(LeaseLost):
        store.start_loop("r1", run.lease_epoch, "each", [codec.encode(1)], EventWrite("loop.started", "each"))
    assert store.loop_size("r1", "each") is None and store.load_run("r1").seq == 0


def test_iteration_records_and_the_counts_computed_from_them(store):
    run, _ = started(store)
    store.commit(Commit("r1", run.lease_epoch, iterations=(iteration(0, result="a"), iteration(1, "failed"),
                                                            iteration(3, result={"x": 3}))))
    # a later record of an index replaces the earlier one
    store.commit(Commit("r1", run.lease_epoch, iterations=(iteration(1, result="b"), iteration(4, "failed"))))
    recs = store.iterations("r1", "each")
    assert [(r.idx, r.status, r.result, r.seq) for r in recs] == \
        [(0, "completed", "a", 2), (1, "completed", "b", 3), (3, "completed", {"x": 3}, 2), (4, "failed", None, 3)]
    assert recs[3].error == {"type": "Boom"} and (recs[0].attempts, recs[0].started_at, recs[0].finished_at) == \
        (1, 1.0, 2.0)
    assert [r.idx for r in store.iterations("r1", "each", 1, 4)] == [1, 3]
    assert [r.idx for r in store.iterations("r1", "each", status="failed")] == [4]
    assert store.iteration_counts("r1", "each") == {"completed": 3, "failed": 1}
    assert store.iteration_counts("r1", "other") == {}
    assert store.finished_indices("r1", "each", 0, 5) == {0, 1, 3, 4}
    assert store.finished_indices("r1", "each", 1, 4) == {1, 3}
    assert store.finished_indices("r1", "each", 0, 5, include_failed=False) == {0, 1, 3}
    assert store.finished_per_batch("r1", "each", 2) == {0: 2, 1: 1, 2: 1}
    assert store.finished_per_batch("r1", "each", 2, include_failed=False) == {0: 2, 1: 1}
    assert store.iteration_counts_by_batch("r1", "each", 2) == {(0, "completed"): 2, (1, "completed"): 1,
                                                                (2, "failed"): 1}
    assert store.iteration_counts_by_batch("r1", "other", 2) == {}


def test_last_iteration_is_the_record_with_the_highest_index(store):
    run, _ = started(store)
    assert store.last_iteration("r1", "each") is None
    store.commit(Commit("r1", run.lease_epoch, iterations=(iteration(0, result="a"), iteration(2, "failed"))))
    store.commit(Commit("r1", run.lease_epoch, iterations=(iteration(1, result="b"),)))
    last = store.last_iteration("r1", "each")
    assert last is not None and (last.idx, last.status, last.error, last.seq) == (2, "failed", {"type": "Boom"}, 2)
    store.commit(Commit("r1", run.lease_epoch, iterations=(iteration(4, result={"x": 4}),)))
    last = store.last_iteration("r1", "each")
    assert last is not None and (last.idx, last.result, last.loop_key) == (4, {"x": 4}, "each")
    assert store.last_iteration("r1", "other") is None
