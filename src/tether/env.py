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


def recorded_env(flow: Flow, snapshot: Mapping[str, Any] | None) -> dict[str, str | None]:
    """The declared variables as the run saw them where its start snapshot recorded them;
    secret ones (recorded only as a hash) from the current environment."""
    env = read_env_lenient(flow)
    for name, entry in ((snapshot or {}).get("vars") or {}).items():
        if name in env and isinstance(entry, dict) and "value" in entry:
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
            entry["hmac"] = (None if value is None
                             else hmac.new(salt, value.encode(), hashlib.sha256).hexdigest())
        else:
            entry["value"] = value
        env[name] = entry
    return {"vars": env, "salt": salt.hex(), "python": platform.python_version(), "tether": __version__,
            "host": socket.gethostname(), "cwd": os.getcwd()}


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
