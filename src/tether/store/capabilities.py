"""The optional capabilities of a store: what only some backends can do (today PostgreSQL).
A backend declares one by subclassing its protocol; callers check it with
:func:`isinstance` (the protocols are ``runtime_checkable``), never by probing for
attributes. Re-exported by :mod:`tether.store.base`."""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class SharedLoopWork(Protocol):
    """A parallel loop's iterations shared between processes: the run's owner publishes
    them, any worker claims one (leased), runs its body and hands the outcome back, and
    the owner alone commits it. The commit of an iteration (:meth:`Store.commit` with it
    among ``iterations``) through the store object that published its loop also removes it
    from the loop's work, in the same transaction."""

    def work_publish(self, run_id: str, loop_key: str, indices: list[int]) -> None:
        """Offer these iterations (already offered or done ones are left as they are) and
        wake idle workers."""

    def work_claim(self, owner: str, ttl: float, run_id: str | None = None,
                   loop_key: str | None = None) -> tuple[str, str, int, Any] | None:
        """Claim one open iteration (or one whose claim expired), of any loop or of one, for
        ``ttl`` seconds: ``(run_id, loop_key, index, element)``; None if there is none. Two
        claimers never get the same iteration while its claim holds."""

    def work_claim_many(self, owner: str, ttl: float, run_id: str, loop_key: str,
                        n: int) -> list[tuple[int, Any]]:
        """Claim up to ``n`` (at least one) open iterations of one loop, or ones whose claim
        expired, for ``ttl`` seconds, in index order: ``(index, element)`` each; empty if
        there is none. As :meth:`work_claim`: no two claimers hold one iteration at once. A
        claim its holder never starts simply expires."""

    def work_renew(self, run_id: str, loop_key: str, idx: int, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s claim by ``ttl`` seconds; False if it no longer holds it."""

    def work_done(self, run_id: str, loop_key: str, idx: int, owner: str, outcome: dict[str, Any]) -> bool:
        """Store the outcome if ``owner`` still holds the claim; False if it lost it."""

    def work_done_many(self, owner: str, outcomes: list[tuple[str, str, int, dict[str, Any]]]) -> list[bool]:
        """:meth:`work_done` for several ``(run_id, loop_key, index, outcome)`` at once (one
        round trip): each stored only if ``owner`` still holds its claim; whether it was, in
        the order given."""

    def work_collect(self, run_id: str, loop_key: str,
                     limit: int = 500) -> list[tuple[int, dict[str, Any], Any]]:
        """``(index, outcome, element)`` of iterations done by workers and not yet removed,
        by index, in one read (the owner needs the element to commit the outcome)."""

    def work_remove(self, run_id: str, loop_key: str, indices: list[int]) -> None:
        """Forget these iterations (committed by the owner, or taken back by it)."""

    def work_release(self, run_id: str, loop_key: str, indices: list[int], owner: str) -> None:
        """Open again those of these iterations that ``owner`` still holds a claim of (claimed
        but never started); the others are left as they are."""

    def work_left(self, run_id: str, loop_key: str) -> int:
        """Iterations still offered, claimed or done but not removed."""


@runtime_checkable
class WakeUps(Protocol):
    """Idle workers wait for a sign that a run became claimable instead of polling."""

    def notify(self) -> None:
        """Wake every process waiting in :meth:`wait_for_work` (of this store, anywhere)."""

    def wait_for_work(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a wake-up (a run queued or requeued, loop work
        published, :meth:`notify`); True if one came. Meant for one waiting thread per store;
        StoreError if the store cannot be reached (call again to wait anew)."""


@runtime_checkable
class SweeperElection(Protocol):
    """One process at a time, among all that use the store, sweeps runs whose owner died."""

    def try_become_sweeper(self) -> bool:
        """True while this store object is the sweeper (it stays so until
        :meth:`release_sweeper`, :meth:`Store.close` or a lost connection); StoreError if
        the store cannot be reached, after which the election is released."""

    def release_sweeper(self) -> None:
        """Stop being the sweeper (another process may be elected); no error if it was not."""

    def requeue_expired(self) -> list[str]:
        """Runs whose owner's lease expired become ``pending`` again; their ids. The dead
        owner stays named, so that the claim counts a recovery (see ``claim_run``)."""
