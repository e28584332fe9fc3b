"""Walks one run: renders each step, runs its tool, commits the outcome.

Every state change goes through :meth:`RunCommits.commit` (engine/run_commits.py), one store transaction
that writes the step record, only the variables that changed, their history and
the events, and moves the cursor. A fresh run and a continued run take the same
path: the runner loads what is committed and goes on from the cursor.
"""
from __future__ import annotations

import logging
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..env import mask
from ..errors import ConflictError, LeaseLost, NotFound, StoreError, TemplateError, UnstorableValue
from ..flow import LoadedFlow
from ..flow.models import Step
from ..procs import ProcessGroups, kill_left_over
from ..store import codec
from ..store.base import (
    EventWrite,
    RunRecord,
    RunUpdate,
    StepRecord,
    StepWrite,
    Store,
    VarWrite,
    hidden_ranges,
    is_hidden,
    latest_visible_steps,
)
from ..templates import BARE_KEY, CACHE, MISSING, AttrView, render, render_deep
from ..tools import ToolContext, get_tool
from ..tools.base import ChildPaused
from ..variables import VarState
from ..vault import Vault
from ..views import iso
from .attempts import NO_RETRY, StepFailed, run_attempts
from .lease import Heartbeat, LockStopped, NamedLock, owner_id
from .loops import Loops
from .run_commits import RunCommits
from .scope import bare_lookup, idempotency_key, run_fields, run_scope, step_scope, top_loop_key
from .template_views import MapView, loop_results, step_view, with_own_record

log = logging.getLogger(__name__)


