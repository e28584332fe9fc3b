"""The Store protocol: everything the engine asks of a state backend, as roles.

Stores see encoded values (see :mod:`tether.store.codec`), never Python objects,
and guarantee one thing above all: a :class:`Commit` is applied whole or not at
all, and only while the writer still holds the run's lease epoch.

``Store`` combines the required roles; every backend implements all of them and
passes ``tests/contract/``. What only some backends can do is an optional
capability (:class:`SharedLoopWork`, :class:`WakeUps`, :class:`SweeperElection`):
a backend declares it by subclassing the capability's protocol, and callers check
it with :func:`isinstance` (the protocols are ``runtime_checkable``), never by
probing for attributes. The records live in :mod:`tether.store.records` and the
capabilities in :mod:`tether.store.capabilities`; both are re-exported here.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from .capabilities import SharedLoopWork, SweeperElection, WakeUps
from .codec import Encoded
from .records import (
    Commit,
    CommitResult,
    CurrentVar,
    EventRecord,
    EventWrite,
    HistoryRecord,
    IterationRecord,
    IterationWrite,
    Reclaimed,
    RunBrief,
    RunRecord,
    RunUpdate,
    SharedRecord,
    StepHead,
    StepRecord,
    StepWrite,
    Takeover,
    VarRecord,
    VarWrite,
    hidden_ranges,
    is_hidden,
    iter_latest_steps,
    latest_visible_steps,
    now,
)

__all__ = [
    "BlobReferences",
    "BlobStore",
    "Commit",
    "CommitResult",
    "Commits",
    "CurrentVar",
    "EventRecord",
    "EventWrite",
    "HistoryRecord",
    "IterationRecord",
    "IterationWrite",
    "LoopStorage",
    "Reclaimed",
    "Retention",
    "RunBrief",
    "RunReads",
    "RunRecord",
    "RunUpdate",
    "RunsAndLeases",
    "SharedLoopWork",
    "SharedRecord",
    "SharedVariables",
    "StepHead",
    "StepRecord",
    "StepWrite",
    "Store",
    "SweeperElection",
    "Takeover",
    "VarRecord",
    "VarWrite",
    "VariableWrites",
    "WakeUps",
    "hidden_ranges",
    "is_hidden",
    "iter_latest_steps",
    "latest_visible_steps",
    "now",
]


class RunsAndLeases(Protocol):
    """Runs and their leases: creating, finding and listing runs, control requests, and
    who may write to a run (the lease and its epoch, claims by workers, takeovers)."""

    def create_run(self, run: RunRecord, owner: str | None, ttl: float) -> tuple[RunRecord, bool]:
        """Insert ``run`` holding a fresh lease for ``owner`` (epoch 1) and return it
        with True; if a run with that id exists, return it unchanged with False."""

    def load_run(self, run_id: str) -> RunRecord:
        """The run as last committed; NotFound if there is none."""

    def flow_data(self, run_id: str) -> Any:
        """The parsed flow document stored when the run started, or None."""

    def poll(self, run_id: str) -> tuple[int, str | None]:
        """The run's last checkpoint number and pending control request (cheap; read
        before each step and by the heartbeat)."""

    def request(self, run_id: str, control: str | None) -> None:
        """Record a control request (``pause``, ``cancel``) for the run's owner, or
        ``records.HELD`` on a run its owner stopped on purpose; NotFound
        if there is no such run."""

    def count_runs(self) -> dict[str, int]:
        """How many runs have each stored status."""

    def list_runs(self, status: str | None = None, limit: int = 50,
                  before: str | None = None, parent: str | None = None) -> list[RunRecord]:
        """Runs newest first: by creation time, then by run id (both descending), optionally
        of one stored status, optionally only those whose ``parent_id`` is ``parent`` (its
        child runs and forks, read through an index: no other run's row is read).
        ``before`` names the last run of the previous page: only runs after it in this
        order are listed (NotFound if there is no such run)."""

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
        died, or handed it back when it was stopped), unless its ``control`` is
        ``records.HELD`` (its owner stopped it on purpose: a person resumes it), or one
        of ``abandoned`` (``(run_id, epoch)`` of running runs whose owner the caller
        knows is dead) still at that epoch: it becomes ``running`` under a
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

    def release_lease(self, run_id: str, epoch: int) -> None:
        """Give the lease up if ``epoch`` still holds it; no error otherwise."""

    def record_processes(self, run_id: str, epoch: int, processes: Any) -> None:
        """Store ``processes`` (JSON: the process groups of the steps the owner runs) as the
        run's ``processes``, if ``epoch`` still holds the lease; no error otherwise. Not
        a checkpoint: ``seq`` does not move."""

    def set_flow(self, run_id: str, epoch: int, flow_text: str, flow_path: str | None,
                 flow_data: Any = None, flow_digest: str | None = None) -> None:
        """Replace the run's stored flow (``resume --flow``) and its ``flow_digest`` (see
        :attr:`RunRecord.flow_digest`); LeaseLost unless ``epoch`` holds it."""


class Commits(Protocol):
    """Writing a run's checkpoints: one :class:`Commit` applied whole or not at all, fenced by
    the lease epoch (and, when ``fenced``, by the seq it was rendered from)."""

    def commit(self, commit: Commit) -> CommitResult:
        """Apply ``commit`` atomically and advance the run's seq by one; LeaseLost
        (and nothing written) if ``commit.epoch`` no longer holds the lease; StateMoved
        (and nothing written) if it is ``fenced`` and the seq is no longer ``expected_seq``."""

    def hold(self, run_id: str) -> AbstractContextManager[None]:
        """Keep everyone else from committing to the run until the block ends (their writes
        wait). What this thread commits inside joins the held transaction (its reads see
        it) and is kept when the block ends, even by an exception. NotFound if no such run."""


class VariableWrites(Protocol):
    """Writes from outside the run (CLI, API): each call is its own checkpoint."""

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


class RunReads(Protocol):
    """What is committed: variables, their history, step records, events, and the state as of
    any checkpoint."""

    def read_vars(self, run_id: str, since_seq: int = 0, *, refs: bool = False) -> dict[str, VarRecord]:
        """Current variables written after checkpoint ``since_seq`` (all by default). With
        ``refs``, an offloaded value is a :class:`~tether.store.value_refs.StoredValue`,
        read from the blob store only when resolved (a run loading its state)."""

    def read_var(self, run_id: str, name: str, *, count_access: bool = False) -> VarRecord:
        """One variable; NotFound if absent. ``count_access`` records a read."""

    def read_state(self, run_id: str) -> dict[str, CurrentVar]:
        """The current variables as :meth:`read_vars` with ``refs`` has them (offloaded values
        as StoredValues, deleted ones left out), with only what a run loading its state
        needs: value, type, scope, version, secret."""

    def var_history(self, run_id: str, name: str, last: int | None = None) -> list[HistoryRecord]:
        """Every write of the variable, oldest first; with ``last``, only the latest ``last``
        writes (still oldest first), read without touching the others."""

    def var_changes(self, run_id: str) -> list[tuple[int, str, float]]:
        """``(seq, name, at)`` of every variable write, in checkpoint order (``at``: when
        its checkpoint was committed)."""

    def iteration_checkpoints(self, run_id: str) -> list[tuple[int, str, int, float | None]]:
        """``(seq, loop_key, idx, finished_at)`` of every stored iteration record of the
        run, in checkpoint order: the checkpoints that committed loop iterations."""

    def state_at(self, run_id: str, seq: int) -> dict[str, Any]:
        """Every variable's value as of checkpoint ``seq``."""

    def steps(self, run_id: str, *, refs: bool = False) -> list[StepRecord]:
        """Every step record of the run, in commit order. With ``refs``, offloaded inputs
        and results are :class:`~tether.store.value_refs.StoredValue` s, read from the blob
        store only when resolved (a run loading its state does not hold them all at once)."""

    def step_heads(self, run_id: str) -> list[StepHead]:
        """``(step_id, status, seq, meta)`` of every step record of the run, in commit order,
        as :meth:`steps` lists them, with no inputs, results or errors decoded: what a
        resumed run needs of all of them (NotFound for an unknown run)."""

    def step_at(self, run_id: str, seq: int, step_id: str) -> StepRecord:
        """The record of ``step_id`` committed at checkpoint ``seq``, as :meth:`steps` with
        ``refs`` gives it (offloaded values are StoredValues); NotFound if there is none."""

    def events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]:
        """Events with ``seq > after_seq``, in ``(seq, idx)`` order. Every step record is
        also listed as a ``step.<status>`` event ``{attempts, error}`` at its commit's seq
        (idx 0.. by step id); a commit's other events follow it."""

    def events_of_type(self, run_id: str, type_: str) -> list[EventRecord]:
        """The run's stored events of one type (never step records), in ``(seq, idx)``
        order: what a reader of one kind of event (durable tool results) needs without
        reading the whole timeline."""


