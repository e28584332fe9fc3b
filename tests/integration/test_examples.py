"""Every flow in examples/ runs, and its outputs are the ones it documents."""
from __future__ import annotations

from pathlib import Path

import pytest

from tether import Engine
from tether.settings import Settings

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
    ("summarise.yaml", ()): {"articles": 3, "report": (
        "3 articles summarised\n"
        "- Durable state (difficulty 2): Tether commits each step's result, variables and event in one "
        "transaction, so a killed run resumes exactly where it stopped. [transactions, resume, checkpoints]\n"
        "- Loops (difficulty 3): Loop collections are stored once and every iteration is committed on its own, "
        "with aggregates computed from the stored records. [foreach, parallelism, aggregates]\n"
        "- Paid once (difficulty 3): A model step commits the answer as soon as it arrives, so a failed "
        "extraction or a crash never pays for the same call twice. [language models, cost, idempotency]")},
}
# flows that call a model run from the cassette recorded next to them (offline)
CASSETTES = {"summarise.yaml": EXAMPLES / "summarise.cassette.jsonl"}


def test_every_example_has_expected_outputs():
    files = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert files == {name for name, _ in EXPECTED}


@pytest.mark.parametrize("name,inputs", list(EXPECTED))
def test_example(name, inputs, tmp_path):
    tape = CASSETTES.get(name)
    engine = Engine(f"sqlite:///{tmp_path / 'ex.db'}",
                    settings=Settings(model_cassette=str(tape) if tape else None))
    run = engine.run(EXAMPLES / name, dict(inputs))
    assert run.status == "completed", run.error
    assert run.outputs == EXPECTED[(name, inputs)]
    engine.close()
