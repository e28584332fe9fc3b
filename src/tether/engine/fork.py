"""A fork's first commit: a new run (``parent_id`` the original) holding the original's
variables and visible step records as of one checkpoint, plus ``--set`` values, in one
commit with a ``run.forked`` event. The original is not changed."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, StateMoved, UsageError
from ..ids import check_run_id, check_var_name, new_run_id
from ..store import codec
from ..store.base import (
    Commit,
    EventWrite,
    RunRecord,
    RunUpdate,
    StepWrite,
    Store,
    VarWrite,
    hidden_ranges,
    latest_visible_steps,
    now,
)
from .lease import owner_id

if TYPE_CHECKING:
    from ..flow import LoadedFlow
    from ..vault import Vault


def create_fork(store: Store, vault: Vault, src: RunRecord, loaded: LoadedFlow, *, from_step: str | None,
                values: dict[str, Any] | None, fork_id: str | None,
                lease_seconds: float) -> tuple[RunRecord, dict[str, str | None]]:
    """Create and commit the fork of ``src`` as of the checkpoint before ``from_step`` first
    started (default: its last checkpoint), owned by this process; returns its record and
    environment. UsageError (nothing created) for an unknown or never-run ``from_step`` or a
    bad ``values`` entry; ConflictError when ``fork_id`` exists."""
    from ..env import read_env, snapshot
    from .resume import first_start
    run_id = src.run_id
    hidden = hidden_ranges(src.cursor)
    nxt: str | None  # the new run's first step (None: the original had finished)
    if from_step is not None:
        if from_step not in loaded.flow.step_index():
            raise UsageError(f"the flow has no step {from_step!r} to fork from")
        start = first_start(store, run_id, from_step, hidden)
        if start is None:
            raise UsageError(f"step {from_step!r} has not run in run {run_id}; nothing to fork from it")
        target, nxt = start - 1, from_step
    else:
        target = src.seq
        nxt = src.cursor.get("next") if isinstance(src.cursor, dict) else None
    env = read_env(loaded.flow)
    rid = check_run_id(fork_id) if fork_id else new_run_id()
    secret = {n for n, v in store.read_vars(run_id).items() if v.secret} | set(loaded.flow.secret_vars)
    set_writes = []  # checked before the new run exists: a bad entry creates nothing
    for name, value in (values or {}).items():
        check_var_name(name)
        stored = vault.encrypt(value, f"set.{name}") if name in secret else value
        set_writes.append(VarWrite(name, codec.encode(stored, field=f"set.{name}"), "user_defined", "run",
                                   "fork", name in secret))
    t = now()
    record, created = store.create_run(RunRecord(
        run_id=rid, name=src.name, status="running", flow_text=src.flow_text, flow_path=src.flow_path,
        inputs=src.inputs, parent_id=src.run_id, created_at=t, started_at=t, cursor={"next": nxt},
        durability=src.durability, env_snapshot=snapshot(loaded.flow, env, os.urandom(16)),
        flow_data=store.flow_data(run_id), flow_digest=src.flow_digest),
        owner_id(), lease_seconds)
    if not created:
        raise ConflictError(f"run {rid} already exists")
    writes = [VarWrite(n, codec.encode(v), "step_result", "run", "fork", n in secret)
              for n, v in store.state_at(run_id, target).items()] + set_writes
    steps = sorted(latest_visible_steps((r for r in store.steps(run_id) if r.seq <= target),
                                        hidden).values(), key=lambda r: r.seq)
    copies = tuple(StepWrite(r.step_id, r.status, r.attempts,
                             None if r.inputs is None else codec.encode(r.inputs),
                             None if r.result is None else codec.encode(r.result), r.error, r.meta,
                             r.started_at, r.finished_at, r.idempotency_key) for r in steps)
    forked = (EventWrite("run.forked", None, {"from_run": run_id, "from_seq": target,
                                              "from_step": from_step}),)
    _first_commit(store, Commit(rid, record.lease_epoch, copies, tuple(writes), forked,
                                RunUpdate(cursor={"next": nxt}), durability=src.durability,
                                expected_seq=record.seq, fenced=True))
    return store.load_run(rid), env


def _first_commit(store: Store, commit: Commit) -> None:
    """Commit the fork's first checkpoint, fenced on the new run's creation: when a
    variable was written from outside in between (the id was given, so it can be known),
    that write wins and the fork's own value of it is dropped, as for a run's initial
    variables (``Runner.start_fresh``). Held off after one refusal, so it always lands."""
    try:
        store.commit(commit)
        return
    except StateMoved:
        pass
    with store.hold(commit.run_id):  # nobody else writes until this commit has
        outside = store.read_vars(commit.run_id)
        store.commit(commit._replace(vars=tuple(w for w in commit.vars if w.name not in outside),
                                     expected_seq=store.poll(commit.run_id)[0]))
