"""The guardian (tether.guardian) through a real Python process started the way the shell
tool starts a step's process, then SIGKILLed: the group of a step still running dies at
once; a background job that a finished step left behind on purpose survives; a start that
failed does not make the guardian forget the groups that still run. Groups are checked by
their id, never by name."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from tests.integration.test_step_groups import gone_within, members

SCRIPT = """
import subprocess, sys, time
from tether.procs import group_waited, starting_group

def start(argv):
    with starting_group() as preexec:
        return subprocess.Popen(argv, start_new_session=True, preexec_fn=preexec,
                                stdout=subprocess.DEVNULL)

running = start(["/bin/sh", "-c", "sleep 30 & sh -c 'sleep 30; :'; wait"])
finished = start(["/bin/sh", "-c", "sleep 30 >/dev/null 2>&1 & exit 0"])
finished.wait()
group_waited(finished.pid)
try:
    start(["/nonexistent/command"])
except OSError:
    pass
print(running.pid, finished.pid, flush=True)
time.sleep(60)
"""


def test_a_killed_process_takes_its_running_steps_groups_and_leaves_what_finished_steps_left():
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    groups: list[int] = []
    try:
        assert proc.stdout is not None
        groups = [int(g) for g in proc.stdout.readline().split()]
        running, finished = groups
        end = time.monotonic() + 10
        while len(members(running)) < 4 and time.monotonic() < end:  # sh, sleep, sh -c, its sleep
            time.sleep(0.05)
        assert len(members(running)) == 4 and len(members(finished)) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert gone_within(running, 2), f"left running: {members(running)}"
        time.sleep(0.3)
        assert len(members(finished)) == 1  # released: no longer the step's, not killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
