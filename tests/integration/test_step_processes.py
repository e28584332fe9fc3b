"""Killing Tether kills its steps (SPEC §10), through real processes: whatever ends
`tether run` or `tether worker` (SIGKILL, SIGTERM, SIGINT), the shell step's processes
die with it, its side effect never happens, and an immediate resume or takeover never
runs the step while the old attempt still runs."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.integration.test_workers import statuses, tether, wait_for

pytestmark = pytest.mark.slow  # kills, then waits seconds for side effects that must not happen

# The step records its shell's pid, then sleeps in the foreground and in a background
# job of its own (a grandchild, which only the takeover's kill of the group reaches);
# both write their side effect after the sleep.
FLOW = """
name: side
inputs: {dir: {type: string, required: true}}
steps:
  - id: work
    tool: shell
    with:
      run: >-
        echo $$ > {{ inputs.dir }}/pid; echo start >> {{ inputs.dir }}/ledger;
        (sleep 6; echo bg-end >> {{ inputs.dir }}/ledger) &
        sleep 6; echo end >> {{ inputs.dir }}/ledger; wait
"""


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (one that nobody reaped is dead too)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def started_step(tmp: Path) -> int:
    pid_file = tmp / "pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", timeout=30)
    time.sleep(0.5)  # well into its sleep (Tether records the group right after starting it)
    return int(pid_file.read_text())


def ledger(tmp: Path) -> list[str]:
    return (tmp / "ledger").read_text().split()


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "side.yaml"
    path.write_text(FLOW)
    return path


def test_kill_9_of_run_kills_the_step_and_an_immediate_resume_never_overlaps(tmp_path, flow, sql_url):
    proc = tether(sql_url, "run", flow, "-i", f"dir={tmp_path}", "--run-id", "r1")
    shell = started_step(tmp_path)
    killed_at = time.monotonic()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    wait_for(lambda: not alive(shell), timeout=2)  # the kernel killed it with its parent
    out, err = tether(sql_url, "resume", "r1").communicate(timeout=60)
    assert "completed" in out, err
    time.sleep(max(0.0, killed_at + 7 - time.monotonic()))  # past the old attempt's side effects
    # one attempt finished; the first never wrote its side effects (nor its background job)
    assert sorted(ledger(tmp_path)) == ["bg-end", "end", "start", "start"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_stop_the_step_and_leave_the_run_interrupted(tmp_path, flow, process_url, sig):
    proc = tether(process_url, "run", flow, "-i", f"dir={tmp_path}", "--run-id", "r2")
    shell = started_step(tmp_path)
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, err
    assert "run r2 interrupted" in err and "tether resume r2" in err, err
    assert not alive(shell)
    assert statuses(process_url)["r2"]["status"] == "interrupted"
    time.sleep(max(0.0, sent + 7 - time.monotonic()))
    assert ledger(tmp_path) == ["start"]  # no side effect after the signal
    started = time.monotonic()
    out, err = tether(process_url, "resume", "r2").communicate(timeout=60)
    assert "completed" in out, err
    assert time.monotonic() - started < 20  # the lease was handed back: no wait for it


def test_kill_9_of_a_worker_kills_its_step_and_the_next_worker_never_overlaps(tmp_path, flow, sql_url):
    out, _err = tether(sql_url, "run", flow, "--detach", "-i", f"dir={tmp_path}").communicate(timeout=60)
    run_id = out.strip()
    env = {"TETHER_LEASE_SECONDS": "60"}
    first = tether(sql_url, "worker", env=env)
    shell = started_step(tmp_path)
    killed_at = time.monotonic()
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    wait_for(lambda: not alive(shell), timeout=2)
    second = tether(sql_url, "worker", env=env)
    try:
        wait_for(lambda: statuses(sql_url)[run_id]["status"] == "completed", timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=60)
    time.sleep(max(0.0, killed_at + 7 - time.monotonic()))
    assert sorted(ledger(tmp_path)) == ["bg-end", "end", "start", "start"]


PARALLEL = """
name: par
inputs: {dir: {type: string, required: true}}
steps:
  - id: each
    foreach: "{{ range(6) | list }}"
    parallel: 3
    do:
      id: work
      tool: shell
      with: {run: "echo $$ >> {{ inputs.dir }}/pids; sleep 4; echo {{ item }} >> {{ inputs.dir }}/done"}
