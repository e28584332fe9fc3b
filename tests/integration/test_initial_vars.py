"""A variable written from outside before a run's first commit is kept: the flow's initial
``vars:`` never overwrite a write that was confirmed (found by a new-user trial:
``tether run --detach``, ``tether vars set RUN done 50``, ``tether worker --once`` ended
with ``done: 1``, the 50 overwritten by the initial 0). On every store, for a queued run a
worker starts, a run started in this thread, an unstarted run resumed, and a fork."""
from __future__ import annotations

import pytest

from tether.errors import NotFound

CNT = """
name: cnt
vars: {done: 0, twice: "{{ vars.done * 2 }}"}
steps:
  - id: bump
    vars: {done: "{{ vars.done + 1 }}"}
outputs: {done: "{{ vars.done }}"}
"""


def history(engine, run_id: str, name: str) -> list[tuple[str, object]]:
    return [(h.source_step, h.value) for h in engine.history(run_id, name)]


def test_a_write_to_a_queued_run_is_kept_by_its_first_commit(engine, write_flow):
    engine.run(write_flow(CNT), run_id="cnt3", detach=True)
    assert engine.set_var("cnt3", "done", 50).version == 1
    run = engine.work_once()
    assert run is not None and run.status == "completed"
    assert engine.vars("cnt3") == {"done": 51, "twice": 100}  # later initial vars see the write
    assert run.outputs == {"done": 51}
    assert history(engine, "cnt3", "done") == [("api", 50), ("bump", 51)]


def test_a_write_racing_the_first_commit_of_a_run_is_kept(engine, write_flow):
    # on_start runs once the run exists and before its first commit: the write lands in between
    run = engine.run(write_flow(CNT), run_id="cnt4",
                     on_start=lambda rid: engine.set_var(rid, "done", 50))
    assert run.status == "completed" and engine.vars("cnt4") == {"done": 51, "twice": 100}
    assert history(engine, "cnt4", "done") == [("api", 50), ("bump", 51)]


def test_a_write_to_a_run_whose_initial_vars_failed_is_kept_on_resume(engine, write_flow):
    flow = write_flow("""
name: needs
vars: {limit: "{{ no_such_name }}"}
steps:
  - id: use
    vars: {half: "{{ vars.limit / 2 }}"}
""")
    assert engine.run(flow, run_id="n1").status == "failed"  # its first commit never happened
    engine.set_var("n1", "limit", 8)
    run = engine.resume("n1")
    assert run.status == "completed" and engine.vars("n1") == {"limit": 8, "half": 4}


def test_a_write_racing_a_forks_first_commit_is_kept(engine, write_flow):
    assert engine.run(write_flow(CNT), run_id="orig").status == "completed"
    store = engine.store
    create_run = store.create_run

    def create_then_write(record, owner, ttl):  # an outside write lands right after the fork exists
        created = create_run(record, owner, ttl)
        engine.set_var(record.run_id, "done", 50)
        return created
    store.create_run = create_then_write
    try:
        fork = engine.fork("orig", from_step="bump", new_run_id="f1", set={"twice": 7})
    finally:
        store.create_run = create_run
    assert fork.status == "completed"
    assert engine.vars("f1") == {"done": 51, "twice": 7}
    assert [v for _, v in history(engine, "f1", "done")] == [50, 51]


def test_a_write_to_an_unknown_run_is_still_refused(engine):
    with pytest.raises(NotFound):
        engine.set_var("nope", "done", 1)
