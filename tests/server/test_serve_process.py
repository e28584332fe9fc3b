"""`tether serve` as a process (fix-serve, items 3 and 4): its logs go to stderr, a port
in use is one line and exit 2, a first SIGINT/SIGTERM stops the runs' steps within a
bounded time and hands them back for a takeover, a second one exits at once."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_workers import statuses, tether, wait_for

SLEEPY = """name: sleepy
steps:
  - id: s
    tool: shell
    with:
      run: "echo $$ > {dir}/pid; if [ ! -f {dir}/fast ]; then sleep 30; fi"
"""


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def serve(db: str, port: int, out: Path, err: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([sys.executable, "-m", "tether", "--db", db, "serve", "--port", str(port)],
                                stdout=o, stderr=e, env=env)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, err.read_text()
        time.sleep(0.1)
    raise AssertionError(err.read_text())


def test_the_access_log_goes_to_stderr_and_a_port_in_use_is_one_line_exit_2(tmp_path):
    port = free_port()
    db = f"sqlite:///{tmp_path / 's.db'}"
    proc = serve(db, port, tmp_path / "out", tmp_path / "err")
    try:
        httpx.get(f"http://127.0.0.1:{port}/api/runs", timeout=10)
        wait_for(lambda: '"GET /api/runs HTTP/1.1" 200' in (tmp_path / "err").read_text(), timeout=10)
        assert (tmp_path / "out").read_text() == ""
        second = subprocess.run([sys.executable, "-m", "tether", "--db", db, "serve", "--port", str(port)],
                                capture_output=True, text=True, timeout=60,
                                env={k: v for k, v in os.environ.items() if not k.startswith("TETHER_")})
        assert second.returncode == 2, second.stderr
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr and "in use" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def start_sleepy(tmp_path: Path, port: int) -> str:
    flow = SLEEPY.format(dir=tmp_path)
    r = httpx.post(f"http://127.0.0.1:{port}/api/runs", json={"flow": flow}, timeout=10)
    assert r.status_code == 201, r.text
    pid = tmp_path / "pid"
    wait_for(lambda: pid.exists() and pid.read_text().strip() != "", timeout=30)
    time.sleep(0.3)
    return r.json()["run_id"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_serve_within_seconds_and_its_runs_are_taken_over(tmp_path, sig):
    port = free_port()
    db = f"sqlite:///{tmp_path / 's.db'}"
    proc = serve(db, port, tmp_path / "out", tmp_path / "err")
    run_id = start_sleepy(tmp_path, port)
    sent = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=60)
    took = time.monotonic() - sent
    assert took < 10, (took, (tmp_path / "err").read_text())  # was 23.6 s for this step
    assert "Finished server process" in (tmp_path / "err").read_text()  # stopped, not killed by it
    assert statuses(db)[run_id]["status"] == "interrupted"
    (tmp_path / "fast").write_text("")
    _out, err = tether(db, "worker", "--once").communicate(timeout=60)
    assert statuses(db)[run_id]["status"] == "completed", err  # the server stopped, not the run's owner
    assert f"run {run_id} claimed by" in err


@pytest.mark.slow
def test_a_second_signal_to_serve_exits_at_once(tmp_path):
    port = free_port()
    db = f"sqlite:///{tmp_path / 's.db'}"
    proc = serve(db, port, tmp_path / "out", tmp_path / "err")
    run_id = start_sleepy(tmp_path, port)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert time.monotonic() - sent < 2.5, (tmp_path / "err").read_text()
    assert statuses(db)[run_id]["status"] == "interrupted"
    pid = int((tmp_path / "pid").read_text())
    wait_for(lambda: not Path(f"/proc/{pid}").exists()
             or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", timeout=5)
