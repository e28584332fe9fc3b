"""Commits: one checkpoint applied whole or not at all, fenced by the lease epoch and the seq."""
from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.errors import LeaseLost, NotFound, StateMoved
from tether.store import codec
from tether.store.base import Commit, EventWrite, RunUpdate, StepWrite, Takeover, VarWrite

from .helpers import new_run, var


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


def test_external_write_is_seen_as_foreign_by_the_owner(store):
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, vars=(var("a", 1),), expected_seq=0))
    store.set_var("r1", var("a", 99))
    res = store.commit(Commit("r1", run.lease_epoch, vars=(var("b", 1),), expected_seq=1))
    assert res.foreign and res.seq == 3
    assert store.poll("r1") == (3, None)


def test_a_fenced_commit_is_refused_once_someone_else_committed(store):
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
    with pytest.raises(RuntimeError), store.hold("r1"):
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
    with pytest.raises(NotFound), store.hold("ghost"):
        pass


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


def test_large_values_are_compressed_or_offloaded_and_read_back(store):
    run, _ = new_run(store)
    big = {"rows": [{"i": i, "text": "x" * 50} for i in range(10_000)]}
    medium = "y" * 5000
    store.commit(Commit("r1", run.lease_epoch, vars=(var("big", big), var("medium", medium), var("big2", big))))
    assert store.read_var("r1", "big").value == big
    assert store.read_var("r1", "big2").value == big
    assert store.read_var("r1", "medium").value == medium
    assert store.stats()["blobs"] == 1  # one payload, stored once by content hash


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


# text a store must keep byte for byte: quotes, backslashes, control characters, non-ASCII
# (two and four bytes in UTF-8), JSON and SQL syntax, and what looks like a bytea escape
AWKWARD = 'a "quoted" \\ back\\slash\n\ttab é € 😀 {"k": [1]} \'; DROP TABLE runs; -- \\x00ff'


def test_every_field_of_a_commit_reads_back_exactly(store):
    """What one commit writes reads back exactly: text of any kind, compressed (binary)
    values, floats to the last bit, ids with awkward characters."""
    run, _ = new_run(store)
    big = {"text": AWKWARD * 40, "n": list(range(300))}  # over COMPRESS_MIN: stored zstd-compressed
    assert codec.encode(big).data[:1] == b"z"
    t0, t1 = 1796048236.4827435, 0.1 + 0.2
    step = StepWrite(f"s {AWKWARD}", "failed", 3, codec.encode({"in": AWKWARD}), codec.encode(big),
                     {"message": AWKWARD}, {"note": AWKWARD, "f": t1}, t0, t0 + t1, None)
    store.commit(Commit("r1", run.lease_epoch, (step,),
                        (var(AWKWARD, AWKWARD), var("big", big), var("f", t1)),
                        (EventWrite("custom", step.step_id, {"d": AWKWARD}),),
                        RunUpdate(cursor={"next": AWKWARD}), expected_seq=0, fenced=True))
    store.start_loop("r1", run.lease_epoch, "loop", [codec.encode(1)], EventWrite("loop.started", "l"))
    from tether.store.base import IterationWrite
    store.commit(Commit("r1", run.lease_epoch, iterations=(
        IterationWrite("loop", 0, "failed", 2, codec.encode(big), {"message": AWKWARD}, t0, t1),)))
    (rec,) = store.steps("r1")
    assert (rec.step_id, rec.status, rec.attempts, rec.inputs, rec.result, rec.error, rec.meta,
            rec.started_at, rec.finished_at) == \
        (step.step_id, "failed", 3, {"in": AWKWARD}, big, {"message": AWKWARD}, {"note": AWKWARD, "f": t1},
         t0, t0 + t1)
    assert {n: v.value for n, v in store.read_vars("r1").items()} == {AWKWARD: AWKWARD, "big": big, "f": t1}
    assert store.load_run("r1").cursor == {"next": AWKWARD}
    assert [e.data for e in store.events("r1") if e.type == "custom"] == [{"d": AWKWARD}]
    (it,) = store.iterations("r1", "loop")
    assert (it.status, it.attempts, it.result, it.error, it.started_at, it.finished_at) == \
        ("failed", 2, big, {"message": AWKWARD}, t0, t1)


