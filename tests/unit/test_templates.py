"""Templates: native types, shorthand, names, limits, cache, filters."""
from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import TemplateError
from tether.templates import BARE_KEY, CACHE, MISSING, AttrView, compile_template, expand_shorthand, render


def scope(**extra):
    vars_ = {"n": 3, "name": "ada", "items": [1, 2, 3], "cfg": {"items": [9], "url": "http://x"}}
    base: dict[str, Any] = {"vars": AttrView.of(vars_, "vars"), "inputs": AttrView.of({"limit": 10}, "inputs"),
            "steps": AttrView.of({"fetch": {"result": {"rows": [1, 2]}, "status": "completed"}}, "steps")}

    def bare(name):
        for layer in (vars_, {"fetch": base["steps"]["fetch"]}, {"limit": 10}):
            if name in layer:
                return layer[name]
        return MISSING
    base[BARE_KEY] = bare
    base.update(extra)
    return base


@pytest.mark.parametrize("source,expected", [
    ("{{ vars.n + 1 }}", 4),
    ("{{ vars.items }}", [1, 2, 3]),
    ("{{ vars.n > 2 }}", True),
    ("{{ vars.cfg['items'] }}", [9]),
    ("{{ steps.fetch.result.rows }}", [1, 2]),
    ("n={{ vars.n }}", "n=3"),
    ("  {{ vars.n }}  ", 3),
    ("{{ vars.n }}{{ vars.n }}", "33"),
    ("plain text", "plain text"),
    ("${vars.name}", "ada"),
    ("hello ${vars.name}!", "hello ada!"),
    ("${vars.missing:-fallback}", "fallback"),
    ("${vars.missing:-42}", 42),
    ("${vars.missing:-true}", True),
    ("$${vars.name}", "${vars.name}"),
    ("{{ n * 2 }}", 6),
    ("{{ fetch.status }}", "completed"),
    ("{{ limit }}", 10),
    ("{{ vars.items | length }}", 3),
    ("{{ {'a': [1, 2]} | tojson }}", '{"a":[1,2]}'),
    ("{{ '{\"k\": 5}' | fromjson }}", {"k": 5}),
    ("{{ vars.cfg | jsonpath('$.items[*]') }}", [9]),
    ("{{ vars.nope is defined }}", False),
    ("{{ vars.nope | default(7) }}", 7),
])
def test_render(source, expected):
    assert render(source, scope()) == expected


def test_non_strings_pass_through():
    assert render(5, scope()) == 5 and render(None, scope()) is None and render([1], scope()) == [1]


def test_undefined_name_names_step_field_template_and_close_matches():
    with pytest.raises(TemplateError) as err:
        render("{{ vars.nn + 1 }}", scope(), "step 'a', field 'vars.x'")
    msg = str(err.value)
    assert "step 'a', field 'vars.x'" in msg and "{{ vars.nn + 1 }}" in msg and "'nn'" in msg and "'n'" in msg


def test_undefined_top_level_name_suggests_close_matches():
    with pytest.raises(TemplateError, match="did you mean 'inputs'"):
        render("{{ inputz.limit }}", scope())


def test_undefined_never_renders_empty_inside_text():
    with pytest.raises(TemplateError, match="'ghost'"):
        render("value: {{ ghost }}", scope())


def test_bare_path_fast_path_agrees_with_jinja():
    s = scope()
    c = compile_template("{{ vars.cfg.url }}")
    assert c.kind == "path"
    assert render("{{ vars.cfg.url }}", s) == c.fn(s) == "http://x"
    # dict method names are not taken by the fast path: Jinja's semantics apply
    assert compile_template("{{ vars.cfg['items'] }}").kind == "path"
    assert render("{{ vars.cfg['items'] }}", s) == [9]


def test_compile_cache_counts_hits():
    src = "{{ vars.n + 12345 }}"
    before = (CACHE.hits, CACHE.misses)
    for _ in range(10):
        render(src, scope())
    assert CACHE.misses - before[1] == 1 and CACHE.hits - before[0] == 9


@pytest.mark.parametrize("source", [
    "{{ 'a' * 100000000 }}",
    "{{ [1] * 100000000 }}",
    "{{ 10 ** 1000000 }}",
    "{{ range(1000000) | list }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
    "{{ 'x' | center(100000000) }}",
    "{{ 'ab' * 500000 | replace('a', 'aaaaaaaa') }}",
    "{{ '%099999999d' | format(1) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ vars.__class__ }}",
])
def test_limits_and_sandbox_stop_bombs_quickly(source):
    t = time.monotonic()
    with pytest.raises(TemplateError):
        render(source, scope())
    assert time.monotonic() - t < 2


def test_immutable_sandbox_refuses_mutation():
    with pytest.raises(TemplateError):
        render("{{ vars.items.append(4) }}", scope())


def test_volatile_functions_are_marked():
    assert compile_template("{{ now() }}").volatile and compile_template("id-{{ uuid() }}").volatile
    assert not compile_template("{{ vars.n }}").volatile
    assert isinstance(render("{{ timestamp() }}", scope()), float)


def test_shorthand_expansion():
    assert expand_shorthand("${a.b[0]}") == "{{ a.b[0] }}"
    assert expand_shorthand("x $${y}") == "x {{ '${' }}y}"
    assert expand_shorthand("no templates") == "no templates"


def test_syntax_error_is_a_template_error():
    with pytest.raises(TemplateError, match="syntax"):
        render("{{ vars.n + }}", scope())


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                                                                        c, max_size=4), max_leaves=20))
def test_native_expression_round_trips_any_json_value(value):
    s = {"vars": AttrView.of({"v": value}, "vars")}
    assert render("{{ vars.v }}", s) == value
    assert render("{{ vars['v'] }}", s) == value


def test_a_bare_path_passes_a_value_through_without_a_copy_or_the_render_limit():
    from tether import limits
    big = {"rows": ["x" * 1000] * 3000}  # 3 MB as JSON: over the render limit
    text = "y" * (limits.RENDER_MAX_CHARS + 1)
    sc = scope(result=big, s=text, steps=AttrView.of({"f": {"result": big}}, "steps"))
    for source in ("{{ result }}", "${result}", "{{ steps.f.result }}"):
        assert render(source, sc) is big
    assert render("{{ result.rows }}", sc) is big["rows"]
    assert render("{{ s }}", sc) is text
    with pytest.raises(TemplateError, match="longer than 1048576"):
        render("{{ s ~ '' }}", sc)  # what an expression builds is held to the render limit