class Runner:
    """Executes one run to its end (completed, failed) or until its lease is lost."""

    def __init__(self, store: Store, loaded: LoadedFlow, run: RunRecord, *, env: dict[str, str | None],
                 secrets: list[str], ttl: float, emit: Callable[[str, dict[str, Any]], None],
                 computed_deps: dict[str, set[str]], vault: Vault,
                 listening: Callable[[], bool] = lambda: True) -> None:
        self.store, self.loaded, self.flow, self.run = store, loaded, loaded.flow, run
        self.run_id, self.epoch = run.run_id, run.lease_epoch
        self.secrets, self.ttl, self.emit, self.vault = list(secrets), ttl, emit, vault
        self.listening = listening  # events are only built when someone subscribed to them
        self.index = self.flow.step_index()
        self.state = VarState(self.flow.computed, computed_deps)
        self.commits = RunCommits(store, run, self.flow, self.state, vault, self.secrets, emit, listening)
        self.state.scope_for_computed = lambda: self.base
        self.step_views: dict[str, AttrView] = {}
        self._unbuilt: dict[str, StepRecord] = {}  # loaded records whose views are built on first use
        self.visits: dict[str, int] = {}
        self._reads_self: dict[str, bool] = {}  # step id -> whether its vars/next name it
        self.last_error: dict[str, str] | None = None
        self.cancel = threading.Event()
        self.pause = threading.Event()
        self.release = threading.Event()  # a stopping worker hands the run back (status pending)
        self.processes = ProcessGroups(lambda rec: store.record_processes(run.run_id, self.epoch, rec))
        self.loops = Loops(self)
        cursor = run.cursor if isinstance(run.cursor, dict) else {}
        self.hidden = hidden_ranges(cursor)
        self.paused_at: dict[str, Any] | None = cursor.get("pause")
        self.resume_set: dict[str, Any] = {}
        # loop steps whose failed iterations run again (resume --retry-failed), by step id -> loop key
        self.retry_loops: dict[str, str] = dict(cursor.get("retry", {}))
        self._resuming_failed: str | None = None
        self.run_child: Callable[..., Any] | None = None
        steps_view = AttrView(self._step_view, self._step_ids, "steps")
        shared_view = AttrView(self._shared_value, lambda: [r.name for r in store.shared_list()], "shared")
        self.base: dict[str, Any] = run_scope(inputs=run.inputs or {}, state=self.state, env=env,
                                              steps=steps_view, run=run_fields(run), shared=shared_view)
        self.base["__tether_names__"] = self._bare_names
        self.base[BARE_KEY] = self._bare_lookup(None)
        self._cache_start = (CACHE.hits, CACHE.misses)

    # ------------------------------------------------------------ scope
    def _shared_value(self, name: str) -> Any:
        try:
            return self.store.shared_get(name).value
        except NotFound:
            raise KeyError(name) from None

    def _step_view(self, step_id: str) -> AttrView:
        view = self.step_views.get(step_id)
        if view is None:
            rec = self._unbuilt.pop(step_id)  # KeyError: no such step (yet)
            self._set_view(rec)
            view = self.step_views[step_id]
        return view

    def _step_ids(self) -> list[str]:
        return list(self.step_views) + list(self._unbuilt)

    def _bare_lookup(self, let: dict[str, Any] | None) -> Callable[[str], Any]:
        views, unbuilt = self.step_views, self._unbuilt

        def step(name: str) -> Any:
            return self._step_view(name) if name in views or name in unbuilt else MISSING
        return bare_lookup(self.state, step, self.run.inputs or {}, self.base["run"], let)

    def _bare_names(self) -> list[str]:
        return self.state.names() + self._step_ids() + list(self.run.inputs or {})

    def step_scope(self, step: Step, attempt: int, key: str) -> dict[str, Any]:
        """What ``step``'s templates see in its ``attempt`` under idempotency ``key``."""
        return step_scope(self.base, step.id, attempt, key, self.last_error)

    def _cursor(self, nxt: str | None, pause: dict[str, Any] | None = None) -> dict[str, Any]:
        """Where a resume continues: the next step, plus checkpoints undone by rewinds."""
        cursor: dict[str, Any] = {"next": nxt}
        if self.hidden:
            cursor["hidden"] = self.hidden
        if pause is not None:
            cursor["pause"] = pause
        if self.retry_loops:
            cursor["retry"] = self.retry_loops
        return cursor

    def render_block(self, block: dict[str, Any], scope: dict[str, Any], sid: str,
                     field: str) -> dict[str, Any]:
        """Render a vars block against one state: entries do not see each other."""
        return {name: render_deep(tmpl, scope, f"step {sid!r}, field '{field}.{name}'")
                for name, tmpl in block.items()}

    # ------------------------------------------------------------ run
    def start_fresh(self) -> None:
        """First commit of a new run: initial variables in order, ``run.started``."""
        scope = dict(self.base)
        writes: list[VarWrite] = []
        try:
            for name, tmpl in self.flow.vars.items():  # in order: each sees the ones before it
                if name in self.resume_set:
                    continue  # `resume --set` of a run killed before its first commit wins
                writes += self.commits.stage_writes({name: render_deep(tmpl, scope, f"vars.{name}")},
                                                    "user_defined", "flow")
        except (TemplateError, UnstorableValue) as exc:  # the run fails; a resume starts it afresh
            raise _RunFailed({"type": type(exc).__name__, "message": exc.message, "step": None}) from None
        first = self.flow.steps[0].id
        self.commits.commit(writes=writes,
                            events=(EventWrite("run.started", None, {"flow": self.flow.name}),),
                            run=RunUpdate(cursor=self._cursor(first)))

    def load_committed(self) -> str | None:
        """Restore variables and step records from the store; return the cursor's next step."""
        self.commits.load_vars(self.store.read_vars(self.run_id))
        records = self.store.steps(self.run_id)
        for rec in records:
            # A failed execution that runs again is the same execution (same idempotency key);
            # finished ones count, undone (rewound) ones too: a re-run after a rewind is new.
            if rec.status != "failed":
                self.visits[rec.step_id] = self.visits.get(rec.step_id, 0) + 1
        latest = latest_visible_steps(records, self.hidden)
        latest_loop: StepRecord | None = None
        for rec in latest.values():
            self._unbuilt[rec.step_id] = rec  # views are built when a template first reads them
            if isinstance(rec.meta, dict) and rec.meta.get("loop_key") and (
                    latest_loop is None or rec.seq > latest_loop.seq):
                latest_loop = rec
        if latest_loop is not None:  # `map` names the most recently finished loop
            self._step_view(latest_loop.step_id)
        cursor = self.run.cursor or {}
        nxt = cursor.get("next") if isinstance(cursor, dict) else None
        if nxt in latest and latest[nxt].status == "failed":
            self._resuming_failed = nxt  # a failed loop step resumed: its failed iterations run again
        return nxt

    def execute(self) -> RunRecord:
        """Run from the cursor to the end; return the final run record. What a previous
        owner's steps left running on this machine is killed first, so a step never runs
        twice at once."""
        killed = kill_left_over(self.run.processes)
        if killed:
            log.warning("run %s: killed process group(s) %s that its previous owner's step left running",
                        self.run_id, killed, extra={"run_id": self.run_id})
        heartbeat = Heartbeat(self.store, self.run_id, self.epoch, self.ttl, self._on_control).start()
        try:
            cursor = self.run.cursor
            if self.commits.seq == 0 or (isinstance(cursor, dict) and cursor.get("unstarted")):
                if self.commits.seq:  # resumed before its first commit: `resume --set` values are stored
                    self.commits.load_vars(self.store.read_vars(self.run_id))
                try:
                    self.commits.settle(self.start_fresh)
                except _RunFailed as exc:  # its initial variables cannot be made: it ends here
                    unstarted = exc  # the lambda reads a local: the `as` name is unbound after the block
                    self.commits.settle(lambda: self._end("failed", error=unstarted.error, unstarted=True))
                    return self.store.load_run(self.run_id)
                nxt: str | None = self.flow.steps[0].id
            else:
                nxt = self.load_committed()
                if nxt is not None and nxt not in self.index:
                    raise _RunFailed({"type": "FlowError", "message": f"the run continues at step {nxt!r}, "
                                      "which the flow no longer has", "step": nxt}, at=nxt)
            current = nxt
            try:
                while nxt is not None:
                    current = nxt
                    nxt = self._run_step(self.flow.steps[self.index[nxt]])
                current = None
                self.commits.settle(self._finish)
            except _RunFailed as exc:
                failed = exc  # the lambda reads a local: the `as` name is unbound after the block
                self.commits.settle(lambda: self._end("failed", error=failed.error, nxt=failed.at))
            except UnstorableValue as exc:
                # Values are checked before their commit; should a store still refuse one, the
                # run fails at that step (a resume runs it again) instead of being left running.
                error = {**exc.error(), "step": current}
                self.commits.settle(lambda: self._end("failed", error=error, nxt=current))
            except _Stop as exc:
                stop = exc  # the lambda reads a local: the `as` name is unbound after the block
                self.commits.settle(lambda: self._end(stop.status, nxt=stop.at, pause=stop.pause))
        except LeaseLost:
            log.warning("run %s: stopped, another process owns it now", self.run_id,
                        extra={"run_id": self.run_id})
            raise
        finally:
            heartbeat.stop()
        return self.store.load_run(self.run_id)

    def hand_back(self) -> None:
        """After a signal: fence this runner's commits (the lease moves to a new epoch, so
        a loop thread that is still running writes nothing), kill every process group its
        steps started, and give the lease up, so the run is ``interrupted`` and a resume
        takes it at once."""
        epoch = None
        try:
            epoch = self.store.acquire_lease(self.run_id, owner_id(), 0.0, steal_epoch=self.epoch).lease_epoch
        except (ConflictError, StoreError) as exc:  # another owner has it already, or the store is gone
            log.warning("run %s: cannot hand the lease back: %s", self.run_id, exc.message)
        self.cancel.set()  # after the fence: a step stopped now must not be recorded as failed
        self.processes.kill_all()
        if epoch is not None:
            try:
                self.store.release_lease(self.run_id, epoch)
            except StoreError as exc:
                log.warning("run %s: cannot hand the lease back: %s", self.run_id, exc.message)

    def _following(self, step: Step) -> str | None:
        i = self.index[step.id] + 1
        return self.flow.steps[i].id if i < len(self.flow.steps) else None

    def _next(self, step: Step, scope: dict[str, Any]) -> str | None:
        nxt = step.next
        if nxt is None:
            return self._following(step)
        if isinstance(nxt, str):
            return None if nxt == "end" else nxt
        for i, rule in enumerate(nxt):
            if rule.when is None or render(rule.when, scope, f"step {step.id!r}, field 'next[{i}].when'"):
                return None if rule.goto == "end" else rule.goto
        return self._following(step)

    def _set_view(self, rec: StepRecord) -> None:
        self._unbuilt.pop(rec.step_id, None)
        view = step_view(rec, self.store, self.run_id)
        self.step_views[rec.step_id] = view
        if "map" in view:
            self.base["map"] = view["map"]  # `map` names the most recently finished loop

    # ------------------------------------------------------------ one step
    def stopping(self) -> bool:
        """True once the run was asked to stop taking work (cancel, pause or release)."""
        return self.cancel.is_set() or self.pause.is_set() or self.release.is_set()

    def stop_status(self) -> str:
        """The status a stop ends in: ``cancelled``, ``pending`` (released) or ``paused``."""
        return "cancelled" if self.cancel.is_set() else "pending" if self.release.is_set() else "paused"

    def _on_control(self, control: str) -> None:
        if control == "cancel":
            self.cancel.set()
        elif control == "pause":
            self.pause.set()  # loops stop taking iterations; the run pauses at the loop step

    def _run_step(self, step: Step) -> str | None:
        if step.lock is None:
            return self._run_step_body(step)
        try:
            name = str(render(step.lock, dict(self.base), f"step {step.id!r}, field 'lock'"))
        except TemplateError as exc:
            raise _RunFailed({"type": "TemplateError", "message": exc.message, "step": step.id},
                             at=step.id) from None
        try:
            with NamedLock(self.store, name, f"{owner_id()}/{self.run_id}/{step.id}", self.ttl,
                           self.stopping):
                return self._run_step_body(step)
        except LockStopped:
            raise _Stop(self.stop_status(), step.id) from None

    def _run_step_body(self, step: Step) -> str | None:
        seq, control = self.store.poll(self.run_id)
        if seq != self.commits.seq:
            self.commits.reload_foreign(seq)  # a variable was written from outside since our last commit
        if control == "cancel" or self.cancel.is_set():
            raise _Stop("cancelled", step.id)
        if control == "pause":
            raise _Stop("paused", step.id)
        if self.release.is_set():
            raise _Stop("pending", step.id)
        visit = self.visits.get(step.id, 0)
        key = idempotency_key(self.run_id, step.id, visit)
        started = time.time()
        begun = self.commits.settle(lambda: self._begin(step, key, started))
        if not isinstance(begun, _Begun):
            return begun  # it ended without a tool: skipped, failed or completed
        scope, inputs = begun.scope, begun.inputs
        if step.is_loop:
            try:
                return self._run_loop(step, scope, key, visit, started)
            except TemplateError as exc:  # its collection or `repeat.until`
                error = {"type": "TemplateError", "message": exc.message}
                return self.commits.settle(
                    lambda: self._fail(step, error, started, key, 0, scope, [], None, None))
        ctx_writes: dict[str, Any]
        result, meta, attempts, ctx_writes = begun.result, None, begun.attempts, {}
        if begun.args is not None:
            try:
                result, meta, attempts, ctx_writes = self.call_tool(step, begun.args, key)
            except StepFailed as exc:
                failed = exc  # the lambdas read a local: the `as` name is unbound after the block
                if self.cancel.is_set():
                    self.commits.settle(lambda: self._record(
                        step, "failed", started, key, attempts=failed.attempts, nxt=step.id,
                        inputs=inputs, result=failed.result, error=failed.error))
                    raise _Stop("cancelled", step.id) from None
                return self.commits.settle(lambda: self._fail(step, failed.error, started, key,
                                                              failed.attempts, scope, [], inputs,
                                                              failed.result))
        return self.commits.settle(lambda: self._complete(step, scope, started, key, [], ctx_writes, result,
                                                          meta, attempts, inputs))

    def _begin(self, step: Step, key: str, started: float) -> str | _Begun | None:
        """A step up to its first commit, rendered against the variables in memory: ``if``,
        ``let``, ``vars.before``, the tool's arguments and ``step.started``. A step without a
        tool ends here (its next step is returned); otherwise what its tool needs."""
        scope = self.step_scope(step, 1, key)
        sid = step.id
        writes: list[VarWrite] = []
        inputs: dict[str, Any] | None = None
        try:
            if step.if_ is not None:
                cond = render(step.if_, scope, f"step {sid!r}, field 'if'")
                if not cond:
                    return self._record(step, "skipped", started, key, attempts=0,
                                        nxt=self._following(step))
            if step.let:
                let: dict[str, Any] = {}
                scope["let"] = AttrView.of(let, "let")
                scope[BARE_KEY] = self._bare_lookup(let)
                for name, tmpl in step.let.items():
                    let[name] = render_deep(tmpl, scope, f"step {sid!r}, field 'let.{name}'")
            if step.vars.before:
                before = self.render_block(step.vars.before, scope, sid, "vars.before")
                writes += self.commits.stage_writes(before, "step_result", sid, "vars.before")
            if step.is_loop:
                if writes:  # vars.before of the loop step itself
                    self.commits.commit(writes=writes)
                return _Begun(scope)
            if step.tool == "pause":
                return _Begun(scope, result=self._pause_step(step, scope, key, writes), attempts=1)
            if step.tool is not None:
                args = render_deep(step.with_, scope, f"step {sid!r}, field 'with'")
                inputs = {"with": mask(args, self.secrets)}
                if step.let:
                    inputs["let"] = mask(scope["let"].to_dict(), self.secrets)
                try:  # the step's record keeps its inputs: they must be storable before the tool runs
                    codec.checked(inputs, "inputs")
                except UnstorableValue as exc:
                    inputs = None
                    raise exc.at(f"step {sid!r}") from None
                self.commits.commit(writes=writes, events=(EventWrite("step.started", sid,
                                                               {"attempt": 1, "idempotency_key": key}),))
                return _Begun(scope, args=args, inputs=inputs)
        except TemplateError as exc:
            return self._fail(step, {"type": "TemplateError", "message": exc.message}, started, key,
                              0, scope, writes, inputs, None)
        except UnstorableValue as exc:  # a value its vars.before or inputs made
            return self._fail(step, exc.error(), started, key, 0, scope, writes, inputs, None)
        return self._complete(step, scope, started, key, writes, {}, None, None, 0, None)

    def _complete(self, step: Step, scope: dict[str, Any], started: float, key: str, writes: list[VarWrite],
                  ctx_writes: dict[str, Any], result: Any, meta: Any, attempts: int,
                  inputs: Any) -> str | None:
        """A step's last commit, rendered against the variables in memory: what the tool
        set through its context, ``vars``, ``next`` and ``share``."""
        sid = step.id
        writes = list(writes)
        try:
            if ctx_writes:
                writes += self.commits.stage_writes(ctx_writes, "step_result", sid)
            scope["result"] = result
            self._see_own_record(scope, step, "completed", started, key, attempts, result, None, meta)
            if step.vars.after:
                after = self.render_block(step.vars.after, scope, sid, "vars")
                writes += self.commits.stage_writes(after, "step_result", sid)
            nxt = self._next(step, scope)
            if step.share:
                self._share(step, scope)
        except StepFailed as failed:  # a shared variable refused the write
            return self._fail(step, failed.error, started, key, failed.attempts, scope, writes, inputs,
                              failed.result)
        except TemplateError as exc:
            return self._fail(step, {"type": "TemplateError", "message": exc.message}, started, key,
                              attempts, scope, writes, inputs, None)
        except UnstorableValue as exc:  # a value its vars or share blocks made
            return self._fail(step, exc.error(), started, key, attempts, scope, writes, inputs, None)
        self.last_error = None
        return self._record(step, "completed", started, key, attempts=attempts, nxt=nxt,
                            writes=writes, inputs=inputs, result=result, meta=meta)

    def _share(self, step: Step, scope: dict[str, Any]) -> None:
        """Write the step's ``share`` block to the shared variables, before the step commits
        (a crash in between writes them again on resume: at least once)."""
        values = {name: render_deep(tmpl, scope, f"step {step.id!r}, field 'share.{name}'")
                  for name, tmpl in step.share.items()}
        for name, value in values.items():
            try:
                self.store.shared_set(name, value)
            except UnstorableValue as exc:
                raise exc.at(f"step {step.id!r}") from None
            except ConflictError as exc:
                raise StepFailed({"type": "ConflictError", "message": exc.message}, None, 1) from None

    def _run_loop(self, step: Step, scope: dict[str, Any], key: str, visit: int,
                  started: float) -> str | None:
        """A foreach/repeat step: run its iterations, then commit the step with its aggregates."""
        loop_key = self.retry_loops.get(step.id) or top_loop_key(step.id, visit)
        retry = step.id in self.retry_loops or self._resuming_failed == step.id
        if step.repeat is not None:
            outcome = self.loops.run_repeat(step, scope, loop_key, key)
        else:
            outcome = self.loops.run_foreach(step, scope, loop_key, key, retry_failed=retry)
        self.retry_loops.pop(step.id, None)
        self._resuming_failed = None
        if outcome.stopped:
            raise _Stop(outcome.stopped, step.id)
        mapview = MapView(self.store, self.run_id, loop_key, outcome.total)
        meta = {"loop_key": loop_key, "total": outcome.total,
                "map": MapView.counts(outcome.counts, outcome.total)}
        scope["map"] = mapview
        self._see_own_record(scope, step, "completed", started, key, 1, None, None, meta)  # _fail: "failed"
        if _mentions_result(step):
            scope["result"] = loop_results(self.store, self.run_id, loop_key, outcome.total)

        def complete() -> str | None:  # rendered against the variables in memory, committed fenced
            writes: list[VarWrite] = []
            if outcome.error is not None:
                nxt = self._fail(step, outcome.error, started, key, 1, scope, writes, None, None, meta=meta)
                self.base["map"] = mapview
                return nxt
            try:
                if step.vars.after:
                    writes += self.commits.stage_writes(
                        self.render_block(step.vars.after, scope, step.id, "vars"), "step_result", step.id)
                nxt = self._next(step, scope)
            except TemplateError as exc:
                return self._fail(step, {"type": "TemplateError", "message": exc.message}, started, key, 1,
                                  scope, writes, None, None, meta=meta)
            self.last_error = None
            self.base["map"] = mapview
            return self._record(step, "completed", started, key, attempts=1, nxt=nxt, writes=writes,
                                meta=meta)
        return self.commits.settle(complete)

    def _see_own_record(self, scope: dict[str, Any], step: Step, status: str, started: float, key: str,
                        attempts: int, result: Any, error: Any, meta: Any) -> None:
        """Let the step's own ``vars`` and ``next`` read ``steps.ID`` as the record being committed
        (only built for a step whose ``vars`` or ``next`` names its own id)."""
        reads = self._reads_self.get(step.id)
        if reads is None:
            text = orjson.dumps([step.vars.after, step.next if isinstance(step.next, str) else
                                 [r.model_dump() for r in step.next or []]]).decode()
            reads = self._reads_self[step.id] = step.id in text
        if not reads:
            return
        rec = StepRecord(step.id, status, self.commits.seq, attempts, None, mask(result, self.secrets), error,
                         meta, started, time.time(), key)
        scope["steps"] = with_own_record(self.base["steps"], step_view(rec, self.store, self.run_id), step.id)

    def _record(self, step: Step, status: str, started: float, key: str, *, attempts: int, nxt: str | None,
                writes: list[VarWrite] | None = None, inputs: Any = None,
                result: Any = None, meta: Any = None, error: Any = None) -> str | None:
        finished = time.time()
        safe_result = mask(result, self.secrets)
        rec = StepWrite(step.id, status, attempts,
                        None if inputs is None else codec.encode(inputs, field="inputs"),
                        None if result is None else codec.encode(safe_result, field="result"),
                        error, meta, started, finished, key)
        self.commits.commit(steps=(rec,), writes=writes or (), run=RunUpdate(cursor=self._cursor(nxt)),
                     step_event=(f"step.{status}", step.id, {"attempts": attempts, "error": error}))
        if status != "failed":
            self.visits[step.id] = self.visits.get(step.id, 0) + 1
        rec_ = StepRecord(step.id, status, self.commits.seq, attempts, inputs, safe_result, error, meta,
                          started, finished, key)
        if isinstance(meta, dict) and "loop_key" in meta:
            self._set_view(rec_)  # a loop step's view also sets `map`
        else:
            self.step_views.pop(step.id, None)
            self._unbuilt[step.id] = rec_  # its template view is built if a template reads it
        return nxt

    def _fail(self, step: Step, error: dict[str, str], started: float, key: str, attempts: int,
              scope: dict[str, Any], writes: list[VarWrite], inputs: Any, result: Any,
              meta: Any = None) -> str | None:
        error = mask(dict(error), self.secrets)  # type, message, and a traceback or failed iterations
        policy = step.on_failure
        if policy == "fail":
            self._record(step, "failed", started, key, attempts=attempts, nxt=step.id,
                         writes=writes, inputs=inputs, result=result, error=error, meta=meta)
            raise _RunFailed({**error, "step": step.id}, at=step.id)
        scope["error"] = error
        if policy == "continue":
            self._see_own_record(scope, step, "failed", started, key, attempts, result, error, meta)
            try:
                nxt = self._next(step, scope)
            except TemplateError as exc:
                self._record(step, "failed", started, key, attempts=attempts, nxt=step.id,
                             writes=writes, inputs=inputs, result=result, error=error, meta=meta)
                raise _RunFailed({"type": "TemplateError", "message": exc.message, "step": step.id},
                                 at=step.id) from None
        else:
            nxt = policy
        self.last_error = error
        return self._record(step, "failed", started, key, attempts=attempts, nxt=nxt,
                            writes=writes, inputs=inputs, result=result, error=error, meta=meta)

    def call_tool(self, step: Step, args: dict[str, Any], key: str,
                  where: str | None = None) -> tuple[Any, dict[str, Any], int, dict[str, Any]]:
        """Run ``step``'s tool with ``args`` through its attempts (retries, timeout, cancel):
        ``(result, meta, attempts, what it set through its context)``; StepFailed when the
        last attempt failed."""
        retry = step.retry or self.flow.defaults.retry or NO_RETRY
        timeout = step.timeout if step.timeout is not None else self.flow.defaults.timeout

        def make_ctx(attempt: int) -> ToolContext:
            return ToolContext(self.run_id, step.id, attempt, key, types.MappingProxyType(self.state.values),
                               self.loaded.base_dir, timeout, self.store.url, self.cancel,
                               run_child=self.run_child, blobs_url=self.store.blobs_url,
                               _save=lambda n, d: self._save_checkpoint(step.id, n, d),
                               _load=self._load_checkpoint, processes=self.processes)

        def on_retry(attempt: int, error: dict[str, Any], delay: float) -> None:
            log.info("run %s: step %s attempt %d failed (%s); retrying in %.2fs", self.run_id, step.id,
                     attempt, mask(error["message"], self.secrets), delay, extra={"run_id": self.run_id})
        try:
            return run_attempts(get_tool(step.tool), args, retry, make_ctx, self.cancel,
                                on_retry, where or f"step {step.id!r}")
        except ChildPaused as paused:  # a paused sub-flow pauses this run at this step
            raise _Stop("paused", step.id, {"step": step.id, "child": paused.child_id,
                                            "message": paused.message}) from None

    # ------------------------------------------------------------ end
    def _finish(self) -> None:
        scope = dict(self.base)
        try:
            outputs = mask(render_deep(dict(self.flow.outputs), scope, "outputs"), self.secrets)
            for name, value in outputs.items():
                codec.checked(value, f"outputs.{name}")
        except (TemplateError, UnstorableValue) as exc:
            raise _RunFailed({"type": type(exc).__name__, "message": exc.message, "step": None}) from None
        self._end("completed", outputs=outputs)

    def _save_checkpoint(self, step_id: str, name: str, data: Any) -> None:
        event = EventWrite("checkpoint", step_id, {"name": name, "data": mask(data, self.secrets)})
        self.commits.settle(lambda: self.commits.commit(events=(event,)))

    def _load_checkpoint(self, name: str) -> Any:
        found = None
        for e in self.store.events(self.run_id):
            if e.type == "checkpoint" and isinstance(e.data, dict) and e.data.get("name") == name and \
                    not is_hidden(e.seq, self.hidden):
                found = e.data.get("data")
        return found

    def _pause_step(self, step: Step, scope: dict[str, Any], key: str, writes: list[VarWrite]) -> Any:
        """``tool: pause``: the first time, stop the run as paused here; when resumed, the
        step completes with ``{message, resumed_at, set}``."""
        if self.paused_at is not None and self.paused_at.get("step") == step.id:
            pause, self.paused_at = self.paused_at, None
            return {"message": pause.get("message"), "resumed_at": iso(time.time()), "set": self.resume_set}
        args = render_deep(step.with_, scope, f"step {step.id!r}, field 'with'")
        message = mask(args.get("message"), self.secrets) if isinstance(args, dict) else None
        self.commits.commit(writes=writes, events=(EventWrite("step.started", step.id,
                                                       {"attempt": 1, "idempotency_key": key}),))
        raise _Stop("paused", step.id, {"step": step.id, "message": message})

    def _end(self, status: str, *, outputs: Any = None, error: Any = None, nxt: str | None = None,
             pause: dict[str, Any] | None = None, unstarted: bool = False) -> None:
        """Commit the run's end as ``status``; ``unstarted``: it never made its first
        commit, and a resume starts it afresh."""
        ended = status in ("completed", "cancelled")  # a failed, paused or released run goes on later
        drops = [VarWrite(n, None, source_step="run", delete=True)
                 for n, m in self.state.meta.items() if m.scope == "temp"] if ended else []
        hits, misses = CACHE.hits - self._cache_start[0], CACHE.misses - self._cache_start[1]
        data: dict[str, Any] = {"template_cache": {"hits": hits, "misses": misses}}
        if error is not None:
            data["error"] = error
        if pause is not None:
            data["pause"] = pause
        cursor = {**self._cursor(nxt, pause), "unstarted": True} if unstarted else self._cursor(nxt, pause)
        self.commits.commit(writes=drops, events=(EventWrite(f"run.{status}", None, data),),
                            run=RunUpdate(cursor=cursor, status=status,
                                          outputs=(None if outputs is None
                                                   else codec.encode(outputs, field="outputs")),
                                          error=error, finished=status not in ("paused", "pending")))
        for w in drops:
            self.state.remove(w.name)
        self.store.release_lease(self.run_id, self.epoch)



def _mentions_result(step: Step) -> bool:
    """Whether the loop step's own vars/next read ``result`` (so the list is worth building)."""
    text = orjson.dumps([step.vars.after, step.next if isinstance(step.next, str) else
                         [r.model_dump() for r in step.next or []]]).decode()
    return "result" in text




@dataclass
class _Begun:
    """A step that committed its start (or needs no commit before its tool): what the rest needs."""

    scope: dict[str, Any]
    args: Any = None  # the tool's rendered arguments; None: no tool to call
    inputs: dict[str, Any] | None = None
    result: Any = None
    attempts: int = 0


class _RunFailed(Exception):
    """Internal: the run fails; a resume continues at step ``at``."""

    def __init__(self, error: dict[str, Any], at: str | None = None) -> None:
        super().__init__(error.get("message"))
        self.error, self.at = error, at


class _Stop(Exception):
    """Internal: the run stops before step ``at`` as ``status`` (paused, cancelled or pending)."""

    def __init__(self, status: str, at: str | None, pause: dict[str, Any] | None = None) -> None:
        super().__init__(status)
        self.status, self.at, self.pause = status, at, pause


__all__ = ["Runner", "StepFailed"]
