"""Encoding of JSON values for the stores: orjson, zstd compression, offloading.

Stores never see Python objects, only the tagged bytes made here:

* ``j`` + JSON text — small values, stored as they are;
* ``z`` + zstd(JSON) — values of at least ``COMPRESS_MIN`` bytes that compress;
* ``h`` + sha256 hex — values of at least ``OFFLOAD_MIN`` bytes, whose (compressed)
  payload lives once in the store's blob table, keyed by content hash.

Only JSON is ever decoded: nothing read from a store can revive an object.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

import orjson
import zstandard

from ..errors import CorruptRecord, UsageError

COMPRESS_MIN = 1024
OFFLOAD_MIN = 256 * 1024
MAX_VALUE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64

_cctx = zstandard.ZstdCompressor(level=3)
_dctx = zstandard.ZstdDecompressor()


@dataclass(frozen=True, slots=True)
class Encoded:
    """A value ready for a store: ``data`` goes in the row; ``blob`` (hash, payload),
    when present, goes in the blob table."""

    data: bytes
    blob: tuple[str, bytes] | None = None


def dumps(value: Any) -> bytes:
    """JSON bytes of ``value``; UsageError if it is not JSON-serialisable."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise UsageError(f"value is not JSON-serialisable: {exc}") from None


def loads(data: bytes | str) -> Any:
    """Parse JSON text or bytes."""
    return orjson.loads(data)


def _check_depth(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise UsageError(f"value is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for v in value.values():
            if isinstance(v, (dict, list)):
                _check_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                _check_depth(v, depth + 1)


def encode(value: Any, *, max_bytes: int = MAX_VALUE_BYTES) -> Encoded:
    """Encode one JSON value; UsageError if it is not JSON or larger than ``max_bytes``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        raw = dumps(value)
    else:
        raw = dumps(value)
        _check_depth(value)
    n = len(raw)
    if n > max_bytes:
        raise UsageError(f"value of {n} bytes exceeds the limit of {max_bytes} bytes")
    if n < COMPRESS_MIN:
        return Encoded(b"j" + raw)
    packed = _cctx.compress(raw)
    body, tag = (packed, b"z") if len(packed) < n else (raw, b"j")
    if n < OFFLOAD_MIN:
        return Encoded(tag + body)
    digest = hashlib.sha256(raw).hexdigest()
    return Encoded(b"h" + digest.encode(), (digest, tag + body))


def decode(data: bytes, load_blob: Callable[[str], bytes | None] | None = None,
           *, what: str = "value") -> Any:
    """Decode bytes made by :func:`encode`; CorruptRecord naming ``what`` if they are bad."""
    try:
        data = bytes(data)
        tag, body = data[:1], data[1:]
        if len(body) > MAX_VALUE_BYTES:  # larger than encode() ever writes
            raise CorruptRecord(f"{what} is {len(body)} bytes, above the limit of {MAX_VALUE_BYTES}")
        if tag == b"j":
            return orjson.loads(body)
        if tag == b"z":
            # A frame may declare any size and zstd would allocate it: refuse a bomb up front.
            size = zstandard.frame_content_size(body)
            if size > MAX_VALUE_BYTES:
                raise CorruptRecord(f"{what} claims {size} bytes, above the limit of {MAX_VALUE_BYTES}")
            return orjson.loads(_dctx.decompress(body, max_output_size=MAX_VALUE_BYTES))
        if tag == b"h":
            if load_blob is None:
                raise CorruptRecord(f"{what}: offloaded value without a blob store")
            payload = load_blob(body.decode("ascii"))
            if payload is None:
                raise CorruptRecord(f"{what}: offloaded value {body.decode('ascii')} is missing")
            return decode(payload, None, what=what)
    except CorruptRecord:
        raise
    except (orjson.JSONDecodeError, zstandard.ZstdError, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise CorruptRecord(f"{what} cannot be decoded: {exc}") from None
    raise CorruptRecord(f"{what} has an unknown encoding tag {tag!r}")


def loads_optional(text: str | bytes | None) -> Any:
    """Parse JSON text, passing None through (for nullable metadata columns)."""
    return None if text is None else orjson.loads(text)


def dumps_text(value: Any) -> str:
    """JSON text of ``value`` (for small metadata columns)."""
    return dumps(value).decode()
