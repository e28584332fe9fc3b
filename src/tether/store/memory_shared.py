"""The memory store's shared variables and named locks (``SharedVariables``), in the
store's dictionaries behind its lock."""
from __future__ import annotations

import threading
from typing import Any

from .. import limits
from ..errors import ConflictError, NotFound
from . import codec
from .base import SharedRecord, now


class MemoryShared:
    """The shared-variable and lock methods of :class:`~tether.store.memory.MemoryStore`."""

    _lock: threading.RLock
    # value, version, immutable, deleted, at
    _shared: dict[str, tuple[Any, int, bool, bool, float]]
    _locks: dict[str, tuple[str, float]]

    def shared_get(self, name: str) -> SharedRecord:
        with self._lock:
            row = self._shared.get(name)
            if row is None or row[3]:
                raise NotFound(f"no shared variable {name!r}")
            return SharedRecord(name, codec.loads(codec.dumps(row[0])), row[1], row[2], row[4])

    def shared_list(self) -> list[SharedRecord]:
        with self._lock:
            return [self.shared_get(n) for n in sorted(self._shared) if not self._shared[n][3]]

    def _shared_check(self, name: str, expected_version: int | None) -> int:
        _, stored, immutable, deleted, _ = self._shared.get(name, (None, 0, False, True, 0.0))
        if immutable and not deleted:
            raise ConflictError(f"shared variable {name!r} is immutable")
        current = 0 if deleted else stored
        if expected_version is not None and current != expected_version:
            raise ConflictError(f"shared variable {name!r} is at version {current}, not {expected_version}")
        return stored

    def shared_set(self, name: str, value: Any, *, expected_version: int | None = None,
                   immutable: bool = False) -> SharedRecord:
        codec.encode(value, max_bytes=limits.OFFLOAD_MIN_BYTES - 1, field=f"shared.{name}")
        with self._lock:
            stored = self._shared_check(name, expected_version)
            self._shared[name] = (codec.loads(codec.dumps(value)), stored + 1, immutable, False, now())
            return self.shared_get(name)

    def shared_delete(self, name: str, *, expected_version: int | None = None) -> bool:
        with self._lock:
            stored = self._shared_check(name, expected_version)
            if name not in self._shared or self._shared[name][3]:
                return False
            self._shared[name] = (None, stored + 1, False, True, now())
            return True

    def lock_acquire(self, name: str, owner: str, ttl: float) -> bool:
        with self._lock:
            t = now()
            holder = self._locks.get(name)
            if holder is not None and holder[0] != owner and holder[1] >= t:
                return False
            self._locks[name] = (owner, t + ttl)
            return True

    def lock_renew(self, name: str, owner: str, ttl: float) -> bool:
        with self._lock:
            if self._locks.get(name, ("",))[0] != owner:
                return False
            self._locks[name] = (owner, now() + ttl)
            return True

    def lock_release(self, name: str, owner: str) -> None:
        with self._lock:
            if self._locks.get(name, ("",))[0] == owner:
                del self._locks[name]
