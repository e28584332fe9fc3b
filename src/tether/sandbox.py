"""The Jinja sandbox Tether renders in, and its limits.

Guarantees: templates run in :class:`ImmutableSandboxedEnvironment`; string and list
growth through ``*``, ``+``, ``~``, ``%``, filters and string methods, ``**`` results,
format widths, ``range`` sizes, the loop iterations and calls of one render, its wall
time and the memory the process grows by while it runs are all bounded, so no
template can hang the engine or exhaust memory: it fails with a :class:`TemplateError`.
:class:`AttrView` is how templates see Tether's data.
"""
from __future__ import annotations

import contextvars
import re
import resource
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from jinja2 import nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from . import limits
from .errors import TemplateError

MAX_OUTPUT = limits.RENDER_MAX_CHARS  # characters of one render
MAX_RANGE = 100_000               # elements of one range()
MAX_ITERATIONS = 1_000_000        # loop iterations, range elements and calls of one render
MAX_SEQUENCE = 1024 * 1024        # length of a string or list built by * or +
MAX_VALUE = limits.VALUE_MAX_BYTES  # characters (estimated as JSON) of a value an expression computes
MAX_POWER_BITS = 64 * 1024        # bits of an integer built by **
MAX_FORMAT_WIDTH = 10_000         # width or precision in % and format()
MAX_RENDER_SECONDS = 0.5          # wall time of one render
MAX_RENDER_GROWTH = 24 * 1024     # KiB the process's peak memory may grow by during one render
_CHECK_EVERY = 16                 # budget ticks between time and memory checks
render_budget: contextvars.ContextVar[list[float]] = contextvars.ContextVar("tether_render_budget")
_WIDTH_RE = re.compile(rf"\d{{{len(str(MAX_FORMAT_WIDTH)) + 1},}}")


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
    def of(cls, mapping: Mapping[str, Any], label: str) -> AttrView:
        return cls(mapping.__getitem__, mapping.keys, label)

    @classmethod
    def of_set(cls, mapping: Mapping[str, Any], label: str) -> AttrView:
        """A view of the entries of ``mapping`` that are set: one whose value is None is
        undefined (``default()`` applies), never rendered as the text "None"."""
        return cls.of({k: v for k, v in mapping.items() if v is not None}, label)

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


# ------------------------------------------------------------------ limits

def new_budget() -> list[float]:
    """A fresh budget for one render: [ticks left, deadline, baseline peak RSS]. The
    deadline and baseline are taken at the first check (after _CHECK_EVERY ticks), so
    a render without loops or calls never reads the clock."""
    return [MAX_ITERATIONS, 0.0, 0]


def spend(budget: list[float]) -> None:
    """Count one loop iteration or call; TemplateError once the render is over its
    iteration budget, its time, or has grown the process by more than allowed."""
    budget[0] -= 1
    left = budget[0]
    if left % _CHECK_EVERY:
        return
    if left < 0:
        raise TemplateError(f"template ran more than {MAX_ITERATIONS} loop iterations or calls in one render")
    now = time.monotonic()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if not budget[1]:
        budget[1], budget[2] = now + MAX_RENDER_SECONDS, peak
        return
    if now > budget[1]:
        raise TemplateError(f"template took longer than {MAX_RENDER_SECONDS} s to render")
    if peak - budget[2] > MAX_RENDER_GROWTH:
        raise TemplateError(f"template used more than {MAX_RENDER_GROWTH // 1024} MiB while rendering")


def _spend_current() -> None:
    budget = render_budget.get(None)
    if budget is not None:
        spend(budget)


def text_size(value: Any, limit: int) -> int:
    """An estimate of ``len(str(value))`` (and of its JSON size), computed without
    building it; TemplateError as soon as it exceeds ``limit``. Shared references are
    counted every time they occur, as str() and JSON would write them."""
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or t is bytes:
            total += len(v) + 2
        elif t is int:
            total += 20 if -10**18 < v < 10**18 else v.bit_length() * 30103 // 100000 + 2
        elif t is list or t is tuple or isinstance(v, (list, tuple, set, frozenset)):
            total += 2 + len(v)
            stack.extend(v)
        elif isinstance(v, dict):
            total += 2 + 2 * len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, str):
            total += len(v)
        else:
            total += 24  # numbers, None, views and other objects print short
        if total > limit:
            raise TemplateError(f"the template would build a value longer than {limit} characters")
    return total


_SCALARS = frozenset({str, int, float, bool, type(None)})


