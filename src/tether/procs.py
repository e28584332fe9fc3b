"""The processes a run's steps start: they die with the Tether process that started them,
and a takeover kills what a dead owner left running.

Three mechanisms, because a process killed with SIGKILL cannot clean up after itself:

* A step's process leads its own process group, and that group is registered with this
  process's guardian (:mod:`tether.guardian`) by the child itself, before it runs the
  command: when Tether ends, however it ends, the guardian SIGKILLs the whole group (a
  shell's background job, a command it did not ``exec``) at once.
* ``PR_SET_PDEATHSIG`` (Linux) makes the kernel SIGKILL the step's process itself when
  the *thread* that started it exits; a tool waits for its process in the thread that
  started it (``shell`` does), so that thread lives as long as the process. It holds
  even if the guardian was killed.
* Each running step's process group (its leader's pid and start time) is recorded with
  the run (:class:`ProcessGroups`); whoever takes the run over kills the groups still
  alive on this machine before running anything (:func:`kill_left_over`). The start time
  makes sure a pid the kernel gave to another process is never killed.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import guardian

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


@functools.cache
def _load_prctl() -> Any:
    """libc's ``prctl``, or None (not Linux). Loaded in the parent when a step first starts
    a process (``ctypes`` is not imported by a run that starts none), never in a child."""
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):  # not Linux
        return None


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for a process started as the leader of its own process group
    (``start_new_session=True``) inside :func:`starting_group`: the kernel SIGKILLs the
    process when the thread that starts it ends (Linux), and the guardian SIGKILLs its
    whole group when this process ends. None where neither can be arranged."""
    register = guardian.register_in_child()
    prctl = _load_prctl()
    if prctl is None:
        return register
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec: system calls, no locks
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if register is not None:
            register()
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGKILL)
    return preexec


@contextlib.contextmanager
def starting_group() -> Iterator[Callable[[], None] | None]:
    """Around the start of a step's process (``subprocess.Popen(..., start_new_session=True,
    preexec_fn=<the value>)``): the ``preexec_fn`` of :func:`die_with_parent`. Once the
    process's leader was waited for, call :func:`group_waited`."""
    with guardian.starting():
        yield die_with_parent()


def group_waited(pgid: int) -> None:
    """The leader of group ``pgid`` was waited for: what is left of the group (a background
    job the step left behind on purpose) is no longer the step's and outlives Tether."""
    guardian.release(pgid)


def machine() -> str:
    """This machine since its last boot: recorded pids mean something only here."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


def start_time(pid: int) -> int | None:
    """When the process ``pid`` started (clock ticks since boot), or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    try:
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` has a member that is not a zombie (an orphan that no
    init reaps is dead all the same)."""
    try:
        os.killpg(pgid, 0)  # the common answer, "no such group", costs one system call
    except (ProcessLookupError, PermissionError):
        return False
    return bool(_members(pgid)) if os.path.isdir("/proc/self") else True


def _members(pgid: int) -> list[int]:
    """The living (not zombie) processes of group ``pgid``."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] != b"Z":
            out.append(int(name))
    return out


class ProcessGroups:
    """The process groups a run's running steps started, in this process. ``persist``
    receives the record to store with the run each time it changes in a way a takeover
    must know (a group started; a group whose leader ended but that still has members)."""

    def __init__(self, persist: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.persist = persist
        self._lock = threading.Lock()
        self._groups: dict[int, int | None] = {}

    def started(self, pgid: int) -> None:
        """A step started process group ``pgid`` (its leader's pid)."""
        with self._lock:
            self._groups[pgid] = start_time(pgid)
            record = self._record()
        self._save(record)

    def ended(self, pgid: int) -> None:
        """The leader of ``pgid`` was waited for. A group it leaves behind (a background
        job of the step) is no longer the step's: it is forgotten in the record too."""
        with self._lock:
            self._groups.pop(pgid, None)
            record = self._record()
        if group_alive(pgid):
            self._save(record)
        # else nothing is left: the recorded entry is stale and harmless (start time)

    def kill_all(self) -> None:
        """SIGKILL every group started here that is still running."""
        with self._lock:
            groups = list(self._groups)
        for pgid in groups:
            _killpg(pgid)

    def _record(self) -> dict[str, Any]:
        return {"machine": machine(), "groups": [[pgid, t] for pgid, t in sorted(self._groups.items())]}

    def _save(self, record: dict[str, Any]) -> None:
        if self.persist is None:
            return
        try:
            self.persist(record)
        except Exception as exc:  # the process still dies with us; only a takeover's kill is lost
            log.warning("cannot record the step's process group: %s", exc)


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill_left_over(record: Any, wait: float = 2.0) -> list[int]:
    """Kill the process groups in ``record`` (see :class:`ProcessGroups`) that are still
    alive on this machine, and wait up to ``wait`` seconds for them to be gone; the
    groups killed. A group whose leader's pid now names a process started at another
    time belongs to someone else and is left alone."""
    if not isinstance(record, dict) or record.get("machine") != machine():
        return []
    killed = []
    for entry in record.get("groups") or []:
        try:
            pgid, started = int(entry[0]), entry[1]
        except (TypeError, ValueError, IndexError):
            continue
        now_started = start_time(pgid)
        if started is None or (now_started is not None and now_started != started):
            continue  # the leader is unknown, or its pid was reused: not ours
        if not group_alive(pgid):
            continue
        _killpg(pgid)
        killed.append(pgid)
    deadline = time.monotonic() + wait
    while killed and any(group_alive(g) for g in killed) and time.monotonic() < deadline:
        time.sleep(0.02)
    return killed
