"""A statement run over libpq directly: prepared once per connection under a name of its
own, its parameters sent as text, its row read back as text.

psycopg adapts every parameter in Python and looks the statement up in its cache on each
execute: measured at ~60 to 120 µs of client CPU per commit on this machine, more than the
rest of the store's work on a commit. The commit's parameters are already strings (JSON
documents, ids), numbers or ``None``, so turning them into bytes is all that is left
(:func:`execute`). Used by :mod:`tether.store.pg_commit` for its autocommit path only (one
statement, its own transaction); the same statement text goes through psycopg elsewhere.
"""
from __future__ import annotations

import re
import threading
import weakref
from typing import Any, NamedTuple

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_TUPLES_OK = 2  # psycopg.pq.ExecStatus
_COMMAND_OK = 1
_MESSAGE_PRIMARY = 77  # psycopg.pq.DiagnosticField


class Prepared(NamedTuple):
    """A statement with ``$n`` placeholders (``text``), the names of its parameters in
    ``$n`` order, and the name it is prepared under on each connection."""

    name: bytes
    text: bytes
    params: tuple[str, ...]


class ServerError(Exception):
    """The server refused the statement; ``str()`` is its primary message."""


def positional(name: str, statement: str) -> Prepared:
    """``statement`` (``%(name)s`` placeholders) with ``$n`` placeholders, a name used
    twice given one number."""
    order: dict[str, int] = {}

    def number(m: re.Match[str]) -> str:
        return f"${order.setdefault(m.group(1), len(order) + 1)}"

    text = _PLACEHOLDER.sub(number, statement)
    return Prepared(name.encode(), text.encode(), tuple(order))


class _Known(NamedTuple):
    encoding: str  # the connection's client encoding (a Python codec name)
    names: set[bytes]  # the statements prepared on it


# by connection (one the pool replaces is a new key)
_known: weakref.WeakKeyDictionary[Any, _Known] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def execute(conn: Any, stmt: Prepared, params: dict[str, Any]) -> list[bytes | None] | None:
    """Run ``stmt`` on ``conn`` (a psycopg connection outside a transaction, used by this
    thread alone) with ``params`` (str, bytes for ``bytea``, int, float, bool or None) as
    its own transaction: its first row as text (``None`` for NULL), or ``None`` when it
    returns no row. ServerError if the server refuses it (nothing done); psycopg's
    OperationalError if the connection is lost."""
    pgconn = conn.pgconn
    known = _known.get(conn)
    if known is None:
        with _lock:
            known = _known.setdefault(conn, _Known(conn.info.encoding, set()))
    if stmt.name not in known.names:
        res = pgconn.prepare(stmt.name, stmt.text)
        if res.status != _COMMAND_OK:
            raise ServerError(_message(res))
        known.names.add(stmt.name)
    res = pgconn.exec_prepared(stmt.name, [_text(params[n], known.encoding) for n in stmt.params])
    if res.status != _TUPLES_OK:
        raise ServerError(_message(res))
    if res.ntuples == 0:
        return None
    return [res.get_value(0, i) for i in range(res.nfields)]


def _text(value: Any, encoding: str) -> bytes | None:
    """``value`` in PostgreSQL's text format."""
    if value is None:
        return None
    kind = type(value)
    if kind is str:
        return value.encode(encoding)
    if kind is bool:
        return b"t" if value else b"f"
    if kind is bytes:
        return b"\\x" + value.hex().encode()  # bytea's hex format
    if kind is float:
        return repr(value).encode()  # the shortest text that reads back as the same double
    if kind is int:
        return str(value).encode()
    raise TypeError(f"no text form for a {kind.__name__} parameter")


def _message(res: Any) -> str:
    primary = res.error_field(_MESSAGE_PRIMARY)
    if primary:
        return bytes(primary).decode(errors="replace")
    return bytes(res.error_message or b"").decode(errors="replace").strip() or "unknown error"
