"""The Store protocol: everything the engine asks of a state backend.

Stores see encoded values (see :mod:`tether.store.codec`), never Python objects,
and guarantee one thing above all: a :class:`Commit` is applied whole or not at
all, and only while the writer still holds the run's lease epoch.
"""
from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple, Protocol, Sequence

from .codec import Encoded

RUN_STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")
FINISHED = frozenset({"completed", "failed", "cancelled"})


def now() -> float:
    """Seconds since the epoch, UTC."""
    return time.time()


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as stored. ``seq`` is the number of the last committed checkpoint."""

    run_id: str
    name: str
    status: str
    flow_text: str
    flow_path: str | None
    inputs: Any
    parent_id: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    seq: int = 0
    cursor: Any = None
    outputs: Any = None
    error: Any = None
    lease_owner: str | None = None
    lease_epoch: int = 0
    lease_expires: float = 0.0
    durability: str = "normal"
    env_snapshot: Any = None
    attempt: int = 1
    control: str | None = None
    flow_data: Any = None  # written by create_run; read back with Store.flow_data()
    recoveries: int = 0  # automatic takeovers since the run last made progress (see claim_run)
    processes: Any = None  # the owner's running steps' process groups (tether.procs.ProcessGroups)

    def effective_status(self, at: float | None = None) -> str:
        """``interrupted`` for a running run whose lease has expired, else ``status``."""
        if self.status == "running" and self.lease_expires < (at or now()):
            return "interrupted"
        return self.status


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One execution of one step (or, later, one loop iteration)."""

    step_id: str
    status: str
    seq: int = 0
    attempts: int = 0
    inputs: Any = None
    result: Any = None
    error: Any = None
    meta: Any = None
    started_at: float | None = None
    finished_at: float | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class VarRecord:
    """A run variable with its metadata."""

    name: str
    value: Any
    type: str
    scope: str
    version: int
    source_step: str | None
    created_at: float
    updated_at: float
    accessed_at: float | None
    access_count: int
    secret: bool = False
    seq: int = 0


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One write of a variable: the value it got at checkpoint ``seq``."""

    name: str
    version: int
    seq: int
    value: Any
    source_step: str | None
    at: float
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event of a run's timeline; ``(seq, idx)`` orders events."""

    seq: int
    idx: int
    type: str
    step_id: str | None
    data: Any
    at: float


# ---------------------------------------------------------------- writes
# The records below are built for every step, so they are NamedTuples: as immutable
# as frozen dataclasses and about four times cheaper to construct.

class VarWrite(NamedTuple):
    """Set (or, with ``delete``, remove) one variable. The store assigns the version."""

    name: str
    value: Encoded | None
    type: str = "step_result"
    scope: str = "run"
    source_step: str | None = None
    secret: bool = False
    delete: bool = False


class StepWrite(NamedTuple):
    """A step record to append."""

    step_id: str
    status: str
    attempts: int
    inputs: Encoded | None
    result: Encoded | None
    error: Any
    meta: Any
    started_at: float | None
    finished_at: float | None
    idempotency_key: str | None


class IterationWrite(NamedTuple):
    """The outcome of one loop iteration (replaces an earlier record of the same index)."""

    loop_key: str
    idx: int
    status: str
    attempts: int
    result: Encoded | None
    error: Any
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class IterationRecord:
    loop_key: str
    idx: int
    status: str
    attempts: int
    result: Any
    error: Any
    seq: int
    started_at: float | None
    finished_at: float | None


class EventWrite(NamedTuple):
    type: str
    step_id: str | None = None
    data: Any = None


class RunUpdate(NamedTuple):
    """Run fields a commit changes; ``None`` leaves a field as it is, except
    ``cursor`` which is always written when a RunUpdate is given."""

    cursor: Any = None
    status: str | None = None
    outputs: Encoded | None = None
    error: Any = None
    finished: bool = False


