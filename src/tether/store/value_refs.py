"""Large committed values held by reference, so a run's memory does not grow with what
it has committed.

Once a value whose JSON text is at least ``limits.OFFLOAD_MIN_BYTES`` long is committed,
its payload is in the blob store under its content hash, and a run keeps only a
:class:`StoredValue` (the row's bytes, ``h`` + hash, and the JSON size) in its place: in
its variables (``VarState``) and its step records (``steps.ID.result``). Whoever reads
the value — a template view, a tool's ``ctx.vars``, the final values of a run — calls
:func:`resolved`, which reads the payload back through the store's bounded blob cache
(``store/blob_cache.py``) and decodes it. The few values decoded last are kept (at most
``limits.DECODED_KEEP_BYTES`` of JSON, and always the last one), so a loop that reads the
same large value in every iteration decodes it once.

A value is the same whether it is resolved or was kept: content addressed and decoded
from the same JSON text.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

from .. import limits
from . import codec

Loader = Callable[[str], "bytes | None"]  # a store's load_blob: digest -> payload


class StoredValue:
    """A committed value read back from the blob store when asked (:meth:`value`).
    ``data`` is its row's bytes (``h`` + sha256 hex), ``size`` its JSON length (0: not
    known until it is read)."""

    __slots__ = ("_load", "data", "size")

    def __init__(self, data: bytes, size: int, load: Loader) -> None:
        self.data, self.size, self._load = data, size, load

    def value(self) -> Any:
        """The value, decoded from its payload (CorruptRecord if the blob store lost it)."""
        return _DECODED.get(self)

    def __repr__(self) -> str:
        return f"StoredValue({self.data[1:13].decode()}…, {self.size:,} bytes)"


class _Decoded:
    """The values decoded last, by digest: at most ``max_bytes`` of their JSON size in
    all, but always the most recent one."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lru: OrderedDict[bytes, tuple[int, Any]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, ref: StoredValue) -> Any:
        def build() -> tuple[Any, int]:
            payload = ref._load(codec.check_digest(ref.data[1:].decode("ascii", "replace")))
            what = f"stored value {ref.data[1:].decode()}"
            value = codec.decode(ref.data, lambda _digest: payload, what=what)
            return value, ref.size or codec.json_size(payload or b"")
        return self.remember(ref.data, build)

    def remember(self, key: bytes, build: Callable[[], tuple[Any, int]]) -> Any:
        """The value kept under ``key``, or the one ``build`` makes (value, JSON size), kept."""
        with self._lock:
            hit = self._lru.get(key)
            if hit is not None:
                self._lru.move_to_end(key)
                return hit[1]
        value, size = build()
        with self._lock:
            if key not in self._lru:
                self._lru[key] = (size, value)
                self._size += size
            while self._size > self.max_bytes and len(self._lru) > 1:
                self._size -= self._lru.popitem(last=False)[1][0]
        return value

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()
            self._size = 0


_DECODED = _Decoded(limits.DECODED_KEEP_BYTES)


def clear_decoded() -> None:
    """Forget the values decoded last (for measurements and tests)."""
    _DECODED.clear()


def remembered(key: str, build: Callable[[], Any]) -> Any:
    """``build()``, kept among the values decoded last under ``key`` (which must name one
    value for good: a read-only value made from committed records, like a loop step's
    result list), so repeated reads build it once and memory stays bounded."""
    def sized() -> tuple[Any, int]:
        value = build()
        return value, len(orjson.dumps(value))
    return _DECODED.remember(b"k" + key.encode(), sized)


def keep(value: Any, enc: codec.Encoded | None, load: Loader) -> Any:
    """What to hold in memory for ``value`` once committed as ``enc``: a StoredValue if
    ``enc`` was offloaded to the blob store, else ``value`` itself."""
    if enc is None or enc.blob is None:
        return value
    return StoredValue(enc.data, enc.size, load)


def lazy_decode(load: Loader) -> Callable[[Any, str], Any]:
    """A store's row decoder that leaves offloaded values in the blob store: ``h`` + hash
    becomes a StoredValue (read back when resolved), anything else is decoded now. For a
    run that loads what it committed (see ``Store.steps``, ``Store.read_vars``)."""
    def decode(data: Any, what: str) -> Any:
        if data is None:
            return None
        data = bytes(data)
        if data[:1] == b"h":
            codec.check_digest(data[1:].decode("ascii", "replace"))
            return StoredValue(data, 0, load)
        return codec.decode(data, load, what=what)
    return decode


def resolved(value: Any) -> Any:
    """``value``, or what it refers to if it is a StoredValue."""
    return value.value() if type(value) is StoredValue else value


class ResolvedMapping(Mapping[str, Any]):
    """A read-only view of ``{name: value or StoredValue}`` that resolves on access."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return resolved(self._data[key])

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


__all__ = ["Loader", "ResolvedMapping", "StoredValue", "clear_decoded", "keep", "lazy_decode", "remembered",
           "resolved"]
