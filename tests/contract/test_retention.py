"""Retention: deleting runs with every row that belongs to them, in bounded transactions,
and the blobs nothing references any more; a run that moved on since it was chosen, and a
parent whose child is kept, stay."""
from __future__ import annotations

import os

import pytest

from tether.errors import NotFound
from tether.store import codec
from tether.store.base import Commit, EventWrite, IterationWrite, RunRecord, RunUpdate, StepWrite

from .helpers import new_run, var

BIG = os.urandom(200_000).hex()  # 400 kB of text that does not compress: offloaded to a blob
SHARED = os.urandom(200_000).hex()


def finished_run(store, run_id: str, *, big: str | None = None, parent_id: str | None = None,
                 status: str = "completed"):
    """A run with a step, variables (one of them ``big``, offloaded), an event, a loop and an
    iteration, ended with ``status``."""
    rec = RunRecord(run_id=run_id, name="f", status="running", flow_text="name: f", flow_path=None,
                    inputs={"a": 1}, cursor={"next": "s1"}, parent_id=parent_id)
    run, _ = store.create_run(rec, "me", 30.0)
    store.start_loop(run_id, run.lease_epoch, "each", [codec.encode(i) for i in range(3)],
                     EventWrite("loop.started", "each", {"loop_key": "each"}))
    step = StepWrite("s1", "completed", 1, codec.encode({"x": 1}), codec.encode(big or [1, 2]), None,
                     {"duration": 0.1}, 1.0, 2.0, f"{run_id}/s1/0")
    it = IterationWrite("each", 0, "completed", 1, codec.encode("done"), None, 1.0, 2.0)
    store.commit(Commit(run_id, run.lease_epoch, (step,), (var("x", 5), var("big", big or "small")),
                        (EventWrite("step.completed", "s1", {"k": 1}),), RunUpdate(cursor={"next": None}),
                        iterations=(it,)))
    store.commit(Commit(run_id, run.lease_epoch, run=RunUpdate(cursor=None, status=status, finished=True,
                                                                 outputs=codec.encode({"n": 1}))))
    store.release_lease(run_id, run.lease_epoch)
    return brief(store, run_id)


def brief(store, run_id: str):
    (b,) = [b for b in store.run_briefs() if b.run_id == run_id]
    return b


def gone(store, run_id: str) -> bool:
    with pytest.raises(NotFound):
        store.load_run(run_id)
    return True


def test_briefs_list_every_run_newest_first(store):
    new_run(store, "a")
    new_run(store, "b")
    briefs = store.run_briefs()
    assert [b.run_id for b in briefs] == ["b", "a"]
    assert (briefs[0].name, briefs[0].status, briefs[0].seq, briefs[0].lease_epoch) == ("f", "running", 0, 1)


def test_delete_runs_removes_every_row_of_the_run_and_reports_it(store):
    doomed = finished_run(store, "doomed")
    finished_run(store, "kept")
    before = store.stats()
    measured = store.footprint(["doomed", "unknown"])
    got = store.delete_runs([doomed])
    assert got.runs == ("doomed",) == measured.runs
    assert got.rows == measured.rows and got.bytes == measured.bytes
    assert got.rows >= 8 and got.bytes > 0
    assert gone(store, "doomed")
    with pytest.raises(NotFound):
        store.read_vars("doomed") or store.load_run("doomed")
    assert store.loop_size("doomed", "each") is None and store.iterations("doomed", "each") == []
    after = store.stats()
    assert after["runs"] == before["runs"] - 1
    assert after["steps"] == before["steps"] - 1 and after["var_history"] == before["var_history"] - 2
    # the other run is untouched
    assert store.load_run("kept").status == "completed"
    assert {n: v.value for n, v in store.read_vars("kept").items()} == {"x": 5, "big": "small"}
    assert len(store.steps("kept")) == 1 and store.loop_items("kept", "each", 0, 3) == [0, 1, 2]


def test_a_run_that_moved_on_since_it_was_chosen_is_kept(store):
    chosen = finished_run(store, "r", status="failed")
    store.acquire_lease("r", "resumer", 30.0)  # resumed meanwhile: a new lease epoch
    got = store.delete_runs([chosen])
    assert got.runs == () and got.rows == 0
    assert store.load_run("r").status == "failed"


def test_a_parent_whose_child_is_kept_is_kept_and_children_go_first(store):
    parent = finished_run(store, "parent")
    child = finished_run(store, "child", parent_id="parent")
    assert store.delete_runs([parent]).runs == ()
    assert store.load_run("parent")
    assert store.delete_runs([child, parent]).runs == ("child", "parent")


def test_blobs_go_with_their_last_reference(store):
    a = finished_run(store, "a", big=BIG)
    shared_a = finished_run(store, "sa", big=SHARED)
    finished_run(store, "sb", big=SHARED)
    blobs = store.storage()["blobs"]["database"]
    assert blobs["count"] == 2 and blobs["bytes"] > 0
    assert store.footprint(["a"]).blobs == 1 and store.footprint(["sa"]).blobs == 0
    assert store.footprint(["sa", "sb"]).blobs == 1
    got = store.delete_runs([a, shared_a])
    assert got.runs == ("a", "sa") and got.blobs == 1 and got.blob_bytes > 0
    assert store.storage()["blobs"]["database"]["count"] == 1
    # the blob shared with a kept run survives: that run still reads its value
    assert store.read_var("sb", "big").value == SHARED
    assert store.steps("sb")[0].result == SHARED
    assert store.delete_runs([brief(store, "sb")]).blobs == 1
    assert store.storage()["blobs"]["database"]["count"] == 0


def test_release_blobs_keeps_referenced_ones(store):
    finished_run(store, "a", big=BIG)
    blob = codec.encode(BIG).blob
    assert blob is not None
    digest = blob[0]
    assert store.release_blobs([digest, "0" * 64]) == (0, 0)
    assert store.read_var("a", "big").value == BIG


def test_footprint_changes_nothing(store):
    finished_run(store, "a", big=BIG)
    before = (store.stats(), store.storage()["blobs"])
    assert store.footprint(["a"]).runs == ("a",)
    assert (store.stats(), store.storage()["blobs"]) == before
