"""Every flow in examples/ runs, and its outputs are the ones it documents."""
from __future__ import annotations

from pathlib import Path

import pytest

from tether import Engine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXPECTED = {
    ("quickstart.yaml", ()): {"verdict": "mostly short words", "longest": "survives", "long_share": 0.4,
                              "words": 5},
    ("quickstart.yaml", (("words", 3),)): {"verdict": "mostly long words", "longest": "survives",
                                           "long_share": 0.67, "words": 3},
    ("foreach.yaml", ()): {"summary": "18 checked, 2 skipped, 0 failed", "checked": 18, "total_steps": 183,
                           "longest": 20},
    ("mapreduce.yaml", ()): {"words": 26, "long_ones": ["Durable state", "Templates", "Loops"],
                             "summary": "3 of 4 articles (1 drafts skipped)"},
}


def test_every_example_has_expected_outputs():
    files = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert files == {name for name, _ in EXPECTED}


@pytest.mark.parametrize("name,inputs", list(EXPECTED))
def test_example(name, inputs, tmp_path):
    engine = Engine(f"sqlite:///{tmp_path / 'ex.db'}")
    run = engine.run(EXAMPLES / name, dict(inputs))
    assert run.status == "completed", run.error
    assert run.outputs == EXPECTED[(name, inputs)]
    engine.close()
