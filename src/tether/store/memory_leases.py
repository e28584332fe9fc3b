"""The memory store's runs and leases role: taking, renewing and releasing a run's lease
(with a takeover's first commit in the same step), claiming a pending or abandoned run, and
the fenced writes a lease holder makes (its processes, its flow), in the store's
dictionaries behind its lock."""
from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, LeaseLost
from . import codec
from .base import RunRecord, Takeover, now
from .records import HELD


class MemoryLeases:
    """The lease methods of :class:`~tether.store.memory.MemoryStore`."""

    _lock: threading.RLock
    _runs: dict[str, RunRecord]
    _events: dict[str, list[tuple]]
    _recovery_seq: dict[str, int]

    if TYPE_CHECKING:
        def _run(self, run_id: str) -> RunRecord: ...
        def _write_vars(self, run_id: str, writes: Any, seq: int, t: float) -> dict[str, int]: ...

    def acquire_lease(self, run_id: str, owner: str, ttl: float,
                      steal_epoch: int | None = None, takeover: Takeover | None = None) -> RunRecord:
        with self._lock:
            run = self._run(run_id)
            t = now()
            free = (run.lease_owner is None or run.lease_owner == owner or run.lease_expires < t
                    or steal_epoch == run.lease_epoch)
            if not free:
                raise ConflictError(f"run {run_id} is owned by {run.lease_owner} (lease valid for "
                                    f"{run.lease_expires - t:.0f}s more)")
            if takeover is not None and takeover.expect_status is not None and \
                    run.status not in takeover.expect_status:
                raise ConflictError(f"run {run_id} is {run.status} now; it was taken over meanwhile")
            run = replace(run, lease_owner=owner, lease_epoch=run.lease_epoch + 1, lease_expires=t + ttl)
            if takeover is not None:
                seq = run.seq + (1 if (takeover.vars or takeover.events) else 0)
                run = replace(run, status=takeover.status, cursor=codec.loads(codec.dumps(takeover.cursor)),
                              attempt=run.attempt + 1, control=None, error=None, outputs=None,
                              finished_at=None, seq=seq, recoveries=0)
                self._recovery_seq.pop(run_id, None)
                if seq != self._runs[run_id].seq:
                    self._write_vars(run_id, takeover.vars, seq, t)
                    for idx, e in enumerate(takeover.events):
                        self._events[run_id].append((seq, idx, e.type, e.step_id,
                                                     codec.loads(codec.dumps(e.data)), t))
            self._runs[run_id] = run
            return run

    def claim_run(self, owner: str, ttl: float, abandoned: Any = ()) -> RunRecord | None:
        with self._lock:
            t = now()
            dead = set(abandoned)
            ready = [r for r in self._runs.values()
                     if r.status == "pending" or (r.status == "running" and (
                         (r.lease_expires < t and r.control != HELD) or (r.run_id, r.lease_epoch) in dead))]
            if not ready:
                return None
            run = min(ready, key=lambda r: (r.created_at, r.run_id))
            seq = run.seq + 1
            recoveries = run.recoveries
            if run.status == "running" or run.lease_owner is not None:  # taken from a dead owner
                recoveries = 1 if self._progressed(run) else run.recoveries + 1
                self._recovery_seq[run.run_id] = seq
            run = replace(run, status="running", lease_owner=owner, lease_epoch=run.lease_epoch + 1,
                          lease_expires=t + ttl, attempt=run.attempt + (1 if run.seq else 0), control=None,
                          error=None, finished_at=None, seq=seq, started_at=run.started_at or t,
                          recoveries=recoveries)
            self._events[run.run_id].append((seq, 0, "run.claimed", None, {"owner": owner}, t))
            self._runs[run.run_id] = run
            return run

    def _progressed(self, run: RunRecord) -> bool:
        """Whether the run made a checkpoint other than ``step.started`` and ``run.claimed``
        since its last automatic takeover (True when it had none)."""
        since = self._recovery_seq.get(run.run_id)
        if since is None:
            return True
        announced = {e[0] for e in self._events[run.run_id]
                     if e[0] > since and e[2] in ("step.started", "run.claimed")}
        return run.seq - since > len(announced)

    def live_leases(self, owner_prefix: str) -> list[tuple[str, str, int]]:
        with self._lock:
            t = now()
            return [(r.run_id, r.lease_owner, r.lease_epoch) for r in self._runs.values()
                    if r.status == "running" and r.lease_expires >= t and r.lease_owner
                    and r.lease_owner.startswith(owner_prefix)]

    def renew_lease(self, run_id: str, epoch: int, ttl: float) -> None:
        with self._lock:
            run = self._run(run_id)
            if run.lease_epoch != epoch:
                raise LeaseLost(f"run {run_id}: lease epoch {epoch} was taken over")
            self._runs[run_id] = replace(run, lease_expires=now() + ttl)

    def release_lease(self, run_id: str, epoch: int) -> None:
        with self._lock:
            run = self._run(run_id)
            if run.lease_epoch == epoch:
                self._runs[run_id] = replace(run, lease_owner=None, lease_expires=0.0)

    def record_processes(self, run_id: str, epoch: int, processes: Any) -> None:
        with self._lock:
            run = self._run(run_id)
            if run.lease_epoch == epoch:
                self._runs[run_id] = replace(run, processes=codec.loads(codec.dumps(processes)))

    def set_flow(self, run_id: str, epoch: int, flow_text: str, flow_path: str | None,
                 flow_data: Any = None, flow_digest: str | None = None) -> None:
        with self._lock:
            run = self._run(run_id)
            if run.lease_epoch != epoch:
                raise LeaseLost(f"run {run_id}: lease epoch {epoch} was taken over")
            self._runs[run_id] = replace(run, flow_text=flow_text, flow_path=flow_path,
                                         flow_data=codec.loads(codec.dumps(flow_data)),
                                         flow_digest=flow_digest)
