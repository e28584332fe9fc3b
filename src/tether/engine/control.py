"""Asking a run to stop from outside it: pause (after its current step) and cancel (now;
a run without a live owner is cancelled here, and what its dead owner left running on
this machine is killed)."""
from __future__ import annotations

from ..ids import check_run_id
from ..store.base import EventWrite, Store, Takeover
from .lease import owner_id
from .lifecycle import InvalidTransition, check_transition, owner_alive, status_of


def pause(store: Store, run_id: str) -> str:
    """Ask the running run to stop after its current step; returns its status now.
    InvalidTransition (a conflict: 409, exit 4) when it is not running."""
    record = store.load_run(check_run_id(run_id))
    status = status_of(record)
    if status != "running":
        raise InvalidTransition(f"run {run_id} is {status}; only a running run can be paused")
    store.request(run_id, "pause")
    return status


def cancel(store: Store, run_id: str, lease_seconds: float) -> str:
    """Stop the run now: a running step's process group is killed by its owner. A run
    with no live owner is marked cancelled here, and what its dead owner's step left
    running on this machine is killed. Returns the status it had."""
    record = store.load_run(check_run_id(run_id))
    status = status_of(record)
    check_transition(run_id, "running" if status == "interrupted" else record.status, "cancelled")
    if status == "running":
        store.request(run_id, "cancel")
        return status
    alive = owner_alive(record.lease_owner)
    taken = store.acquire_lease(run_id, owner_id(), lease_seconds,
                                steal_epoch=record.lease_epoch if alive is False else None,
                                takeover=Takeover("cancelled", record.cursor,
                                                  events=(EventWrite("run.cancelled", None, {}),),
                                                  expect_status=(record.status,)))
    store.release_lease(run_id, taken.lease_epoch)
    from ..procs import kill_left_over
    kill_left_over(record.processes)  # what a dead owner's step left running on this machine
    return status
