"""The flow language: loading, validation and the JSON Schema."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .load import Source, parse_text, read_file
from .models import Flow, Step, json_schema, parse_duration
from .validate import computed_dependencies, validate


@dataclass(frozen=True)
class LoadedFlow:
    """A validated flow with the exact text it came from and the folder it lives in.
    ``data`` is the parsed document (stored with runs, see :func:`load_trusted`)."""

    flow: Flow
    text: str
    name: str
    base_dir: str
    data: Any = None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_flow(path: str | os.PathLike[str]) -> LoadedFlow:
    """Read and validate a flow file; FlowError with every problem otherwise."""
    source = read_file(path)
    return LoadedFlow(validate(source), source.text, source.name, str(Path(path).resolve().parent),
                      source.data)


def load_flow_text(text: str, name: str = "<flow>", base_dir: str = ".") -> LoadedFlow:
    """Validate flow text (as stored with a run, or sent to the API)."""
    source = parse_text(text, name)
    return LoadedFlow(validate(source), text, name, str(Path(base_dir).resolve()), source.data)


def load_trusted(data: Any, text: str, name: str, base_dir: str) -> LoadedFlow:
    """Rebuild a flow that was fully validated when its run started, from its parsed
    document: only the model is built (no YAML parsing, no template checks), which
    keeps resuming a run of thousands of steps fast."""
    return LoadedFlow(Flow.model_validate(data), text, name, str(Path(base_dir).resolve()), data)


__all__ = [
    "Flow",
    "LoadedFlow",
    "Source",
    "Step",
    "computed_dependencies",
    "json_schema",
    "load_flow",
    "load_flow_text",
    "load_trusted",
    "parse_duration",
    "validate",
]
