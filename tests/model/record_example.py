"""Record examples/summarise.cassette.jsonl again: ``python -m tests.model.record_example``.

The answers are written here (what a small model would say); the fake server serves them,
so the cassette holds real chat-completions responses of the openai protocol.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tests.model.fake_openai import FakeOpenAI

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CASSETTE = EXAMPLES / "summarise.cassette.jsonl"
ANSWERS = {
    "Durable state": {"title": "Durable state",
                      "summary": "Tether commits each step's result, variables and event in one transaction, "
                                 "so a killed run resumes exactly where it stopped.",
                      "keywords": ["transactions", "resume", "checkpoints"], "difficulty": 2},
    "Paid once": {"title": "Paid once",
                  "summary": "A model step commits the answer as soon as it arrives, so a failed extraction "
                             "or a crash never pays for the same call twice.",
                  "keywords": ["language models", "cost", "idempotency"], "difficulty": 3},
    "Loops": {"title": "Loops",
              "summary": "Loop collections are stored once and every iteration is committed on its own, "
                         "with aggregates computed from the stored records.",
              "keywords": ["foreach", "parallelism", "aggregates"], "difficulty": 3},
}


def record() -> None:
    """Run the example against the fake server with a fresh cassette."""
    server = FakeOpenAI({k: json.dumps(v) for k, v in ANSWERS.items()}).start()
    try:
        CASSETTE.unlink(missing_ok=True)
        text = (EXAMPLES / "summarise.yaml").read_text().replace("http://127.0.0.1:8000/v1", server.url)
        from tether import Engine
        from tether.settings import Settings
        with tempfile.TemporaryDirectory() as tmp:
            flow = EXAMPLES / ".summarise.recording.yaml"
            flow.write_text(text)
            try:
                os.environ.setdefault("OPENAI_API_KEY", "not-needed-locally")
                engine = Engine(f"sqlite:///{tmp}/rec.db", settings=Settings(model_cassette=str(CASSETTE)))
                run = engine.run(flow)
                assert run.status == "completed", run.error
                print(run.outputs["report"])
                engine.close()
            finally:
                flow.unlink()
    finally:
        server.stop()


if __name__ == "__main__":
    record()