outputs: {n: "{{ map.successful }}"}
"""


def test_sigterm_during_a_parallel_loop_kills_every_running_iteration_and_records_none_failed(tmp_path, sql_url):
    flow = tmp_path / "par.yaml"
    flow.write_text(PARALLEL)
    proc = tether(sql_url, "run", flow, "-i", f"dir={tmp_path}", "--run-id", "p1")
    pids = tmp_path / "pids"
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 3, timeout=30)
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert not any(alive(int(p)) for p in pids.read_text().split())
    time.sleep(max(0.0, sent + 5 - time.monotonic()))
    assert not (tmp_path / "done").exists()  # none of the three finished its side effect
    out, err = tether(sql_url, "resume", "p1", "--json").communicate(timeout=120)
    assert json.loads(out)["status"] == "completed", err
    assert sorted((tmp_path / "done").read_text().split()) == [str(i) for i in range(6)]  # each once
    assert json.loads(out)["outputs"] == {"n": 6}  # no iteration was recorded failed by the signal


def test_cancel_of_a_killed_run_kills_what_its_step_left_running(tmp_path, flow, process_url):
    proc = tether(process_url, "run", flow, "-i", f"dir={tmp_path}", "--run-id", "c1")
    started_step(tmp_path)
    sent = time.monotonic()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    _out, err = tether(process_url, "cancel", "c1").communicate(timeout=60)
    assert statuses(process_url)["c1"]["status"] == "cancelled", err
    time.sleep(max(0.0, sent + 7 - time.monotonic()))
    assert ledger(tmp_path) == ["start"]  # the background job of the step died with the cancel


def test_kill_9_of_serve_kills_the_step_its_executor_runs(tmp_path, flow, process_url):
    import socket
    out, _err = tether(process_url, "run", flow, "--detach", "-i", f"dir={tmp_path}").communicate(timeout=60)
    run_id = out.strip()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve = tether(process_url, "serve", "--port", port, "--executor", "1")
    shell = started_step(tmp_path)
    killed_at = time.monotonic()
    serve.send_signal(signal.SIGKILL)
    serve.communicate(timeout=30)
    wait_for(lambda: not alive(shell), timeout=2)
    worker = tether(process_url, "worker", "--once")
    worker.communicate(timeout=120)
    assert statuses(process_url)[run_id]["status"] == "completed"
    time.sleep(max(0.0, killed_at + 7 - time.monotonic()))
    assert sorted(ledger(tmp_path)) == ["bg-end", "end", "start", "start"]


def test_a_second_sigterm_to_a_worker_kills_its_step_now_and_leaves_the_run_interrupted(tmp_path, flow, sql_url):
    out, err = tether(sql_url, "run", flow, "--detach", "-i", f"dir={tmp_path}").communicate(timeout=60)
    run_id = out.strip()
    worker = tether(sql_url, "worker")
    shell = started_step(tmp_path)
    sent = time.monotonic()
    worker.send_signal(signal.SIGTERM)  # the first one lets the step finish...
    time.sleep(0.5)
    assert worker.poll() is None and alive(shell)
    worker.send_signal(signal.SIGTERM)  # ...the second one does not wait for it
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0 and "Traceback" not in err, err
    assert time.monotonic() - sent < 5 and not alive(shell)
    assert statuses(sql_url)[run_id]["status"] == "interrupted"
    time.sleep(max(0.0, sent + 7 - time.monotonic()))
    assert ledger(tmp_path) == ["start"]
    tether(sql_url, "worker", "--once").communicate(timeout=120)
    assert statuses(sql_url)[run_id]["status"] == "completed"
