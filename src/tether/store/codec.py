"""Encoding of JSON values for the stores: orjson, zstd compression, offloading.

Stores never see Python objects, only the tagged bytes made here:

* ``j`` + JSON text — small values, stored as they are;
* ``z`` + zstd(JSON) — values of at least ``COMPRESS_MIN`` bytes that compress;
* ``h`` + sha256 hex — values of at least ``OFFLOAD_MIN`` bytes, whose (compressed)
  payload lives once in the store's blob store (its own table, a folder or a bucket:
  ``TETHER_BLOBS``), keyed by the hash of the value's JSON text.

Only JSON is ever decoded: nothing read from a store can revive an object. What is
encoded is checked first, here and only here: a value larger than ``MAX_VALUE_BYTES``,
nested deeper than ``MAX_DEPTH``, holding NaN or ±Infinity, or an integer beyond 64 bits
raises :class:`~tether.errors.UnstorableValue` naming the field; nothing is silently
changed.
"""
from __future__ import annotations

import contextlib
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import zstandard

from .. import limits
from ..errors import CorruptRecord, UnstorableValue

# the limits are defined once, in tether.limits
COMPRESS_MIN = limits.COMPRESS_MIN_BYTES
OFFLOAD_MIN = limits.OFFLOAD_MIN_BYTES
MAX_VALUE_BYTES = limits.VALUE_MAX_BYTES
MAX_DEPTH = limits.MAX_DEPTH
MIN_INT, MAX_INT = -(2 ** 63), 2 ** 64 - 1  # the integers JSON values are stored with

_cctx = zstandard.ZstdCompressor(level=3)
# The last few offloaded encodings, by digest: a large value written twice in a row (a step's
# result and the variable set from it, a loop's elements) is compressed once.
MEMO_BYTES = 8 * 1024 * 1024  # of payloads held; a larger payload is not kept
_memo: OrderedDict[str, Encoded] = OrderedDict()
_memo_size = [0]
_memo_lock = threading.Lock()
_dctx = zstandard.ZstdDecompressor()


@dataclass(frozen=True, slots=True)
class Encoded:
    """A value ready for a store: ``data`` goes in the row; ``blob`` (hash, payload),
    when present, goes in the blob table; ``size`` is the length of an offloaded value's
    JSON text (0 for one kept in its row)."""

    data: bytes
    blob: tuple[str, bytes] | None = None
    size: int = 0


def dumps(value: Any, field: str = "value") -> bytes:
    """JSON bytes of ``value``, exactly as a store keeps it; UnstorableValue naming ``field``
    (and the path inside it) if JSON cannot hold it as it is: not JSON, nested deeper than
    ``MAX_DEPTH``, NaN or ±Infinity (which orjson would silently write as ``null``), or an
    integer beyond 64 bits. Nothing is ever silently changed."""
    try:
        raw = orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError
        text = str(exc)
        found = None
        if "Integer exceeds" in text or "Recursion limit" in text:
            found = _find(value, floats=False, ints=True)
        if found is None:
            raise UnstorableValue(field, f"not a JSON value ({text})", retryable=False) from None
        raise UnstorableValue(field + _path(found[0]), found[1]) from None
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return raw
    # Cheap gates before walking the value: NaN and ±Infinity come out as `null`, and a
    # value nested deeper than MAX_DEPTH has more than MAX_DEPTH opening brackets.
    floats = b"null" in raw
    if floats or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        found = _find(value, floats=floats, ints=False)
        if found is not None:
            raise UnstorableValue(field + _path(found[0]), found[1])
    return raw


def loads(data: bytes | str) -> Any:
    """Parse JSON text or bytes."""
    return orjson.loads(data)


_LONG_NUMBER = re.compile(rb"\d{19}")


def loads_exact(data: bytes | str) -> Any:
    """Parse JSON text or bytes from outside (a command line, an HTTP body) keeping every
    integer exact: orjson reads integers beyond 64 bits as floats, so text with such long
    numbers is read again by the standard library, whose integers are exact (a store
    then refuses the ones it cannot hold, instead of keeping a changed number)."""
    value = orjson.loads(data)
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_NUMBER.search(raw):
        # nested far deeper than MAX_DEPTH: refused when stored anyway
        with contextlib.suppress(RecursionError):
            value = json.loads(raw)
    return value


_BAD_NUMBER = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _bad_scalar(value: Any, floats: bool, ints: bool) -> str | None:
    if floats and type(value) is float and not math.isfinite(value):
        return f"{_BAD_NUMBER[repr(value)]} is not a number JSON can hold"
    if ints and isinstance(value, int) and not isinstance(value, bool) and not MIN_INT <= value <= MAX_INT:
        shown = str(value) if value.bit_length() <= 256 else f"of {value.bit_length()} bits"
        return f"integer {shown} is beyond the 64-bit range the store holds (a string can carry it)"
    return None


