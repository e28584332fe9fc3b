"""Declared environment variables: reading them and the snapshot recorded at run start."""
from __future__ import annotations

import hashlib
import hmac
import os
import platform
import socket
from collections.abc import Mapping
from typing import Any

from .errors import UsageError
from .flow.models import Flow


def read_env(flow: Flow, environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Values of the flow's declared variables (defaults applied); UsageError if a required one is unset."""
    environ = os.environ if environ is None else environ
    out: dict[str, str | None] = {}
    missing = []
    for name, spec in flow.env.items():
        value = environ.get(name, spec.default)
        if value is None and spec.required:
            missing.append(name)
        out[name] = value
    if missing:
        raise UsageError(f"required environment variable(s) not set: {', '.join(missing)}",
                         hint="export them, or give them a default under 'env:' in the flow")
    return out


def read_env_lenient(flow: Flow, environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Like :func:`read_env` but a missing required variable is None instead of an error."""
    environ = os.environ if environ is None else environ
    return {name: environ.get(name, spec.default) for name, spec in flow.env.items()}


def recorded_env(flow: Flow, snapshot: Mapping[str, Any] | None,
                 changes: list[Any] | None = None) -> dict[str, str | None]:
    """The declared variables as the run saw them where its start snapshot, overlaid with
    the ``changes`` of its latest resume (see :func:`env_as_seen`), recorded them; secret
    ones (recorded only as a hash) from the current environment."""
    env = read_env_lenient(flow)
    entries = dict((snapshot or {}).get("vars") or {})
    for change in changes or []:
        if isinstance(change, Mapping) and "value" in change and isinstance(change.get("name"), str):
            entries[change["name"]] = change
    for name, entry in entries.items():
        if name in env and isinstance(entry, Mapping) and "value" in entry:
            env[name] = entry["value"]
    return env


def secret_values(flow: Flow, values: Mapping[str, str | None]) -> list[str]:
    """The values of secret variables, longest first (for masking)."""
    found = {v for k, v in values.items() if flow.env[k].secret and v}
    return sorted(found, key=len, reverse=True)


def snapshot(flow: Flow, values: Mapping[str, str | None], salt: bytes) -> dict[str, Any]:
    """What resume compares against: per declared variable whether it was set and its value
    (for secrets only an HMAC keyed by the run's ``salt``), plus the platform."""
    from . import __version__
    env: dict[str, Any] = {}
    for name, value in values.items():
        entry: dict[str, Any] = {"set": value is not None}
        if flow.env[name].secret:
            entry["hmac"] = None if value is None else _digest(salt, value)
        else:
            entry["value"] = value
        env[name] = entry
    return {"vars": env, "salt": salt.hex(), "python": platform.python_version(), "tether": __version__,
            "host": socket.gethostname(), "cwd": os.getcwd()}


def _digest(salt: bytes, value: str) -> str:
    return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()


def env_as_seen(flow: Flow, snapshot: Mapping[str, Any] | None, changes: list[Any] | None,
                environ: Mapping[str, str]) -> tuple[dict[str, str | None], frozenset[str]]:
    """The declared variables as a run saw them: its start ``snapshot`` overlaid with the
    ``changes`` a resume recorded (the ``env`` list of its ``run.resumed`` event, each
    relative to the start snapshot; None before any resume). Returns the known values and
    the names whose value is not recorded: a secret (only its keyed hash is stored) unless
    ``environ`` holds the value whose hash was recorded, or a change recorded without its
    value (by a version of tether that did not record them). Without a snapshot: ``environ``."""
    if not isinstance(snapshot, Mapping) or not isinstance(snapshot.get("vars"), Mapping):
        return read_env_lenient(flow, environ), frozenset()
    entries: dict[str, Any] = dict(snapshot["vars"])
    for change in changes or []:
        if isinstance(change, Mapping) and isinstance(change.get("name"), str):
            recorded = {k: v for k, v in change.items() if k in ("value", "hmac")}
            entries[change["name"]] = {"set": change.get("change") != "missing", **recorded}
    salt = bytes.fromhex(str(snapshot.get("salt") or ""))
    values: dict[str, str | None] = {}
    unknown: set[str] = set()
    for name in flow.env:
        entry = entries.get(name)
        if not isinstance(entry, Mapping) or not entry.get("set"):
            values[name] = None
        elif "value" in entry:
            values[name] = entry["value"]
        elif (entry.get("hmac") and name in environ
              and hmac.compare_digest(_digest(salt, environ[name]), str(entry["hmac"]))):
            values[name] = environ[name]
        else:
            unknown.add(name)
            values[name] = None
    return values, frozenset(unknown)


def mask(value: Any, secrets: list[str]) -> Any:
    """``value`` with every occurrence of a secret replaced by ``***``."""
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            if s in value:
                value = value.replace(s, "***")
        return value
    if isinstance(value, dict):
        return {k: mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, secrets) for v in value]
    return value
