"""Optional capabilities: a backend declares them, and those that do keep their promises."""
from __future__ import annotations

import pytest

from .helpers import new_run, queued

def test_a_run_swept_back_to_pending_counts_as_a_recovery_when_claimed(store):
    if not hasattr(store, "requeue_expired"):
        pytest.skip("only PostgreSQL sweeps expired runs")
    new_run(store, "swept", owner="gone", ttl=-1.0)
    queued(store, "queued")
    assert store.requeue_expired() == ["swept"]
    got = {r.run_id: r.recoveries for r in (store.claim_run("w1", 30.0), store.claim_run("w2", 30.0))}
    assert got == {"swept": 1, "queued": 0}  # a queued run is no recovery
