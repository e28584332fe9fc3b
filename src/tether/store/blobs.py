"""Which blob store a store uses (``TETHER_BLOBS``), and the payloads a write carries.

A blob is always stored before the transaction that refers to it commits: the SQL stores
put a commit's payloads (:func:`payloads`) before they begin its transaction, and put
any other payload inside the transaction, before its COMMIT. A crash in between leaves
at worst a blob nothing refers to (gc removes it), never a row referring to a missing
blob."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from urllib.parse import unquote, urlsplit

from ..errors import UsageError
from .base import BlobStore, Commit, Takeover, VarWrite
from .blob_cache import CachedBlobs
from .codec import Encoded


def open_blobs(url: str) -> CachedBlobs:
    """The blob store at ``url`` (``Settings.blobs``, checked there), behind a read cache."""
    parts = urlsplit(url)
    inner: BlobStore
    if parts.scheme == "file":
        from .blob_files import FileBlobs
        inner = FileBlobs(unquote(parts.path), url)
    elif parts.scheme == "s3":
        from .blob_s3 import S3Blobs
        inner = S3Blobs(parts.netloc, unquote(parts.path), url)
    else:
        raise UsageError(f"TETHER_BLOBS must be file:///absolute/path or s3://bucket/prefix, not {url!r}")
    return CachedBlobs(inner)


def payloads(c: Commit | Takeover | Sequence[VarWrite]) -> Iterator[tuple[str, bytes]]:
    """``(digest, payload)`` of every offloaded value ``c`` writes (a digest once)."""
    seen: set[str] = set()
    for enc in _encoded(c):
        if enc is not None and enc.blob is not None and enc.blob[0] not in seen:
            seen.add(enc.blob[0])
            yield enc.blob


def _encoded(c: Commit | Takeover | Sequence[VarWrite]) -> Iterator[Encoded | None]:
    for w in c.vars if isinstance(c, (Commit, Takeover)) else c:
        yield w.value
    if isinstance(c, Commit):
        for s in c.steps:
            yield s.inputs
            yield s.result
        for it in c.iterations:
            yield it.result
        if c.run is not None:
            yield c.run.outputs
