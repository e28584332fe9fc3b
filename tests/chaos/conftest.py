"""Quick and long modes of the fault-injection harness, and the figures it reports.

``python -m pytest tests/chaos`` is the quick mode CI runs. ``TETHER_CHAOS=long`` runs
the long mode whose figures docs/reliability.md publishes; ``TETHER_CHAOS_REPORT=FILE``
writes every figure to FILE as JSON. Both variables are read once, at import, because
the autouse fixture in tests/conftest.py clears TETHER_* before each test.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import pytest

LONG = os.environ.get("TETHER_CHAOS", "quick") == "long"
REPORT = os.environ.get("TETHER_CHAOS_REPORT")
SEED = int(os.environ.get("TETHER_CHAOS_SEED", "1"))
_FIGURES: dict[str, dict] = {}


def scale(quick: int, long: int) -> int:
    """The size of an experiment in the current mode."""
    return long if LONG else quick


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict:
    """A dict the test fills with its measured figures; reported at the end of the session."""
    found: dict = {}
    _FIGURES[request.node.name] = found
    return found


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _FIGURES:
        return
    mode = "long" if LONG else "quick"
    terminalreporter.write_sep("-", f"chaos figures ({mode} mode, seed {SEED})")
    hostile = [f for n, f in _FIGURES.items() if n.startswith("test_hostile_rows")]
    for name, found in _FIGURES.items():
        if found and not name.startswith("test_hostile_rows"):
            terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in found.items()))
    if hostile:
        refused = sum(1 for f in hostile if f.get("refused_by_the_schema"))
        terminalreporter.write_line(f"hostile rows: {len(hostile)} ({len(hostile) - refused} stored and read by every "
                                    f"read command, {refused} refused by the schema itself)")
    if REPORT:
        doc = {"mode": mode, "seed": SEED, "python": sys.version.split()[0], "figures": _FIGURES}
        Path(REPORT).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
