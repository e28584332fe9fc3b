"""The Store contract: every backend must pass every test here, unchanged."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.errors import ConflictError, CorruptRecord, LeaseLost, NotFound
from tether.store import codec, open_store
from tether.store.base import (Commit, EventWrite, IterationWrite, RunRecord, RunUpdate, StepWrite, Takeover,
                               VarWrite)


@pytest.fixture
def store(store_url: str):
    s = open_store(store_url)
    yield s
    s.close()


def new_run(store, run_id: str = "r1", owner: str = "me", ttl: float = 30.0):
    rec = RunRecord(run_id=run_id, name="f", status="running", flow_text="name: f", flow_path=None,
                    inputs={"a": 1}, cursor={"next": "s1"})
    return store.create_run(rec, owner, ttl)


def var(name: str, value, **kw) -> VarWrite:
    return VarWrite(name, codec.encode(value), **kw)


def test_create_run_is_idempotent_and_takes_the_lease(store):
    run, created = new_run(store)
    assert created and run.lease_owner == "me" and run.lease_epoch == 1 and run.seq == 0
    again, created2 = new_run(store, owner="other")
    assert not created2 and again.lease_owner == "me" and again.inputs == {"a": 1}


def test_load_unknown_run_is_not_found(store):
    with pytest.raises(NotFound):
        store.load_run("nope")


def test_commit_advances_seq_and_writes_everything(store):
    run, _ = new_run(store)
    step = StepWrite("s1", "completed", 1, codec.encode({"with": {"x": 1}}), codec.encode([1, 2]), None,
                     {"duration": 0.1}, 1.0, 2.0, "r1/s1/0")
    res = store.commit(Commit("r1", run.lease_epoch, (step,), (var("x", 5), var("y", "a")),
                              (EventWrite("step.completed", "s1", {"k": 1}),), RunUpdate(cursor={"next": "s2"}),
                              expected_seq=0))
    assert res.seq == 1 and res.versions == {"x": 1, "y": 1} and not res.foreign
    loaded = store.load_run("r1")
    assert loaded.seq == 1 and loaded.cursor == {"next": "s2"}
    (rec,) = store.steps("r1")
    assert (rec.step_id, rec.status, rec.result, rec.inputs, rec.meta, rec.seq) == \
        ("s1", "completed", [1, 2], {"with": {"x": 1}}, {"duration": 0.1}, 1)
    assert {n: v.value for n, v in store.read_vars("r1").items()} == {"x": 5, "y": "a"}
    step_ev, ev = store.events("r1")  # the step record is listed as its own event, first
    assert (step_ev.seq, step_ev.idx, step_ev.type, step_ev.step_id, step_ev.data) == \
        (1, 0, "step.completed", "s1", {"attempts": 1, "error": None})
    assert (ev.seq, ev.idx, ev.type, ev.step_id, ev.data) == (1, 1, "step.completed", "s1", {"k": 1})


def test_a_commit_cannot_hold_two_records_of_one_step(store):
    from tether.errors import StoreError
    run, _ = new_run(store)
    rec = StepWrite("s1", "completed", 1, None, None, None, None, 1.0, 2.0, "k")
    with pytest.raises(StoreError):
        store.commit(Commit("r1", run.lease_epoch, (rec, rec)))
    assert store.steps("r1") == [] and store.load_run("r1").seq == 0


def test_versions_and_history_track_every_write(store):
    run, _ = new_run(store)
    for value in (1, 2, 3):
        store.commit(Commit("r1", run.lease_epoch, vars=(var("c", value),)))
    assert store.read_var("r1", "c").version == 3
    hist = store.var_history("r1", "c")
    assert [(h.version, h.value, h.seq) for h in hist] == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]
    assert store.state_at("r1", 2) == {"c": 2}
    assert store.read_vars("r1", since_seq=2).keys() == {"c"}
    assert store.read_vars("r1", since_seq=3) == {}


def test_commit_with_a_stale_epoch_is_refused_and_writes_nothing(store):
    run, _ = new_run(store)
    taken = store.acquire_lease("r1", "other", 30.0, steal_epoch=run.lease_epoch)
    assert taken.lease_epoch == run.lease_epoch + 1
    with pytest.raises(LeaseLost):
        store.commit(Commit("r1", run.lease_epoch, vars=(var("x", 1),),
                            events=(EventWrite("step.completed", "s"),)))
    assert store.read_vars("r1") == {} and store.events("r1") == [] and store.load_run("r1").seq == 0
    with pytest.raises(LeaseLost):
        store.renew_lease("r1", run.lease_epoch, 30.0)


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


def test_set_var_compare_and_set(store):
    new_run(store)
    rec = store.set_var("r1", var("limit", 10, type="user_defined", source_step="api"), expected_version=0)
    assert rec.version == 1 and rec.type == "user_defined" and rec.source_step == "api"
    with pytest.raises(ConflictError):
        store.set_var("r1", var("limit", 11), expected_version=0)
    assert store.set_var("r1", var("limit", 12), expected_version=1).value == 12
    assert store.read_var("r1", "limit").version == 2
    assert store.load_run("r1").seq == 2  # each external write is a checkpoint
    with pytest.raises(NotFound):
        store.set_var("ghost", var("x", 1))


def test_external_write_is_seen_as_foreign_by_the_owner(store):
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, vars=(var("a", 1),), expected_seq=0))
    store.set_var("r1", var("a", 99))
    res = store.commit(Commit("r1", run.lease_epoch, vars=(var("b", 1),), expected_seq=1))
    assert res.foreign and res.seq == 3
    assert store.poll("r1") == (3, None)


def test_a_fenced_commit_is_refused_once_someone_else_committed(store):
    from tether.errors import StateMoved
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, vars=(var("a", 1),), expected_seq=0, fenced=True))
    store.set_var("r1", var("a", 99))
    with pytest.raises(StateMoved):
        store.commit(Commit("r1", run.lease_epoch, vars=(var("a", 2),), expected_seq=1, fenced=True))
    assert store.load_run("r1").seq == 2 and store.read_var("r1", "a").value == 99
    res = store.commit(Commit("r1", run.lease_epoch, vars=(var("a", 100),), expected_seq=2, fenced=True))
    assert res.seq == 3 and store.read_var("r1", "a").value == 100
    with pytest.raises(LeaseLost):  # a lost lease is still told as such
        store.commit(Commit("r1", run.lease_epoch + 1, expected_seq=3, fenced=True))


def test_hold_keeps_other_writers_waiting_and_keeps_what_was_committed_inside(store):
    import time
    run, _ = new_run(store)
    outside = threading.Thread(target=lambda: store.set_var("r1", var("a", 99)))
    with pytest.raises(RuntimeError):
        with store.hold("r1"):
            outside.start()
            time.sleep(0.3)
            assert outside.is_alive()  # waiting for the hold to end
            store.commit(Commit("r1", run.lease_epoch, vars=(var("a", 1),), expected_seq=0, fenced=True))
            assert store.read_var("r1", "a").value == 1 and store.poll("r1")[0] == 1  # reads see it
            with pytest.raises(LeaseLost):  # a refused commit inside undoes only itself
                store.commit(Commit("r1", run.lease_epoch + 1, vars=(var("a", 2),)))
            store.release_lease("r1", run.lease_epoch)  # any write of this thread joins the hold
            raise RuntimeError("after the commit")
    outside.join(timeout=10)
    assert not outside.is_alive()
    assert [(h.value, h.seq) for h in store.var_history("r1", "a")] == [(1, 1), (99, 2)]
    assert store.load_run("r1").lease_owner is None
    with pytest.raises(NotFound):
        with store.hold("ghost"):
            pass


def test_set_vars_writes_all_in_one_checkpoint_or_none(store):
    new_run(store)
    store.set_var("r1", var("a", 1))
    with pytest.raises(ConflictError):
        store.set_vars("r1", (var("a", 2), var("b", 2)), {"a": 0})
    assert store.load_run("r1").seq == 1 and "b" not in store.read_vars("r1")
    seq = store.set_vars("r1", (var("a", 3, type="user_defined"), var("b", 4, type="user_defined")), {"a": 1})
    assert seq == store.load_run("r1").seq == 2
    assert {n: (v.value, v.seq) for n, v in store.read_vars("r1").items()} == {"a": (3, 2), "b": (4, 2)}
    assert [(e.type, e.data["name"]) for e in store.events("r1", after_seq=1)] == [("var.set", "a"), ("var.set", "b")]


def test_delete_keeps_history_and_recreation_continues_versions(store):
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, vars=(var("t", 1),)))
    assert store.delete_var("r1", "t", "cli")
    assert not store.delete_var("r1", "t", "cli")
    with pytest.raises(NotFound):
        store.read_var("r1", "t")
    store.commit(Commit("r1", run.lease_epoch, vars=(var("t", 2),)))
    hist = store.var_history("r1", "t")
    assert [(h.version, h.deleted, h.value) for h in hist] == [(1, False, 1), (2, True, None), (3, False, 2)]
    assert store.state_at("r1", 2) == {}


def test_deletion_inside_a_commit(store):
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, vars=(var("tmp", 1, scope="temp"),)))
    store.commit(Commit("r1", run.lease_epoch, vars=(VarWrite("tmp", None, delete=True),)))
    assert store.read_vars("r1") == {}


def test_accesses_are_flushed_with_a_commit(store):
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, vars=(var("a", 1),)))
    store.commit(Commit("r1", run.lease_epoch, accesses=(("a", 7, 123.0),)))
    rec = store.read_var("r1", "a")
    assert rec.access_count == 7 and rec.accessed_at == 123.0 and rec.version == 1
    assert store.read_var("r1", "a", count_access=True).access_count == 8


def test_run_update_sets_status_outputs_and_error(store):
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, run=RunUpdate(cursor={"next": None}, status="failed",
                                                             outputs=codec.encode({"o": 1}),
                                                             error={"type": "X", "message": "m"}, finished=True)))
    rec = store.load_run("r1")
    assert (rec.status, rec.outputs, rec.error, rec.cursor) == ("failed", {"o": 1}, {"type": "X", "message": "m"},
                                                                {"next": None})
    assert rec.finished_at is not None


def test_a_takeover_clears_the_outputs_of_an_earlier_completion(store):
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, run=RunUpdate(cursor={"next": None}, status="completed",
                                                             outputs=codec.encode({"o": 1}), finished=True)))
    taken = store.acquire_lease("r1", "other", 30.0, steal_epoch=run.lease_epoch,
                                takeover=Takeover("running", {"next": "s1"}, events=(EventWrite("run.resumed"),)))
    assert (taken.status, taken.outputs, taken.finished_at) == ("running", None, None)
    assert store.load_run("r1").outputs is None


def test_checkpoint_contents_name_variable_writes_and_iterations_with_their_times(store):
    run, _ = new_run(store)
    first = store.commit(Commit("r1", run.lease_epoch, vars=(var("x", 1), var("x", 2), var("y", 3))))
    its = tuple(IterationWrite("each", i, "failed" if i == 1 else "completed", 1,
                               None if i == 1 else codec.encode(i), None, 1.0 + i, 2.0 + i) for i in range(2))
    second = store.commit(Commit("r1", run.lease_epoch, iterations=its))
    nested = store.commit(Commit("r1", run.lease_epoch, iterations=(
        IterationWrite("outer[0].inner", 0, "completed", 1, codec.encode(0), None, 5.0, 6.0),)))
    changes = store.var_changes("r1")
    assert [(seq, name) for seq, name, _ in changes] == [(first.seq, "x"), (first.seq, "x"), (first.seq, "y")]
    assert all(isinstance(at, float) and at > 0 for _, _, at in changes)
    assert store.iteration_checkpoints("r1") == [(second.seq, "each", 0, 2.0), (second.seq, "each", 1, 3.0),
                                                 (nested.seq, "outer[0].inner", 0, 6.0)]


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


def test_large_values_are_compressed_or_offloaded_and_read_back(store):
    run, _ = new_run(store)
    big = {"rows": [{"i": i, "text": "x" * 50} for i in range(10_000)]}
    medium = "y" * 5000
    store.commit(Commit("r1", run.lease_epoch, vars=(var("big", big), var("medium", medium), var("big2", big))))
    assert store.read_var("r1", "big").value == big
    assert store.read_var("r1", "big2").value == big
    assert store.read_var("r1", "medium").value == medium
    assert store.stats()["blobs"] == 1  # one payload, stored once by content hash


def test_events_after_seq(store):
    run, _ = new_run(store)
    for i in range(3):
        store.commit(Commit("r1", run.lease_epoch, events=(EventWrite("e", None, {"i": i}),
                                                           EventWrite("f", None, None))))
    assert [(e.seq, e.idx, e.type) for e in store.events("r1", after_seq=2)] == [(3, 0, "e"), (3, 1, "f")]
    assert len(store.events("r1", limit=2)) == 2


def test_concurrent_commits_from_threads_each_get_their_own_seq(store):
    run, _ = new_run(store)
    seqs: list[int] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        for i in range(25):
            res = store.commit(Commit("r1", run.lease_epoch, vars=(var(f"v{k}", i),)))
            with lock:
                seqs.append(res.seq)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(1, 101))
    assert all(store.read_var("r1", f"v{k}").version == 25 for k in range(4))


def test_stats_counts(store):
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, vars=(var("a", 1),),
                        events=(EventWrite("run.completed", None, {"template_cache": {"hits": 3, "misses": 1}}),)))
    s = store.stats()
    assert (s["runs"], s["vars"], s["var_history"], s["events"]) == (1, 1, 1, 1)
    assert (s["template_hits"], s["template_misses"]) == (3, 1)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(value=json_values)
def test_any_json_value_round_trips_through_the_store(store, value):
    try:
        run = store.load_run("rt")
    except NotFound:
        run, _ = new_run(store, "rt")
    store.commit(Commit("rt", run.lease_epoch, vars=(var("v", value),)))
    assert store.read_var("rt", "v").value == value
    assert store.var_history("rt", "v")[-1].value == value


def test_sqlite_corrupt_value_is_a_typed_error_naming_the_run(tmp_path: Path):
    import sqlite3
    url = f"sqlite:///{tmp_path / 'c.db'}"
    s = open_store(url)
    run, _ = new_run(s)
    s.commit(Commit("r1", run.lease_epoch, vars=(var("x", 1),)))
    s.close()
    db = sqlite3.connect(tmp_path / "c.db")
    db.execute("UPDATE var_history SET value = X'6a7b7b7b' WHERE name = 'x'")  # 'j{{{': bad JSON
    db.commit()
    db.close()
    s = open_store(url)
    with pytest.raises(CorruptRecord, match="run r1: variable x"):
        s.read_vars("r1")
    s.close()


def test_sqlite_schema_from_migrations_is_versioned(tmp_path: Path):
    import sqlite3
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    s.close()
    db = sqlite3.connect(tmp_path / "m.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] >= 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "steps", "var_history", "var_reads", "events", "blobs", "loop_items", "iterations"} <= tables
    db.close()
    open_store(f"sqlite:///{tmp_path / 'm.db'}").close()  # re-opening does not re-apply migrations


def queued(store, run_id: str):
    rec = RunRecord(run_id=run_id, name="f", status="pending", flow_text="name: f", flow_path=None,
                    inputs={}, cursor={"next": None, "unstarted": True})
    return store.create_run(rec, None, 0.0)[0]


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
    from tether.store.base import Takeover
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


def test_a_run_swept_back_to_pending_counts_as_a_recovery_when_claimed(store):
    if not hasattr(store, "requeue_expired"):
        pytest.skip("only PostgreSQL sweeps expired runs")
    new_run(store, "swept", owner="gone", ttl=-1.0)
    queued(store, "queued")
    assert store.requeue_expired() == ["swept"]
    got = {r.run_id: r.recoveries for r in (store.claim_run("w1", 30.0), store.claim_run("w2", 30.0))}
    assert got == {"swept": 1, "queued": 0}  # a queued run is no recovery


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


def test_shared_variables_compare_and_set_and_immutable(store):
    with pytest.raises(NotFound):
        store.shared_get("cfg")
    first = store.shared_set("cfg", {"rate": 1}, expected_version=0)
    assert (first.value, first.version, first.immutable) == ({"rate": 1}, 1, False)
    with pytest.raises(ConflictError):
        store.shared_set("cfg", {"rate": 2}, expected_version=0)
    second = store.shared_set("cfg", {"rate": 2}, expected_version=1)
    assert second.version == 2 and store.shared_get("cfg").value == {"rate": 2}
    assert store.shared_delete("cfg", expected_version=2) and not store.shared_delete("cfg")
    with pytest.raises(NotFound):
        store.shared_get("cfg")
    again = store.shared_set("cfg", 7, expected_version=0)
    assert again.version == 4  # versions continue across a deletion
    frozen = store.shared_set("pi", 3.14, immutable=True)
    assert frozen.immutable
    with pytest.raises(ConflictError):
        store.shared_set("pi", 3)
    with pytest.raises(ConflictError):
        store.shared_delete("pi")
    assert [r.name for r in store.shared_list()] == ["cfg", "pi"]


def test_locks_are_exclusive_until_released_or_expired(store):
    assert store.lock_acquire("db", "a", 30.0)
    assert not store.lock_acquire("db", "b", 30.0)
    assert store.lock_acquire("db", "a", 30.0)  # re-entrant for its owner
    assert store.lock_renew("db", "a", 30.0) and not store.lock_renew("db", "b", 30.0)
    store.lock_release("db", "b")  # not b's: nothing happens
    assert not store.lock_acquire("db", "b", 30.0)
    store.lock_release("db", "a")
    assert store.lock_acquire("db", "b", -1.0)  # b holds it, already expired
    assert store.lock_acquire("db", "c", 30.0)
    assert not store.lock_renew("db", "b", 30.0)


def test_concurrent_lockers_never_hold_one_lock_together(store):
    holders: list[str] = []
    overlaps: list[int] = []
    guard = threading.Lock()

    def worker(name: str) -> None:
        got = 0
        while got < 5:
            if store.lock_acquire("crit", name, 30.0):
                with guard:
                    holders.append(name)
                    overlaps.append(len(set(holders)))
                with guard:
                    holders.remove(name)
                store.lock_release("crit", name)
                got += 1

    threads = [threading.Thread(target=worker, args=(f"t{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overlaps) == 20 and max(overlaps) == 1
