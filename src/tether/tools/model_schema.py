"""Structured output of ``tool: model``: a step's ``schema`` (a JSON Schema, or
``module:Model`` naming a pydantic model beside the flow), how the server is asked for
JSON matching it, and the check of what came back."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ToolError
from .user_code import import_object

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
MAX_ERRORS = 5


@dataclass(frozen=True)
class OutputSchema:
    """A step's output schema: the JSON Schema sent to the server and the check applied to
    the parsed answer (returns the validated JSON value or raises ValueError)."""

    name: str
    schema: dict[str, Any]
    check: Callable[[Any], Any]

    def response_format(self) -> dict[str, Any]:
        """``response_format`` asking for JSON matching the schema (OpenAI structured outputs)."""
        return {"type": "json_schema", "json_schema": {"name": self.name, "schema": self.schema}}

    def instruction(self) -> str:
        """The system message of JSON mode, for servers without ``json_schema``."""
        return ("Answer with one JSON object, and nothing else, that validates against this JSON Schema:\n"
                + json.dumps(self.schema, sort_keys=True))


def load(spec: Any, base_dir: str) -> OutputSchema:
    """The OutputSchema of ``spec``; ToolError (not retryable) when it is neither a valid JSON
    Schema object nor ``module:Model`` naming a pydantic model importable from ``base_dir``."""
    if isinstance(spec, dict):
        return _json_schema(spec)
    if isinstance(spec, str) and re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", spec):
        return _pydantic(spec, base_dir)
    raise ToolError("model: 'schema' must be a JSON Schema object or 'module:Model' naming a pydantic model",
                    type_="ArgumentError", retryable=False)


def _json_schema(schema: dict[str, Any]) -> OutputSchema:
    try:
        from jsonschema import exceptions, validators
    except ImportError:
        raise ToolError("model: the 'jsonschema' package is not installed: pip install 'tether[models]'",
                        type_="ImportError", retryable=False) from None
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        raise ToolError(f"model: 'schema' is not a valid JSON Schema: {exc.message}",
                        type_="ArgumentError", retryable=False) from None
    validator = cls(schema)

    def check(value: Any) -> Any:
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            raise ValueError("; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                                       for e in errors[:MAX_ERRORS]))
        return value
    return OutputSchema(str(schema.get("title") or "output").replace(" ", "_")[:64], schema, check)


def _pydantic(spec: str, base_dir: str) -> OutputSchema:
    from pydantic import BaseModel, ValidationError
    obj = import_object(spec, base_dir, "model", "'schema'")
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise ToolError(f"model: 'schema' {spec!r} is not a pydantic model", type_="ArgumentError",
                        retryable=False)
    model: type[BaseModel] = obj

    def check(value: Any) -> Any:
        try:
            return model.model_validate(value).model_dump(mode="json")
        except ValidationError as exc:
            raise ValueError("; ".join(f"{'/'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
                                       for e in exc.errors()[:MAX_ERRORS])) from None
    return OutputSchema(model.__name__[:64], model.model_json_schema(), check)


def parse(text: str | None, schema: OutputSchema) -> Any:
    """The answer ``text`` parsed as JSON (a fenced code block is unwrapped) and validated;
    a retryable ToolError ``SchemaError`` naming what is wrong otherwise."""
    raw = text or ""
    fenced = _FENCE.match(raw)
    if fenced:
        raw = fenced.group(1)
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ToolError(f"model: the answer is not JSON ({exc}): {raw[:200]!r}",
                        type_="SchemaError") from None
    try:
        return schema.check(value)
    except ValueError as exc:
        raise ToolError(f"model: the answer does not match the schema: {exc}", type_="SchemaError") from None


__all__ = ["OutputSchema", "load", "parse"]
