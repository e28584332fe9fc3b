"""Values given on the command line: ``NAME=VALUE`` pairs and JSON-or-text values."""
from __future__ import annotations

from typing import Any


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses as JSON (integers kept exact, so one the
    store cannot hold is refused rather than turned into a float), else the text itself."""
    import orjson

    from ..store import codec
    try:
        return codec.loads_exact(text)
    except orjson.JSONDecodeError:
        return text


def pairs(items: list[str] | None, what: str) -> dict[str, Any]:
    """``NAME=VALUE`` items as a dict of parsed values; a malformed item is a UsageError
    naming the option ``what``."""
    from ..errors import UsageError
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{what} must look like NAME=VALUE, not {item!r}")
        out[name.strip()] = parse_value(value)
    return out
