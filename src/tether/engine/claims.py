"""A worker's claim of one queued or abandoned run, up to the point where it can run:
its flow and the environment it runs with, or the run failed at once (too many takeovers
without progress, or an environment ``resume`` would refuse)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import MaxRecoveriesExceeded, TetherError
from ..store.base import Commit, EventWrite, RunRecord, RunUpdate, Store
from .lifecycle import abandoned_here
from .stored_run import stored_flow

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..flow import LoadedFlow


@dataclass(frozen=True)
class Claimed:
    """A claimed run: ``loaded`` and ``env`` to run it with, or both None when it was
    failed instead (its record is then as claimed, before the failure)."""

    record: RunRecord
    loaded: LoadedFlow | None
    env: dict[str, str | None] | None


def claim(store: Store, owner: str, lease_seconds: float, max_recoveries: int) -> Claimed | None:
    """Claim one run for ``owner`` (a dead owner on this host's at once); None when there is
    none. A run queued by ``run(detach=True)`` starts with this process's environment; a run
    taken over continues with its environment compared as ``resume`` compares it (a refusal
    fails the run); one taken over more than ``max_recoveries`` times without progress is
    failed with MaxRecoveriesExceeded."""
    from ..env import read_env
    from .resume import compare_env
    abandoned = abandoned_here(store)
    record = store.claim_run(owner, lease_seconds, abandoned)
    if record is None:
        return None
    log.info("run %s claimed by %s: %s", record.run_id, owner, why_claimed(record, abandoned),
             extra={"run_id": record.run_id})
    if record.recoveries > max_recoveries:
        return _failed(store, record, MaxRecoveriesExceeded(
            f"run {record.run_id} exceeded its recoveries: it was taken over {record.recoveries - 1} "
            f"time(s) after its process died, and the process died again each time without a new "
            f"checkpoint (TETHER_MAX_RECOVERIES={max_recoveries}); find out what kills it "
            f"(memory, a crash in a step), then `tether resume {record.run_id}`"))
    loaded = stored_flow(store, record)
    current = read_env(loaded.flow, dict(os.environ))
    unstarted = isinstance(record.cursor, dict) and record.cursor.get("unstarted")
    try:
        env = current if unstarted else compare_env(loaded.flow, record.env_snapshot, current)[1]
    except TetherError as exc:
        return _failed(store, record, exc)
    return Claimed(record, loaded, env)


def why_claimed(record: RunRecord, abandoned: list[tuple[str, int]]) -> str:
    """Why a claimed run (``record`` as claimed) was there to take, in words."""
    if any(run_id == record.run_id for run_id, _ in abandoned):
        return f"taken over, its owner's process on this host died (recovery {record.recoveries})"
    if record.recoveries:
        return (f"taken over, its owner's lease expired or it was handed back interrupted "
                f"(recovery {record.recoveries})")
    if isinstance(record.cursor, dict) and record.cursor.get("unstarted"):
        return "queued (run --detach or POST /api/runs)"
    return "handed back pending by a stopping worker or server"


def _failed(store: Store, record: RunRecord, exc: TetherError) -> Claimed:
    """Commit the claimed run's failure with ``exc`` at its cursor and give its lease up."""
    step = record.cursor.get("next") if isinstance(record.cursor, dict) else None
    error = {"type": type(exc).__name__, "message": exc.message, "step": step}
    store.commit(Commit(record.run_id, record.lease_epoch,
                        events=(EventWrite("run.failed", None, {"error": error}),),
                        run=RunUpdate(cursor=record.cursor, status="failed", error=error, finished=True)))
    store.release_lease(record.run_id, record.lease_epoch)
    return Claimed(record, None, None)
