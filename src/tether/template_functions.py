"""The functions and filters a template may call beyond Jinja's own: ``now()``,
``timestamp()``, ``uuid()`` and the filters ``tojson``, ``fromjson``, ``jsonpath`` and
``shquote``, plus :func:`to_json_value`, which turns what a template produced into plain
JSON data. Each raises :class:`TemplateError` with a message for bad input, never a bare
exception; the sandbox's limits (``sandbox.py``) bound their output."""
from __future__ import annotations

import datetime as _dt
import time
import uuid as uuidlib
from functools import lru_cache
from typing import Any

import orjson
from jinja2 import Undefined

from .errors import TemplateError
from .sandbox import AttrView, BoundedRange


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat()


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


def _shquote(value: Any) -> str:
    """``value`` as one shell word (``shlex.quote``); a list becomes one quoted word per
    element, separated by spaces; a mapping is quoted as its JSON text."""
    import shlex
    value = to_json_value(value)
    if isinstance(value, list):
        return " ".join(_shquote(v) for v in value)
    if isinstance(value, dict):
        return shlex.quote(orjson.dumps(value).decode())
    if isinstance(value, bool):
        return "true" if value else "false"
    return shlex.quote("" if value is None else str(value))


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
    # the parser raises bare Exception too
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise TemplateError(f"jsonpath: invalid expression {expr!r}: {exc}") from None


def jsonpath(value: Any, expr: str) -> list[Any]:
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
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, AttrView):
        return to_json_value(value.to_dict())
    if isinstance(value, BoundedRange):
        return list(value)
    if isinstance(value, (set, frozenset)):
        return [to_json_value(v) for v in value]
    raise TemplateError(f"the template produced a {type(value).__name__}, which is not a JSON value")


GLOBALS = {"now": _now, "timestamp": _timestamp, "uuid": _uuid}
FILTERS = {"tojson": _tojson, "fromjson": _fromjson, "jsonpath": jsonpath, "shquote": _shquote}
