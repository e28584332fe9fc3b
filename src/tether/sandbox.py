"""The Jinja sandbox Tether renders in, and its limits.

Guarantees: templates run in :class:`ImmutableSandboxedEnvironment`; string and list
growth through ``*`` and ``+``, ``**`` results, format widths, ``range`` sizes and the
total of ``range`` elements one render iterates are bounded, so no template can hang
the engine or exhaust memory. :class:`AttrView` is how templates see Tether's data.
"""
from __future__ import annotations

import contextvars
import re
from typing import Any, Callable, Iterable, Mapping

from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateError

MAX_OUTPUT = 1024 * 1024          # characters of one render
MAX_RANGE = 100_000               # elements of one range()
MAX_RANGE_TOTAL = 1_000_000       # range() elements iterated in one render, all ranges together
MAX_SEQUENCE = 1024 * 1024        # length of a string or list built by * or +
MAX_POWER_BITS = 64 * 1024        # bits of an integer built by **
MAX_FORMAT_WIDTH = 10_000         # width or precision in % and format()
_range_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("tether_range_budget")
_WIDTH_RE = re.compile(r"\d{%d,}" % (len(str(MAX_FORMAT_WIDTH)) + 1))


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


# ------------------------------------------------------------------ limits

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


class Sandbox(ImmutableSandboxedEnvironment):
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


def bounded_filter(env: Sandbox, name: str, check: Callable[..., None]) -> None:
    original = env.filters[name]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
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
    # do_replace(eval_ctx, s, old, new, count=None)
    s, old, new = (list(args[1:]) + [None, None, None])[:3]
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        n = s.count(old) if old else len(s) + 1
        if len(s) + n * (len(new) - len(old)) > MAX_OUTPUT:
            raise TemplateError(f"replace would build a string longer than {MAX_OUTPUT}")


def check_format_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_format_string(value)
