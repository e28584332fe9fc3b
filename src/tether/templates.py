"""Templates: sandboxed Jinja2 with native single expressions, ``${}`` shorthand,
a compile cache, a fast path for bare paths, and hard limits.

Guarantees:

* every template runs in :class:`ImmutableSandboxedEnvironment`; a name that is
  not defined is a :class:`TemplateError` naming it and its close matches, never "";
* a string that is exactly one ``{{ expr }}`` evaluates to the expression's native
  value; any other template string renders to a string;
* one render produces at most ``MAX_OUTPUT`` characters, an expression's value at most
  ``MAX_VALUE`` (a bare path passes an existing value as it is, unlimited: the store's
  value limit applies where it is written); growth, loops, calls, time and memory are
  bounded (see sandbox.py), so no template can hang the engine or exhaust memory;
* each distinct source text is compiled once per process (see :data:`CACHE`).
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context, missing

from . import template_functions
from .errors import TemplateError
from .sandbox import (  # noqa: F401
    MAX_FORMAT_WIDTH,
    MAX_ITERATIONS,
    MAX_OUTPUT,
    MAX_POWER_BITS,
    MAX_RANGE,
    MAX_RENDER_SECONDS,
    MAX_SEQUENCE,
    MAX_VALUE,
    AttrView,
    BoundedRange,
    Sandbox,
    bounded_filter,
    bounded_join,
    bounded_lipsum,
    bounded_map,
    check_count,
    check_format_filter,
    check_measured,
    check_output,
    check_replace,
    check_sum,
    check_width,
    new_budget,
    plain_json,
    render_budget,
    text_size,
)
from .template_functions import to_json_value

_CONTAINERS = (list, tuple, dict, set, frozenset)
VOLATILE_FUNCTIONS = frozenset(template_functions.GLOBALS)  # a new value on every call

_BARE_KEY = "__tether_bare__"
_PATH_RE = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\['[^'\\\]]*'\]|\[\"[^\"\\\]]*\"\])*")
_SHORTHAND_RE = re.compile(r"\$\{(" + _PATH_RE.pattern + r")(?::-([^}]*))?\}")
_SEGMENT_RE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_NATIVE_RE = re.compile(r"\s*\{\{(.*)\}\}\s*", re.S)
_LITERAL_RE = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null")
_DICT_ATTRS = frozenset(dir(dict))



class CacheStats:
    """Hit and miss counters of the compile cache, for ``tether stats`` and metrics."""

    __slots__ = ("hits", "misses")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0


# ------------------------------------------------------------------ names

class MissingName(Exception):
    """Internal: raised when a template uses an undefined name."""

    def __init__(self, name: str | None, obj: Any) -> None:
        super().__init__(name)
        self.name = name
        self.obj = obj


class _Undefined(StrictUndefined):
    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        raise MissingName(self._undefined_name, self._undefined_obj)


# Jinja binds __add__, __str__, __iter__... to the base class's function object, so
# overriding the method alone would miss them: rebind every such alias.
_BASE: Any = StrictUndefined.__mro__[1]  # jinja2.Undefined
for _cls in (StrictUndefined, _BASE):
    for _attr, _value in vars(_cls).items():
        if _value is _BASE._fail_with_undefined_error and _attr != \
                "_fail_with_undefined_error":
            setattr(_Undefined, _attr, _Undefined._fail_with_undefined_error)


class _Context(Context):
    """Resolves a bare name through the scope's lookup order when it is not a top-level name."""

    def resolve_or_missing(self, key: str) -> Any:
        rv = super().resolve_or_missing(key)
        if rv is missing:
            bare = self.parent.get(_BARE_KEY)
            if bare is not None:
                return bare(key)
        return rv


def _build_env() -> Sandbox:
    env = Sandbox(undefined=_Undefined, autoescape=False, keep_trailing_newline=True,
                   auto_reload=False, cache_size=0, finalize=check_output)
    env.context_class = _Context
    env.globals.update(range=BoundedRange, lipsum=bounded_lipsum, **template_functions.GLOBALS)
    env.filters.update(template_functions.FILTERS)
    for name in ("center", "indent", "wordwrap"):
        bounded_filter(env, name, check_width)
    for name in ("string", "tojson", "pprint", "format", "urlencode", "shquote"):
        bounded_filter(env, name, check_measured)
    for name in ("batch", "slice"):
        bounded_filter(env, name, check_count)
    bounded_filter(env, "replace", check_replace)
    bounded_filter(env, "format", check_format_filter)
    bounded_join(env)
    bounded_filter(env, "sum", check_sum)
    bounded_map(env)
    return env


ENV = _build_env()
CACHE = CacheStats()
GLOBALS: dict[str, Any] = dict(ENV.globals)


def _context(scope: Mapping[str, Any]) -> Context:
    """A render context over ``scope`` without Jinja's per-call merge of its globals."""
    return _Context(ENV, {**GLOBALS, **scope}, None, {})


