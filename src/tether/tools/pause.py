"""``tool: pause`` — stops the run with status ``paused`` until ``tether resume``.

The runner handles this tool itself (it changes the run's status, which no tool
may do); this function only exists so that the name is registered.
"""
from __future__ import annotations

from typing import Any

from ..errors import ToolError
from .base import ToolContext, ToolResult


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    raise ToolError("the pause tool is run by the runner, not called directly", retryable=False)
