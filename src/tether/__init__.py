"""Tether: YAML workflows whose variables and state survive every crash."""
from __future__ import annotations

__version__ = "0.1.0"

from .engine.engine import Engine, Run  # noqa: E402
from .errors import (ConflictError, CorruptRecord, EnvironmentMismatch, FlowError, LeaseLost,  # noqa: E402
                     NotFound, StoreError, TemplateError, TetherError, ToolError, UsageError)

__all__ = ["Engine", "Run", "TetherError", "FlowError", "TemplateError", "ToolError", "StoreError",
           "CorruptRecord", "ConflictError", "LeaseLost", "EnvironmentMismatch", "NotFound", "UsageError",
           "__version__"]
