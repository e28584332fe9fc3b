"""Rich's output on a plain stream, written without Rich.

On a stream that is not a terminal (a pipe, a file: `tether runs | grep`, a program reading
the output) the CLI's Rich consoles have no colours and no width to fit, so a line or a
table comes out as its bare text. For text that Rich would print unchanged (no markup tag,
no emoji code, no control or wide character) this module makes the same bytes itself and
a read command imports no Rich. Anything else gets None here, and Rich prints it. The
equivalence is checked against Rich itself in tests/cli/test_plain_output.py."""
from __future__ import annotations

import os
import re

TYPE_CHECKING = False  # as typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

# Rich's markup tag (rich.markup.RE_TAGS) and emoji code (rich._emoji_replace)
_TAG = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")
_EMOJI = re.compile(r"(:(\S*?)(?:(?:\-)(emoji|text))?:)")
# the emoji codes made of digits only (Rich's table is checked by a test): `14:15:13` holds
# the code `:15:`, which is none
_DIGIT_EMOJI = frozenset({"100", "1234"})
# the styles the CLI's own markup uses (none of them shows on a plain stream)
_STYLES = frozenset({"bold", "green", "red", "yellow", "cyan"})
# characters Rich drops from text (rich.control.strip_control_codes) or expands (tab)
_CHANGED = frozenset("\a\b\v\f\r\t")
# what a table cell may hold to be laid out here: one terminal cell per character
_NARROW = re.compile(r"[ -~…]*")


def plain_stream(stream: TextIO) -> bool:
    """Whether the CLI's Rich console on ``stream`` would write text without any style
    or width: not a terminal (nor told to be one), UTF-8, not a notebook."""
    env = os.environ
    if env.get("TTY_COMPATIBLE") == "1" or env.get("FORCE_COLOR") or env.get("DATABRICKS_RUNTIME_VERSION"):
        return False
    try:
        if stream.isatty():
            return False
    except (AttributeError, ValueError):
        return False
    return (getattr(stream, "encoding", None) or "utf-8").lower().startswith("utf")


def _unchanged(text: str, markup: bool) -> bool:
    """Whether Rich prints ``text`` as it is (its markup and emoji codes, when enabled,
    changing nothing; no character that it drops or expands)."""
    if markup and "[" in text and (_TAG.search(text) or "\\[" in text):
        return False
    if ":" in text:
        for match in _EMOJI.finditer(text):
            name = match.group(2)
            if name and not (name.isascii() and name.isdigit() and name not in _DIGIT_EMOJI):
                return False
    if any(c in _CHANGED for c in text):
        return False
    return all(c == "\n" or c.isprintable() for c in text)


def plain_line(text: str, markup: bool = True) -> str | None:
    """What ``Console.print(text, markup=markup)`` writes on a plain stream (see
    ``tether.cli.output.console``), or None when only Rich can say. Of markup, only
    ``[STYLE]...[/]`` with the styles of ``_STYLES`` is understood (no effect there)."""
    if not (markup and "[" in text):
        return text + "\n" if _unchanged(text, markup) else None
    chunks, start, tags = [], 0, []
    for match in _TAG.finditer(text):  # Rich's parse: text between tags, each changed on its own
        chunks.append(text[start:match.start()])
        tags.append("" if match.group(2) else match.group(3))
        start = match.end()
    chunks.append(text[start:])
    if (len(tags) % 2 or any(t not in _STYLES for t in tags[::2]) or any(t != "/" for t in tags[1::2])
            or not all(_unchanged(c, True) for c in chunks)):
        return None
    return "".join(chunks) + "\n"


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str | None:
    """What a Rich ``Table(*headers)`` of these rows (default box, left-justified text
    cells) prints on a plain stream, or None when only Rich can say."""
    cells = [*headers, *(c for row in rows for c in row)]
    if any(len(row) != len(headers) for row in rows) or not all(
            _NARROW.fullmatch(c) and _unchanged(c, True) for c in cells):
        return None
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def rule(left: str, line: str, cross: str, right: str) -> str:
        return left + cross.join(line * (w + 2) for w in widths) + right + "\n"

    def row(bar: str, values: Sequence[str]) -> str:
        return bar + bar.join(f" {v.ljust(w)} " for v, w in zip(values, widths, strict=True)) + bar + "\n"
    return "".join([rule("┏", "━", "┳", "┓"), row("┃", headers), rule("┡", "━", "╇", "┩"),
                    *(row("│", r) for r in rows), rule("└", "─", "┴", "┘")])
