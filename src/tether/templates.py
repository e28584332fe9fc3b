"""Templates: sandboxed Jinja2 with native single expressions, ``${}`` shorthand,
a compile cache, a fast path for bare paths, and hard limits.

Guarantees:

* every template runs in :class:`ImmutableSandboxedEnvironment`; a name that is
  not defined is a :class:`TemplateError` naming it and its close matches, never "";
* a string that is exactly one ``{{ expr }}`` evaluates to the expression's native
  value; any other template string renders to a string;
* one render produces at most ``MAX_OUTPUT`` characters, and string/list growth,
  ``**`` and ``range`` are bounded, so no template can hang the engine or exhaust memory;
* each distinct source text is compiled once per process (see :data:`CACHE`).
"""
from __future__ import annotations

import contextvars
import datetime as _dt
import difflib
import re
import time
import uuid as uuidlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

import orjson
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context, missing
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateError

MAX_OUTPUT = 1024 * 1024          # characters of one render
MAX_RANGE = 100_000               # elements of one range()
MAX_RANGE_TOTAL = 1_000_000       # range() elements iterated in one render, all ranges together
MAX_SEQUENCE = 1024 * 1024        # length of a string or list built by * or +
MAX_POWER_BITS = 64 * 1024        # bits of an integer built by **
MAX_FORMAT_WIDTH = 10_000         # width or precision in % and format()
VOLATILE_FUNCTIONS = frozenset({"now", "timestamp", "uuid"})

_BARE_KEY = "__tether_bare__"
_PATH_RE = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\['[^'\\\]]*'\]|\[\"[^\"\\\]]*\"\])*")
_SHORTHAND_RE = re.compile(r"\$\{(" + _PATH_RE.pattern + r")(?::-([^}]*))?\}")
_SEGMENT_RE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_NATIVE_RE = re.compile(r"\s*\{\{(.*)\}\}\s*", re.S)
_WIDTH_RE = re.compile(r"\d{%d,}" % (len(str(MAX_FORMAT_WIDTH)) + 1))
_LITERAL_RE = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null")
_DICT_ATTRS = frozenset(dir(dict))

_range_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("tether_range_budget")


class CacheStats:
    """Hit and miss counters of the compile cache, for ``tether stats`` and metrics."""

    __slots__ = ("hits", "misses")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


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
for _cls in (StrictUndefined, StrictUndefined.__mro__[1]):
    for _attr, _value in vars(_cls).items():
        if _value is getattr(StrictUndefined.__mro__[1], "_fail_with_undefined_error") and _attr != \
                "_fail_with_undefined_error":
            setattr(_Undefined, _attr, _Undefined._fail_with_undefined_error)


class AttrView:
    """A read-only mapping that templates reach with ``view.name`` or ``view['name']``.

    ``get`` returns the value or raises KeyError; ``keys`` lists the names (for
    did-you-mean hints and iteration). Built-in names of ``dict`` cannot shadow
    entries, unlike a plain dict (``steps.items`` is the step named ``items``).
    """

    __slots__ = ("_get", "_keys", "_label")

    def __init__(self, get: Callable[[str], Any], keys: Callable[[], Iterable[str]], label: str) -> None:
        self._get = get
        self._keys = keys
        self._label = label

    @classmethod
    def of(cls, mapping: Mapping[str, Any], label: str) -> "AttrView":
        return cls(mapping.__getitem__, mapping.keys, label)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._get(name)
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._get(name)

    def __contains__(self, name: object) -> bool:
        try:
            self._get(name)  # type: ignore[arg-type]
            return True
        except (KeyError, TypeError):
            return False

    def __iter__(self):
        return iter(list(self._keys()))

    def __len__(self) -> int:
        return len(list(self._keys()))

    def __repr__(self) -> str:
        return f"<{self._label}>"

    def to_dict(self) -> dict[str, Any]:
        return {k: self._get(k) for k in self._keys()}


