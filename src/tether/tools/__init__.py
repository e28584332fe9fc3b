"""Tool registry: the built-in tools and plugins from the ``tether.tools`` entry points."""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from importlib import import_module

from ..errors import FlowError
from .base import Tool, ToolContext, ToolResult

BUILTIN = {"shell": "tether.tools.shell:run", "python": "tether.tools.python:run",
           "http": "tether.tools.http:run", "pause": "tether.tools.pause:run",
           "flow": "tether.tools.flow:run", "model": "tether.tools.model:run"}


@lru_cache(maxsize=1)
def _plugins() -> dict[str, object]:
    from importlib.metadata import entry_points
    return {ep.name: ep for ep in entry_points(group="tether.tools")}


def known_tools() -> set[str]:
    """Names usable as ``tool:``."""
    return set(BUILTIN) | set(_plugins())


@lru_cache(maxsize=64)
def get_tool(name: str) -> Callable[..., ToolResult]:
    """The callable implementing tool ``name``; FlowError if there is none."""
    if name in BUILTIN:
        module, attr = BUILTIN[name].split(":")
        return getattr(import_module(module), attr)
    ep = _plugins().get(name)
    if ep is None:
        raise FlowError(f"unknown tool {name!r}")
    return ep.load()  # type: ignore[attr-defined]


def is_durable(name: str) -> bool:
    """Whether tool ``name`` declares its result durable (``durable = True`` on its callable):
    the engine commits such a result as soon as the tool returns and reuses it instead of
    calling the tool again for the same step execution (a model call is paid once)."""
    return bool(getattr(get_tool(name), "durable", False))


__all__ = ["Tool", "ToolContext", "ToolResult", "get_tool", "is_durable", "known_tools"]