class LoopStorage(Protocol):
    """A loop's collection, stored once element by element, and one record per iteration
    (iterations themselves are written by :meth:`Commits.commit`)."""

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

    def last_iteration(self, run_id: str, loop_key: str) -> IterationRecord | None:
        """The loop's iteration record with the highest index (None before its first), found
        without reading the others: what a resumed ``repeat`` continues from."""

    def iteration_counts(self, run_id: str, loop_key: str) -> dict[str, int]:
        """``{status: count}`` over a loop's iteration records."""

    def finished_indices(self, run_id: str, loop_key: str, start: int, stop: int,
                         include_failed: bool = True) -> set[int]:
        """Indices in ``[start, stop)`` that have an iteration record (failed ones only when
        ``include_failed``); no results are decoded."""

    def finished_per_batch(self, run_id: str, loop_key: str, batch: int,
                           include_failed: bool = True) -> dict[int, int]:
        """``{idx // batch: number of finished iterations}`` (as in :meth:`finished_indices`)."""

    def iteration_counts_by_batch(self, run_id: str, loop_key: str, batch: int) -> dict[tuple[int, str], int]:
        """``{(idx // batch, status): count}`` over a loop's iteration records, in one pass:
        :meth:`iteration_counts` and :meth:`finished_per_batch` both follow from it (what a
        resumed loop reads before its first iteration)."""


