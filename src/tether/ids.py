"""Identifiers: generation of run ids and validation of every user-supplied name.

Everything that may reach a path or a query passes through one of the
``check_*`` functions first.
"""
from __future__ import annotations

import os
import re
import time

from .errors import UsageError

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VAR_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")  # a leading _ is unreachable as vars._x


def new_run_id() -> str:
    """A 26-character, time-sortable id (ULID layout: 48-bit ms time, 80 random bits)."""
    n = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    out = []
    for _ in range(26):
        out.append(_CROCKFORD[n & 31])
        n >>= 5
    return "".join(reversed(out))


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a valid run id, else raise UsageError."""
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id) or ".." in run_id:
        raise UsageError(
            f"invalid run id {run_id!r}: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit, at most 64 characters")
    return run_id


def check_var_name(name: str) -> str:
    """Return ``name`` if it is a valid variable name, else raise UsageError."""
    if not isinstance(name, str) or not VAR_NAME_RE.fullmatch(name):
        raise UsageError(
            f"invalid variable name {name!r}: use [A-Za-z][A-Za-z0-9_]* (a letter first, then letters, "
            "digits or '_'), at most 128 characters")
    return name