class Commit(NamedTuple):
    """Everything one checkpoint writes, applied in one transaction. ``fenced``: the
    writer rendered it from the state as of checkpoint ``expected_seq``, so the store
    refuses it (StateMoved) once anyone else has committed since."""

    run_id: str
    epoch: int
    steps: tuple[StepWrite, ...] = ()
    vars: tuple[VarWrite, ...] = ()
    events: tuple[EventWrite, ...] = ()
    run: RunUpdate | None = None
    accesses: tuple[tuple[str, int, float], ...] = ()
    durability: str = "normal"
    expected_seq: int | None = None
    iterations: tuple[IterationWrite, ...] = ()
    fenced: bool = False


@dataclass(frozen=True, slots=True)
class Takeover:
    """What taking a run over writes in the same transaction as the new lease:
    the new status and cursor, ``attempt`` + 1, a cleared control request, error and
    outputs (a rewound run has outputs only once it completes again), and, when there
    are any, variable writes and events as one new checkpoint.
    ``expect_status``: refuse (ConflictError) unless the run's status is one of these."""

    status: str
    cursor: Any
    vars: tuple[VarWrite, ...] = ()
    events: tuple[EventWrite, ...] = ()
    expect_status: tuple[str, ...] | None = None


class CommitResult(NamedTuple):
    """``seq`` is the new checkpoint; ``versions`` maps each written variable to its
    new version; ``foreign`` is true when someone else committed since ``expected_seq``."""

    seq: int
    versions: dict[str, int]
    foreign: bool = False


class SharedRecord(NamedTuple):
    """A shared variable: outlives runs; ``version`` for compare-and-set."""

    name: str
    value: Any
    version: int
    immutable: bool
    updated_at: float


