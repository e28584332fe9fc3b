"""Runs and leases: creating, loading, listing and claiming runs, and who may write to them."""
from __future__ import annotations

import threading

import pytest

from tether.errors import ConflictError, LeaseLost, NotFound
from tether.store.base import Commit, EventWrite, RunRecord, Takeover

from .helpers import new_run, queued, var


def test_create_run_is_idempotent_and_takes_the_lease(store):
    run, created = new_run(store)
    assert created and run.lease_owner == "me" and run.lease_epoch == 1 and run.seq == 0
    again, created2 = new_run(store, owner="other")
    assert not created2 and again.lease_owner == "me" and again.inputs == {"a": 1}


def test_load_unknown_run_is_not_found(store):
    with pytest.raises(NotFound):
        store.load_run("nope")


def test_a_held_lease_cannot_be_taken_but_an_expired_one_can(store):
    new_run(store, ttl=30.0)
    with pytest.raises(ConflictError, match="owned by me"):
        store.acquire_lease("r1", "other", 30.0)
    new_run(store, "r2", ttl=-1.0)
    assert store.acquire_lease("r2", "other", 30.0).lease_owner == "other"
    assert store.load_run("r2").effective_status() == "running"


def test_release_lease_marks_the_run_free(store):
    run, _ = new_run(store)
    store.release_lease("r1", run.lease_epoch)
    assert store.load_run("r1").lease_owner is None
    assert store.acquire_lease("r1", "other", 30.0).lease_owner == "other"


def test_expired_running_run_is_interrupted(store):
    new_run(store, ttl=-5.0)
    assert store.load_run("r1").effective_status() == "interrupted"


def test_list_runs_newest_first_with_filters(store):
    for rid in ("a1", "a2", "a3"):
        new_run(store, rid)
    assert [r.run_id for r in store.list_runs()] == ["a3", "a2", "a1"]
    assert [r.run_id for r in store.list_runs(limit=1, before="a3")] == ["a2"]
    assert store.list_runs(status="completed") == []


def test_list_runs_orders_by_creation_time_then_id_and_pages_by_a_run_id(store):
    created = {"zz-oldest": 100.0, "m-tie": 200.0, "n-tie": 200.0, "a-newest": 300.0, "b-middle": 250.0}
    for rid, t in created.items():
        store.create_run(RunRecord(run_id=rid, name="f", status="running", flow_text="name: f", flow_path=None,
                                   inputs={}, created_at=t, cursor={"next": "s1"}), "me", 30.0)
    order = ["a-newest", "b-middle", "n-tie", "m-tie", "zz-oldest"]  # equal times: greater id first
    assert [r.run_id for r in store.list_runs()] == order
    assert [r.run_id for r in store.list_runs(status="running", limit=2)] == order[:2]
    pages, before = [], None
    while True:
        page = store.list_runs(limit=2, before=before)
        if not page:
            break
        pages.append([r.run_id for r in page])
        before = page[-1].run_id
    assert pages == [order[:2], order[2:4], order[4:]]
    assert [r.run_id for r in store.list_runs(status="running", before="n-tie")] == order[3:]
    with pytest.raises(NotFound):
        store.list_runs(before="no-such-run")


def test_list_runs_of_one_parent_newest_first_and_paged(store):
    def make(rid: str, parent: str | None, t: float) -> None:
        store.create_run(RunRecord(run_id=rid, name="f", status="running", flow_text="name: f", flow_path=None,
                                   inputs={}, created_at=t, cursor={"next": "s1"}, parent_id=parent), "me", 30.0)
    make("p", None, 100.0)
    make("other", None, 150.0)
    make("c1", "p", 200.0)
    make("c2", "p", 300.0)
    make("g1", "c1", 400.0)  # a grandchild is not p's child
    make("c3", "other", 500.0)
    assert [r.run_id for r in store.list_runs(parent="p")] == ["c2", "c1"]
    assert [r.run_id for r in store.list_runs(parent="p", limit=1, before="c2")] == ["c1"]
    assert [r.run_id for r in store.list_runs(parent="c1", status="running")] == ["g1"]
    assert store.list_runs(parent="g1") == [] and store.list_runs(parent="no-such-run") == []


def test_claim_takes_pending_runs_oldest_first_once_each(store):
    import time
    queued(store, "q1")
    time.sleep(0.01)
    queued(store, "q2")
    new_run(store, "busy")  # running under a live lease: not claimable
    first = store.claim_run("w1", 30.0)
    second = store.claim_run("w2", 30.0)
    assert (first.run_id, first.lease_owner, first.status) == ("q1", "w1", "running")
    assert (second.run_id, second.lease_owner) == ("q2", "w2")
    assert store.claim_run("w3", 30.0) is None
    assert first.lease_epoch == 2 and [e.type for e in store.events("q1")] == ["run.claimed"]


def test_claim_takes_over_a_run_whose_lease_expired_and_fences_the_old_owner(store):
    run, _ = new_run(store, "dead", owner="gone", ttl=-1.0)
    claimed = store.claim_run("w1", 30.0)
    assert claimed.run_id == "dead" and claimed.lease_epoch == run.lease_epoch + 1
    with pytest.raises(LeaseLost):
        store.commit(Commit("dead", run.lease_epoch, vars=(var("x", 1),)))


