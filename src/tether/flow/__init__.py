"""The flow language: loading, validation and the JSON Schema."""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .models import Flow, Step, json_schema, lazy_flow, parse_duration
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
    from .load import read_file
    source = read_file(path)
    return LoadedFlow(validate(source), source.text, source.name, str(Path(path).resolve().parent),
                      source.data)


def load_flow_text(text: str, name: str = "<flow>", base_dir: str = ".") -> LoadedFlow:
    """Validate flow text (as stored with a run, or sent to the API)."""
    from .load import parse_text
    source = parse_text(text, name)
    return LoadedFlow(validate(source), text, name, str(Path(base_dir).resolve()), source.data)


@functools.cache
def _model_fingerprint() -> bytes:
    """What the flow models are: their source and pydantic's version (b"" when the source
    cannot be read, and then no digest is ever made)."""
    import pydantic

    from . import models
    try:
        source = Path(models.__file__).read_bytes()
    except (OSError, TypeError):
        return b""
    return hashlib.sha256(source + pydantic.VERSION.encode()).digest()


def trusted_digest(data: Any) -> str | None:
    """The digest of a validated flow document, stored with its run: a document that still
    has it later is byte for byte what was validated, by the same flow models. None when
    ``data`` has no canonical JSON form (or the models' source cannot be read)."""
    import orjson
    fingerprint = _model_fingerprint()
    if not fingerprint:
        return None
    try:
        text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return hashlib.sha256(fingerprint + text).hexdigest()


def load_trusted(data: Any, text: str, name: str, base_dir: str, digest: str | None = None) -> LoadedFlow:
    """Rebuild a flow that was fully validated when its run started, from its parsed
    document: only the model is built (no YAML parsing, no template checks), which
    keeps resuming a run of thousands of steps fast. When ``data`` still has the
    ``digest`` made when it was validated (:func:`trusted_digest`), the flow's steps are
    built as they are first read (:class:`~tether.flow.models.LazySteps`); otherwise (no
    digest: an older run; another one: the data was changed in the store, or the flow
    models changed since) the whole document is validated now, and a ValidationError
    raised here."""
    flow = lazy_flow(data) if digest is not None and digest == trusted_digest(data) else None
    if flow is None:
        flow = Flow.model_validate(data)
    return LoadedFlow(flow, text, name, str(Path(base_dir).resolve()), data)


def __getattr__(name: str) -> Any:
    """``Source`` from :mod:`.load`, imported when asked for: loading YAML (PyYAML) is not
    needed to rebuild a stored flow."""
    if name == "Source":
        from .load import Source
        return Source
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "trusted_digest",
    "validate",
]