class Store(Protocol):
    """A state backend. Every method is safe to call from several threads."""

    url: str

    def create_run(self, run: RunRecord, owner: str, ttl: float) -> tuple[RunRecord, bool]:
        """Insert ``run`` holding a fresh lease for ``owner`` (epoch 1) and return it
        with True; if a run with that id exists, return it unchanged with False."""

    def load_run(self, run_id: str) -> RunRecord:
        """The run as last committed; NotFound if there is none."""

    def poll(self, run_id: str) -> tuple[int, str | None]:
        """The run's last checkpoint number and pending control request (cheap; read
        before each step and by the heartbeat)."""

    def request(self, run_id: str, control: str | None) -> None:
        """Record a control request (``pause``, ``cancel``) for the run's owner; NotFound
        if there is no such run."""

    def count_runs(self) -> dict[str, int]:
        """How many runs have each stored status."""

    def list_runs(self, status: str | None = None, limit: int = 50,
                  before: str | None = None) -> list[RunRecord]:
        """Runs newest first: by creation time, then by run id (both descending), optionally
        of one stored status. ``before`` names the last run of the previous page: only runs
        after it in this order are listed (NotFound if there is no such run)."""

    def acquire_lease(self, run_id: str, owner: str, ttl: float,
                      steal_epoch: int | None = None, takeover: Takeover | None = None) -> RunRecord:
        """Take the run's lease and return the run with its new epoch. Succeeds when
        the lease is free, expired, already ``owner``'s, or held at ``steal_epoch``;
        otherwise ConflictError naming the holder. A ``takeover`` is applied in the
        same transaction."""

    def claim_run(self, owner: str, ttl: float,
                  abandoned: Iterable[tuple[str, int]] = ()) -> RunRecord | None:
        """Take the oldest run that is ``pending`` (queued by ``run --detach``, or
        released by a stopping worker) or ``running`` with an expired lease (its owner
        died), or one of ``abandoned`` (``(run_id, epoch)`` of running runs whose owner
        the caller knows is dead) still at that epoch: it becomes ``running`` under a
        fresh lease for ``owner``, with a ``run.claimed`` event. None when there is no
        such run. Two claimers never get the same run.

        Taking over a run from a dead owner (a running run, or a pending one that still
        names its owner: swept after its lease expired) is a recovery: ``recoveries``
        becomes 1 if the run made progress since the previous recovery (a checkpoint
        other than ``step.started`` and ``run.claimed``), else one more. ``acquire_lease``
        with a ``takeover`` (a person's resume) sets it back to 0."""

    def live_leases(self, owner_prefix: str) -> list[tuple[str, str, int]]:
        """``(run_id, owner, epoch)`` of each running run whose lease has not expired and
        whose owner id starts with ``owner_prefix``."""

    def renew_lease(self, run_id: str, epoch: int, ttl: float) -> None:
        """Extend the lease; LeaseLost if ``epoch`` no longer holds it."""

    # shared variables (§4.5): values that outlive one run
    def shared_get(self, name: str) -> SharedRecord:
        """The shared variable; NotFound if it does not exist."""

    def shared_list(self) -> list[SharedRecord]:
        """Every shared variable, by name."""

    def shared_set(self, name: str, value: Any, *, expected_version: int | None = None,
                   immutable: bool = False) -> SharedRecord:
        """Write a shared variable (version + 1). ConflictError if it is immutable or
        ``expected_version`` (0: must not exist) is not its version."""

    def shared_delete(self, name: str, *, expected_version: int | None = None) -> bool:
        """Delete it (False if absent); ConflictError if immutable or the version differs."""

    # named locks with a lease
    def lock_acquire(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lock for ``ttl`` seconds if it is free, expired or ``owner``'s."""

    def lock_renew(self, name: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s hold; False if it lost the lock."""

    def lock_release(self, name: str, owner: str) -> None:
        """Let go of the lock if ``owner`` holds it."""

    def release_lease(self, run_id: str, epoch: int) -> None:
        """Give the lease up if ``epoch`` still holds it; no error otherwise."""

    def record_processes(self, run_id: str, epoch: int, processes: Any) -> None:
        """Store ``processes`` (JSON: the process groups of the steps the owner runs) as the
        run's ``processes``, if ``epoch`` still holds the lease; no error otherwise. Not
        a checkpoint: ``seq`` does not move."""

    def set_flow(self, run_id: str, epoch: int, flow_text: str, flow_path: str | None,
                 flow_data: Any = None) -> None:
        """Replace the run's stored flow (``resume --flow``); LeaseLost unless ``epoch`` holds it."""

    def commit(self, commit: Commit) -> CommitResult:
        """Apply ``commit`` atomically and advance the run's seq by one; LeaseLost
        (and nothing written) if ``commit.epoch`` no longer holds the lease; StateMoved
        (and nothing written) if it is ``fenced`` and the seq is no longer ``expected_seq``."""

    def hold(self, run_id: str) -> AbstractContextManager[None]:
        """Keep everyone else from committing to the run until the block ends (their writes
        wait). What this thread commits inside joins the held transaction (its reads see
        it) and is kept when the block ends, even by an exception. NotFound if no such run."""

    def start_loop(self, run_id: str, epoch: int, loop_key: str, items: Iterable[Encoded],
                   event: EventWrite) -> int:
        """Store a loop's collection (elements in order) and ``event`` as one checkpoint and
        return the number of elements; LeaseLost unless ``epoch`` holds the run. A loop
        that already has a collection keeps it (returns its size)."""

    def loop_size(self, run_id: str, loop_key: str) -> int | None:
        """How many elements the loop's stored collection has, or None if it never started."""

    def loop_items(self, run_id: str, loop_key: str, start: int, stop: int) -> list[Any]:
        """Elements ``start`` to ``stop - 1`` of a loop's collection."""

    def iterations(self, run_id: str, loop_key: str, start: int = 0, stop: int | None = None,
                   status: str | None = None) -> list[IterationRecord]:
        """Iteration records of a loop with ``start <= idx < stop``, by index, optionally of one status."""

    def iteration_counts(self, run_id: str, loop_key: str) -> dict[str, int]:
        """``{status: count}`` over a loop's iteration records."""

    def finished_indices(self, run_id: str, loop_key: str, start: int, stop: int,
                         include_failed: bool = True) -> set[int]:
        """Indices in ``[start, stop)`` that have an iteration record (failed ones only when
        ``include_failed``); no results are decoded."""

    def finished_per_batch(self, run_id: str, loop_key: str, batch: int,
                           include_failed: bool = True) -> dict[int, int]:
        """``{idx // batch: number of finished iterations}`` (as in :meth:`finished_indices`)."""

    def flow_data(self, run_id: str) -> Any:
        """The parsed flow document stored when the run started, or None."""

    def read_vars(self, run_id: str, since_seq: int = 0) -> dict[str, VarRecord]:
        """Current variables written after checkpoint ``since_seq`` (all by default)."""

    def read_var(self, run_id: str, name: str, *, count_access: bool = False) -> VarRecord:
        """One variable; NotFound if absent. ``count_access`` records a read."""

    def set_var(self, run_id: str, write: VarWrite,
                expected_version: int | None = None) -> VarRecord:
        """Write one variable from outside the run (CLI, API) as its own checkpoint.
        ConflictError if ``expected_version`` is given and is not the current one
        (0 meaning "must not exist"). NotFound if the run does not exist."""

    def set_vars(self, run_id: str, writes: Sequence[VarWrite],
                 expected_versions: Mapping[str, int] | None = None) -> int:
        """Write variables from outside the run as one checkpoint, all or none, with one
        ``var.set`` event each; return the checkpoint's seq. ConflictError (nothing
        written) if one of ``expected_versions`` is not current. NotFound if no such run."""

    def delete_var(self, run_id: str, name: str, source: str,
                   expected_version: int | None = None) -> bool:
        """Remove a variable as its own checkpoint, keeping its history; False if absent."""

    def var_history(self, run_id: str, name: str) -> list[HistoryRecord]:
        """Every write of the variable, oldest first."""

    def var_changes(self, run_id: str) -> list[tuple[int, str, float]]:
        """``(seq, name, at)`` of every variable write, in checkpoint order (``at``: when
        its checkpoint was committed)."""

    def iteration_checkpoints(self, run_id: str) -> list[tuple[int, str, int, float | None]]:
        """``(seq, loop_key, idx, finished_at)`` of every stored iteration record of the
        run, in checkpoint order: the checkpoints that committed loop iterations."""

    def state_at(self, run_id: str, seq: int) -> dict[str, Any]:
        """Every variable's value as of checkpoint ``seq``."""

    def steps(self, run_id: str) -> list[StepRecord]:
        """Every step record of the run, in commit order."""

    def events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]:
        """Events with ``seq > after_seq``, in ``(seq, idx)`` order. Every step record is
        also listed as a ``step.<status>`` event ``{attempts, error}`` at its commit's seq
        (idx 0.. by step id); a commit's other events follow it."""

    def stats(self) -> dict[str, int]:
        """Counts of runs, steps, vars, var_history, events, blobs and bytes, and the summed
        template cache hits and misses recorded by finished runs, for ``tether stats``."""

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""


def iter_latest_steps(records: Iterable[StepRecord]) -> dict[str, StepRecord]:
    """The latest record of each step id."""
    latest: dict[str, StepRecord] = {}
    for rec in records:
        latest[rec.step_id] = rec
    return latest


def hidden_ranges(cursor: Any) -> list[list[int]]:
    """The checkpoint ranges a run's rewinds undid, as stored in its cursor."""
    return [list(r) for r in cursor.get("hidden", [])] if isinstance(cursor, dict) else []


def is_hidden(seq: int, hidden: list[list[int]]) -> bool:
    """True when checkpoint ``seq`` was undone by a rewind."""
    return any(lo <= seq <= hi for lo, hi in hidden)


def latest_visible_steps(records: Iterable[StepRecord], hidden: list[list[int]]) -> dict[str, StepRecord]:
    """The latest record of each step id, ignoring records a rewind undid."""
    return iter_latest_steps(r for r in records if not is_hidden(r.seq, hidden))
