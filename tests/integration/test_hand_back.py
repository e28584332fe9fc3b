"""Helper threads of one process hand their outcomes back in groups (engine/hand_back.py),
on a real PostgreSQL store: each thread learns whether its own outcome was stored, the
threads that finish together share one statement, and a lost claim is refused alone."""
from __future__ import annotations

import threading
from typing import Any

from tests.conftest import drop_schema, postgres_url
from tests.contract.helpers import new_run


def test_threads_hand_back_together_and_each_learns_its_own_result():
    from tether.engine.hand_back import HandBack
    from tether.store import codec, open_store
    from tether.store.base import EventWrite
    url = postgres_url()
    store: Any = open_store(url)  # PostgreSQL: has the SharedLoopWork capability
    try:
        run, _ = new_run(store)
        store.start_loop("r1", run.lease_epoch, "each", [codec.encode(i) for i in range(9)],
                         EventWrite("loop.started", "each"))
        store.work_publish("r1", "each", list(range(9)))
        assert [i for i, _ in store.work_claim_many("me", 30.0, "r1", "each", 8)] == list(range(8))
        assert store.work_claim_many("other", 30.0, "r1", "each", 1) == [(8, 8)]
        calls = []
        done_many = store.work_done_many

        def counted(owner, outcomes):  # the real store call, counted
            calls.append(len(outcomes))
            return done_many(owner, outcomes)

        store.work_done_many = counted
        back = HandBack(store, "me", linger=5.0)  # a group waits for every busy thread
        results: dict[int, bool] = {}
        start = threading.Barrier(9)

        def helper(idx: int) -> None:
            back.enter()
            try:
                start.wait()
                results[idx] = back.done("r1", "each", idx, {"status": "completed", "result": idx})
            finally:
                back.leave()

        threads = [threading.Thread(target=helper, args=(i,)) for i in (*range(8), 8)]  # 8: another's claim
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == {**dict.fromkeys(range(8), True), 8: False}
        assert sum(calls) == 9 and len(calls) < 9, calls  # grouped: fewer statements than outcomes
        assert [i for i, _, _ in store.work_collect("r1", "each")] == list(range(8))
    finally:
        store.close()
        drop_schema(url)
