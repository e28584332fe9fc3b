"""Flow loading and validation: positions, hints, every problem at once, schema."""
from __future__ import annotations

import pytest

from tether.errors import FlowError
from tether.flow import json_schema, load_flow, load_flow_text, parse_duration


def problems(text: str) -> list[str]:
    with pytest.raises(FlowError) as err:
        load_flow_text(text, "f.yaml")
    return err.value.problems


def test_valid_flow_loads():
    loaded = load_flow_text("name: ok\ninputs: {n: 3}\nsteps:\n  - id: a\n    vars: {x: '{{ inputs.n }}'}\n")
    assert loaded.flow.inputs["n"].default == 3 and loaded.flow.inputs["n"].type == "integer"
    assert loaded.flow.steps[0].vars.after == {"x": "{{ inputs.n }}"}


def test_unknown_key_with_position_and_hint():
    assert problems("name: x\nsteps:\n  - id: a\n    retries: 3\n") == [
        "f.yaml:4:5: unknown key 'retries' (did you mean 'retry'?)"]


def test_every_problem_is_reported():
    text = """name: x
inputs: {batch_size: 1}
steps:
  - id: a
    next: bb
    vars: {v: "{{ inputs.batch_sise }}"}
  - id: b
    on_failure: a
  - id: a
"""
    found = problems(text)
    assert found == [
        "f.yaml:5:11: goto target 'bb' is not a step (did you mean 'b'?)",
        "f.yaml:6:15: unknown input inputs.batch_sise (did you mean 'batch_size'?)",
        "f.yaml:9:9: duplicate step id 'a' (first defined at line 4)",
    ]


def test_undeclared_env_and_unknown_step_references():
    found = problems("name: x\nsteps:\n  - id: a\n    vars: {v: '{{ env.HOME }} {{ steps.zz.result }}'}\n")
    assert any("unknown environment variable env.HOME (declare it under 'env:')" in p for p in found)
    assert any("unknown step steps.zz" in p for p in found)


def test_computed_cycle_is_named_as_a_path():
    found = problems("name: x\ncomputed:\n  a: '{{ vars.b }}'\n  b: '{{ vars.c }}'\n  c: '{{ vars.a }}'\n"
                     "steps:\n  - id: s\n")
    assert found == ["f.yaml:3:6: computed variables form a cycle: a -> b -> c -> a"]


def test_yaml_syntax_error_has_a_position():
    (p,) = problems("name: x\nsteps: [\n")
    assert p.startswith("f.yaml:3:1: YAML syntax error")


def test_duplicate_yaml_keys_are_errors():
    (p,) = problems("name: x\nname: y\nsteps: []\n")
    assert "duplicate key 'name'" in p and p.startswith("f.yaml:2:1")


def test_bad_names_and_types():
    found = problems("name: Bad Name\nsteps:\n  - id: 1a\n    timeout: soon\n")
    assert any("name" in p and "2" not in p.split(":")[1] for p in found)
    assert any("f.yaml:3:9" in p for p in found)
    assert any("invalid duration 'soon'" in p for p in found)


def test_template_syntax_error_is_reported_at_the_value():
    (p,) = problems("name: x\nsteps:\n  - id: a\n    vars: {v: '{{ 1 + }}'}\n")
    assert p.startswith("f.yaml:4:15:") and "template" in p


def test_json_flow_files(tmp_path):
    path = tmp_path / "f.json"
    path.write_text('{"name": "j", "steps": [{"id": "a", "vars": {"x": 1}}]}')
    assert load_flow(path).flow.name == "j"
    bad = tmp_path / "f.txt"
    bad.write_text("name: x")
    with pytest.raises(FlowError, match="must end in"):
        load_flow(bad)


def test_schema_describes_the_language():
    schema = json_schema()
    step = schema["$defs"]["Step"]["properties"]
    assert {"id", "if", "with", "tool", "vars", "retry", "timeout", "next", "on_failure", "let"} <= set(step)
    assert schema["properties"]["checkpoint"]


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("1h", 3600), ("250ms", 0.25), (2, 2.0)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


FLOW_WITH_EVERYTHING = """name: every_kind
inputs: {n: {type: integer, default: 3}, on: true, ratio: 0.5, nothing: null}
vars: &shared {a: 1, "quoted key": 'single', when: 2026-01-01}
computed: {b: "{{ vars.a + 1 }}"}
steps:
  - id: one
    vars:
      <<: *shared
      list: [1, two, 3.0, {x: y}]
      text: |
        line one
        line two
  - {id: two, next: end}
"""


def test_libyaml_and_the_python_parser_give_the_same_document_and_positions():
    import yaml

    from tether.flow import load
    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    fast = load.parse_text(FLOW_WITH_EVERYTHING, "f.yaml")
    slow = load.Source("f.yaml", FLOW_WITH_EVERYTHING, None)
    slow.data = load.parse_source(slow, yaml.SafeLoader)
    assert fast.data == slow.data and fast.values == slow.values and fast.keys == slow.keys
    assert fast.where(("steps", 0, "vars", "list", 3, "x")) == "f.yaml:9:31"


@pytest.mark.parametrize(("text", "expected"), [
    ("a: *nope", "f.yaml:1:4: YAML syntax error: found undefined alias 'nope'"),
    ("a: [1, 2", "f.yaml:1:9: YAML syntax error: expected ',' or ']', but got '<stream end>'"),
    ("a: b: c", "f.yaml:1:5: YAML syntax error: mapping values are not allowed here"),
])
def test_yaml_errors_read_as_the_python_parser_words_them(text: str, expected: str):
    assert problems(text) == [expected]