def plain_json(value: Any) -> bool:
    """Whether ``value`` is plain JSON data already (dicts with string keys, lists, strings,
    numbers, booleans, None: no views, tuples or subclasses), checked without copying it,
    so it can be passed on as it is."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is dict:
            for k, item in v.items():
                if type(k) is not str:
                    return False
                if type(item) in _SCALARS:
                    continue
                stack.append(item)
        elif t is list:
            stack.extend(item for item in v if type(item) not in _SCALARS)
        elif t not in _SCALARS:
            return False
    return True


class BoundedRange:
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
        budget = render_budget.get(None)
        for x in self._r:
            if budget is not None:
                spend(budget)
            yield x


_NUMBERS = (int, float)


def _size(x: Any) -> int:
    return len(x) if isinstance(x, (str, list, tuple, bytes)) else 0


def _check_format_string(fmt: Any) -> None:
    if isinstance(fmt, str) and _WIDTH_RE.search(fmt):
        raise TemplateError(f"format width or precision above {MAX_FORMAT_WIDTH} is not allowed")


def bounded_iter(iterable: Any) -> Any:
    """``iterable`` with every element counted against the render's budget."""
    if type(iterable) is BoundedRange:
        return iterable  # counts its own elements
    budget = render_budget.get(None)
    if budget is None:
        return iterable
    return _counted(iterable, budget)


def _counted(iterable: Any, budget: list[float]) -> Any:
    for x in iterable:
        spend(budget)
        yield x


def bounded_concat(*parts: Any) -> str:
    """``~``: the parts joined as strings, refused if the result would exceed MAX_SEQUENCE."""
    total = 0
    for p in parts:
        if type(p) is not str:
            total += text_size(p, MAX_SEQUENCE)
        else:
            total += len(p)
        if total > MAX_SEQUENCE:
            raise TemplateError(f"'~' would build a string longer than {MAX_SEQUENCE}")
    return "".join([p if type(p) is str else str(p) for p in parts])


def check_output(value: Any) -> Any:
    """Jinja's ``finalize``: an expression printed in a template must fit in one render."""
    if type(value) is not str:
        text_size(value, MAX_OUTPUT)
    return value


