"""``TETHER_ALLOWED_TOOLS``: which tools flows submitted over the API may use, because a
shell step, or python ``code:``, is code execution.

Comma-separated entries: a tool name (``http``, ``shell``, ``python``, ``flow``,
``pause``, ``model``, or a plugin's) allows it fully (a model step sends the key its
``api_key_env`` names to the server it names); ``python:MODULE`` allows python steps that
call a ``function:`` from MODULE or its submodules (and no ``code:``). Unset: every
tool is allowed (the server still needs tokens to listen beyond loopback)."""
from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..flow.validate import all_steps


class ToolPolicy:
    def __init__(self, spec: str | None) -> None:
        self.open = spec is None or not spec.strip()
        entries = [e.strip() for e in (spec or "").split(",") if e.strip()]
        self.tools = {e for e in entries if ":" not in e}
        self.modules = [e.split(":", 1)[1] for e in entries if e.startswith("python:")]

    def check(self, data: dict[str, Any]) -> None:
        """UsageError naming the first step whose tool the policy refuses."""
        if self.open:
            return
        for _, step in all_steps(data):
            tool = step.get("tool")
            if tool is None or tool in self.tools:
                continue
            if tool == "python" and self.modules:
                args = step.get("with") or {}
                fn = args.get("function") if isinstance(args, dict) else None
                if isinstance(fn, str) and "code" not in args and any(
                        fn.split(":", 1)[0] == m or fn.split(":", 1)[0].startswith(m + ".")
                        for m in self.modules):
                    continue
            raise UsageError(f"step {step.get('id')!r}: tool {tool!r} is not allowed for flows sent "
                             "to this server (TETHER_ALLOWED_TOOLS)")
