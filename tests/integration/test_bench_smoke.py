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


def test_result_memory_benchmark_runs():
    proc = subprocess.run([sys.executable, "-m", "bench.result_memory", "--steps", "3", "--mib", "0.5",
                           "--runs", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["steps"] == 3 and doc["median_peak_rss_mib"] > 0
