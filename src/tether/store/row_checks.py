"""Type checks for values read back from a store's rows.

A row written by Tether always has these types; a row that does not (a damaged file,
a hand-edited database, a hostile writer) becomes a :class:`CorruptRecord` naming the
run and the record, instead of a TypeError somewhere far from the read.
"""
from __future__ import annotations

from typing import Any, Literal, overload

from ..errors import CorruptRecord
from . import codec


def integer(value: Any, what: str, column: str) -> int:
    """``value`` if it is an int (not a bool); CorruptRecord otherwise."""
    if type(value) is not int:
        raise CorruptRecord(f"{what}: {column} is {_show(value)}, not an integer")
    return value


@overload
def real(value: Any, what: str, column: str, optional: Literal[False] = False) -> float: ...
@overload
def real(value: Any, what: str, column: str, optional: bool) -> float | None: ...
def real(value: Any, what: str, column: str, optional: bool = False) -> float | None:
    """``value`` as a float if it is a number (not a bool; or None when ``optional``);
    CorruptRecord otherwise."""
    if type(value) in (int, float):
        return float(value)
    if optional and value is None:
        return None
    raise CorruptRecord(f"{what}: {column} is {_show(value)}, not a number")


@overload
def text(value: Any, what: str, column: str, optional: Literal[False] = False) -> str: ...
@overload
def text(value: Any, what: str, column: str, optional: bool) -> str | None: ...
def text(value: Any, what: str, column: str, optional: bool = False) -> str | None:
    """``value`` if it is a str (or None when ``optional``); CorruptRecord otherwise."""
    if type(value) is str or (optional and value is None):
        return value
    raise CorruptRecord(f"{what}: {column} is {_show(value)}, not text")


def json_object(value: Any, what: str, column: str) -> dict[str, Any] | None:
    """The JSON object stored as text in ``value`` (None stays None); CorruptRecord if the
    text is not JSON or not an object."""
    if value is None:
        return None
    if type(value) is not str and type(value) is not bytes:
        raise CorruptRecord(f"{what}: {column} is {_show(value)}, not JSON text")
    try:
        parsed = codec.loads(value)
    except ValueError as exc:
        raise CorruptRecord(f"{what}: {column} is not JSON: {exc}") from None
    if parsed is not None and type(parsed) is not dict:
        raise CorruptRecord(f"{what}: {column} is a JSON {type(parsed).__name__}, not an object")
    return parsed


def _show(value: Any) -> str:
    text_ = repr(value)
    return text_ if len(text_) <= 40 else text_[:37] + "..."