class _Context(Context):
    """Resolves a bare name through the scope's lookup order when it is not a top-level name."""

    def resolve_or_missing(self, key: str) -> Any:
        rv = super().resolve_or_missing(key)
        if rv is missing:
            bare = self.parent.get(_BARE_KEY)
            if bare is not None:
                return bare(key)
        return rv


# ------------------------------------------------------------------ limits

class _BoundedRange:
    """``range`` whose elements count against one render's budget."""

    __slots__ = ("_r",)

    def __init__(self, *args: int) -> None:
        r = range(*args)
        if len(r) > MAX_RANGE:
            raise TemplateError(f"range of {len(r)} elements exceeds the limit of {MAX_RANGE}")
        self._r = r

    def __len__(self) -> int:
        return len(self._r)

    def __getitem__(self, i: Any) -> Any:
        return self._r[i]

    def __iter__(self):
        budget = _range_budget.get(None)
        for x in self._r:
            if budget is not None:
                budget[0] -= 1
                if budget[0] < 0:
                    raise TemplateError(
                        f"template iterated more than {MAX_RANGE_TOTAL} range elements in one render")
            yield x


_NUMBERS = (int, float)


def _size(x: Any) -> int:
    return len(x) if isinstance(x, (str, list, tuple, bytes)) else 0


def _check_format_string(fmt: Any) -> None:
    if isinstance(fmt, str) and _WIDTH_RE.search(fmt):
        raise TemplateError(f"format width or precision above {MAX_FORMAT_WIDTH} is not allowed")


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    intercepted_unops = frozenset()

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if type(left) in _NUMBERS and type(right) in _NUMBERS and operator != "**":
            return self.binop_table[operator](left, right)
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if _size(seq) and isinstance(n, int) and _size(seq) * n > MAX_SEQUENCE:
                    raise TemplateError(f"'*' would build a sequence longer than {MAX_SEQUENCE}")
        elif operator == "+":
            if _size(left) + _size(right) > MAX_SEQUENCE:
                raise TemplateError(f"'+' would build a sequence longer than {MAX_SEQUENCE}")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
                if right > 0 and left.bit_length() * right > MAX_POWER_BITS:
                    raise TemplateError(f"'**' result would exceed {MAX_POWER_BITS} bits")
        elif operator == "%":
            _check_format_string(left)
        try:
            return super().call_binop(context, operator, left, right)
        except OverflowError as exc:
            raise TemplateError(f"arithmetic overflow in '{operator}': {exc}") from None

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is AttrView and attribute[:1] != "_":
            # our own read-only views hold only data: no sandbox checks needed
            try:
                return obj._get(attribute)
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _check_format_string(obj)
            method = super().getattr(obj, attribute)

            def checked(*args: Any, **kwargs: Any) -> Any:
                for a in list(args) + list(kwargs.values()):
                    if isinstance(a, int) and not isinstance(a, bool) and a > MAX_FORMAT_WIDTH:
                        raise TemplateError("format argument too large to be a width")
                return method(*args, **kwargs)
            return checked
        return super().getattr(obj, attribute)


def _bounded_filter(env: _Sandbox, name: str, check: Callable[..., None]) -> None:
    original = env.filters[name]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        return original(*args, **kwargs)

    wrapped.__name__ = original.__name__
    for attr in ("jinja_pass_arg",):
        if hasattr(original, attr):
            setattr(wrapped, attr, getattr(original, attr))
    env.filters[name] = wrapped


def _check_width(value: Any, width: Any = 80, *a: Any, **k: Any) -> None:
    w = len(width) if isinstance(width, str) else width
    if isinstance(w, int) and w > MAX_FORMAT_WIDTH:
        raise TemplateError(f"width {w} exceeds the limit of {MAX_FORMAT_WIDTH}")
    if isinstance(w, int) and isinstance(value, str) and (value.count("\n") + 1) * w > MAX_OUTPUT:
        raise TemplateError(f"result would exceed {MAX_OUTPUT} characters")


def _check_replace(*args: Any, **kwargs: Any) -> None:
    # do_replace(eval_ctx, s, old, new, count=None)
    s, old, new = (list(args[1:]) + [None, None, None])[:3]
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        n = s.count(old) if old else len(s) + 1
        if len(s) + n * (len(new) - len(old)) > MAX_OUTPUT:
            raise TemplateError(f"replace would build a string longer than {MAX_OUTPUT}")


