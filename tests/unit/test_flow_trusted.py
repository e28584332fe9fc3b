"""A stored flow rebuilt at resume (load_trusted): built step by step as it is read when its
data still has the digest made when it was validated, validated whole now otherwise."""
from __future__ import annotations

import copy

import pydantic
import pytest

from tether.flow import load_flow_text, load_trusted, trusted_digest
from tether.flow.models import LazySteps

TEXT = """
name: many
vars: {c: 0}
steps:
  - id: a
    vars: {c: "{{ vars.c + 1 }}"}
  - id: b
    tool: shell
    with: {cmd: "true"}
    retry: {attempts: 3, delay: 2s}
    next: [{when: "{{ vars.c > 5 }}", goto: d}]
  - id: c
    foreach: [1, 2]
    do: {id: body, vars: {c: "{{ vars.c + item }}"}}
  - id: d
    vars: {done: true}
"""


def test_data_with_its_digest_builds_each_step_when_read_and_equals_the_whole_flow():
    validated = load_flow_text(TEXT)
    data = copy.deepcopy(validated.data)  # as read back from the store
    lazy = load_trusted(data, TEXT, "<run>", ".", trusted_digest(validated.data)).flow
    steps = lazy.steps
    assert isinstance(steps, LazySteps)
    assert steps._built[1:] == [None, None, None]  # nothing built beyond the first
    assert lazy.step_index() == {"a": 0, "b": 1, "c": 2, "d": 3}
    assert steps._built[1:] == [None, None, None]  # ids come from the data
    assert steps[2] == validated.flow.steps[2] and steps[2] is steps[2]  # built once
    assert steps._built[1] is None and steps._built[3] is None
    assert list(steps) == list(validated.flow.steps) and steps[-1].id == "d" and steps[1:3] == validated.flow.steps[1:3]
    assert steps == validated.flow.steps and len(steps) == 4
    assert lazy == validated.flow


def test_without_a_digest_or_with_another_one_the_whole_flow_is_validated_now():
    validated = load_flow_text(TEXT)
    digest = trusted_digest(validated.data)
    assert not isinstance(load_trusted(validated.data, TEXT, "<run>", ".").flow.steps, LazySteps)  # an older run
    edited = copy.deepcopy(validated.data)
    edited["steps"][3]["vars"] = {"done": False}  # changed in the store: still a valid flow
    rebuilt = load_trusted(edited, TEXT, "<run>", ".", digest).flow
    assert not isinstance(rebuilt.steps, LazySteps) and rebuilt.steps[3].vars.after == {"done": False}
    broken = copy.deepcopy(validated.data)
    broken["steps"][3]["retry"] = {"attempts": "many"}  # damaged in the store, its digest left as it was
    with pytest.raises(pydantic.ValidationError):
        load_trusted(broken, TEXT, "<run>", ".", digest)  # refused before anything runs, as before


def test_the_digest_covers_the_document_exactly():
    data = load_flow_text(TEXT).data
    same = copy.deepcopy(data)
    same["steps"][0] = dict(reversed(list(same["steps"][0].items())))  # key order does not matter
    assert trusted_digest(same) == trusted_digest(data)
    other = copy.deepcopy(data)
    other["steps"][1]["with"]["cmd"] = "false"
    assert trusted_digest(other) != trusted_digest(data)
    assert trusted_digest({1: "not JSON"}) is None  # no canonical JSON: never trusted


def test_small_and_phased_flows_are_built_whole():
    one = load_flow_text("name: one\nsteps:\n  - id: a\n    vars: {x: 1}\n")
    assert not isinstance(load_trusted(one.data, one.text, "<run>", ".", trusted_digest(one.data)).flow.steps,
                          LazySteps)
    phased = load_flow_text("name: p\nsetup:\n  - {id: s, vars: {x: 1}}\nmap:\n  over: [1, 2]\n"
                            "  do: {id: m, vars: {x: 2}}\nreduce:\n  - {id: r, vars: {x: 3}}\n")
    flow = load_trusted(phased.data, phased.text, "<run>", ".", trusted_digest(phased.data)).flow
    assert not isinstance(flow.steps, LazySteps) and [s.id for s in flow.steps] == ["s", "map", "r"]
