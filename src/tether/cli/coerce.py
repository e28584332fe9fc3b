"""Plain command-line values coerced without pydantic.

Typer (0.2x) coerces every parameter through a pydantic ``TypeAdapter``: a command with one
text argument imports pydantic and builds adapters before it starts, ~100 ms of a read
command's ~150 ms budget. ``install()`` puts a shortcut in front of that for the values this
CLI takes: text, flags, whole numbers within their ``min``/``max``, lists of text, paths
without checks. Each returns exactly what the adapter would; anything else (a malformed or
out-of-range number, an unreadable path, a choice) goes to Typer's own coercion, so its
errors read the same. With a Typer that has no such hook, ``install()`` changes nothing."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

UNHANDLED = object()


def plain_value(annotation: Any, info: Any, value: Any) -> Any:
    """``value`` as Typer's adapter returns it for ``annotation`` (``str``, ``bool``,
    ``int``, ``list[str]``, ``Path``), or ``UNHANDLED`` when only Typer's own coercion can say."""
    if getattr(info, "parser", None) is not None:
        return UNHANDLED
    if annotation is str:
        return value if type(value) is str else UNHANDLED
    if annotation is bool:
        return value if type(value) is bool else UNHANDLED
    if annotation is int:
        if getattr(info, "clamp", False):
            return UNHANDLED
        if type(value) is int:
            number = value
        elif type(value) is str and value.isascii() and value.isdigit() and (value == "0" or value[0] != "0"):
            number = int(value)
        else:
            return UNHANDLED
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        if (low is not None and number < low) or (high is not None and number > high):
            return UNHANDLED
        return number
    if annotation == list[str] and isinstance(value, (list, tuple)) and all(type(v) is str for v in value):
        return list(value)
    if annotation is Path and type(value) is str and value and _plain_path(info):
        path = Path(value)  # what Typer returns for a path without checks to make: it, unless unreadable
        try:
            os.stat(path)
        except OSError:
            return path
        return path if os.access(path, os.R_OK) else UNHANDLED
    return UNHANDLED


def _plain_path(info: Any) -> bool:
    """Whether a path parameter asks for none of Typer's checks but its default readability."""
    return (not getattr(info, "exists", True) and getattr(info, "file_okay", False)
            and getattr(info, "dir_okay", False) and not getattr(info, "writable", True)
            and getattr(info, "readable", False) and not getattr(info, "resolve_path", True)
            and not getattr(info, "allow_dash", True) and getattr(info, "path_type", 1) is None)


def install() -> None:
    """Route Typer's coercion of plain values through ``plain_value`` (idempotent)."""
    try:
        from typer import core
        from typer._coercion import RuntimeParam
    except ImportError:  # a Typer without the pydantic layer: nothing to shortcut
        return
    found = getattr(core, "build_runtime_param", None)
    if found is None or getattr(found, "tether_plain", False):
        return
    original: Any = found

    class PlainRuntimeParam(RuntimeParam):
        # not a dataclass of its own (its creation costs ~1 ms on every start): Typer's
        # frozen fields, and the descriptor kept beside them for Typer's own coercion
        descriptor: Any

        def __init__(self, descriptor: Any) -> None:
            super().__init__(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)
            object.__setattr__(self, "descriptor", descriptor)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            out = plain_value(self.annotation, self.parameter_info, value)
            if out is UNHANDLED:
                return original(self.descriptor)._coerce_value(value, param=param, ctx=ctx)
            return out

    def build(descriptor: Any) -> Any:
        if descriptor.file_annotation is None and descriptor.annotation in (str, bool, int, list[str], Path):
            return PlainRuntimeParam(descriptor)
        return original(descriptor)

    build.tether_plain = True  # type: ignore[attr-defined]
    core.build_runtime_param = build
