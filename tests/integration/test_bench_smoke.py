"""The benchmark code runs (Tether-only scenarios, one run each): it must not rot between
benchmark sessions. No timing thresholds here — timings are for `python -m bench`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmarks once each

ROOT = Path(__file__).resolve().parents[2]


def worker(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.worker", *args, "--runs", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_step_and_storage_scenario():
    doc = worker("steps", "tether-normal")
    assert len(doc["us_per_step"]) == 1 and doc["us_per_step"][0] > 0
    assert 50 < doc["bytes_per_step"][0] < 2000


def test_template_scenario_reports_renders_and_the_cache_hit_rate():
    doc = worker("templates")
    assert all(doc[k][0] > 0 for k in ("bare_path_us", "expression_us", "string_template_us"))
    assert doc["cache_hit_rate_10k_loop"] > 0.99


def test_blob_store_scenario(s3_blobs_url):  # the fixture's AWS_* point bench.blobs at the test server
    import os
    proc = subprocess.run([sys.executable, "-m", "bench.blobs", "--steps", "3", "--runs", "1", "--small", "5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["db"]["blob_bytes"] == 0 and doc["file"]["blob_bytes"] > 3 * 500_000
    assert doc["s3"]["blob_bytes"] > 3 * 500_000
    assert doc["file"]["db_bytes"] < doc["db"]["db_bytes"] / 10


def test_startup_and_history_scenarios_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import history, startup
    url = startup.store_with_runs(tmp_path, 3)
    times = startup.launch_ms([*startup.tether_command(), "--db", url, "vars", "run0002"], 1)
    assert len(times) == 1 and times[0] > 0
    assert len(startup.flow_load_ms(1, steps=20)) == 1
    found = history.measure(5, 50, 1)
    assert set(found) == {"resume_ms_5", "vars_ms_5", "resume_ms_50", "vars_ms_50"}


def test_resume_scenario_runs(monkeypatch: pytest.MonkeyPatch):
    """B4 at a small size: the run is built, killed half-way through its loop, and resumed both
    in process and from `tether resume`, each reaching a new iteration."""
    monkeypatch.setenv("TETHER_BENCH_RESUME_STEPS", "20")
    monkeypatch.setenv("TETHER_BENCH_RESUME_ITEMS", "200")
    doc = worker("resume")
    assert doc["steps"] == 20 and doc["items"] == 200
    for key in ("in_process_ms", "in_process_cpu_ms", "with_interpreter_ms", "with_interpreter_cpu_ms"):
        assert len(doc[key]) == 1 and doc[key][0] > 0, key


# ---------------------------------------------------------------- PostgreSQL (issue 17)
def pg_worker(url: str, *args: str, python: str = sys.executable, **env: str) -> dict:
    import os
    proc = subprocess.run([python, "-m", "bench.worker", *args, "--runs", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TETHER_BENCH_PG=url, **env))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


PEERS_PYTHON = __import__("os").environ.get("TETHER_BENCH_PEERS_PYTHON", sys.executable)  # read before
# the tests clear TETHER_* variables


@pytest.fixture
def bench_pg():
    from tests.conftest import PG_URL, postgres_url
    postgres_url()  # skips without a server
    sys.path.insert(0, str(ROOT))
    from bench.pgserver import postgres
    with postgres(PG_URL) as url:  # a fresh database of TETHER_TEST_PG's server, dropped after
        yield url


def test_postgres_step_scenario_runs_tether(bench_pg):
    doc = pg_worker(bench_pg, "steps", "tether-pg-normal")
    assert doc["us_per_step"][0] > 0 and doc["bytes_per_step"][0] > 0


def test_postgres_loop_scenario_runs(bench_pg):
    doc = pg_worker(bench_pg, "pg-loops", "1", TETHER_BENCH_LOOP_ITEMS="200")
    assert doc["items"] == 200 and doc["iterations_per_s"][0] > 0


def test_postgres_commit_parts_scenario_runs(bench_pg):
    """bench.pg_parts (the server's CPU for each part of the commit statement) runs."""
    import os
    proc = subprocess.run([sys.executable, "-m", "bench.pg_parts", "--db", bench_pg, "--n", "20",
                           "--rounds", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert proc.returncode == 0, proc.stderr
    assert "the step's commit" in proc.stdout and "SELECT 1" in proc.stdout


def _peers_python() -> str:
    """The interpreter with the peers (TETHER_BENCH_PEERS_PYTHON, else this one) if it has DBOS."""
    python = PEERS_PYTHON
    if subprocess.run([python, "-c", "import dbos"], capture_output=True).returncode != 0:
        pytest.skip("DBOS is not installed (pip install dbos, or set TETHER_BENCH_PEERS_PYTHON)")
    return python


def test_postgres_step_scenario_runs_dbos_on_the_same_server(bench_pg):
    doc = pg_worker(bench_pg, "steps", "dbos-pg", python=_peers_python())
    assert doc["us_per_step"][0] > 0


def test_dbos_queue_scenario_runs(bench_pg):
    doc = pg_worker(bench_pg, "dbos-queue", python=_peers_python(), TETHER_BENCH_QUEUE_ITEMS="50")
    assert doc["items"] == 50 and doc["iterations_per_s"][0] > 0


def test_result_memory_benchmark_runs():
    proc = subprocess.run([sys.executable, "-m", "bench.result_memory", "--steps", "3", "--mib", "0.5",
                           "--runs", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["steps"] == 3 and doc["median_peak_rss_mib"] > 0
