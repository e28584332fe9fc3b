"""Retention: which runs ``tether gc`` deletes, deleting them in bounded batches, ``tether
rm``, and the sweeper that ``serve`` and ``worker`` run for ``retention:`` and
``TETHER_RETENTION``.

Guarantees:

* Only runs whose status (as a person sees it: ``interrupted`` for a running run whose
  owner is gone) is among the statuses asked for are deleted — by default the finished
  ones, ``completed``, ``failed`` and ``cancelled`` — and never a parent whose child is
  kept (children are deleted before their parents).
* A run that moves on after it was chosen (resumed, claimed, committed to) is kept: the
  store deletes a run only at the status, checkpoint and lease it was chosen at.
* Each batch is one short transaction (sized to take ~10 ms, 16 runs at least, followed by
  a pause as long),
  so other runs keep committing while gc works; a process killed during gc leaves every
  batch applied whole or not at all.
* ``dry_run`` changes nothing and reports what would be deleted, measured the same way.
"""
from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import ConflictError, CorruptRecord, NotFound, UsageError
from ..store.base import Reclaimed, RunBrief, Store, SweeperElection, now
from .lifecycle import RUN_STATUSES, owner_alive

log = logging.getLogger(__name__)
FINISHED = ("completed", "failed", "cancelled")
DEFAULT_OLDER_THAN = 30 * 86400.0  # `tether gc` without --older-than nor TETHER_RETENTION
BATCH_SECONDS = 0.010  # the time one deleting transaction aims at
MIN_BATCH, MAX_BATCH = 16, 512  # runs per transaction
MAX_PAUSE = 0.050
RECLAIM_PAGES = 500  # free pages given back per transaction (~8 ms with SQLite's 1 KiB pages)
BLOB_GRACE = 3600.0  # an unreferenced blob outside the database younger than this stays
LOCK = "tether:retention"  # the named lock electing the sweeper where the store has no election


def parse_statuses(statuses: str | Iterable[str] | None) -> tuple[str, ...]:
    """The statuses named (a comma-separated string or a list); the finished ones when None.
    UsageError naming an unknown one."""
    if statuses is None:
        return FINISHED
    names = [s.strip() for s in (statuses.split(",") if isinstance(statuses, str) else statuses)]
    names = [s for s in names if s]
    if not names:
        raise UsageError("--status needs at least one status")
    for s in names:
        if s not in RUN_STATUSES:
            raise UsageError(f"unknown run status {s!r}: use one or more of {', '.join(RUN_STATUSES)}")
    return tuple(dict.fromkeys(names))


def parse_age(value: float | str | None, default: float | None) -> float:
    """Seconds in ``value`` (``7d``, ``12h``, a number); ``default`` (else 30 days) when None."""
    if value is None:
        return default if default is not None else DEFAULT_OLDER_THAN
    from ..flow.models import parse_duration
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None


def shown_status(b: RunBrief, t: float) -> str:
    """The status a person sees: ``interrupted`` for a running run whose lease expired or
    whose owner process on this host is dead."""
    if b.status == "running" and (b.lease_expires < t or owner_alive(b.lease_owner) is False):
        return "interrupted"
    return b.status


def choose(briefs: Sequence[RunBrief], *, older_than: float, statuses: Sequence[str],
           keep_last: int | None = None, by_flow: Mapping[str, float] | None = None,
           t: float | None = None) -> list[RunBrief]:
    """The runs to delete, children before parents (newest first): those whose shown status
    is in ``statuses``, that ended (or, unfinished, were created) more than ``older_than``
    seconds ago (``by_flow[name]`` instead for the flows it names), that are not among the
    ``keep_last`` newest runs of their flow, and that are no kept run's ancestor."""
    t = now() if t is None else t
    by_flow = by_flow or {}
    seen: dict[str, int] = {}
    chosen: dict[str, RunBrief] = {}
    for b in briefs:  # newest first
        seen[b.name] = seen.get(b.name, 0) + 1
        if keep_last is not None and seen[b.name] <= keep_last:
            continue
        if shown_status(b, t) not in statuses:
            continue
        age = t - (b.finished_at if b.finished_at is not None else b.created_at)
        if age < by_flow.get(b.name, older_than):
            continue
        chosen[b.run_id] = b
    parents = {b.run_id: b.parent_id for b in briefs}
    for b in briefs:  # a kept run keeps its ancestors
        if b.run_id in chosen:
            continue
        p = b.parent_id
        while p is not None and p in parents:
            chosen.pop(p, None)
            p = parents[p]
    out = list(chosen.values())
    out.sort(key=lambda b: (b.created_at, b.run_id), reverse=True)
    return out


