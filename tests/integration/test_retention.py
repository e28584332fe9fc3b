"""Retention through the engine on every store: what `gc` deletes and what it keeps (running,
paused, interrupted, pending runs, parents of kept children), blobs shared with a kept run,
`--dry-run`, `--keep-last`, `rm`'s refusals, and the sweeper of `retention:`."""
from __future__ import annotations

import os
import time

import pytest

from tether import Engine
from tether.engine.lease import owner_id
from tether.engine.retention import RetentionSweeper
from tether.errors import ConflictError, NotFound, UsageError
from tether.flow import load_flow_text
from tether.store.base import RunRecord, SweeperElection

DONE = "name: done\nvars: {n: 0}\nsteps:\n  - id: a\n    vars: {n: \"{{ vars.n + 1 }}\"}\n"
FAILS = "name: fails\nsteps:\n  - id: a\n    tool: python\n    with: {code: \"def main(): raise ValueError('no')\"}\n"
PAUSES = "name: pauses\nsteps:\n  - id: p\n    tool: pause\n    with: {message: wait}\n"
# a value of 400 kB that does not compress: offloaded to a blob, the same one in every run
BIG = os.urandom(200_000).hex()
BIG_FLOW = ("name: big\ninputs:\n  v: {type: string}\nsteps:\n  - id: a\n    vars: {big: \"{{ inputs.v }}\"}\n")


def run(engine: Engine, text: str, **kw):
    return engine.run(load_flow_text(text, "f.yaml"), **kw)


def bare(engine: Engine, run_id: str, status: str, *, owner: str | None = None, ttl: float = 30.0,
         parent_id: str | None = None) -> None:
    """A run of ``status`` made through the store (no flow executed)."""
    engine.store.create_run(RunRecord(run_id=run_id, name="bare", status=status, flow_text="name: bare",
                                      flow_path=None, inputs={}, parent_id=parent_id), owner, ttl)


def exists(engine: Engine, run_id: str) -> bool:
    try:
        engine.record(run_id)
    except NotFound:
        return False
    return True


def test_gc_deletes_finished_runs_and_keeps_the_others(engine):
    completed = run(engine, DONE).id
    failed = run(engine, FAILS).id
    paused = run(engine, PAUSES).id
    cancelled = run(engine, PAUSES).id
    engine.cancel(cancelled)
    bare(engine, "running", "running", owner=owner_id())
    bare(engine, "interrupted", "running", owner="elsewhere:1:x", ttl=-1.0)
    bare(engine, "pending", "pending", ttl=0.0)
    bare(engine, "kept-child", "running", owner=owner_id(), parent_id=completed)
    report = engine.gc(older_than=0, dry_run=True)
    assert set(report["run_ids"]) == {failed, cancelled} and report["dry_run"]
    assert report["rows"] > 0 and all(exists(engine, r) for r in (failed, cancelled))
    report = engine.gc(older_than="0s")
    assert set(report["run_ids"]) == {failed, cancelled}  # completed is the parent of a kept run
    assert report["runs"] == 2 and report["rows"] > 0 and report["bytes"] > 0
    for gone in (failed, cancelled):
        assert not exists(engine, gone)
    for kept in (completed, paused, "running", "interrupted", "pending", "kept-child"):
        assert exists(engine, kept)
    assert engine.vars(completed) == {"n": 1}
    # a status named is deleted too
    assert set(engine.gc(older_than=0, statuses="interrupted,paused")["run_ids"]) == {"interrupted", paused}
    assert not exists(engine, "interrupted") and not exists(engine, paused)


def test_gc_older_than_and_keep_last(engine):
    ids = [run(engine, DONE).id for _ in range(4)]
    assert engine.gc(older_than="1h")["runs"] == 0  # all too recent
    assert engine.gc()["runs"] == 0  # default: 30 days
    report = engine.gc(older_than=0, keep_last=2)
    assert set(report["run_ids"]) == set(ids[:2])
    assert all(exists(engine, r) for r in ids[2:])
    with pytest.raises(UsageError):
        engine.gc(older_than="soon")
    with pytest.raises(UsageError):
        engine.gc(statuses="done")


def test_a_blob_shared_by_a_deleted_and_a_kept_run_survives(engine):
    first = run(engine, BIG_FLOW, inputs={"v": BIG}).id
    time.sleep(0.01)
    second = run(engine, BIG_FLOW, inputs={"v": BIG}).id
    blobs = engine.store.storage()["blobs"]["database"]
    assert blobs["count"] >= 1  # the variable's value (and, on SQL stores, the inputs)
    report = engine.gc(older_than=0, keep_last=1)
    assert report["run_ids"] == [first] and report["blobs"] == 0
    assert engine.store.storage()["blobs"]["database"] == blobs
    assert engine.vars(second) == {"big": BIG}
    report = engine.gc(older_than=0)
    assert report["run_ids"] == [second] and report["blobs"] == blobs["count"]
    assert report["blob_bytes"] == blobs["bytes"]
    assert engine.store.storage()["blobs"]["database"] == {"count": 0, "bytes": 0}


def test_rm_deletes_one_finished_run_and_refuses_the_others(engine):
    done = run(engine, DONE).id
    paused = run(engine, PAUSES).id
    bare(engine, "child", "completed", parent_id=done)
    with pytest.raises(NotFound):
        engine.delete_run("nope")
    with pytest.raises(ConflictError, match="paused"):
        engine.delete_run(paused)
    with pytest.raises(ConflictError, match="parent"):
        engine.delete_run(done)
    assert engine.delete_run("child")["runs"] == 1
    report = engine.delete_run(done)
    assert report["run_ids"] == [done] and report["rows"] > 0
    assert not exists(engine, done)
    with pytest.raises(NotFound):
        engine.delete_run(done)


def test_the_sweeper_applies_a_flows_retention_and_the_default(store_url):
    engine = Engine(store_url)
    try:
        kept = run(engine, DONE).id  # no retention: kept by a sweeper without a default
        short = run(engine, DONE.replace("name: done", "name: short\nretention: 1ms")).id
        time.sleep(0.01)
        sweeper = RetentionSweeper(engine.store, None, "me")
        first = sweeper.sweep_once()
        assert first is not None and first["runs"] == 1 and first["rows"] > 0
        assert not exists(engine, short) and exists(engine, kept)
        other = RetentionSweeper(engine.store, 0.001, "other")
        if not isinstance(engine.store, SweeperElection):  # the named lock: one sweeper at a time
            assert other.sweep_once() is None
            sweeper.stop()
        second = other.sweep_once()
        assert second is not None and second["runs"] == 1 and not exists(engine, kept)
        other.stop()
    finally:
        engine.close()
