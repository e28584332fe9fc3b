"""Planning a resume: environment comparison, flow change report, rewinds.

:func:`plan_resume` decides everything a resume does before anything changes and
returns it as a :class:`ResumePlan`, which ``Engine.resume`` applies: it takes the
lease with the plan's takeover (one transaction), then runs the run."""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ConflictError, EnvironmentMismatch, UsageError
from ..flow.models import Flow
from ..ids import check_var_name
from ..store import codec
from ..store.base import (
    EventWrite,
    RunRecord,
    StepRecord,
    Store,
    Takeover,
    VarWrite,
    hidden_ranges,
    is_hidden,
    latest_visible_steps,
)
from .lifecycle import InvalidTransition, check_transition, owner_alive, status_of

if TYPE_CHECKING:
    from ..flow import LoadedFlow
    from ..vault import Vault

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


def env_change_doc(change: EnvChange, values: Mapping[str, str | None]) -> dict[str, Any]:
    """How a resume records an environment change: name, change, policy and, unless the
    variable is secret, the value the run goes on with (what ``tether verify`` renders
    the steps after the resume with)."""
    doc: dict[str, Any] = {"name": change.name, "change": change.change, "policy": change.policy}
    if not change.secret:
        doc["value"] = values.get(change.name)
    return doc


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
    seqs += [r.seq for r in store.steps(run_id, refs=True) if r.step_id == step_id]
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


def failed_loops(store: Store, run_id: str, hidden: list[list[int]]) -> dict[str, StepRecord]:
    """The latest visible record of each loop step whose loop has failed iterations."""
    out = {}
    for sid, rec in latest_visible_steps(store.steps(run_id, refs=True), hidden).items():
        key = rec.meta.get("loop_key") if isinstance(rec.meta, dict) else None
        if key and store.iteration_counts(run_id, key).get("failed"):
            out[sid] = rec
    return out


def check_resumable(record: RunRecord, *, from_step: str | None, retry_failed: bool,
                    rerun_changed: bool) -> None:
    """ConflictError when another process runs ``record`` now; UsageError when its status
    or the combination of options does not allow this resume."""
    run_id, status = record.run_id, status_of(record)
    if status == "running":
        raise ConflictError(f"run {run_id} is running, owned by {record.lease_owner}",
                            hint="wait for it, or `tether cancel` it")
    rewinding = from_step is not None or rerun_changed or retry_failed
    if retry_failed and (from_step is not None or rerun_changed):
        raise UsageError("retrying failed iterations (--retry-failed, retry_failed) cannot be combined "
                         "with a step to start from (--from, from_step) or --rerun-changed")
    check_transition(run_id, "running" if status == "interrupted" else record.status, "running",
                     hint=("use --from STEP to re-run part of a completed run"
                           if status == "completed" else None))
    if status == "completed" and not rewinding:
        raise InvalidTransition(f"run {run_id} is completed; name a step to re-run it from (--from STEP, "
                                "from_step in the API) or retry its failed loop iterations "
                                "(--retry-failed, retry_failed)")


@dataclass(frozen=True)
class ResumePlan:
    """What a resume does, decided before anything changes."""

    loaded: LoadedFlow               # the flow the run goes on with
    new_flow: bool                   # ``loaded`` replaces the run's stored flow (``--flow``)
    env: dict[str, str | None]       # the environment it goes on with (``keep`` restores recorded values)
    takeover: Takeover               # status, cursor, writes and events, committed as the lease is taken
    steal_epoch: int | None          # the lease epoch of a dead owner on this host, taken at once


def plan_resume(store: Store, record: RunRecord, stored: LoadedFlow, vault: Vault, *,
                environ: Mapping[str, str], values: Mapping[str, Any] | None = None,
                from_step: str | None = None, retry_failed: bool = False, new_flow: LoadedFlow | None = None,
                rerun_changed: bool = False, env_policy: str | None = None,
                report: Callable[[str, Any], None] | None = None) -> ResumePlan:
    """Plan the resume of ``record`` (checked by :func:`check_resumable`), which started
    with flow ``stored``: ``values`` set, from ``from_step`` or failed loop iterations
    again, with ``new_flow`` (``rerun_changed``: from its first changed completed step),
    in environment ``environ``. ``report(kind, data)`` receives the flow change report
    (``"flow"``) and the environment differences (``"env"``). Writes nothing; UsageError
    or EnvironmentMismatch when the resume is refused."""
    from ..env import read_env
    run_id = record.run_id
    loaded = stored
    if new_flow is not None:
        loaded = new_flow
        changes = flow_changes(stored.flow, loaded.flow)
        if report is not None:
            report("flow", changes)
        if rerun_changed:
            done = {s.step_id for s in store.steps(run_id, refs=True) if s.status == "completed"}
            changed = [sid for sid, kind in changes if kind == "changed" and sid in done]
            if not changed:
                raise UsageError("--rerun-changed: no completed step changed; nothing to re-run")
            from_step = changed[0]
    elif rerun_changed:
        raise UsageError("--rerun-changed needs --flow FILE")
    current_env = read_env(loaded.flow, environ)
    env_changes, env_values = compare_env(loaded.flow, record.env_snapshot, current_env, env_policy)
    if report is not None:
        report("env", env_changes)
    for name in values or {}:
        check_var_name(name)
    cursor = dict(record.cursor) if isinstance(record.cursor, dict) else {"next": None}
    writes: list[VarWrite] = []
    events: list[EventWrite] = []
    if from_step is not None:
        if from_step not in loaded.flow.step_index():
            raise UsageError(f"the flow has no step {from_step!r} to start from")
        hidden = hidden_ranges(cursor)
        start = first_start(store, run_id, from_step, hidden)
        if start is None:
            raise UsageError(f"step {from_step!r} has not run in run {run_id}; nothing to re-run from it")
        writes += rewind_writes(store, run_id, start - 1, "resume")
        hidden.append([start, record.seq])
        cursor = {"next": from_step, "hidden": hidden}
        events.append(EventWrite("run.rewound", from_step, {"to_seq": start - 1, "from_seq": record.seq}))
    if retry_failed:
        hidden = hidden_ranges(cursor)
        failed = failed_loops(store, run_id, hidden)
        if not failed:
            raise UsageError(f"run {run_id} has no loop with failed iterations to retry")
        first_seq, first_step = min((rec.seq, rec.step_id) for rec in failed.values())
        writes += rewind_writes(store, run_id, first_seq - 1, "resume")
        hidden.append([first_seq, record.seq])
        cursor = {"next": first_step, "hidden": hidden,
                  "retry": {sid: rec.meta["loop_key"] for sid, rec in failed.items()}}
        events.append(EventWrite("run.rewound", first_step, {"to_seq": first_seq - 1, "from_seq": record.seq,
                                                             "retry_failed": sorted(failed)}))
    for name, value in (values or {}).items():
        secret = name in loaded.flow.secret_vars
        stored_value = vault.encrypt(value, f"set.{name}") if secret else value
        writes.append(VarWrite(name, codec.encode(stored_value, field=f"set.{name}"), "user_defined", "run",
                               "resume", secret))
    events.append(EventWrite("run.resumed", None, {
        "attempt": record.attempt + 1, "set": sorted(values or {}), "from": from_step,
        "env": [env_change_doc(c, env_values) for c in env_changes]}))
    alive = owner_alive(record.lease_owner)
    takeover = Takeover("running", cursor, tuple(writes), tuple(events), expect_status=(record.status,))
    return ResumePlan(loaded, new_flow is not None, env_values, takeover,
                      record.lease_epoch if alive is False else None)
