"""Shared variables and named locks on the SQL stores (same statements for SQLite and
PostgreSQL, which differ only in their placeholder and in row locking)."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from .. import limits
from ..errors import ConflictError, NotFound
from . import codec, row_checks
from . import sql_statements as st
from .base import SharedRecord, now

MAX_SHARED_BYTES = limits.OFFLOAD_MIN_BYTES - 1  # shared values stay inline: no blob to share


class SharedSQL:
    """The shared-variable and lock methods of the Store protocol, for SQL stores."""

    _tx: Callable[[], AbstractContextManager[Any]]
    _query: Callable[..., list[tuple]]
    _placeholder = "?"
    _for_update = ""  # PostgreSQL locks the row it is about to change
    _skip_locked = ""  # PostgreSQL: claimers pass over rows another claimer holds

    def _q(self, sql: str) -> str:
        return sql if self._placeholder == "?" else sql.replace("?", self._placeholder)

    def _shared_row(self, r: tuple) -> SharedRecord:
        what = f"shared variable {r[0]}"
        value = codec.decode(r[1], None, what=what) if r[1] is not None else None
        return SharedRecord(r[0], value, row_checks.integer(r[2], what, "version"), bool(r[3]), r[4])

    def shared_get(self, name: str) -> SharedRecord:
        rows = self._query(self._q(st.SHARED_GET), (name,))
        if not rows:
            raise NotFound(f"no shared variable {name!r}")
        return self._shared_row(rows[0])

    def shared_list(self) -> list[SharedRecord]:
        return [self._shared_row(r) for r in self._query(st.SHARED_LIST)]

    def _shared_current(self, db: Any, name: str) -> tuple[int, int, bool]:
        """(stored version, current version (0 when absent), immutable) under a row lock."""
        db.execute(self._q(st.SHARED_RESERVE), (name, now()))
        version, immutable, deleted = db.execute(self._q(
            st.SHARED_STATE + self._for_update),
            (name,)).fetchone()
        return version, 0 if deleted else version, bool(immutable) and not deleted

    def shared_set(self, name: str, value: Any, *, expected_version: int | None = None,
                   immutable: bool = False) -> SharedRecord:
        data = codec.encode(value, max_bytes=MAX_SHARED_BYTES, field=f"shared.{name}").data
        with self._tx() as db:
            stored, current, frozen = self._shared_current(db, name)
            if frozen:
                raise ConflictError(f"shared variable {name!r} is immutable")
            if expected_version is not None and current != expected_version:
                raise ConflictError(f"shared variable {name!r} is at version {current}, "
                                    f"not {expected_version}; read it again and retry")
            db.execute(self._q(st.SHARED_SET),
                       (data, stored + 1, int(immutable), now(), name))
        return self.shared_get(name)

    def shared_delete(self, name: str, *, expected_version: int | None = None) -> bool:
        with self._tx() as db:
            stored, current, frozen = self._shared_current(db, name)
            if frozen:
                raise ConflictError(f"shared variable {name!r} is immutable")
            if expected_version is not None and current != expected_version:
                raise ConflictError(f"shared variable {name!r} is at version {current}, "
                                    f"not {expected_version}")
            if current == 0:
                return False
            db.execute(self._q(st.SHARED_DELETE), (stored + 1, now(), name))
        return True

    def lock_acquire(self, name: str, owner: str, ttl: float) -> bool:
        t = now()
        with self._tx() as db:
            cur = db.execute(self._q(st.LOCK_ACQUIRE), (name, owner, t + ttl, t))
            return cur.rowcount == 1

    def lock_renew(self, name: str, owner: str, ttl: float) -> bool:
        with self._tx() as db:
            return db.execute(self._q(st.LOCK_RENEW),
                              (now() + ttl, name, owner)).rowcount == 1

    def lock_release(self, name: str, owner: str) -> None:
        with self._tx() as db:
            db.execute(self._q(st.LOCK_RELEASE), (name, owner))
