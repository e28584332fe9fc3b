"""The cache in front of every blob store: reads by hash, bounded by bytes (least recently
used first out), and puts of a hash this process stored recently skipped."""
from __future__ import annotations

import hashlib

from tether.store.blob_cache import CachedBlobs
from tether.store.blob_memory import MemoryBlobs


class Counting(MemoryBlobs):
    def __init__(self) -> None:
        super().__init__()
        self.gets = self.puts = 0

    def get(self, digest: str) -> bytes | None:
        self.gets += 1
        return super().get(digest)

    def put(self, digest: str, payload: bytes) -> None:
        self.puts += 1
        super().put(digest, payload)


def d(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def test_reads_are_cached_by_hash_within_a_bound_of_bytes():
    inner = Counting()
    cache = CachedBlobs(inner, max_bytes=4000)
    for i in range(10):
        inner.put(d(i), bytes([i]) * 1000)
    for i in (0, 1, 2, 0):
        assert cache.get(d(i)) == bytes([i]) * 1000
    assert inner.gets == 3 and cache.hits == 1
    for i in (3, 4):  # 5,000 bytes in all: the least recently used (1) goes
        cache.get(d(i))
    assert cache.cached_bytes <= 4000
    before = inner.gets
    cache.get(d(0))
    assert inner.gets == before  # still cached: used recently
    cache.get(d(1))
    assert inner.gets == before + 1  # evicted
    assert cache.get(d(99)) is None  # a miss is not cached as anything


def test_a_payload_larger_than_a_quarter_of_the_bound_is_not_cached():
    inner = Counting()
    cache = CachedBlobs(inner, max_bytes=4000)
    cache.put(d(1), b"x" * 1001)
    cache.get(d(1))
    assert inner.gets == 1 and cache.cached_bytes == 0


def test_a_recent_put_of_the_same_hash_is_skipped_and_delete_forgets_it():
    inner = Counting()
    cache = CachedBlobs(inner)
    cache.put(d(1), b"j1")
    cache.put(d(1), b"j1")
    assert inner.puts == 1
    assert cache.get(d(1)) == b"j1" and inner.gets == 0  # what was put is cached
    assert cache.delete([d(1)]) == 1
    assert cache.get(d(1)) is None
    cache.put(d(1), b"j1")
    assert inner.puts == 2