def _check_format_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_format_string(value)


# ------------------------------------------------------------------ functions and filters

def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def _timestamp() -> float:
    return time.time()


def _uuid() -> str:
    return str(uuidlib.uuid4())


def _tojson(value: Any, indent: int | None = None) -> str:
    opt = orjson.OPT_INDENT_2 if indent else 0
    try:
        return orjson.dumps(to_json_value(value), option=opt).decode()
    except TypeError as exc:
        raise TemplateError(f"tojson: {exc}") from None


def _fromjson(text: Any) -> Any:
    try:
        return orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise TemplateError(f"fromjson: not valid JSON: {exc}") from None


@lru_cache(maxsize=512)
def _jsonpath_expr(expr: str) -> Any:
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext import parse
    try:
        return parse(expr)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:  # the parser raises bare Exception too
        raise TemplateError(f"jsonpath: invalid expression {expr!r}: {exc}") from None


def _jsonpath(value: Any, expr: str) -> list[Any]:
    """All values matched by the JSONPath ``expr`` in ``value``, in document order."""
    return [m.value for m in _jsonpath_expr(expr).find(to_json_value(value))]


def to_json_value(value: Any) -> Any:
    """``value`` as plain JSON data (views unwrapped, tuples as lists); TemplateError for an
    undefined name or a value that JSON cannot hold."""
    if value is None or type(value) in (str, bool, int, float):
        return value
    if isinstance(value, str):  # a str subclass such as Markup
        return str(value)
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, _Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, AttrView):
        return to_json_value(value.to_dict())
    if isinstance(value, _BoundedRange):
        return list(value)
    if isinstance(value, (set, frozenset)):
        return [to_json_value(v) for v in value]
    raise TemplateError(f"the template produced a {type(value).__name__}, which is not a JSON value")


def _build_env() -> _Sandbox:
    env = _Sandbox(undefined=_Undefined, autoescape=False, keep_trailing_newline=True,
                   auto_reload=False, cache_size=0)
    env.context_class = _Context
    env.globals.update(range=_BoundedRange, now=_now, timestamp=_timestamp, uuid=_uuid)
    env.filters.update(tojson=_tojson, fromjson=_fromjson, jsonpath=_jsonpath)
    for name in ("center", "indent", "wordwrap"):
        _bounded_filter(env, name, _check_width)
    _bounded_filter(env, "replace", _check_replace)
    _bounded_filter(env, "format", _check_format_filter)
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
    token = _range_budget.set([MAX_RANGE_TOTAL])
    try:
        if compiled.kind == "path":
            try:
                value = _walk_path(scope, compiled.path)  # type: ignore[arg-type]
            except _Fallback:
                value = _evaluate(compiled.fn, scope)
        elif compiled.kind == "expr":
            value = _evaluate(compiled.fn, scope)
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
        if isinstance(value, str) and len(value) > MAX_OUTPUT:
            raise TemplateError(f"template output exceeds {MAX_OUTPUT} characters")
        return value
    except MissingName as exc:
        raise _missing_error(exc, source, where, scope) from None
    except UndefinedError as exc:
        raise TemplateError(f"{where + ': ' if where else ''}template {source!r}: {exc}") from None
    except SecurityError as exc:
        raise TemplateError(f"{where + ': ' if where else ''}template {source!r} is not allowed: {exc}") from None
    except TemplateError as exc:
        if where and not exc.message.startswith(where):
            raise TemplateError(f"{where}: {exc.message} (in {source!r})") from None
        raise
    except RecursionError:
        raise TemplateError(f"{where + ': ' if where else ''}template {source!r} recursed too deeply") from None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, KeyError, IndexError, AttributeError) as exc:
        raise TemplateError(
            f"{where + ': ' if where else ''}template {source!r} failed: {type(exc).__name__}: {exc}") from None
    finally:
        _range_budget.reset(token)


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
