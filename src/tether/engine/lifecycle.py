"""Run statuses: the one state machine, and who is alive to own a run."""
from __future__ import annotations

import os

from ..errors import UsageError
from ..store.base import RunRecord, Store, now
from ..store.records import HELD

#: status -> statuses it may move to. ``interrupted`` is not stored: it is a running
#: run whose owner is gone (see :func:`status_of`). ``pending`` is a run queued for a
#: worker (``run --detach``) or handed back by a stopping one.
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"running", "cancelled"}),
    "running": frozenset({"running", "completed", "failed", "paused", "cancelled", "pending"}),
    "paused": frozenset({"running", "cancelled"}),
    "failed": frozenset({"running", "cancelled"}),
    "completed": frozenset({"running"}),  # only to re-run part of it: --from / --flow --rerun-changed
    "cancelled": frozenset(),
}
#: every status a person can ask for (``runs --status``, ``GET /api/runs?status=``)
RUN_STATUSES = (*RUN_TRANSITIONS, "interrupted")


def check_status(status: str | None) -> str | None:
    """``status`` itself when it names a run status (or is None); UsageError otherwise."""
    if status is not None and status not in RUN_STATUSES:
        raise UsageError(f"unknown run status {status!r}: use one of {', '.join(RUN_STATUSES)}")
    return status


class InvalidTransition(UsageError):
    """A run cannot go from its status to the one asked for: a conflict with the run's
    state (HTTP 409, exit 4), not bad input."""

    exit_code = 4
    http_status = 409


def check_transition(run_id: str, old: str, new: str, hint: str | None = None) -> None:
    """Raise InvalidTransition unless a run may move from ``old`` to ``new``."""
    if new not in RUN_TRANSITIONS.get(old, frozenset()):
        raise InvalidTransition(f"run {run_id} is {old}; it cannot become {new}", hint=hint)


def owner_alive(owner: str | None) -> bool | None:
    """True/False when ``owner`` (``host:pid:nonce``) is a process on this host; None when
    it is on another host (only its lease's expiry can tell). A process that ended but was
    not reaped yet (a zombie: a parent that does not wait, a container without init) is
    dead."""
    if not owner:
        return False
    import socket  # here: a read of finished runs needs no host name
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname():
        return None
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return not _zombie(int(parts[1]))


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has ended and waits to be reaped (Linux's /proc; False elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def abandoned_here(store: Store) -> list[tuple[str, int]]:
    """``(run_id, epoch)`` of running runs whose lease has not expired yet but whose owner
    was a process on this host that has died: claimable at once, as ``resume`` takes them."""
    import socket
    return [(run_id, epoch) for run_id, owner, epoch in store.live_leases(f"{socket.gethostname()}:")
            if owner_alive(owner) is False]


def status_of(run: RunRecord) -> str:
    """The status a person should see: ``interrupted`` for a running run whose lease has
    expired or whose owner process on this host is dead."""
    if run.status != "running":
        return run.status
    if run.lease_expires < now() or owner_alive(run.lease_owner) is False:
        return "interrupted"
    return "running"


HELD_TEXT = "interrupted (held: resume or cancel it)"


def is_held(run: RunRecord) -> bool:
    """True for an interrupted run its owner stopped on purpose (Ctrl-C or SIGTERM to a
    foreground ``tether run``/``resume``): no worker takes it; it waits for a person's
    resume or cancel."""
    return run.control == HELD and status_of(run) == "interrupted"


def status_text(run: RunRecord) -> str:
    """The status as a person reads it: ``status_of``, with a held run said to be held
    (:data:`HELD_TEXT`)."""
    return HELD_TEXT if is_held(run) else status_of(run)
