"""How a validation error reads, in Tether's words rather than pydantic's: what was
expected and what was found (``expected a whole number, found "abc"``), never a link to
pydantic's documentation. Works on the error dicts of ``ValidationError.errors()`` (and
FastAPI's ``RequestValidationError.errors()``), without importing pydantic."""
from __future__ import annotations

from typing import Any

EXPECTED = {
    "string_type": "text", "string_sub_type": "text", "str_type": "text",
    "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number", "decimal_type": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "list_type": "a list", "tuple_type": "a list", "set_type": "a list",
    "dict_type": "a mapping (key: value)", "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)", "mapping_type": "a mapping (key: value)",
    "json_invalid": "valid JSON", "json_type": "JSON text", "none_required": "null",
}
BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="), "less_than": ("lt", "<"),
          "less_than_equal": ("le", "<=")}
PREFIXES = ("Value error, ", "Assertion failed, ")


def found(value: Any) -> str:
    """A value as an error message quotes it: short, and its kind for a mapping or list."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def expected(err: dict[str, Any]) -> str | None:
    """What the value should have been, for the error kinds that say it; else None."""
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind in EXPECTED:
        return EXPECTED[kind]
    if kind in BOUNDS:
        key, sign = BOUNDS[kind]
        return f"a number {sign} {ctx.get(key)}"
    if kind in ("string_too_short", "string_too_long"):
        bound = ctx.get("min_length") if kind.endswith("short") else ctx.get("max_length")
        return f"text of {'at least' if kind.endswith('short') else 'at most'} {bound} character(s)"
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind.endswith("short") else ctx.get("max_length")
        return f"{'at least' if kind.endswith('short') else 'at most'} {bound} item(s)"
    if kind == "string_pattern_mismatch":
        return f"text matching {ctx.get('pattern')}"
    if kind in ("literal_error", "enum"):
        return f"one of {ctx.get('expected')}"
    return None


def describe(err: dict[str, Any]) -> str:
    """One error's detail, without its location: ``expected X, found Y``; ``required, not
    given``; ``unknown key``; or the validator's own message (a Tether check's wording)."""
    kind = err.get("type", "")
    if kind == "missing":
        return "required, not given"
    if kind == "extra_forbidden":
        return "unknown key"
    want = expected(err)
    if want is not None:
        return f"expected {want}, found {found(err.get('input'))}" if "input" in err else f"expected {want}"
    message = str(err.get("msg", "invalid"))
    for prefix in PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def location(loc: Any) -> str:
    """An error's location as a dotted path (``body.inputs.n``), union and validator tags left out."""
    parts = [str(p) for p in loc or () if not (isinstance(p, str) and ("[" in p or "function-" in p))]
    return ".".join(parts) or "(root)"
