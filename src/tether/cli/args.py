"""Values given on the command line: ``NAME=VALUE`` pairs and JSON-or-text values."""
from __future__ import annotations

from typing import Any

JSON_STARTS = ("{", "[", '"')
STRING_HINT = "fix the JSON, or give --string to store the value as text"


def parse_value(text: str, strict: str | None = None, hint: str = "") -> Any:
    """A command-line value: JSON when it parses as JSON (integers kept exact, so one the
    store cannot hold is refused rather than turned into a float), else the text itself.
    With ``strict`` (the name of the value, for the message), text that starts like a JSON
    object, array or string but does not parse is a UsageError (with ``hint``), not text:
    a mistyped ``{a:1`` is never stored as a string."""
    import orjson

    from ..store import codec
    try:
        return codec.loads_exact(text)
    except orjson.JSONDecodeError as exc:
        if strict is not None and text.lstrip().startswith(JSON_STARTS):
            from ..errors import UsageError
            raise UsageError(f"{strict} {text!r} is not valid JSON ({exc})"
                             + (f"\nhint: {hint}" if hint else "")) from None
        return text


def pairs(items: list[str] | None, what: str, strict: bool = False) -> dict[str, Any]:
    """``NAME=VALUE`` items as a dict of parsed values; a malformed item (or, with
    ``strict``, a value that starts like JSON but is not) is a UsageError naming the option
    ``what``."""
    from ..errors import UsageError
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{what} must look like NAME=VALUE, not {item!r}")
        out[name.strip()] = parse_value(
            value, f"{what} {name.strip()}=" if strict else None,
            'give text that starts like JSON as a JSON string: NAME=\'"{a:1"\'')
    return out
