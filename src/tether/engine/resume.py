"""Planning a resume: environment comparison, flow change report, rewinds."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Mapping

import orjson

from ..errors import EnvironmentMismatch, UsageError
from ..spec.models import Flow
from ..store import codec
from ..store.base import Store, VarWrite, is_hidden

POLICIES = ("warn", "fail", "keep")


@dataclass(frozen=True)
class EnvChange:
    """One declared environment variable that differs from the run's start snapshot."""

    name: str
    change: str            # missing | changed | new
    policy: str            # warn | fail | keep
    old: str | None        # recorded value (None for secrets)
    new: str | None        # current value (None for secrets)
    secret: bool


def compare_env(flow: Flow, snapshot: Mapping[str, Any] | None, current: Mapping[str, str | None],
                policy: str | None = None) -> tuple[list[EnvChange], dict[str, str | None]]:
    """The differences between ``current`` and the start snapshot, and the values the
    resumed run will use (``keep`` restores recorded ones). EnvironmentMismatch when a
    difference's policy is ``fail``; UsageError for ``keep`` on a secret."""
    if policy is not None and policy not in POLICIES:
        raise UsageError(f"--env-policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    recorded = (snapshot or {}).get("vars", {})
    salt = bytes.fromhex((snapshot or {}).get("salt", "")) if snapshot else b""
    changes: list[EnvChange] = []
    values = dict(current)
    for name in sorted(set(flow.env) | set(recorded)):
        spec = flow.env.get(name)
        secret = bool(spec.secret) if spec else bool(recorded.get(name, {}).get("hmac"))
        rec = recorded.get(name)
        was_set = bool(rec and rec.get("set"))
        now_value = current.get(name)
        if was_set and now_value is None:
            kind = "missing"
        elif not was_set and now_value is not None:
            kind = "new"
        elif was_set and now_value is not None:
            if secret:
                digest = hmac.new(salt, now_value.encode(), hashlib.sha256).hexdigest()
                same = hmac.compare_digest(digest, rec.get("hmac") or "")
            else:
                same = rec.get("value") == now_value
            if same:
                continue
            kind = "changed"
        else:
            continue
        rule = policy or ("fail" if spec and spec.critical else (spec.on_change if spec else "warn"))
        if rule == "keep" and secret:
            raise UsageError(f"environment variable {name} is secret: its value was never recorded, "
                             "so it cannot be kept; use --env or the warn/fail policies")
        changes.append(EnvChange(name, kind, rule, None if secret or not rec else rec.get("value"),
                                 None if secret else now_value, secret))
        if rule == "keep" and name in values:
            values[name] = rec.get("value") if was_set and rec else None
    refused = [c for c in changes if c.policy == "fail"]
    if refused:
        names = ", ".join(f"{c.name} ({c.change})" for c in refused)
        raise EnvironmentMismatch(f"the environment changed since the run started: {names}; "
                                  "resume refused, nothing was changed",
                                  hint="restore the variables, pass --env NAME=VALUE, or --env-policy warn")
    return changes, values


def step_fingerprints(flow: Flow) -> dict[str, bytes]:
    """A canonical text of each step, to tell which steps an edit changed."""
    return {s.id: orjson.dumps(s.model_dump(mode="json", by_alias=True), option=orjson.OPT_SORT_KEYS)
            for s in flow.steps}


def flow_changes(old: Flow, new: Flow) -> list[tuple[str, str]]:
    """``(step_id, added|removed|changed)`` for every step that differs, in the new flow's order
    (removed ones last)."""
    a, b = step_fingerprints(old), step_fingerprints(new)
    out = [(sid, "added" if sid not in a else "changed") for sid in b if a.get(sid) != b[sid]]
    out += [(sid, "removed") for sid in a if sid not in b]
    return out


def first_start(store: Store, run_id: str, step_id: str, hidden: list[list[int]]) -> int | None:
    """The checkpoint at which ``step_id`` first started (among visible records), or None."""
    seqs = [e.seq for e in store.events(run_id) if e.step_id == step_id and e.type == "step.started"]
    seqs += [r.seq for r in store.steps(run_id) if r.step_id == step_id]
    seqs = [s for s in seqs if not is_hidden(s, hidden)]
    return min(seqs) if seqs else None


def rewind_writes(store: Store, run_id: str, target: int, source: str) -> list[VarWrite]:
    """Writes that bring the variables back to their values at checkpoint ``target``."""
    then = store.state_at(run_id, target)
    now_vars = store.read_vars(run_id)
    writes: list[VarWrite] = []
    for name, rec in now_vars.items():
        if name not in then:
            writes.append(VarWrite(name, None, source_step=source, delete=True))
        elif codec.dumps(then[name]) != codec.dumps(rec.value):
            writes.append(VarWrite(name, codec.encode(then[name]), rec.type, rec.scope, source, rec.secret))
    for name, value in then.items():
        if name not in now_vars:
            writes.append(VarWrite(name, codec.encode(value), "step_result", "run", source))
    return writes
