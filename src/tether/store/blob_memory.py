"""Blobs in a dictionary: the memory store's own blob table."""
from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from .codec import check_digest


class MemoryBlobs:
    """A BlobStore in process memory (``memory://``'s own), gone with the process."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> bytes | None:
        return self._data.get(check_digest(digest))

    def put(self, digest: str, payload: bytes) -> None:
        with self._lock:
            self._data.setdefault(check_digest(digest), bytes(payload))

    def iter_hashes(self, older_than: float | None = None) -> Iterator[str]:
        with self._lock:
            return iter(list(self._data))

    def delete(self, digests: Iterable[str]) -> int:
        with self._lock:
            return sum(self._data.pop(d, None) is not None for d in digests)

    def __len__(self) -> int:
        return len(self._data)

    def close(self) -> None:
        pass


def blob_digests(row: Iterable[Any]) -> Iterator[str]:
    """The digests of the offloaded values among a row's fields (encoded bytes tagged ``h``)."""
    for field in row:
        if isinstance(field, bytes) and field[:1] == b"h":
            yield field[1:].decode("ascii")
