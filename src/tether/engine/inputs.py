"""Run inputs: defaults, required ones, types."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import UsageError
from ..flow.models import Flow
from ..flow.validate import hint

_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "any": lambda v: True,
}


def resolve_inputs(flow: Flow, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's inputs: ``given`` checked against the declarations, defaults filled in.
    UsageError for unknown names, missing required inputs or wrong types."""
    given = dict(given or {})
    problems = []
    for name in given:
        if name not in flow.inputs:
            problems.append(f"unknown input {name!r}{hint(name, flow.inputs)}")
    out: dict[str, Any] = {}
    for name, spec in flow.inputs.items():
        if name in given:
            value = given[name]
            if spec.type == "number" and isinstance(value, str):
                problems.append(f"input {name!r} must be a number, got {value!r}")
                continue
            if spec.type == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)  # -i id=42 parses as JSON; a declared string keeps its text
            if not _CHECKS[spec.type](value):
                problems.append(f"input {name!r} must be of type {spec.type}, got {type(value).__name__}")
                continue
            out[name] = value
        elif spec.required and spec.default is None:
            problems.append(f"missing required input {name!r}")
        else:
            out[name] = spec.default
    if problems:
        raise UsageError("; ".join(problems))
    return out
