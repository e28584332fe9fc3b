"""``TETHER_MODEL_CASSETTE=FILE``: model calls recorded to a JSONL file and replayed from it.

The first model call of a process decides the mode for that file: when the file exists,
every call is answered from it (matched by model and request body; no network, no API
key needed) and a call it does not hold is an error; otherwise every call goes to the
server and is appended to the file as ``{"key", "model", "request", "response"}``. A
request is the body sent to the server (model, messages, response format, temperature,
max_tokens): never the endpoint, the headers or the API key.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

from ..errors import ToolError

_lock = threading.Lock()
_cassettes: dict[str, Cassette] = {}


def request_key(request: dict[str, Any]) -> str:
    """The key a request is matched by: a hash of its canonical JSON."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Cassette:
    """One cassette file, in replay mode (it existed when first used) or record mode."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.replaying = os.path.exists(path)
        self.entries: dict[str, list[dict[str, Any]]] = {}
        self.served: dict[str, int] = {}
        if self.replaying:
            self._read()

    def _read(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        entry = json.loads(line)
                        self.entries.setdefault(str(entry["key"]), []).append(entry["response"])
                    except (ValueError, KeyError, TypeError):
                        raise ToolError(f"model cassette {self.path}: line {n} is not a recorded call",
                                        type_="CassetteError", retryable=False) from None
        except OSError as exc:
            raise ToolError(f"model cassette {self.path}: {exc.strerror}", type_="CassetteError",
                            retryable=False) from None

    def replay(self, request: dict[str, Any]) -> dict[str, Any]:
        """The recorded response to ``request`` (the same request asked again gets the next
        recording of it, then the last one again); ToolError when there is none."""
        key = request_key(request)
        with _lock:
            found = self.entries.get(key)
            if not found:
                raise ToolError(f"model cassette {self.path} has no recorded call of model "
                                f"{request.get('model')!r} with this request (delete the file to record "
                                "again)", type_="CassetteMiss", retryable=False)
            n = self.served.get(key, 0)
            self.served[key] = n + 1
            return found[min(n, len(found) - 1)]

    def record(self, request: dict[str, Any], response: dict[str, Any]) -> None:
        """Append one call to the file (one JSON line, written whole)."""
        line = json.dumps({"key": request_key(request), "model": request.get("model"), "request": request,
                           "response": response}, sort_keys=True) + "\n"
        with _lock:
            folder = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(folder, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)


def cassette(path: str | None) -> Cassette | None:
    """The process's Cassette for ``path`` (None: no cassette)."""
    if not path:
        return None
    with _lock:
        found = _cassettes.get(path)
    if found is None:
        made = Cassette(path)
        with _lock:
            found = _cassettes.setdefault(path, made)
    return found


def forget() -> None:
    """Drop what this process decided about cassette files (tests switch modes with it)."""
    with _lock:
        _cassettes.clear()


__all__ = ["Cassette", "cassette", "forget", "request_key"]
