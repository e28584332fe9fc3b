"""What the CLI writes: Rich consoles, one JSON document on stdout, short cell texts."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence


def console(stderr: bool = False) -> Any:
    """A Rich console on stdout (or stderr). On a terminal, tables fit its width; piped or
    redirected output is read by programs (`tether runs | grep interrupted`), so no cell is
    cut or wrapped to a width there."""
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 1_000_000
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


class Out:
    """Lines and tables for people on stdout (or stderr), through the Rich console of
    ``console()``, made on first use."""

    def __init__(self, stderr: bool = False) -> None:
        self.stderr = stderr
        self._rich: Any = None

    def rich(self) -> Any:
        if self._rich is None:
            self._rich = console(self.stderr)
        return self._rich

    def print(self, text: str, *, markup: bool = True, style: str | None = None) -> None:
        """``Console.print(text, markup=markup, style=style)``."""
        self.rich().print(text, markup=markup, style=style)

    def table(self, headers: tuple[str, ...], rows: Sequence[Sequence[str]], *,
              first_no_wrap: bool = False) -> None:
        """A Rich ``Table(*headers)`` of text cells (its first column not wrapped when asked)."""
        from rich.table import Table
        table = Table(*headers)
        if first_no_wrap:
            table.columns[0].no_wrap = True
        for row in rows:
            table.add_row(*row)
        self.rich().print(table)


def out(stderr: bool = False) -> Out:
    """Where a command prints for people: stdout, or stderr."""
    return Out(stderr)


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