# ------------------------------------------------------------------ compile

def expand_shorthand(source: str) -> str:
    """Rewrite ``${path}`` to ``{{ path }}``, ``${path:-fb}`` to ``{{ path | default(fb) }}``
    and ``$${`` to a literal ``${``. A fallback that reads as a JSON number, boolean or
    null keeps that type; any other fallback is a string."""
    if "${" not in source:
        return source
    escaped = source.replace("$${", "\x00")

    def repl(m: re.Match[str]) -> str:
        path, fallback = m.group(1), m.group(2)
        if fallback is None:
            return "{{ " + path + " }}"
        fb = fallback.strip()
        if _LITERAL_RE.fullmatch(fb):
            lit = {"true": "true", "false": "false", "null": "none"}.get(fb, fb)
        else:
            lit = orjson.dumps(fallback).decode()
        return "{{ " + path + " | default(" + lit + ") }}"

    out = _SHORTHAND_RE.sub(repl, escaped)
    return out.replace("\x00", "{{ '${' }}") if "\x00" in out else out


def is_template(value: Any) -> bool:
    """True for a string that contains template syntax."""
    return isinstance(value, str) and ("{" in value or "${" in value) and (
        "{{" in value or "{%" in value or "{#" in value or "${" in value)


@dataclass(frozen=True, slots=True)
class Compiled:
    """One compiled template. ``kind`` is ``path`` (fast path), ``expr`` (native
    single expression) or ``text`` (renders to a string)."""

    source: str
    kind: str
    fn: Any
    path: tuple[tuple[bool, Any], ...] | None
    volatile: bool


_compiled: dict[str, Compiled] = {}


def _split_path(expr: str) -> tuple[tuple[bool, Any], ...] | None:
    """``a.b[0]['c']`` -> ((False,'a'), (True,'b'), (False,0), (False,'c')); attr flag first."""
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", expr)
    if not m:
        return None
    out: list[tuple[bool, Any]] = [(False, m.group(0))]
    pos = m.end()
    while pos < len(expr):
        s = _SEGMENT_RE.match(expr, pos)
        if not s:
            return None
        attr, idx, sq, dq = s.groups()
        if attr is not None:
            if attr.startswith("_"):
                return None
            out.append((True, attr))
        elif idx is not None:
            out.append((False, int(idx)))
        else:
            key = sq if sq is not None else dq
            if key.startswith("_"):
                return None
            out.append((False, key))
        pos = s.end()
    return tuple(out)


def _volatile(ast: nodes.Node) -> bool:
    for call in ast.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name in VOLATILE_FUNCTIONS:
            return True
    return False


def compile_template(source: str) -> Compiled:
    """Compile ``source`` (cached by text); TemplateError with the position on a syntax error."""
    hit = _compiled.get(source)
    if hit is not None:
        CACHE.hits += 1
        return hit
    CACHE.misses += 1
    text = expand_shorthand(source)
    m = _NATIVE_RE.fullmatch(text)
    try:
        if m and "{{" not in m.group(1) and "}}" not in m.group(1) and "{%" not in text and "{#" not in text:
            expr = m.group(1).strip()
            ast = ENV.parse("{{ " + expr + " }}")
            path = _split_path(expr) if _PATH_RE.fullmatch(expr) else None
            fn = ENV.compile_expression(expr, undefined_to_none=False)
            compiled = Compiled(source, "path" if path else "expr", fn, path, _volatile(ast))
        else:
            ast = ENV.parse(text)
            compiled = Compiled(source, "text", ENV.from_string(text), None, _volatile(ast))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error in {source!r}: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(f"template {source!r} is not allowed: {exc}") from None
    if len(_compiled) > 50_000:
        _compiled.clear()
    _compiled[source] = compiled
    return compiled


def parse_ast(source: str) -> nodes.Template:
    """The Jinja AST of a template string (after shorthand expansion); TemplateError on syntax."""
    try:
        return ENV.parse(expand_shorthand(source))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"line {exc.lineno}: {exc.message}") from None


# ------------------------------------------------------------------ render

class _Fallback(Exception):
    pass


def _walk_path(scope: Mapping[str, Any], path: tuple[tuple[bool, Any], ...]) -> Any:
    root = path[0][1]
    if root in scope:
        obj = scope[root]
    else:
        bare = scope.get(_BARE_KEY)
        obj = bare(root) if bare is not None else missing
        if obj is missing:
            raise _Fallback
    for is_attr, key in path[1:]:
        if isinstance(obj, AttrView):
            try:
                obj = obj._get(key)
            except (KeyError, TypeError):
                raise _Fallback from None
        elif isinstance(obj, dict):
            if is_attr and key in _DICT_ATTRS:
                raise _Fallback
            try:
                obj = obj[key]
            except KeyError:
                raise _Fallback from None
        elif isinstance(obj, list) and isinstance(key, int) and not is_attr:
            try:
                obj = obj[key]
            except IndexError:
                raise _Fallback from None
        else:
            raise _Fallback
    return obj


