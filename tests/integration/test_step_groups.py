"""Killing Tether kills its steps' whole process groups at once (SPEC §10), not only the
shell it started: a step's grandchildren (a background job, a command under a shell that
does not ``exec`` it) die within moments of ``tether run``, ``worker`` or ``serve``,
however it dies (SIGKILL included), without waiting for a resume or a cancel to clean up.
Processes are checked by the step's process group id (written by the step), never by
name. Also: SIGHUP is an interruption like SIGINT/SIGTERM, and an owner that was killed
but never reaped (a zombie) is dead."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_workers import statuses, tether, wait_for

pytestmark = pytest.mark.slow  # real processes killed, then watched for a few seconds

# The shell (the group's leader, whose pid is the group's id) starts a background job and
# a command under a second shell that does not exec it: two grandchildren.
FLOW = """
name: groups
inputs: {dir: {type: string, required: true}}
steps:
  - id: work
    tool: shell
    with:
      run: >-
        if [ -e {{ inputs.dir }}/pgid ]; then exit 0; fi;
        sleep 30 & sh -c 'echo $$ > {{ inputs.dir }}/inner; sleep 30; :' &
        echo $$ > {{ inputs.dir }}/pgid; wait
"""


def members(pgid: int) -> list[int]:
    """The living (not zombie) processes of group ``pgid``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            found.append(int(name))
    return found


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "groups.yaml"
    path.write_text(FLOW)
    return path


@pytest.fixture
def step_group(tmp_path: Path):
    """A function that waits for the step to be running and returns its group id (with
    its grandchildren started); whatever the test's outcome, the group is killed after."""
    seen: list[int] = []

    def wait() -> int:
        pgid_file, inner = tmp_path / "pgid", tmp_path / "inner"
        wait_for(lambda: pgid_file.exists() and pgid_file.read_text().strip() != ""
                 and inner.exists() and inner.read_text().strip() != "", timeout=30)
        pgid = int(pgid_file.read_text())
        seen.append(pgid)
        wait_for(lambda: len(members(pgid)) >= 4, timeout=10)  # sh, sleep, sh -c, its sleep
        return pgid

    yield wait
    for pgid in seen:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def gone_within(pgid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not members(pgid):
            return True
        time.sleep(0.05)
    return not members(pgid)


def test_kill_9_of_run_kills_the_steps_whole_group_at_once(tmp_path, flow, process_url, step_group):
    proc = tether(process_url, "run", flow, "-i", f"dir={tmp_path}", "--run-id", "k1")
    pgid = step_group()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert gone_within(pgid, 2), f"left running: {members(pgid)}"


def test_sighup_interrupts_a_run_like_sigterm(tmp_path, flow, process_url, step_group):
    proc = tether(process_url, "run", flow, "-i", f"dir={tmp_path}", "--run-id", "h1")
    pgid = step_group()
    proc.send_signal(signal.SIGHUP)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 129, err
    assert "run h1 interrupted by SIGHUP" in err and "tether resume h1" in err, err
    assert gone_within(pgid, 2), f"left running: {members(pgid)}"
    assert statuses(process_url)["h1"]["status"] == "interrupted"


def test_kill_9_of_a_worker_kills_the_steps_whole_group_at_once(tmp_path, flow, process_url, step_group):
    out, err = tether(process_url, "run", flow, "--detach", "-i", f"dir={tmp_path}").communicate(timeout=60)
    assert out.strip(), err
    worker = tether(process_url, "worker", env={"TETHER_LEASE_SECONDS": "60"})
    pgid = step_group()
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    assert gone_within(pgid, 2), f"left running: {members(pgid)}"


def test_kill_9_of_serve_kills_the_steps_whole_group_at_once(tmp_path, flow, process_url, step_group):
    out, err = tether(process_url, "run", flow, "--detach", "-i", f"dir={tmp_path}").communicate(timeout=60)
    assert out.strip(), err
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve = tether(process_url, "serve", "--port", port, "--executor", "1")
    pgid = step_group()
    serve.send_signal(signal.SIGKILL)
    serve.communicate(timeout=30)
    assert gone_within(pgid, 2), f"left running: {members(pgid)}"


def test_a_killed_owner_nobody_reaped_is_dead_and_its_run_resumes_at_once(tmp_path, flow, process_url, step_group):
    # a parent that never waits: the killed `tether run` stays a zombie, its pid still taken
    proc = subprocess.Popen([sys.executable, "-m", "tether", "--db", process_url, "run", str(flow), "-i",
                             f"dir={tmp_path}", "--run-id", "z1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        step_group()
        os.kill(proc.pid, signal.SIGKILL)
        wait_for(lambda: Path(f"/proc/{proc.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z",
                 timeout=10)
        assert statuses(process_url)["z1"]["status"] == "interrupted"
        resumed = tether(process_url, "resume", "z1", env={"TETHER_LEASE_SECONDS": "60"})
        out, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 0 and "completed" in out, err
    finally:
        proc.wait(timeout=30)
