"""Which interrupted runs a worker (or `tether serve`) takes over (fix-serve, item 2): a run
its owner stopped on purpose (a signal to a foreground `tether run`) waits for a person's
`tether resume`; a queued run, a run handed back by a stopping worker and a run whose
owner died are taken over, each with one log line that names the run and why."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.integration.test_workers import statuses, tether, wait_for

pytestmark = pytest.mark.slow  # real processes and signals

# sleeps until the file `fast` exists in the directory (so a resume finishes at once)
FLOW = """
name: held
inputs: {dir: {type: string, required: true}}
steps:
  - id: work
    tool: shell
    with:
      run: >-
        echo $$ > {{ inputs.dir }}/pid;
        if [ ! -f {{ inputs.dir }}/fast ]; then sleep 30; fi; echo done
"""


def started(tmp: Path) -> None:
    pid = tmp / "pid"
    wait_for(lambda: pid.exists() and pid.read_text().strip() != "", timeout=30)
    time.sleep(0.3)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_run_its_owner_stopped_is_not_taken_over_but_waits_for_a_resume(tmp_path, sql_url, sig):
    flow = tmp_path / "held.yaml"
    flow.write_text(FLOW)
    proc = tether(sql_url, "run", flow, "-i", f"dir={tmp_path}", "--run-id", "h1")
    started(tmp_path)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, err
    assert "tether resume h1" in err, err
    assert statuses(sql_url)["h1"]["status"] == "interrupted"
    (tmp_path / "fast").write_text("")
    worker = tether(sql_url, "worker", "--once")
    _out, werr = worker.communicate(timeout=60)
    assert "worker: 0 run(s) executed" in werr, werr
    assert statuses(sql_url)["h1"]["status"] == "interrupted"  # still waiting for a person
    out, err = tether(sql_url, "resume", "h1").communicate(timeout=60)
    assert "completed" in out, err
    assert statuses(sql_url)["h1"]["status"] == "completed"


def test_queued_and_dead_owners_runs_are_taken_over_and_each_takeover_is_logged(tmp_path, sql_url):
    flow = tmp_path / "held.yaml"
    flow.write_text(FLOW)
    out, _ = tether(sql_url, "run", flow, "--detach", "-i", f"dir={tmp_path}").communicate(timeout=60)
    queued = out.strip()
    dead = tether(sql_url, "run", flow, "-i", f"dir={tmp_path}", "--run-id", "d1")
    started(tmp_path)
    dead.send_signal(signal.SIGKILL)  # the owner died: no hand-back
    dead.communicate(timeout=30)
    (tmp_path / "fast").write_text("")
    worker = tether(sql_url, "worker", "--once")
    _out, err = worker.communicate(timeout=60)
    found = statuses(sql_url)
    assert found[queued]["status"] == "completed" and found["d1"]["status"] == "completed", err
    assert f"run {queued} claimed by" in err and "queued" in err, err
    assert "run d1 claimed by" in err and "its owner's process on this host died" in err, err
