"""A run its owner stopped on purpose (``control`` HELD) is not claimed; a person's
takeover clears the mark (fix-serve, item 2)."""
from __future__ import annotations

from tether.store.base import SweeperElection, Takeover
from tether.store.records import HELD

from .helpers import new_run


def test_an_interrupted_run_is_claimed_unless_its_owner_held_it(store):
    for rid in ("free", "held"):
        run, _ = new_run(store, rid)
        if rid == "held":
            store.request(rid, HELD)
        store.release_lease(rid, run.lease_epoch)
    if isinstance(store, SweeperElection):  # PostgreSQL's sweeper does not requeue it either
        assert store.requeue_expired() == ["free"]
    claimed = store.claim_run("worker", 30.0)
    assert claimed is not None and claimed.run_id == "free"
    assert store.claim_run("worker", 30.0) is None  # the held one waits
    record = store.load_run("held")
    assert record.effective_status() == "interrupted" and record.control == HELD
    taken = store.acquire_lease("held", "person", 30.0,
                                takeover=Takeover("running", record.cursor, expect_status=("running",)))
    assert taken.control is None
    store.release_lease("held", taken.lease_epoch)
    again = store.claim_run("worker", 30.0)  # once resumed, it is a run like any other
    assert again is not None and again.run_id == "held"
