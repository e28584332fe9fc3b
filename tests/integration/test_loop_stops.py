"""A stop request during a loop stops the loop; it never fails it (found by a new-user
trial: with the default ``max_failures: 0``, ``tether cancel`` made the iteration it cut
short a failed iteration, and the run ended ``failed`` and could be resumed).

Whatever stops `tether run` in the middle of a loop — ``tether cancel``, ``tether pause``,
SIGINT — the run ends ``cancelled``, ``paused`` or ``interrupted`` (never ``failed``), and
no iteration is recorded as failed: the one cut short is simply not finished. Real
processes, on SQLite and PostgreSQL (where ``parallel: 3`` shares the loop with workers)."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.integration.test_workers import tether, wait_for

pytestmark = pytest.mark.slow  # each test waits for a loop's sleeping iterations


def items(parallel: int) -> int:
    """Enough iterations of a second each to outlast a stop request's round trip."""
    return 6 * parallel + 4


def loop_flow(tmp: Path, parallel: int) -> Path:
    """Iterations of a second each until ``tmp/gate`` exists (then at once: a resume does
    not wait); each one marks its start in ``tmp/started``."""
    path = tmp / "tol0.yaml"
    path.write_text(f"""
name: tol0
steps:
  - id: tick
    foreach: "{{{{ range({items(parallel)}) | list }}}}"
    parallel: {parallel}
    do:
      - id: nap
        tool: shell
        with: {{run: "echo {{{{ item }}}} >> {tmp / 'started'}; [ -e {tmp / 'gate'} ] || sleep 1"}}
""")
    return path


def started(tmp: Path) -> int:
    marks = tmp / "started"
    return len(marks.read_text().split()) if marks.exists() else 0


def show(db: str, run_id: str) -> dict:
    out, _err = tether(db, "show", run_id, "--json").communicate(timeout=60)
    return json.loads(out)


def iteration_counts(db: str, run_id: str) -> dict[str, int]:
    from tether.store import open_store
    store = open_store(db)
    try:
        return dict(store.iteration_counts(run_id, "tick"))
    finally:
        store.close()


def run_and_stop_in_the_loop(tmp: Path, db: str, parallel: int, stop) -> tuple[int, str]:
    """`tether run` the loop; once its second iteration (round) has started, ``stop(proc)``;
    the run's exit code and stderr."""
    proc = tether(db, "run", loop_flow(tmp, parallel), "--run-id", "c41")
    wait_for(lambda: started(tmp) > parallel, timeout=60)  # a tool is running, an iteration committed
    time.sleep(0.3)
    stop(proc)
    _out, err = proc.communicate(timeout=60)
    (tmp / "gate").write_text("open")
    return proc.returncode, err


@pytest.mark.parametrize("parallel", [3])  # serial loops stop through the same call_tool path
def test_cancel_during_a_loop_cancels_the_run_and_fails_no_iteration(tmp_path, sql_url, parallel):
    code, err = run_and_stop_in_the_loop(
        tmp_path, sql_url, parallel, lambda _p: tether(sql_url, "cancel", "c41").communicate(timeout=60))
    run = show(sql_url, "c41")
    assert run["status"] == "cancelled", (run["status"], run.get("error"), err)
    assert code == 1 and "TooManyFailures" not in err, err  # exit 1: cancelled (docs/guide.md)
    counts = iteration_counts(sql_url, "c41")
    assert counts.get("failed", 0) == 0 and 0 < counts.get("completed", 0) < items(parallel), counts
    resumed = tether(sql_url, "resume", "c41")
    resumed.communicate(timeout=60)
    assert resumed.returncode == 4  # a cancelled run cannot be resumed: a conflict (docs/guide.md)


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)  # the store plays no part in a pause
@pytest.mark.parametrize("parallel", [3])
def test_pause_during_a_loop_pauses_the_run_and_fails_no_iteration(tmp_path, sql_url, parallel):
    code, err = run_and_stop_in_the_loop(
        tmp_path, sql_url, parallel, lambda _p: tether(sql_url, "pause", "c41").communicate(timeout=60))
    assert show(sql_url, "c41")["status"] == "paused" and code == 3, err
    assert iteration_counts(sql_url, "c41").get("failed", 0) == 0
    resumed = tether(sql_url, "resume", "c41")
    resumed.communicate(timeout=120)
    assert resumed.returncode == 0
    assert iteration_counts(sql_url, "c41") == {"completed": items(parallel)}


@pytest.mark.parametrize("sql_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("parallel", [3])
def test_sigint_during_a_loop_interrupts_the_run_and_fails_no_iteration(tmp_path, sql_url, parallel):
    code, err = run_and_stop_in_the_loop(tmp_path, sql_url, parallel,
                                         lambda p: p.send_signal(signal.SIGINT))
    assert code == 130, err
    assert show(sql_url, "c41")["status"] == "interrupted"
    assert iteration_counts(sql_url, "c41").get("failed", 0) == 0
    resumed = tether(sql_url, "resume", "c41")
    resumed.communicate(timeout=120)
    assert resumed.returncode == 0
    assert iteration_counts(sql_url, "c41") == {"completed": items(parallel)}