def test_commits_of_one_row_each_read_back_exactly(store):
    """A commit of one variable, one step, one event or one iteration (the usual commit,
    which PostgreSQL sends as one row of parameters rather than a JSON document) reads back
    exactly and reports the variable's version: set, set again, deleted (0), deleted when
    absent (no version), and with awkward text, compressed bytes and floats."""
    run, _ = new_run(store)
    big = {"text": AWKWARD * 40, "n": list(range(300))}
    t0, t1 = 1796048236.4827435, 0.1 + 0.2
    seq = 0

    def one(**kw):
        nonlocal seq
        res = store.commit(Commit("r1", run.lease_epoch, expected_seq=seq, fenced=True, **kw))
        seq = res.seq
        return res

    assert one(vars=(var(AWKWARD, AWKWARD, source_step=AWKWARD),)).versions == {AWKWARD: 1}
    assert one(vars=(var(AWKWARD, big),)).versions == {AWKWARD: 2}
    assert one(vars=(var("f", t1, type="user_defined", scope="temp"),)).versions == {"f": 1}
    assert one(vars=(VarWrite("f", None, delete=True),)).versions == {"f": 0}
    assert one(vars=(VarWrite("never", None, delete=True),)).versions == {}
    huge = {"text": [AWKWARD, codec.OFFLOAD_MIN * "x"]}  # offloaded: its blob goes in the same transaction
    assert one(vars=(var("huge", huge),)).versions == {"huge": 1}
    with store.hold("r1"):  # a commit inside a hold joins the held transaction
        assert one(vars=(var("held", AWKWARD),)).versions == {"held": 1}
    assert one(vars=(VarWrite("huge", None, delete=True),)).versions == {"huge": 0}
    step = StepWrite(f"s {AWKWARD}", "failed", 3, codec.encode({"in": AWKWARD}), codec.encode(big),
                     {"message": AWKWARD}, {"note": AWKWARD, "f": t1}, t0, t0 + t1, f"k {AWKWARD}")
    one(steps=(step,), run=RunUpdate(cursor={"next": AWKWARD}))
    one(events=(EventWrite("custom", AWKWARD, {"d": AWKWARD}),))
    store.start_loop("r1", run.lease_epoch, "loop", [codec.encode(1)], EventWrite("loop.started", "l"))
    seq = store.load_run("r1").seq
    from tether.store.base import IterationWrite
    one(iterations=(IterationWrite("loop", 0, "completed", 2, codec.encode(big), None, t0, t1),))
    assert {n: v.value for n, v in store.read_vars("r1").items()} == {AWKWARD: big, "held": AWKWARD}
    first, gone = store.var_history("r1", "huge")
    assert (first.version, first.value, gone.version, gone.deleted) == (1, huge, 2, True)
    (awk,) = [h for h in store.var_history("r1", AWKWARD) if h.version == 1]
    assert (awk.value, awk.source_step) == (AWKWARD, AWKWARD)
    (rec,) = store.steps("r1")
    assert (rec.step_id, rec.status, rec.attempts, rec.inputs, rec.result, rec.error, rec.meta,
            rec.started_at, rec.finished_at) == \
        (step.step_id, "failed", 3, {"in": AWKWARD}, big, {"message": AWKWARD}, {"note": AWKWARD, "f": t1},
         t0, t0 + t1)
    assert [(e.step_id, e.data) for e in store.events("r1") if e.type == "custom"] == [(AWKWARD, {"d": AWKWARD})]
    (it,) = store.iterations("r1", "loop")
    assert (it.status, it.attempts, it.result, it.started_at, it.finished_at) == ("completed", 2, big, t0, t1)
    assert store.load_run("r1").cursor == {"next": AWKWARD}
