"""The guardian: one small ``/bin/sh`` process per Tether process that SIGKILLs the
process groups of the running steps when Tether ends, however it ends (SIGKILL, the OOM
killer, a crash), on any POSIX system.

Tether holds the writing end of a pipe, the guardian reads the other as its standard
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

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

_SCRIPT = r"""# tether guardian: SIGKILL the registered step process groups when Tether ends
g=' '
while read -r l; do
  case $l in
    +*) g="$g${l#+} " ;;
    -*) p=${l#-}; case $g in *" $p "*) g="${g%% $p *} ${g#* $p }" ;; esac ;;
    '?') k=' '; for p in $g; do kill -s 0 -- "-$p" 2>/dev/null && k="$k$p "; done; g=$k ;;
  esac
done
for p in $g; do kill -s KILL -- "-$p" 2>/dev/null; done
"""


class _Guardian:
    """This process's guardian: the pipe to it, its process, and the process that started
    it (a forked child does not share its parent's)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.local = threading.local()  # ``starting``: this thread is forking a step's process
        self.fd: int | None = None      # the pipe's writing end (blocking: a line is never dropped)
        self.proc: subprocess.Popen[bytes] | None = None
        self.owner = 0
        self.warned = False

    def ensure(self) -> int | None:
        """The pipe to the guardian, started on first use (again if it died); None if none
        can be started."""
        with self.lock:
            if self.fd is not None and self.proc is not None and self.owner == os.getpid() \
                    and self.proc.poll() is None:
                return self.fd
            self.forget()
            theirs, ours = os.pipe()
            try:
                self.proc = subprocess.Popen(
                    ["/bin/sh", "-c", _SCRIPT], stdin=theirs, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
            except OSError as exc:
                os.close(ours)
                if not self.warned:
                    log.warning("cannot start the guardian of the steps' processes (%s): a step's "
                                "background jobs may outlive a killed Tether until a takeover kills them",
                                exc)
                self.warned = True
                return None
            finally:
                os.close(theirs)
            self.fd, self.owner = ours, os.getpid()
            return ours

    def forget(self) -> None:
        """Drop the pipe (and with it, once no other process holds it, the guardian)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = None
        if self.proc is not None and self.owner != os.getpid():
            self.proc.returncode = 0  # the parent's guardian, copied by a fork: not ours to wait for
        self.proc = None

    def close(self) -> None:
        """At exit: end the guardian (it kills what a daemon thread's step still runs) and
        reap it, so that no zombie and no "still running" warning is left behind."""
        proc = self.proc
        if proc is None or self.owner != os.getpid():
            return
        self.forget()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)

    def send(self, line: bytes) -> None:
        fd = self.fd
        if fd is None or self.owner != os.getpid():
            return
        try:
            os.write(fd, line)  # Python ignores SIGPIPE: a dead guardian is an error here
        except OSError as exc:  # a guardian that died: the next start replaces it
            log.warning("the guardian of the steps' processes did not take %r: %s", line, exc)


_guardian = _Guardian()
_SIGPIPE = {signal.SIGPIPE}


def register_in_child() -> Callable[[], None] | None:
    """A function for a new process to call between fork and exec, once it leads its own
    process group: it registers that group with the guardian. Use it only inside
    :func:`starting`. None when no guardian could be started."""
    fd = _guardian.ensure()
    if fd is None:
        return None

    def register() -> None:  # in the child: a few system calls, no lock, never raises
        # SIGPIPE is back to its default here: a guardian that just died must not kill us
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGPIPE)
        try:
            os.write(fd, b"+%d\n" % os.getpid())
        except OSError:
            with contextlib.suppress(OSError):
                signal.sigtimedwait(_SIGPIPE, 0)  # the pending SIGPIPE of that write
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return register


@contextlib.contextmanager
def starting() -> Iterator[None]:
    """Around the start of a step's process: a start that fails sends ``?`` so that the
    guardian forgets a group its child registered before failing."""
    _guardian.local.starting = True
    try:
        yield
    except BaseException:
        _guardian.send(b"?\n")
        raise
    finally:
        _guardian.local.starting = False


def release(pgid: int) -> None:
    """The leader of group ``pgid`` was waited for: what is left of the group (a
    background job) is no longer the step's, and the guardian forgets it."""
    _guardian.send(b"-%d\n" % pgid)


def _after_fork_in_child() -> None:
    # a process forked for another reason (multiprocessing) must not keep the guardian
    # waiting for its end; a step's process, between fork and exec, still needs the pipe
    if not getattr(_guardian.local, "starting", False):
        _guardian.lock = threading.Lock()  # another thread may have held it at the fork
        _guardian.forget()


atexit.register(_guardian.close)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
