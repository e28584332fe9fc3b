"""What starting a shell step's process costs, by the way it is started (the options for
making a step's whole process group die with Tether, see docs/performance.md):

* ``tether``: what the shell tool does (fork with a ``preexec_fn``: ``PR_SET_PDEATHSIG``
  and the child's registration with the guardian; Tether's ``-PGID`` after the wait);
* ``pdeathsig``: the ``preexec_fn`` with ``PR_SET_PDEATHSIG`` only (before the guardian);
* ``vfork``: no ``preexec_fn`` at all, so CPython can use vfork (no guarantee at all);
* ``sh-guard``: a ``/bin/sh`` guardian per step as the group's leader, running the command
  as a background job and killing its group on a signal (an extra fork and exec per step).

    python -m bench.shell_start [--ballast-mb 0] [--rounds 15]

Prints the median wall and CPU (this process and its waited-for children) milliseconds
per start of ``/bin/sh -c true``, rounds of 20 starts interleaved across the variants.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import time
from collections.abc import Callable

_GUARD = 'trap "kill -s KILL 0" USR1; "$@" <&0 & wait $!'
_ARGV = ["/bin/sh", "-c", "true"]


def _popen(argv: list[str], preexec: Callable[[], None] | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=preexec)  # noqa: PLW1509


def tether_way() -> None:
    from tether.procs import group_waited, starting_group
    with starting_group() as preexec:
        proc = _popen(_ARGV, preexec)
    proc.communicate()
    group_waited(proc.pid)


def pdeathsig_only() -> None:
    import ctypes
    import signal
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    _popen(_ARGV, lambda: prctl(1, signal.SIGKILL, 0, 0, 0)).communicate()


def vfork() -> None:
    _popen(_ARGV, None).communicate()


def sh_guard() -> None:
    from tether.procs import die_with_parent
    _popen(["/bin/sh", "-c", _GUARD, "sh", *_ARGV], die_with_parent()).communicate()


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ballast-mb", type=int, default=0, help="heap to add (larger forks slower)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    import tether.engine.engine  # a process the size of a real one
    import tether.tools.shell  # noqa: F401
    ballast = [bytearray(1 << 20) for _ in range(args.ballast_mb)]
    variants = {"tether": tether_way, "pdeathsig": pdeathsig_only, "vfork": vfork, "sh-guard": sh_guard}
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    tether_way()  # the guardian's start is not a per-step cost
    for _ in range(args.rounds):
        for name, fn in variants.items():
            t, c = time.perf_counter(), _cpu()
            for _ in range(20):
                fn()
            wall[name].append((time.perf_counter() - t) / 20 * 1e3)
            cpu[name].append((_cpu() - c) / 20 * 1e3)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    medians = {name: {"wall_ms": round(statistics.median(wall[name]), 3),
                      "cpu_ms": round(statistics.median(cpu[name]), 3)} for name in variants}
    print(json.dumps({"rss_mb": rss, "ballast": len(ballast), **medians}))


if __name__ == "__main__":
    main()