class SharedVariables(Protocol):
    """Values that outlive one run (shared variables, with compare-and-set versions) and named
    locks with a lease (``lock:``)."""

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

    def lock_acquire(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lock for ``ttl`` seconds if it is free, expired or ``owner``'s."""

    def lock_renew(self, name: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s hold; False if it lost the lock."""

    def lock_release(self, name: str, owner: str) -> None:
        """Let go of the lock if ``owner`` holds it."""


class Retention(Protocol):
    """Deleting finished runs and everything that belongs to them (steps, variables and their
    history, read counts, events, loop items and iterations, the run's spec and row), each
    call a bounded transaction, so other runs keep committing while retention works.

    Blobs are deleted in one place, :meth:`release_blobs` (the SQL stores call it inside
    :meth:`delete_runs`' transaction): given the hashes that deleted rows referenced, it
    deletes those that no row references any more. A blob store outside the database hooks
    in there."""

    def run_briefs(self) -> list[RunBrief]:
        """Every run, newest first (by creation time, then run id), as a :class:`RunBrief`."""

    def footprint(self, run_ids: Sequence[str]) -> Reclaimed:
        """What :meth:`delete_runs` would remove for these runs, changing nothing: the runs
        that exist, their rows and bytes, and the blobs only they reference."""

    def delete_runs(self, runs: Sequence[RunBrief]) -> Reclaimed:
        """Delete, in one transaction, each run whose stored status, seq and lease epoch
        are still those of its brief (else it moved on since it was chosen: kept) and that
        is no other run's parent (children go first: pass them earlier in ``runs``), with
        every row that belongs to it, then the blobs nothing references any more
        (:meth:`release_blobs`). Returns what was removed; ``runs`` names the deleted ones."""

    def release_blobs(self, hashes: Iterable[str]) -> tuple[int, int]:
        """Delete the blobs among ``hashes`` that no row references; ``(blobs, bytes)``
        deleted. A commit referencing one of them concurrently keeps it (it is either seen
        as a reference, or writes the blob again after the deletion)."""

    def reclaim_space(self, max_pages: int = 2000) -> int:
        """Give up to ``max_pages`` free pages back to the file system (SQLite's incremental
        vacuum, one short write transaction); the bytes given back, 0 when there is nothing
        to give back or the store cannot (PostgreSQL: autovacuum reuses space; memory)."""

    def storage(self) -> dict[str, Any]:
        """``database_bytes`` (the store's size), ``free_bytes`` (free pages inside it) and
        ``blobs``: ``{store name: {"count", "bytes"}}`` for each blob store."""


@runtime_checkable
class BlobStore(Protocol):
    """Payloads of offloaded values (see :mod:`tether.store.codec`), keyed by the sha256 hex
    of the value's JSON text: the database's own table (the default), a folder
    (``file://``) or an S3 bucket (``s3://``), chosen by ``TETHER_BLOBS``. Content
    addressed, so a payload is stored once however many rows and runs refer to it. A
    hash that is not 64 lowercase hex digits is CorruptRecord, before it touches a path
    or a key."""

    url: str

    def get(self, digest: str) -> bytes | None:
        """The payload stored under ``digest``, or None when there is none."""

    def put(self, digest: str, payload: bytes) -> None:
        """Store ``payload`` under ``digest`` durably before returning (a folder: temp file,
        fsync, rename, fsync of the folder), so a commit made afterwards never refers to a
        missing blob. Idempotent; storing an existing blob again marks it as used now (its
        modification time), so a gc that spares recent blobs spares it."""

    def iter_hashes(self, older_than: float | None = None) -> Iterator[str]:
        """Every digest stored (any order), for gc; with ``older_than`` (epoch seconds),
        only blobs last stored or marked used before then (a folder: mtime; S3:
        LastModified, the server's clock). A database's own table lists every blob: its
        blobs are written in the transaction that refers to them, so none is ever waiting
        for its commit."""

    def delete(self, digests: Iterable[str]) -> int:
        """Remove these blobs (missing ones are skipped); how many were removed."""

    def close(self) -> None:
        """Release clients and connections."""


class BlobReferences(Protocol):
    """Where a store keeps its offloaded payloads and which of them its rows refer to."""

    blobs: BlobStore  # where offloaded values are written and read
    blobs_url: str | None  # the TETHER_BLOBS it was opened with; None: its own table
    own_blobs: BlobStore  # the database's own table: ``blobs`` unless TETHER_BLOBS is set, and
    #                       then still read for values written before it was

    def load_blob(self, digest: str) -> bytes | None:
        """The payload of the offloaded value ``digest`` (through the blob cache), wherever
        this store put it (with ``TETHER_BLOBS`` set, also its own table, which holds what
        was written before), or None when it has none. A run reads its large committed
        values back through it (``store/value_refs.py``)."""

    def referenced_hashes(self) -> set[str]:
        """The digest of every offloaded value any row of the store refers to (variables and
        their history, step inputs and results, iterations, loop elements, run inputs,
        outputs and flows): what gc must keep."""


class Store(RunsAndLeases, Commits, VariableWrites, RunReads, LoopStorage, SharedVariables,
            BlobReferences, Retention, Protocol):
    """A state backend: every required role. Every method is safe to call from several threads."""

    url: str

    def stats(self) -> dict[str, int]:
        """Counts of runs, steps, vars, var_history, events, blobs and bytes, and the summed
        template cache hits and misses recorded by finished runs, for ``tether stats``."""

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
