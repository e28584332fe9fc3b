"""The guardian: one small ``/bin/sh`` process per Tether process that SIGKILLs the
process groups of the running steps when Tether ends, however it ends (SIGKILL, the OOM
killer, a crash), on any POSIX system.

Tether holds one end of a Unix socket pair, the guardian reads the other as its standard
input. A step's process registers its own group (``+PGID``) from the child, before it
runs the command, so no moment exists when it runs unregistered; Tether unregisters it
(``-PGID``) once the leader was waited for. When Tether ends, the kernel closes its end:
the guardian reads end-of-file, kills each group still registered, and exits. A start
that failed after its child registered sends ``?``: the guardian forgets the groups that
no longer exist. The guardian runs in its own session (a terminal's Ctrl-C or hang-up does
not reach it) with its output on /dev/null (it never holds a caller's pipe open).

What it cannot cover: a process of the step that leaves the group (``setsid``), and a
guardian that is itself killed (the leader's ``PR_SET_PDEATHSIG`` and the takeover's
:func:`tether.procs.kill_left_over` still apply).
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
from typing import Any

log = logging.getLogger(__name__)

_SCRIPT = r"""# tether guardian: SIGKILL the registered step process groups when Tether ends
g=' '
while read -r l; do
  case $l in
    +*) g="$g${l#+} " ;;
    -*) p=${l#-}; case $g in *" $p "*) g="${g%% $p *} ${g#* $p }" ;; esac ;;
    '?') k=' '; for p in $g; do kill -0 -- "-$p" 2>/dev/null && k="$k$p "; done; g=$k ;;
  esac
done
for p in $g; do kill -s KILL -- "-$p" 2>/dev/null; done
"""
_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0) | getattr(socket, "MSG_DONTWAIT", 0)

_lock = threading.Lock()
_local = threading.local()  # ``starting``: this thread is forking a step's process
_state: dict[str, Any] = {"sock": None, "proc": None, "pid": None, "failed": False}


def _start() -> socket.socket | None:
    ours, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen(["/bin/sh", "-c", _SCRIPT], stdin=theirs, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    except OSError as exc:
        ours.close()
        if not _state["failed"]:
            log.warning("cannot start the guardian of the steps' processes (%s): a step's "
                        "background jobs may outlive a killed Tether until a resume kills them", exc)
        _state["failed"] = True
        return None
    finally:
        theirs.close()
    _state.update(sock=ours, proc=proc, pid=os.getpid())
    return ours


def _ensure() -> socket.socket | None:
    """The socket to this process's guardian, started on first use (again if it died)."""
    with _lock:
        sock, proc = _state["sock"], _state["proc"]
        if sock is not None and _state["pid"] == os.getpid() and proc.poll() is None:
            return sock  # type: ignore[no-any-return]
        if sock is not None:
            sock.close()
            _state["sock"] = None
        return _start()


def _send(line: bytes) -> None:
    sock = _state["sock"]
    if sock is None or _state["pid"] != os.getpid():
        return
    try:
        sock.send(line, _FLAGS)
    except OSError as exc:  # a guardian that died or stopped reading: the next start replaces it
        log.warning("the guardian of the steps' processes did not take %r: %s", line, exc)


def register_in_child() -> Any:
    """A function for a new process to call between fork and exec, after it became the
    leader of its own process group: it registers that group with the guardian. Call it
    only inside :func:`starting`. None when no guardian could be started."""
    sock = _ensure()
    if sock is None:
        return None

    def register() -> None:  # in the child: one system call, no lock, never raises
        try:
            sock.send(b"+%d\n" % os.getpid(), _FLAGS)
        except OSError:
            pass
    return register


class starting:  # noqa: N801 (used as a statement: ``with guardian.starting():``)
    """Around the start of a step's process: a start that fails sends ``?`` so that the
    guardian forgets a group its child registered before failing."""

    def __enter__(self) -> None:
        _local.starting = True

    def __exit__(self, kind: Any, *rest: Any) -> None:
        _local.starting = False
        if kind is not None:
            _send(b"?\n")


def release(pgid: int) -> None:
    """The leader of group ``pgid`` was waited for: what is left of the group (a
    background job) is no longer the step's, and the guardian forgets it."""
    _send(b"-%d\n" % pgid)


def _after_fork_in_child() -> None:
    # a process forked for another reason (multiprocessing) must not keep the guardian
    # waiting for its end; a step's process, between fork and exec, still needs the socket
    if getattr(_local, "starting", False):
        return
    sock = _state["sock"]
    _state.update(sock=None, proc=None, pid=None)
    if sock is not None:
        sock.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
