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
