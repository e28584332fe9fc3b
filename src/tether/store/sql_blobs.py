"""Offloaded values on the SQL stores: the ``blobs`` table as a BlobStore, or the store
named by ``TETHER_BLOBS`` (see :mod:`tether.store.blobs`), and which digests the rows
refer to (for gc)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from . import codec
from .base import BlobStore, Commit, Takeover, VarWrite
from .blob_cache import CachedBlobs
from .blobs import payloads
from .sql_statements import DELETE_BLOB, GET_BLOB, LIST_BLOBS, PUT_BLOB, REFERENCED_BLOBS

DELETE_BATCH = 500


class TableBlobs:
    """The SQL store's own ``blobs`` table as a BlobStore (each call its own transaction;
    the store itself inserts a commit's blobs inside the commit's transaction)."""

    def __init__(self, url: str, query: Callable[..., list[tuple]],
                 tx: Callable[[], AbstractContextManager[Any]], sql: Callable[[str], str]) -> None:
        self.url = url
        self._query, self._tx, self._sql = query, tx, sql

    def get(self, digest: str) -> bytes | None:
        rows = self._query(self._sql(GET_BLOB), (codec.check_digest(digest),))
        return bytes(rows[0][0]) if rows else None

    def put(self, digest: str, payload: bytes) -> None:
        with self._tx() as db:
            db.execute(self._sql(PUT_BLOB), (codec.check_digest(digest), payload))

    def iter_hashes(self, older_than: float | None = None) -> Iterator[str]:
        return iter([r[0] for r in self._query(self._sql(LIST_BLOBS))])

    def delete(self, digests: Iterable[str]) -> int:
        """Deletes in transactions of at most ``DELETE_BATCH`` blobs."""
        todo = [codec.check_digest(d) for d in digests]
        removed = 0
        for i in range(0, len(todo), DELETE_BATCH):
            with self._tx() as db:
                for d in todo[i:i + DELETE_BATCH]:
                    removed += db.execute(self._sql(DELETE_BLOB), (d,)).rowcount
        return removed

    def close(self) -> None:
        pass


class SQLBlobs:
    """The blob methods of the SQL stores. ``blobs`` is the store's BlobStore (cached);
    with ``TETHER_BLOBS`` set, values written before remain readable from the table."""

    url: str
    _tx: Callable[[], AbstractContextManager[Any]]
    _query: Callable[..., list[tuple]]
    _q: Callable[[str], str]
    blobs: BlobStore
    blobs_url: str | None = None
    own_blobs: BlobStore
    _external: bool = False

    def _init_blobs(self, external: BlobStore | None) -> None:
        self._table = self.own_blobs = CachedBlobs(TableBlobs(self.url, self._query, self._tx, self._q))
        self._external = external is not None
        self.blobs_url = None if external is None else external.url
        self.blobs = external if external is not None else self._table

    def load_blob(self, digest: str) -> bytes | None:
        """See :meth:`BlobReferences.load_blob`."""
        found = self.blobs.get(digest)
        if found is None and self._external:  # written before TETHER_BLOBS was set
            found = self._table.get(digest)
        return found

    def _put_blob(self, db: Any, enc: codec.Encoded | None) -> bytes | None:
        """The row's bytes for ``enc``; an offloaded payload is stored first: into
        ``blobs`` in the same transaction, or (``TETHER_BLOBS``) durably in the blob
        store now, before the transaction commits."""
        if enc is None:
            return None
        if enc.blob is not None:
            if self._external:
                self.blobs.put(*enc.blob)
            else:
                db.execute(self._q(PUT_BLOB), enc.blob)
        return enc.data

    def _blobs_first(self, c: Commit | Takeover | Sequence[VarWrite] | None) -> None:
        """Store the payloads of ``c`` in an external blob store before its transaction
        begins (no lock is held while they are written)."""
        if self._external and c is not None:
            for digest, payload in payloads(c):
                self.blobs.put(digest, payload)

    def referenced_hashes(self) -> set[str]:
        rows = self._query(self._q(REFERENCED_BLOBS), (b"h",) * REFERENCED_BLOBS.count("?"))
        return {bytes(r[0]).decode("ascii") for r in rows}
