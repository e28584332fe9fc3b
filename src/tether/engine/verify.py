"""``tether verify``: re-render the recorded templates of completed steps against the
state as of each step and report every result that differs.

A resumed run must verify clean: it proves the run went on from exactly the state
it had. Each step is rendered with the environment it saw: the run's start snapshot,
overlaid with what the latest resume before the step recorded. Templates that call
``now()``, ``timestamp()`` or ``uuid()``, read ``run.attempt`` / ``run.resumed`` (which a
resume changes), or read an environment variable whose value is not recorded (a secret:
only its keyed hash is stored, so it is compared only when the verifying shell holds
the value with that hash) are reported as volatile, with the reason, instead of compared.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..env import env_as_seen, mask, secret_values
from ..errors import TemplateError
from ..flow import LoadedFlow, computed_dependencies
from ..store import codec
from ..store.base import RunRecord, StepRecord, Store, hidden_ranges, is_hidden, iter_latest_steps
from ..templates import BARE_KEY, MISSING, AttrView, is_volatile, render_deep
from ..variables import VarMeta, VarState
from ..vault import Vault, mask_text
from .scope import bare_lookup, run_fields, run_scope, step_scope
from .template_views import MapView, loop_results, step_view


@dataclass
class Report:
    run_id: str
    checked: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)
    volatile: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "ok": self.ok, "checked": self.checked,
                "differences": self.differences, "volatile": self.volatile}


class _RunFields(dict):
    """The ``run`` mapping of a re-render. It notes (as ``reason``) the first read of
    something a re-render cannot know: a field whose value depends on the attempt doing
    the reading, however the template reaches it (``run.attempt``, ``run['resumed']``, a
    bare ``attempt``), or an unrecorded environment variable (see :func:`_env_view`)."""

    PER_ATTEMPT = frozenset({"attempt", "resumed"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reason: str | None = None
        self.let_reason: str | None = None  # a `let` value read one: any field may depend on it

    def note(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def __getitem__(self, key: Any) -> Any:
        if key in self.PER_ATTEMPT:
            self.note("reads run.attempt/run.resumed")
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        # through __getitem__ (which notes the read); `self.get` would recurse
        return self[key] if key in self else default  # noqa: SIM401


def _same(a: Any, b: Any) -> bool:
    return codec.dumps(a) == codec.dumps(b)


def _env_view(env: Mapping[str, str | None], unknown: frozenset[str], secret: set[str],
              run: _RunFields) -> AttrView:
    """``env`` for a re-render: the values the step saw; reading one not recorded notes
    it on ``run`` (and finds nothing, so the render goes on)."""
    known = {k: v for k, v in env.items() if v is not None}

    def get(name: str) -> Any:
        if name in unknown:
            run.note(f"reads secret env.{name}, whose value is never recorded" if name in secret
                     else f"reads env.{name}, whose value at a resume was not recorded")
        return known[name]
    return AttrView(get, known.keys, "env")


_Starts = dict[tuple[str | None, Any], tuple[int, Any]]


def _started(store: Store, run_id: str, hidden: list[list[int]]) -> tuple[_Starts, list[tuple[int, Any]]]:
    """Per ``(step, idempotency key)``, the checkpoint of its last visible start and the
    environment changes of the latest resume before it (None: the start environment);
    and every resume's ``(checkpoint, changes)``, in order."""
    started: _Starts = {}
    resumes: list[tuple[int, Any]] = []
    changes = None
    for e in store.events(run_id):
        if e.type == "run.resumed":  # each resume's changes are relative to the start snapshot
            changes = (e.data or {}).get("env") if isinstance(e.data, dict) else None
            resumes.append((e.seq, changes))
        elif e.type == "step.started" and not is_hidden(e.seq, hidden):
            started[(e.step_id, (e.data or {}).get("idempotency_key"))] = (e.seq, changes)
    return started, resumes


def _changes_before(resumes: list[tuple[int, Any]], seq: int) -> Any:
    """The environment changes of the latest resume before checkpoint ``seq`` (None: none)."""
    changes = None
    for at, recorded in resumes:
        if at >= seq:
            break
        changes = recorded
    return changes