def _report(chosen: Sequence[RunBrief], got: Reclaimed, *, dry_run: bool, before: dict[str, Any],
            after: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {"dry_run": dry_run, "runs": len(got.runs), "run_ids": list(got.runs),
            "kept": len(chosen) - len(got.runs), "rows": got.rows, "bytes": got.bytes,
            "blobs": got.blobs, "blob_bytes": got.blob_bytes,
            "database_bytes_before": before["database_bytes"],
            "database_bytes_after": after["database_bytes"],
            "seconds": round(seconds, 3)}


def delete_batches(store: Store, chosen: Sequence[RunBrief], *, pause: float = BATCH_SECONDS,
                   stop: threading.Event | None = None) -> Reclaimed:
    """Delete ``chosen`` in transactions sized to take about ``BATCH_SECONDS`` each, with a
    pause after each (other writers get in), then give the freed pages back the same way."""
    got = Reclaimed()
    size, i = MIN_BATCH, 0
    while i < len(chosen) and not (stop and stop.is_set()):
        batch = chosen[i:i + size]
        started = time.monotonic()
        done = store.delete_runs(batch)
        got += done
        # how long others were kept out (the store's figure; without one, the call's time)
        took = done.held or (time.monotonic() - started)
        i += len(batch)
        if took < BATCH_SECONDS / 2:
            size = min(MAX_BATCH, size * 2)
        elif took > BATCH_SECONDS * 2:
            size = max(MIN_BATCH, size // 2)
        time.sleep(min(max(pause, took), MAX_PAUSE))
    while not (stop and stop.is_set()):
        started = time.monotonic()
        if store.reclaim_space(RECLAIM_PAGES) <= 0:
            break
        time.sleep(max(pause, time.monotonic() - started))
    return got


def gc(store: Store, *, older_than: float | str | None = None, statuses: str | Iterable[str] | None = None,
       keep_last: int | None = None, dry_run: bool = False, default_age: float | None = None,
       use_flows: bool = False) -> dict[str, Any]:
    """Delete (or, with ``dry_run``, measure) the runs :func:`choose` picks (with
    ``use_flows``, a flow's own ``retention:`` instead of ``older_than``); a report of runs,
    rows and bytes removed, blobs and their bytes, and the store's size before and after."""
    if keep_last is not None and keep_last < 0:
        raise UsageError("--keep-last must be 0 or more")
    age, wanted = parse_age(older_than, default_age), parse_statuses(statuses)
    started = time.monotonic()
    before = store.storage()
    briefs = store.run_briefs()
    by_flow = flow_retention(store, briefs) if use_flows else None
    chosen = choose(briefs, older_than=age, statuses=wanted, keep_last=keep_last, by_flow=by_flow)
    if dry_run:
        got = store.footprint([b.run_id for b in chosen])
        return _report(chosen, got, dry_run=True, before=before, after=before,
                       seconds=time.monotonic() - started)
    got = delete_batches(store, chosen)
    report = _report(chosen, got, dry_run=False, before=before, after=store.storage(),
                     seconds=time.monotonic() - started)
    report["external_blobs"] = sweep_external_blobs(store)
    return report


def sweep_external_blobs(store: Store, grace: float = BLOB_GRACE) -> int:
    """With ``TETHER_BLOBS``: delete the blobs of the blob store outside that no row refers to
    and that were not stored or used in the last ``grace`` seconds (a blob is written before
    the commit that refers to it: a recent one may be about to be referred to). How many
    went; 0 for a store that keeps its blobs in its own table (deleted with their rows)."""
    if store.blobs_url is None:
        return 0
    referenced = store.referenced_hashes()
    unused = [h for h in store.blobs.iter_hashes(older_than=now() - grace) if h not in referenced]
    return store.blobs.delete(unused) if unused else 0


def delete_run(store: Store, run_id: str) -> dict[str, Any]:
    """Delete one finished run (``tether rm``, ``DELETE /api/runs/{id}``). NotFound for an
    unknown run; ConflictError if it is not finished or is the parent of another run."""
    r = store.load_run(run_id)
    b = RunBrief(r.run_id, r.name, r.status, r.parent_id, r.created_at, r.finished_at, r.seq,
                 r.lease_owner, r.lease_epoch, r.lease_expires)
    status = shown_status(b, now())
    if status not in FINISHED:
        raise ConflictError(f"run {run_id} is {status}: only a finished run (completed, failed or "
                            "cancelled) can be deleted", hint=f"cancel it first: tether cancel {run_id}")
    before = store.storage()
    started = time.monotonic()
    got = store.delete_runs([b])
    if not got.runs:
        try:
            now_r = store.load_run(run_id)
        except NotFound:
            raise NotFound(f"run {run_id} was deleted meanwhile") from None
        if (now_r.status, now_r.seq, now_r.lease_epoch) != (b.status, b.seq, b.lease_epoch):
            raise ConflictError(f"run {run_id} changed while it was being deleted (it is {now_r.status} now)")
        raise ConflictError(f"run {run_id} is the parent of other runs (forks or child flows): "
                            "delete them first")
    delete_batches(store, [])  # give the freed pages back
    return _report([b], got, dry_run=False, before=before, after=store.storage(),
                   seconds=time.monotonic() - started)


def flow_retention(store: Store, briefs: Sequence[RunBrief]) -> dict[str, float]:
    """``{flow name: seconds}`` of the flows whose latest run's flow says ``retention:``."""
    out: dict[str, float] = {}
    latest: dict[str, str] = {}
    for b in briefs:  # newest first
        latest.setdefault(b.name, b.run_id)
    for name, run_id in latest.items():
        try:
            data = store.flow_data(run_id)
            value = data.get("retention") if isinstance(data, dict) else None
            if value is not None:
                from ..flow.models import parse_duration  # pydantic: only when a flow says it
                out[name] = parse_duration(value)
        except (NotFound, CorruptRecord, ValueError):  # gone meanwhile, or unreadable: no retention
            continue
    return out


class RetentionSweeper:
    """Applies ``retention:`` and ``TETHER_RETENTION`` to the store every ``period`` seconds
    while this process is the elected sweeper (the store's :class:`SweeperElection`, else the
    named lock ``tether:retention``), so one process at a time deletes. Finished runs of a
    flow with neither setting are never deleted by it."""

    def __init__(self, store: Store, default: float | None, owner: str, *,
                 period: float | None = None) -> None:
        self.store, self.default, self.owner = store, default, owner
        self.period = period if period is not None else min(600.0, max(1.0, (default or 3600.0) / 4))
        self.last: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RetentionSweeper:
        self._thread = threading.Thread(target=self._loop, name="tether-retention", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not isinstance(self.store, SweeperElection):
            with contextlib.suppress(Exception):  # the store is going away: the lock expires
                self.store.lock_release(LOCK, self.owner)

    def _elected(self) -> bool:
        if isinstance(self.store, SweeperElection):
            return self.store.try_become_sweeper()
        return self.store.lock_acquire(LOCK, self.owner, self.period * 3)

    def sweep_once(self) -> dict[str, Any] | None:
        """One sweep if elected: the gc report, or None when another process sweeps or no
        flow has a retention."""
        if not self._elected():
            return None
        briefs = self.store.run_briefs()
        by_flow = flow_retention(self.store, briefs)
        if not by_flow and self.default is None:
            return None
        chosen = choose(briefs, older_than=self.default if self.default is not None else math.inf,
                        statuses=FINISHED, by_flow=by_flow)
        got = delete_batches(self.store, chosen, stop=self._stop)
        swept = sweep_external_blobs(self.store)
        self.last = {"runs": len(got.runs), "rows": got.rows, "bytes": got.bytes, "blobs": got.blobs + swept}
        if got.runs:
            log.info("retention: deleted %d run(s), %d rows, %d bytes", len(got.runs), got.rows, got.bytes)
        return self.last

    def _loop(self) -> None:
        delay = min(self.period, 1.0)  # the first sweep soon after starting
        while not self._stop.wait(delay):
            delay = self.period
            try:
                self.sweep_once()
            except Exception as exc:  # the store is unreachable for now: try again next period
                log.warning("retention: %s", exc)
                self.last = {}
