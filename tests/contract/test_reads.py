"""Variable writes from outside and what is committed: variables, history, events, statistics."""
from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import ConflictError, CorruptRecord, NotFound
from tether.store import codec, open_store
from tether.store.base import Commit, EventWrite, IterationWrite, StepWrite

from .helpers import new_run, var


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


def test_current_value_and_creation_time_are_those_of_the_latest_write_and_creation(store):
    """What ``read_var(s)`` returns is each variable's latest history row, with the time of
    its latest (re)creation, however many writes came before; deleted ones are absent."""
    run, _ = new_run(store)
    for value in range(50):
        store.commit(Commit("r1", run.lease_epoch, vars=(var("n", value), var("k", value % 2))))
    first = store.var_history("r1", "n")[0].at
    assert [h.version for h in store.var_history("r1", "n")][-1] == 50
    n = store.read_var("r1", "n")
    assert (n.value, n.version, n.created_at, n.seq) == (49, 50, first, 50)
    assert store.delete_var("r1", "k", "cli")
    assert store.read_vars("r1").keys() == {"n"}
    store.commit(Commit("r1", run.lease_epoch, vars=(var("k", "again"),)))
    k = store.read_var("r1", "k")
    recreated = store.var_history("r1", "k")[-1].at
    assert (k.value, k.version, k.created_at) == ("again", 52, recreated) and recreated >= first
    assert {name: rec.version for name, rec in store.read_vars("r1").items()} == {"n": 50, "k": 52}
    assert store.stats()["vars"] == 2


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


def test_events_after_seq(store):
    run, _ = new_run(store)
    for i in range(3):
        store.commit(Commit("r1", run.lease_epoch, events=(EventWrite("e", None, {"i": i}),
                                                           EventWrite("f", None, None))))
    assert [(e.seq, e.idx, e.type) for e in store.events("r1", after_seq=2)] == [(3, 0, "e"), (3, 1, "f")]
    assert len(store.events("r1", limit=2)) == 2


def test_stats_counts(store):
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, vars=(var("a", 1),),
                        events=(EventWrite("run.completed", None, {"template_cache": {"hits": 3, "misses": 1}}),)))
    s = store.stats()
    assert (s["runs"], s["vars"], s["var_history"], s["events"]) == (1, 1, 1, 1)
    assert (s["template_hits"], s["template_misses"]) == (3, 1)


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


def test_events_of_type_lists_one_kind_in_order(store):
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, events=(EventWrite("tool.result", "a", {"key": "k1"}),
                                                       EventWrite("checkpoint", "a", {"name": "x"}))))
    store.commit(Commit("r1", run.lease_epoch, events=(EventWrite("tool.result", "b", {"key": "k2"}),)))
    found = store.events_of_type("r1", "tool.result")
    assert [(e.step_id, e.data) for e in found] == [("a", {"key": "k1"}), ("b", {"key": "k2"})]
    assert found[0].seq < found[1].seq
    assert store.events_of_type("r1", "step.completed") == []  # step records are not stored events


def test_step_heads_list_every_record_without_values_and_step_at_reads_one_whole(store):
    run, _ = new_run(store)
    first = StepWrite("s1", "failed", 1, codec.encode({"x": 1}), None, {"type": "E", "message": "no"}, None,
                      1.0, 2.0, "r1/s1/0")
    again = StepWrite("s1", "completed", 2, codec.encode({"x": 1}), codec.encode([1, 2]), None,
                      {"loop_key": "s1#0"}, 3.0, 4.0, "r1/s1/0")
    other = StepWrite("s2", "completed", 1, None, codec.encode("r"), None, None, 5.0, 6.0, "k")
    for i, steps in enumerate(((first,), (again, other)), start=1):
        store.commit(Commit("r1", run.lease_epoch, steps=steps, expected_seq=i - 1))
    heads = store.step_heads("r1")
    assert [tuple(h) for h in heads] == [("s1", "failed", 1, None), ("s1", "completed", 2, {"loop_key": "s1#0"}),
                                         ("s2", "completed", 2, None)]
    assert [(h.step_id, h.status, h.seq, h.meta) for h in heads] == \
        [(r.step_id, r.status, r.seq, r.meta) for r in store.steps("r1")]  # the same records, in the same order
    assert store.step_at("r1", 2, "s1") == store.steps("r1", refs=True)[1]
    assert store.step_at("r1", 2, "s2").result == "r"
    with pytest.raises(NotFound):
        store.step_at("r1", 1, "s2")
    with pytest.raises(NotFound):
        store.step_heads("ghost")
    new_run(store, "r2")
    assert store.step_heads("r2") == []


def test_read_state_is_read_vars_with_refs_reduced_to_what_a_run_holds(store):
    run, _ = new_run(store)
    store.commit(Commit("r1", run.lease_epoch, vars=(var("a", 1), var("gone", 2), var("k", "enc", secret=True),
                                                     var("u", [1], type="user_defined", scope="temp"))))
    store.commit(Commit("r1", run.lease_epoch, vars=(var("a", 3),)))
    store.delete_var("r1", "gone", "cli")
    state = store.read_state("r1")
    full = store.read_vars("r1", refs=True)
    assert state.keys() == full.keys() == {"a", "k", "u"}
    assert {n: tuple(v) for n, v in state.items()} == {
        n: (n, r.value, r.type, r.scope, r.version, r.secret) for n, r in full.items()}
    assert tuple(state["a"]) == ("a", 3, "step_result", "run", 2, False)
    assert state["k"].secret and state["u"][2:4] == ("user_defined", "temp")


def test_sqlite_read_state_refuses_a_malformed_row_naming_the_variable(tmp_path: Path):
    import sqlite3
    url = f"sqlite:///{tmp_path / 'c.db'}"
    s = open_store(url)
    run, _ = new_run(s)
    s.commit(Commit("r1", run.lease_epoch, vars=(var("x", 1), var("y", 2))))
    s.close()
    db = sqlite3.connect(tmp_path / "c.db")
    db.execute("UPDATE var_history SET type = X'00' WHERE name = 'x'")  # a blob: not text
    db.commit()
    db.close()
    s = open_store(url)
    with pytest.raises(CorruptRecord, match="run r1: variable x: type is"):
        s.read_state("r1")
    s.close()