def test_claim_takes_a_run_named_abandoned_at_its_epoch_before_its_lease_expires(store):
    run, _ = new_run(store, "dead", owner="host:1:x", ttl=300.0)
    new_run(store, "alive", owner="host:2:y", ttl=300.0)
    new_run(store, "elsewhere", owner="other:1:x", ttl=300.0)
    assert sorted(store.live_leases("host:")) == [("alive", "host:2:y", 1), ("dead", "host:1:x", 1)]
    assert store.claim_run("w1", 30.0, [("dead", run.lease_epoch + 1)]) is None  # a stale epoch: not it
    claimed = store.claim_run("w1", 30.0, [("dead", run.lease_epoch)])
    assert claimed.run_id == "dead" and claimed.lease_owner == "w1" and claimed.recoveries == 1
    assert store.claim_run("w2", 30.0, [("dead", run.lease_epoch)]) is None  # taken: its epoch moved on


def test_recoveries_count_takeovers_without_progress_and_a_resume_resets_them(store):
    run, _ = new_run(store, "r", owner="gone", ttl=-1.0)
    store.commit(Commit("r", run.lease_epoch, vars=(var("x", 1),)))  # progress before the first crash
    got = []
    for _ in range(3):  # each owner announces its step and dies
        claimed = store.claim_run("w", -1.0)
        got.append(claimed.recoveries)
        store.commit(Commit("r", claimed.lease_epoch, events=(EventWrite("step.started", "s1"),)))
    assert got == [1, 2, 3]
    store.commit(Commit("r", claimed.lease_epoch, vars=(var("x", 2),)))  # progress: the count starts again
    assert store.claim_run("w", -1.0).recoveries == 1
    assert store.claim_run("w", -1.0).recoveries == 2
    resumed = store.acquire_lease("r", "me", -1.0, takeover=Takeover("running", {"next": "s1"}))
    assert resumed.recoveries == 0
    assert store.claim_run("w", -1.0).recoveries == 1


def test_concurrent_claimers_never_share_a_run(store):
    for i in range(30):
        queued(store, f"c{i:02d}")
    got: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while (run := store.claim_run(name, 30.0)) is not None:
            with lock:
                got.append(run.run_id)

    threads = [threading.Thread(target=claimer, args=(f"w{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [f"c{i:02d}" for i in range(30)]


def test_a_control_request_is_seen_by_poll_and_load_run(store):
    _run, _ = new_run(store)
    assert store.poll("r1") == (0, None)
    store.request("r1", "pause")
    assert store.poll("r1") == (0, "pause") and store.load_run("r1").control == "pause"
    store.request("r1", None)
    assert store.poll("r1") == (0, None)
    with pytest.raises(NotFound):
        store.request("nope", "cancel")


def test_count_runs_by_stored_status(store):
    assert store.count_runs() == {}
    new_run(store, "a")
    new_run(store, "b")
    queued(store, "q")
    assert store.count_runs() == {"running": 2, "pending": 1}


def test_the_flow_is_stored_with_the_run_and_replaced_only_under_the_lease(store):
    rec = RunRecord(run_id="r1", name="f", status="running", flow_text="name: f", flow_path="f.yaml", inputs={},
                    flow_data={"name": "f", "steps": [1]}, flow_digest="d1")
    run, _ = store.create_run(rec, "me", 30.0)
    assert store.flow_data("r1") == {"name": "f", "steps": [1]} and run.flow_digest == "d1"
    new_run(store, "bare")
    assert store.flow_data("bare") is None and store.load_run("bare").flow_digest is None
    store.set_flow("r1", run.lease_epoch, "name: g", "g.yaml", {"name": "g"}, "d2")
    loaded = store.load_run("r1")
    assert (loaded.flow_text, loaded.flow_path, store.flow_data("r1")) == ("name: g", "g.yaml", {"name": "g"})
    assert loaded.flow_digest == "d2"
    assert {r.run_id: r.flow_digest for r in store.list_runs()} == {"r1": "d2", "bare": None}
    assert loaded.seq == 0  # not a checkpoint
    store.acquire_lease("r1", "other", 30.0, steal_epoch=run.lease_epoch)
    with pytest.raises(LeaseLost):
        store.set_flow("r1", run.lease_epoch, "name: h", None)
    assert store.load_run("r1").flow_text == "name: g"


def test_processes_are_recorded_only_while_the_epoch_holds_the_lease(store):
    run, _ = new_run(store)
    store.record_processes("r1", run.lease_epoch, {"host": "h", "groups": [12, 13]})
    loaded = store.load_run("r1")
    assert loaded.processes == {"host": "h", "groups": [12, 13]} and loaded.seq == 0
    store.acquire_lease("r1", "other", 30.0, steal_epoch=run.lease_epoch)
    store.record_processes("r1", run.lease_epoch, {"host": "h", "groups": [99]})  # no error, nothing written
    assert store.load_run("r1").processes == {"host": "h", "groups": [12, 13]}
