"""The records a store reads and writes. Read-side records are frozen dataclasses;
the write-side ones (built for every step) are NamedTuples, as immutable and cheaper
to construct. Times are epoch seconds (floats)."""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from .codec import Encoded


def now() -> float:
    """Seconds since the epoch, UTC."""
    return time.time()


#: ``control`` of an interrupted run that its owner stopped on purpose (a signal to a
#: foreground ``tether run``/``resume``): no worker claims it, a person's resume (or
#: cancel) takes it and clears the mark. See ``Store.claim_run``.
HELD = "held"


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
    control: str | None = None  # a request to its owner (pause, cancel), or HELD
    flow_data: Any = None  # written by create_run; read back with Store.flow_data()
    recoveries: int = 0  # automatic takeovers since the run last made progress (see claim_run)
    processes: Any = None  # the owner's running steps' process groups (tether.procs.ProcessGroups)
    flow_digest: str | None = None  # of flow_data as validated (tether.flow.trusted_digest)

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


class StepHead(NamedTuple):
    """A step record without its inputs, result and error: what a resumed run needs of
    every record (visits, each step's latest record, which one ran a loop), read
    without decoding values; :meth:`Store.step_at` reads the whole record."""

    step_id: str
    status: str
    seq: int
    meta: Any = None


class CurrentVar(NamedTuple):
    """A current variable as a run holds it in memory: its value and what its next write
    needs (no times, access counts or source step)."""

    name: str
    value: Any
    type: str
    scope: str
    version: int
    secret: bool = False


@dataclass(frozen=True, slots=True)
class VarRecord:
    """A run variable with its metadata."""

    name: str
    value: Any
    type: str
    scope: str
    version: int
    source_step: str | None
    created_at: float | None  # None: a row the store cannot date (read with optional=True)
    updated_at: float | None
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



_Step = TypeVar("_Step", StepRecord, StepHead)


def iter_latest_steps(records: Iterable[_Step]) -> dict[str, _Step]:
    """The latest record of each step id."""
    latest: dict[str, _Step] = {}
    for rec in records:
        latest[rec.step_id] = rec
    return latest


def hidden_ranges(cursor: Any) -> list[list[int]]:
    """The checkpoint ranges a run's rewinds undid, as stored in its cursor."""
    return [list(r) for r in cursor.get("hidden", [])] if isinstance(cursor, dict) else []


def is_hidden(seq: int, hidden: list[list[int]]) -> bool:
    """True when checkpoint ``seq`` was undone by a rewind."""
    return any(lo <= seq <= hi for lo, hi in hidden)


def latest_visible_steps(records: Iterable[_Step], hidden: list[list[int]]) -> dict[str, _Step]:
    """The latest record of each step id, ignoring records a rewind undid."""
    if not hidden:  # no rewind: every record is visible (a resume of 10,000 steps checks none)
        return iter_latest_steps(records)
    return iter_latest_steps(r for r in records if not is_hidden(r.seq, hidden))


class RunBrief(NamedTuple):
    """What retention needs to know of a run to choose it: identity, flow name, stored
    status, family, age, and the checkpoint and lease it was chosen at (a run that moved
    on since is not deleted)."""

    run_id: str
    name: str
    status: str
    parent_id: str | None
    created_at: float
    finished_at: float | None
    seq: int
    lease_owner: str | None
    lease_epoch: int
    lease_expires: float


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """What deleting runs removed (or, measured before, would remove): the runs deleted,
    their rows (every table), the bytes of those rows' values and texts, and the blobs
    nothing referenced any more afterwards with their bytes."""

    runs: tuple[str, ...] = ()
    rows: int = 0
    bytes: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    held: float = 0.0  # seconds the deleting transaction kept other writers out (its lock wait not counted)

    def __add__(self, other: Reclaimed) -> Reclaimed:
        return Reclaimed(self.runs + other.runs, self.rows + other.rows, self.bytes + other.bytes,
                         self.blobs + other.blobs, self.blob_bytes + other.blob_bytes, self.held + other.held)
