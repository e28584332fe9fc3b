"""How values, times and durations read on a page: JSON shown compactly, long values folded
behind a summary and capped, epoch times as UTC text. Every function returns escaped HTML
(``Markup``) or plain text, never raw user data as markup."""
from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from markupsafe import Markup

INLINE = 80          # characters shown without folding
CAP = 20_000         # characters of one value ever put on a page
STATUS_MARK = {"completed": "✓", "failed": "✗", "running": "▶", "paused": "‖", "pending": "…",
               "cancelled": "■", "interrupted": "!", "skipped": "»"}


def as_text(value: Any, indent: bool = False) -> str:
    """``value`` as JSON text (strings without quotes when not indented); anything
    orjson cannot encode as its ``str``."""
    if isinstance(value, str) and not indent:
        return value
    try:
        opts = orjson.OPT_INDENT_2 if indent else 0
        return orjson.dumps(value, option=opts | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return str(value)


def fold(value: Any) -> Markup:
    """A value as inline code when short, else folded in a ``<details>`` whose summary is its
    start; never more than ``CAP`` characters (the cut is said)."""
    short = as_text(value)
    if len(short) <= INLINE and "\n" not in short:
        return Markup("<code>{}</code>").format(short)
    full = as_text(value, indent=True)
    note = ""
    if len(full) > CAP:
        note = f"\n… {len(full) - CAP:,} more characters not shown"
        full = full[:CAP]
    head = short.replace("\n", " ")[:INLINE]
    return Markup('<details class="fold"><summary><code>{}</code>… ({} chars)</summary>'
                  "<pre>{}{}</pre></details>").format(head, f"{len(short):,}", full, note)


def block(value: Any) -> str:
    """``value`` as indented JSON for a ``<pre>``, cut at ``CAP`` characters (the cut is said)."""
    text = value if isinstance(value, str) else as_text(value, indent=True)
    if len(text) > CAP:
        return f"{text[:CAP]}\n… {len(text) - CAP:,} more characters not shown"
    return text


def when(t: float | None) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM:SS`` UTC; an empty string for None."""
    if not t:
        return ""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """A duration for people: ``350 ms``, ``4.2 s``, ``3 min 5 s``, ``2 h 10 min``."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def status(text: str | None) -> Markup:
    """A status as a badge: a symbol and the word, so it reads without colour."""
    word = text or "unknown"
    return Markup('<span class="st st-{}"><span aria-hidden="true">{} </span>{}</span>').format(
        word, STATUS_MARK.get(word, "•"), word)


def error_text(error: Any) -> str:
    """``TYPE: message`` of a stored error document (or its text), at most 2,000 characters."""
    if isinstance(error, dict):
        text = f"{error.get('type') or 'Error'}: {error.get('message') or ''}"
    else:
        text = "" if error is None else str(error)
    return text if len(text) <= 2000 else text[:2000] + " …"

