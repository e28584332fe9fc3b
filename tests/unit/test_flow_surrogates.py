"""Surrogates in flow text: a pair is the character it encodes, a lone one is refused where it is."""
from __future__ import annotations

import pytest

from tether.errors import FlowError
from tether.flow.load import parse_text


@pytest.mark.parametrize("escaped", ["\\ud83c\\udf0d", "\\U0000d83c\\U0000df0d", "\\uD83C\\uDF0D"])
def test_an_escaped_pair_in_a_key_or_a_value_is_one_character(escaped):
    source = parse_text(f'name: x\nvars:\n  "k{escaped}": "v{escaped}"\n', "f.yaml")
    assert source.data["vars"] == {"k🌍": "v🌍"}


def test_a_pair_handed_over_as_surrogates_in_a_str_is_joined():
    assert parse_text('{"name": "a\ud83c\udf0d"}', "api").data == {"name": "a🌍"}


@pytest.mark.parametrize(("text", "where"), [
    ('name: x\nvars:\n  k: ["ok", "\\udf0d"]\n', "f.yaml:3:13: vars.k.1: \\udf0d is a lone surrogate"),
    ('name: x\nvars:\n  "a\\ud83c": 1\n', "f.yaml:3:3: vars.a\\ud83c: \\ud83c is a lone surrogate"),
    ('{"name": "x",\n "vars": {"k": "\ud83c"}}', "f.yaml:2:17: character \\ud83c is not allowed in a flow (a lone"),
])
def test_a_lone_surrogate_is_refused_naming_the_line_and_field(text, where):
    with pytest.raises(FlowError) as caught:
        parse_text(text, "f.yaml")
    assert caught.value.problems[0].startswith(where), caught.value.problems