def verify_run(store: Store, record: RunRecord, loaded: LoadedFlow, vault: Vault,
               environ: Mapping[str, str]) -> Report:
    """Compare every completed step's recorded inputs and variable writes with a re-render
    in the environment the step saw (``environ``, the verifying shell's, serves only to
    check a secret variable against its recorded keyed hash)."""
    flow = loaded.flow
    report = Report(record.run_id)
    hidden = hidden_ranges(record.cursor)
    records = [r for r in store.steps(record.run_id) if not is_hidden(r.seq, hidden)]
    started, resumes = _started(store, record.run_id, hidden)
    secret_names = {n for n, v in store.read_vars(record.run_id).items() if v.secret} | set(flow.secret_vars)
    secret_env = {n for n, spec in flow.env.items() if spec.secret}
    secrets: list[str] = []
    deps = computed_dependencies(flow)
    index = flow.step_index()
    for rec in records:
        if rec.status != "completed" or rec.step_id not in index:
            continue
        step = flow.steps[index[rec.step_id]]
        # a step without a start event (no tool, a loop) saw the environment it committed in
        committed_in = _changes_before(resumes, rec.seq)
        start, changes = started.get((rec.step_id, rec.idempotency_key), (rec.seq, committed_in))
        before = start - (0 if step.tool else 1)
        env, unknown = env_as_seen(flow, record.env_snapshot, changes, environ)
        secrets.extend(v for v in secret_values(flow, env) if v not in secrets)
        state = VarState(flow.computed, deps)

        def load(state: VarState, seq: int) -> None:
            """Make ``state`` the variables as of checkpoint ``seq``."""
            values = store.state_at(record.run_id, seq)
            for name in [n for n in state.values if n not in values]:
                state.remove(name)
            for name, stored in values.items():
                value = stored
                if name in secret_names and isinstance(stored, str):
                    value = vault.decrypt(stored, f"run {record.run_id}: variable {name}")
                    text = mask_text(value)
                    if text:
                        secrets.append(text)
                state.apply(name, value, VarMeta("step_result", "run", 0, name in secret_names))
        load(state, before)
        views: dict[str, Any] = {}
        last_map = None
        latest = iter_latest_steps(r for r in records if r.seq <= before)
        for prior in sorted(latest.values(), key=lambda r: r.seq):
            views[prior.step_id] = step_view(prior, store, record.run_id)
            if isinstance(prior.meta, dict) and prior.meta.get("loop_key"):
                last_map = views[prior.step_id]["map"]
        inputs = record.inputs or {}
        run = _RunFields(run_fields(record))
        # shared variables are not versioned with the run: a re-render cannot know their values then
        base = run_scope(inputs=inputs, state=state, env=env, steps=AttrView.of(views, "steps"), run=run,
                         shared=AttrView.of({}, "shared"))
        base["env"] = _env_view(env, unknown, secret_env, run)
        scope = step_scope(base, step.id, 1, rec.idempotency_key)
        if last_map is not None:
            scope["map"] = last_map
        loop_key = rec.meta.get("loop_key") if isinstance(rec.meta, dict) else None
        if loop_key:  # a loop step's own vars see its aggregates and results
            scope["map"] = MapView(store, record.run_id, loop_key, rec.meta.get("total", 0))
        let: dict[str, Any] = {}
        def step_lookup(name: str, views: dict[str, Any] = views) -> Any:  # this step's views, bound now
            return views.get(name, MISSING)

        def computed_scope(scope: dict[str, Any] = scope) -> dict[str, Any]:  # this step's scope, bound now
            return scope
        scope[BARE_KEY] = bare_lookup(state, step_lookup, inputs, run, let)
        state.scope_for_computed = computed_scope
        report.checked += 1
        try:
            if step.let:
                scope["let"] = AttrView.of(let, "let")
                for name, tmpl in step.let.items():
                    let[name] = render_deep(tmpl, scope, f"let.{name}")
                run.let_reason = run.reason
            if step.tool and step.tool != "pause":
                _compare(report, rec, "with", step.with_, scope, (rec.inputs or {}).get("with"), secrets)
            if step.vars.after:
                # rendered when the step committed: outside writes since its start count
                if rec.seq - 1 != before:
                    load(state, rec.seq - 1)
                if committed_in is not changes:  # a pause step: it completes as the run is resumed
                    env, unknown = env_as_seen(flow, record.env_snapshot, committed_in, environ)
                    secrets.extend(v for v in secret_values(flow, env) if v not in secrets)
                    scope["env"] = _env_view(env, unknown, secret_env, run)
                scope["result"] = loop_results(store, record.run_id, loop_key, rec.meta.get("total", 0)) \
                    if loop_key else rec.result
                views[rec.step_id] = step_view(rec, store, record.run_id)  # its vars see its own record
                after = store.state_at(record.run_id, rec.seq)
                for name, tmpl in step.vars.after.items():
                    recorded = "***" if name in secret_names else after.get(name)
                    _compare(report, rec, f"vars.{name}", tmpl, scope, recorded, secrets,
                             masked=name in secret_names)
        except TemplateError as exc:
            if run.reason:  # it failed on what it could not know (`let`, a computed variable)
                report.volatile.append({"step": rec.step_id, "field": "*", "reason": run.reason})
            else:
                report.differences.append({"step": rec.step_id, "seq": rec.seq, "field": "*",
                                           "recorded": None, "rendered": f"error: {exc.message}"})
    return report


def _compare(report: Report, rec: StepRecord, field_: str, template: Any, scope: dict[str, Any],
             recorded: Any, secrets: list[str], masked: bool = False) -> None:
    if is_volatile(template):
        report.volatile.append({"step": rec.step_id, "field": field_, "reason": "calls now/timestamp/uuid"})
        return
    run_fields = scope["run"]
    run_fields.reason = run_fields.let_reason
    try:
        rendered = mask(render_deep(template, scope, field_), secrets)
    except TemplateError:
        if run_fields.reason is None:
            raise
        rendered = None
    if run_fields.reason:
        report.volatile.append({"step": rec.step_id, "field": field_, "reason": run_fields.reason})
        return
    if masked:
        rendered = "***"
    if not _same(rendered, recorded):
        report.differences.append({"step": rec.step_id, "seq": rec.seq, "field": field_,
                                   "recorded": recorded, "rendered": rendered})