def _find(value: Any, *, floats: bool, ints: bool, depth: int = 0) -> tuple[list[Any] | None, str] | None:
    """The path (innermost key first; None for a value nested too deeply, whose path would
    be longer than useful) and reason of the first part of ``value`` the store cannot hold,
    or None."""
    if depth > MAX_DEPTH:
        return None, f"nested deeper than the limit of {MAX_DEPTH} levels"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        reason = _bad_scalar(value, floats, ints)
        return None if reason is None else ([], reason)
    for key, v in items:
        if isinstance(v, (dict, list, tuple)):
            found = _find(v, floats=floats, ints=ints, depth=depth + 1)
        elif (floats and type(v) is float) or (ints and type(v) is not float):
            reason = _bad_scalar(v, floats, ints)
            found = None if reason is None else ([], reason)
        else:
            continue
        if found is not None:
            if found[0] is not None:
                found[0].append(key)
            return found
    return None


def _path(keys: list[Any] | None) -> str:
    """``['id', 0]`` (innermost first) as ``[0].id``."""
    out = []
    for key in reversed(keys or ()):
        if isinstance(key, int):
            out.append(f"[{key}]")
        elif isinstance(key, str) and key.isidentifier():
            out.append(f".{key}")
        else:
            out.append(f"[{str(key)!r}]")
    return "".join(out)


def checked(value: Any, field: str = "value", *, max_bytes: int = MAX_VALUE_BYTES) -> bytes:
    """JSON bytes of ``value`` if a store can hold it as a value (see :func:`dumps`) and it
    is at most ``max_bytes`` long; else UnstorableValue naming ``field``."""
    raw = dumps(value, field)
    if len(raw) > max_bytes:
        raise UnstorableValue(field, f"value of {len(raw):,} bytes exceeds the limit of {max_bytes:,} bytes")
    return raw


def encode(value: Any, *, max_bytes: int = MAX_VALUE_BYTES, field: str = "value") -> Encoded:
    """Encode one JSON value; UnstorableValue naming ``field`` if a store cannot hold it
    (see :func:`checked`)."""
    raw = checked(value, field, max_bytes=max_bytes)
    n = len(raw)
    if n < COMPRESS_MIN:
        return Encoded(b"j" + raw)
    if n < OFFLOAD_MIN:
        packed = _cctx.compress(raw)
        return Encoded(b"z" + packed) if len(packed) < n else Encoded(b"j" + raw)
    from hashlib import sha256  # here: OpenSSL's start-up is paid by a write of a large value only
    digest = sha256(raw).hexdigest()
    with _memo_lock:
        found = _memo.get(digest)
    if found is not None:  # the same value again (a step's result and the variable set from it)
        return found
    packed = _cctx.compress(raw)
    body, tag = (packed, b"z") if len(packed) < n else (raw, b"j")
    enc = Encoded(b"h" + digest.encode(), (digest, tag + body), n)
    size = len(body) + 1
    if size <= MEMO_BYTES:
        with _memo_lock:
            if digest not in _memo:
                _memo[digest] = enc
                _memo_size[0] += size
            while _memo_size[0] > MEMO_BYTES:
                _memo_size[0] -= len(_memo.popitem(last=False)[1].blob[1])  # type: ignore[index]
    return enc


def offload_ref(value: Any) -> tuple[bytes, int] | None:
    """``(row bytes, JSON length)`` of ``value`` if :func:`encode` offloads it (``h`` +
    the sha256 of its JSON text), else None; nothing is compressed. For values read back
    from a store, which can hold them."""
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is float:
        return None
    if kind is str and len(value) * 6 + 2 < OFFLOAD_MIN:  # JSON escapes a character in at most 6
        return None
    raw = orjson.dumps(value)
    if len(raw) < OFFLOAD_MIN:
        return None
    from hashlib import sha256
    return b"h" + sha256(raw).hexdigest().encode(), len(raw)


def json_size(payload: bytes) -> int:
    """The length of the JSON text in a blob payload made by :func:`encode` (``j`` or
    ``z`` + zstd frame); its stored length when the frame does not say."""
    tag, body = payload[:1], payload[1:]
    if tag == b"z":
        with contextlib.suppress(zstandard.ZstdError):
            size = zstandard.frame_content_size(body)
            if size >= 0:
                return int(size)
    return len(body)


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
                raise CorruptRecord(f"{what}: offloaded value {body.decode('ascii')} is missing from the "
                                    "blob store (is TETHER_BLOBS what it was when the value was written?)")
            return decode(payload, None, what=what)
    except CorruptRecord:
        raise
    except (orjson.JSONDecodeError, zstandard.ZstdError, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise CorruptRecord(f"{what} cannot be decoded: {exc}") from None
    raise CorruptRecord(f"{what} has an unknown encoding tag {tag!r}")


def dumps_text(value: Any) -> str:
    """JSON text of ``value`` (for small metadata columns)."""
    return dumps(value).decode()


_DIGEST = re.compile(r"[0-9a-f]{64}")


def check_digest(digest: str) -> str:
    """``digest`` if it is a blob key :func:`encode` makes (64 lowercase hex digits), so it
    is safe in a path or an object key; else CorruptRecord."""
    if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
        raise CorruptRecord(f"blob key {str(digest)[:80]!r} is not a sha256 hex digest")
    return digest
