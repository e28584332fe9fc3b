"""One frozen ``Settings``: what the ``TETHER_*`` environment variables (and the flags that
override them) configure, read and checked in one place. A value that does not parse is a
UsageError naming the variable and what it accepts (exit 2)."""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from .errors import UsageError


def _positive_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 and value != float("inf") else None


def _whole_number(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def _http_url(text: str) -> str | None:
    return text if text.startswith(("http://", "https://")) else None


def _models_file(text: str) -> Mapping[str, Any] | None:
    """The ``{NAME: {...}}`` object in the JSON file ``text`` names (read-only), or None."""
    import json
    import types
    try:
        with open(text, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        return None
    return types.MappingProxyType({str(k): types.MappingProxyType(v) for k, v in data.items()})
def _blob_url(text: str) -> str | None:
    """``text`` if it names a blob store: ``file:///absolute/path`` or ``s3://bucket[/prefix]``."""
    parts = urlsplit(text)
    if parts.scheme == "file" and not parts.netloc and parts.path.startswith("/") and parts.path != "/":
        return text
    if parts.scheme == "s3" and parts.netloc and not parts.query and not parts.fragment:
        return text
    return None


def _read(environ: Mapping[str, str], name: str, parse: Callable[[str], Any], accepts: str,
          default: Any) -> Any:
    """``parse(text)`` of the variable ``name``; ``default`` when it is unset or blank;
    UsageError saying what it ``accepts`` when ``parse`` returns None."""
    text = environ.get(name)
    if text is None or text.strip() == "":
        return default
    value = parse(text.strip())
    if value is None:
        raise UsageError(f"{name} must be {accepts}, not {text!r}")
    return value


def _duration(text: str) -> float | None:
    from .flow.models import parse_duration  # imported only when the variable is set
    try:
        value = parse_duration(text)
    except ValueError:
        return None
    return value if value > 0 else None


@dataclass(frozen=True)
class Settings:
    """Everything Tether reads from its environment. Built by :meth:`from_env`; code that
    needs a value is given this object instead of reading ``os.environ``."""
    db: str | None = None                 # TETHER_DB: the store URL (None: the default SQLite file)
    lease_seconds: float = 30.0           # TETHER_LEASE_SECONDS: how long a lease lasts unrenewed
    max_recoveries: int = 5               # TETHER_MAX_RECOVERIES: takeovers without progress before failing
    secret_key: str | None = None         # TETHER_SECRET_KEY: the Fernet key of secret variables
    api_tokens: str = ""                  # TETHER_API_TOKENS: ROLE:TOKEN,ROLE:TOKEN
    api_tokens_file: str | None = None    # TETHER_API_TOKENS_FILE: the same pairs, one a line
    allowed_tools: str | None = None      # TETHER_ALLOWED_TOOLS: tools of flows sent to the server
    retention: float | None = None        # TETHER_RETENTION: finished runs older than this are deleted
    model_base_url: str | None = None     # TETHER_MODEL_BASE_URL: default endpoint of `tool: model`
    model_prices: Mapping[str, Any] | None = None  # TETHER_MODEL_PRICES: a JSON file shaped like `models:`
    model_cassette: str | None = None     # TETHER_MODEL_CASSETTE: record/replay model calls (JSONL)
    blobs: str | None = None              # TETHER_BLOBS: file:///path or s3://bucket/prefix (None: the db)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **flags: Any) -> Settings:
        """Settings from ``environ`` (default ``os.environ``), then ``flags`` that are not
        None on top. Every variable is checked now: UsageError for the first bad one."""
        env = os.environ if environ is None else environ
        settings = cls(
            db=env.get("TETHER_DB") or None,
            lease_seconds=_read(env, "TETHER_LEASE_SECONDS", _positive_number, "a number of seconds > 0",
                                30.0),
            max_recoveries=_read(env, "TETHER_MAX_RECOVERIES", _whole_number, "a whole number >= 0", 5),
            secret_key=env.get("TETHER_SECRET_KEY") or None,
            api_tokens=env.get("TETHER_API_TOKENS", ""),
            api_tokens_file=env.get("TETHER_API_TOKENS_FILE") or None,
            allowed_tools=env.get("TETHER_ALLOWED_TOOLS"),
            retention=_read(env, "TETHER_RETENTION", _duration, "a duration > 0 like 30d, 12h or 90m", None),
            model_base_url=_read(env, "TETHER_MODEL_BASE_URL", _http_url, "an http:// or https:// URL", None),
            model_prices=_read(env, "TETHER_MODEL_PRICES", _models_file,
                               "a readable JSON file of {NAME: {input_per_million, output_per_million, ...}}",
                               None),
            model_cassette=env.get("TETHER_MODEL_CASSETTE") or None,
            blobs=_read(env, "TETHER_BLOBS", _blob_url, "file:///absolute/path or s3://bucket/prefix", None),
        )
        given = {k: v for k, v in flags.items() if v is not None}
        return replace(settings, **given) if given else settings