def _evaluate(fn: Any, scope: Mapping[str, Any]) -> Any:
    """Value of a compiled single expression (a Jinja TemplateExpression) in ``scope``."""
    ctx = _context(scope)
    for _ in fn._template.root_render_func(ctx):
        pass
    return ctx.vars["result"]


def _close_matches(name: str | None, obj: Any, scope: Mapping[str, Any]) -> list[str]:
    if name is None:
        return []
    if obj is missing or obj is None:
        candidates = [k for k in scope if not k.startswith("_")]
        bare_names = scope.get("__tether_names__")
        if bare_names:
            candidates += list(bare_names())
    elif isinstance(obj, (AttrView, dict)):
        candidates = [str(k) for k in obj]
    else:
        candidates = []
    return difflib.get_close_matches(str(name), candidates, n=3, cutoff=0.6)


def _label(obj: Any) -> str:
    if isinstance(obj, AttrView):
        return obj._label
    return type(obj).__name__


def _missing_error(exc: MissingName, source: str, where: str, scope: Mapping[str, Any]) -> TemplateError:
    matches = _close_matches(exc.name, exc.obj, scope)
    owner = "" if exc.obj is missing or exc.obj is None else f" in {_label(exc.obj)}"
    hint = f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""
    prefix = f"{where}: " if where else ""
    return TemplateError(f"{prefix}template {source!r} uses undefined name {exc.name!r}{owner}{hint}")


def render(source: Any, scope: Mapping[str, Any], where: str = "") -> Any:
    """Render one value: templates in strings, other values unchanged.

    ``scope`` maps top-level names to values; an optional ``__tether_bare__``
    callable resolves other bare names (returning ``jinja2.runtime.missing`` when it
    cannot). ``where`` (e.g. ``step 'fetch', field 'with.url'``) prefixes errors.
    """
    if not isinstance(source, str) or not is_template(source):
        return source
    compiled = compile_template(source)
    token = render_budget.set(new_budget())
    try:
        if compiled.kind == "path":
            try:
                value = _walk_path(scope, compiled.path)  # type: ignore[arg-type]
            except _Fallback:
                value = _evaluate(compiled.fn, scope)
            if type(value) in (dict, list) and plain_json(value):
                return value  # passed through as it is: no copy, no render limit
        elif compiled.kind == "expr":
            value = _evaluate(compiled.fn, scope)
            if type(value) in _CONTAINERS:
                text_size(value, MAX_VALUE)  # before walking it: shared references may repeat it vastly
        else:
            parts: list[str] = []
            size = 0
            for chunk in compiled.fn.root_render_func(_context(scope)):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise TemplateError(f"template output exceeds {MAX_OUTPUT} characters")
                parts.append(chunk)
            return "".join(parts)
        value = to_json_value(value)
        # A bare path passes a value that already exists, without copying or building
        # anything: only what an expression builds is held to the render limit.
        if compiled.kind != "path" and isinstance(value, str) and len(value) > MAX_OUTPUT:
            raise TemplateError(f"template output exceeds {MAX_OUTPUT} characters")
        return value
    except MissingName as exc:
        raise _missing_error(exc, source, where, scope) from None
    except UndefinedError as exc:
        raise TemplateError(f"{where + ': ' if where else ''}template {source!r}: {exc}") from None
    except SecurityError as exc:
        raise TemplateError(f"{where + ': ' if where else ''}template {source!r} is not allowed: "
                            f"{exc}") from None
    except TemplateError as exc:
        if where and not exc.message.startswith(where):
            raise TemplateError(f"{where}: {exc.message} (in {source!r})") from None
        raise
    except RecursionError:
        raise TemplateError(f"{where + ': ' if where else ''}template {source!r} "
                            "recursed too deeply") from None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, KeyError, IndexError,
            AttributeError) as exc:
        raise TemplateError(
            f"{where + ': ' if where else ''}template {source!r} failed: "
            f"{type(exc).__name__}: {exc}") from None
    finally:
        render_budget.reset(token)


def render_deep(value: Any, scope: Mapping[str, Any], where: str = "") -> Any:
    """Render every string inside ``value`` (dicts and lists walked; keys left as they are)."""
    if isinstance(value, str):
        return render(value, scope, where)
    if isinstance(value, dict):
        return {k: render_deep(v, scope, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [render_deep(v, scope, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def is_volatile(value: Any) -> bool:
    """True when any template inside ``value`` calls now(), timestamp() or uuid()."""
    if isinstance(value, str):
        return is_template(value) and compile_template(value).volatile
    if isinstance(value, dict):
        return any(is_volatile(v) for v in value.values())
    if isinstance(value, list):
        return any(is_volatile(v) for v in value)
    return False


BARE_KEY = _BARE_KEY
MISSING = missing
