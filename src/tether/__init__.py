"""Tether: YAML workflows whose variables and state survive every crash."""
from __future__ import annotations

from .errors import (
    ConflictError,
    CorruptRecord,
    EnvironmentMismatch,
    FlowError,
    LeaseLost,
    NotFound,
    StoreError,
    TemplateError,
    TetherError,
    ToolError,
    UsageError,
)

__version__ = "0.1.0"

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: `tether --help` needs nothing more
if TYPE_CHECKING:
    from typing import Any

    from .engine.engine import Engine, Run


def __getattr__(name: str) -> Any:
    # The engine pulls in pydantic, Jinja and httpx; importing it only when asked for
    # keeps `tether --help` and other light commands fast.
    if name in ("Engine", "Run"):
        from .engine import engine
        return getattr(engine, name)
    raise AttributeError(f"module 'tether' has no attribute {name!r}")


__all__ = [
    "ConflictError",
    "CorruptRecord",
    "Engine",
    "EnvironmentMismatch",
    "FlowError",
    "LeaseLost",
    "NotFound",
    "Run",
    "StoreError",
    "TemplateError",
    "TetherError",
    "ToolError",
    "UsageError",
    "__version__",
]
