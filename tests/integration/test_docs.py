"""Every flow in docs/*.md runs and produces what its `# expect:` line says."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tether import Engine, FlowError
from tether.flow import load_flow_text

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```yaml\n(name:.*?)```", re.S)


def _examples():
    for doc in [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]:
        for i, m in enumerate(BLOCK.finditer(doc.read_text())):
            yield pytest.param(m.group(1), id=f"{doc.name}-{i}")


EXAMPLES = list(_examples())


def test_the_docs_have_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("text", EXAMPLES)
def test_doc_example(text, tmp_path):
    expect = re.search(r"^# expect: (.*)$", text, re.M)
    expect_error = re.search(r"^# expect-error: (.*)$", text, re.M)
    assert expect or expect_error, "every documented flow says what it must produce"
    if expect_error:
        with pytest.raises(FlowError) as err:
            load_flow_text(text, "doc.yaml")
        assert any(expect_error.group(1) in p for p in err.value.problems), err.value.problems
        return
    engine = Engine(f"sqlite:///{tmp_path / 'docs.db'}")
    status = re.search(r"^# expect-status: (\w+)$", text, re.M)
    run = engine.run(load_flow_text(text, "doc.yaml", str(tmp_path)), run_id="doc-run")
    assert run.status == (status.group(1) if status else "completed"), run.error
    assert expect
    assert run.outputs == json.loads(expect.group(1))
    engine.close()
