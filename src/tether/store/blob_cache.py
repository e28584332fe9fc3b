"""A bounded cache in front of a blob store: reads by hash (blobs never change, so a
cached payload is always right), and the hashes this process stored recently (put
again within ``RECENT_SECONDS``: nothing to do)."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from .. import limits
from .base import BlobStore

RECENT_SECONDS = 60.0  # a gc must spare blobs younger than this (see BlobStore.put)
RECENT_MAX = 4096


class CachedBlobs:
    """``inner`` with an LRU of payloads of at most ``max_bytes`` bytes in all (a payload
    larger than a quarter of it is not kept) and a memory of recent puts."""

    def __init__(self, inner: BlobStore, max_bytes: int = limits.BLOB_CACHE_BYTES) -> None:
        self.inner = inner
        self.url = inner.url
        self.max_bytes = max_bytes
        self._lru: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._recent: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def _remember(self, digest: str, payload: bytes) -> None:
        if len(payload) > self.max_bytes // 4:
            return
        with self._lock:
            if digest in self._lru:
                return
            self._lru[digest] = payload
            self._size += len(payload)
            while self._size > self.max_bytes:
                _, old = self._lru.popitem(last=False)
                self._size -= len(old)

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            payload = self._lru.get(digest)
            if payload is not None:
                self._lru.move_to_end(digest)
                self.hits += 1
                return payload
            self.misses += 1
        payload = self.inner.get(digest)
        if payload is not None:
            self._remember(digest, payload)
        return payload

    def put(self, digest: str, payload: bytes) -> None:
        """``inner.put`` unless this process put the same digest less than
        ``RECENT_SECONDS`` ago."""
        t = time.monotonic()
        with self._lock:
            at = self._recent.get(digest)
            if at is not None and t - at < RECENT_SECONDS:
                return
        self.inner.put(digest, payload)
        with self._lock:
            self._recent[digest] = t
            self._recent.move_to_end(digest)
            while len(self._recent) > RECENT_MAX:
                self._recent.popitem(last=False)
        self._remember(digest, payload)

    def iter_hashes(self, older_than: float | None = None) -> Iterator[str]:
        return self.inner.iter_hashes(older_than)

    def delete(self, digests: Iterable[str]) -> int:
        digests = list(digests)
        with self._lock:
            for d in digests:
                self._recent.pop(d, None)
                old = self._lru.pop(d, None)
                if old is not None:
                    self._size -= len(old)
        return self.inner.delete(digests)

    @property
    def cached_bytes(self) -> int:
        return self._size

    def close(self) -> None:
        self.inner.close()
