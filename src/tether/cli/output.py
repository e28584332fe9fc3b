"""What the CLI writes: Rich consoles, one JSON document on stdout, short cell texts."""
from __future__ import annotations

import sys
from typing import Any


def console(stderr: bool = False) -> Any:
    """A Rich console on stdout (or stderr). On a terminal, tables fit its width; piped or
    redirected output is read by programs (`tether runs | grep interrupted`), so no cell is
    cut or wrapped to a width there."""
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 1_000_000
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def print_json(doc: Any) -> None:
    """Write ``doc`` as one indented JSON document on stdout and flush it."""
    import orjson
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


def short(value: Any, width: int = 60) -> str:
    """``value`` as text (JSON unless it is a string) of at most ``width`` characters."""
    import orjson
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def iso(t: float | None) -> str | None:
    """ISO-8601 UTC text of an epoch time (None stays None)."""
    from ..views import iso as to_iso
    return to_iso(t)