class _Bounds(NodeTransformer):
    """Routes every ``for`` iterable through ``bounded_iter`` and every ``~`` through
    ``bounded_concat``, so loops and concatenation count against the render's budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)  # in place: it returns ``node`` itself
        node.iter = nodes.Call(nodes.EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None,
                               lineno=node.iter.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)  # in place: it returns ``node`` itself
        return nodes.Call(nodes.EnvironmentAttribute("bounded_concat"), list(node.nodes), [], None, None,
                          lineno=node.lineno)


# string methods whose result can be far larger than their inputs, with the checks they need
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_REFUSED_METHODS = frozenset({"translate", "maketrans", "to_bytes"})


class Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    intercepted_unops = frozenset()
    bounded_iter = staticmethod(bounded_iter)
    bounded_concat = staticmethod(bounded_concat)

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        return super()._generate(_Bounds().visit(source), name, filename, defer_init)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _spend_current()
        return super().call(context, obj, *args, **kwargs)

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
            if (isinstance(left, int) and isinstance(right, int) and abs(left) > 1
                    and right > 0 and left.bit_length() * right > MAX_POWER_BITS):
                raise TemplateError(f"'**' result would exceed {MAX_POWER_BITS} bits")
        elif operator == "%":
            _check_format_string(left)
            if isinstance(left, str) and len(left) + text_size(right, MAX_SEQUENCE) > MAX_SEQUENCE:
                raise TemplateError(f"'%' would build a string longer than {MAX_SEQUENCE}")
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
        if isinstance(obj, (str, bytes, int)) and attribute in _REFUSED_METHODS:
            raise TemplateError(f"{type(obj).__name__}.{attribute} is not allowed in templates")
        if (isinstance(obj, (str, bytes)) and attribute in ("format", "format_map", "replace", "join")) \
                or (isinstance(obj, (str, bytes)) and attribute in _WIDTH_METHODS):
            if attribute in ("format", "format_map"):
                _check_format_string(obj)
            method = super().getattr(obj, attribute)

            def checked(*args: Any, **kwargs: Any) -> Any:
                values = list(args) + list(kwargs.values())
                if attribute in _WIDTH_METHODS or attribute in ("format", "format_map"):
                    for a in values:
                        if isinstance(a, int) and not isinstance(a, bool) and a > MAX_FORMAT_WIDTH:
                            raise TemplateError(f"{attribute} argument too large to be a width")
                if attribute == "replace":
                    check_replace(obj, *args)
                elif attribute == "join":
                    n = len(args[0]) if args and hasattr(args[0], "__len__") else 0
                    if text_size(values, MAX_SEQUENCE) + n * len(obj) > MAX_SEQUENCE:
                        raise TemplateError(f"join would build a string longer than {MAX_SEQUENCE}")
                elif (attribute in ("format", "format_map")
                      and len(obj) + text_size(values, MAX_SEQUENCE) > MAX_SEQUENCE):
                    raise TemplateError(f"format would build a string longer than {MAX_SEQUENCE}")
                return method(*args, **kwargs)
            return checked
        return super().getattr(obj, attribute)


def bounded_filter(env: Sandbox, name: str, check: Callable[..., None]) -> None:
    original = env.filters[name]

    skip = 1 if hasattr(original, "jinja_pass_arg") else 0  # checks see (value, *arguments)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        check(*args[skip:], **kwargs)
        return original(*args, **kwargs)

    wrapped.__name__ = original.__name__
    for attr in ("jinja_pass_arg",):
        if hasattr(original, attr):
            setattr(wrapped, attr, getattr(original, attr))
    env.filters[name] = wrapped


def check_width(value: Any, width: Any = 80, *a: Any, **k: Any) -> None:
    w = len(width) if isinstance(width, str) else width
    if isinstance(w, int) and w > MAX_FORMAT_WIDTH:
        raise TemplateError(f"width {w} exceeds the limit of {MAX_FORMAT_WIDTH}")
    if isinstance(w, int) and isinstance(value, str) and (value.count("\n") + 1) * w > MAX_OUTPUT:
        raise TemplateError(f"result would exceed {MAX_OUTPUT} characters")


def check_replace(*args: Any, **kwargs: Any) -> None:
    """``replace`` filter and method: called as (s, old, new, ...)."""
    s, old, new = (list(args) + [None, None, None])[:3]
    if isinstance(s, (str, bytes)) and type(old) is type(s) and type(new) is type(s):
        n = cast(Any, s).count(old) if old else len(s) + 1  # old is of s's exact type (checked above)
        if len(s) + n * (len(new) - len(old)) > MAX_OUTPUT:
            raise TemplateError(f"replace would build a string longer than {MAX_OUTPUT}")


def check_measured(value: Any, *args: Any, **kwargs: Any) -> None:
    """For filters that print their input (``string``, ``tojson``, ``pprint``, ``format``)."""
    text_size([value, args, kwargs], MAX_OUTPUT)


def bounded_join(env: Sandbox) -> None:
    """``join``: the joined string is at most MAX_OUTPUT characters."""
    original = env.filters["join"]

    def wrapped(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
        items = list(value) if not isinstance(value, (str, dict)) else value
        n = len(items)
        if isinstance(items, list) and text_size(items, MAX_OUTPUT) + n * len(str(d)) > MAX_OUTPUT:
            raise TemplateError(f"join would build a string longer than {MAX_OUTPUT}")
        return original(eval_ctx, items, d, attribute)

    wrapped.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    env.filters["join"] = wrapped


def check_count(value: Any, n: Any = 0, *args: Any, **kwargs: Any) -> None:
    """``batch(n)`` and ``slice(n)``: n is a count of groups or their size."""
    n = kwargs.get("linecount", kwargs.get("slices", n))
    if isinstance(n, int) and n > MAX_RANGE:
        raise TemplateError(f"count {n} exceeds the limit of {MAX_RANGE}")


def check_sum(value: Any, *args: Any, **kwargs: Any) -> None:
    # do_sum(iterable, attribute=None, start=0)
    start = kwargs.get("start", args[1] if len(args) > 1 else 0)
    if (isinstance(start, (list, str, tuple)) and isinstance(value, (list, tuple))
            and sum(len(v) for v in value if isinstance(v, (list, str, tuple))) + len(start) > MAX_SEQUENCE):
        raise TemplateError(f"sum would build a sequence longer than {MAX_SEQUENCE}")


def bounded_map(env: Sandbox) -> None:
    """``map``: what it produces, all elements together, is at most MAX_VALUE characters."""
    original = env.filters["map"]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        total = 0
        for x in original(*args, **kwargs):
            total += text_size(x, MAX_VALUE - total)
            yield x

    wrapped.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    env.filters["map"] = wrapped


def bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's ``lipsum`` with at most 100 paragraphs of at most 1,000 words."""
    from jinja2.utils import generate_lorem_ipsum
    if not all(isinstance(v, int) for v in (n, min, max)) or n > 100 or max > 1000:
        raise TemplateError("lipsum is limited to 100 paragraphs of 1,000 words")
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


def check_format_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_format_string(value)
