"""One step of a run, from render to commit (:class:`StepRun`): ``if``, ``let``,
``vars.before`` and ``with`` rendered and ``step.started`` committed; the tool called
through its attempts (or the loop run); ``vars``, ``next`` and ``share`` rendered and the
step's record committed, fenced, through the run's ``RunCommits``. A failure follows the
step's ``on_failure``. It knows its run only through :class:`StepHost`."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from ..env import mask
from ..errors import TemplateError, UnstorableValue
from ..flow.models import Step
from ..store import codec
from ..store.base import EventWrite, RunUpdate, StepRecord, StepWrite, VarWrite
from ..store.value_refs import keep
from ..templates import BARE_KEY, AttrView, render, render_deep
from .attempts import StepFailed
from .lease import LockStopped, NamedLock, owner_id
from .run_stops import FailRun, StopRun
from .scope import idempotency_key, top_loop_key
from .step_host import StepHost
from .template_views import MapView, loop_results, step_view, with_own_record
from .tool_call import call_tool, pause_step, share


class StepRun:
    """Runs the steps of one run, one at a time (``run``)."""

    def __init__(self, host: StepHost) -> None:
        self.h = host
        self._reads_self: dict[str, bool] = {}  # step id -> whether its vars/next name it

    def _following(self, step: Step) -> str | None:
        i = self.h.index[step.id] + 1
        return self.h.flow.steps[i].id if i < len(self.h.flow.steps) else None

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

    def run(self, step: Step) -> str | None:
        """Run ``step`` (under its ``lock:``, if any) and commit its outcome; the id of the
        step that runs next (None: the run ends). FailRun: the run fails here; StopRun: it
        stops before this step."""
        if step.lock is None:
            return self._run_step_body(step)
        try:
            name = str(render(step.lock, dict(self.h.base), f"step {step.id!r}, field 'lock'"))
        except TemplateError as exc:
            raise FailRun({"type": "TemplateError", "message": exc.message, "step": step.id},
                             at=step.id) from None
        try:
            with NamedLock(self.h.store, name, f"{owner_id()}/{self.h.run_id}/{step.id}", self.h.ttl,
                           self.h.stopping):
                return self._run_step_body(step)
        except LockStopped:
            raise StopRun(self.h.stop_status(), step.id) from None

    def _run_step_body(self, step: Step) -> str | None:
        seq, control = self.h.store.poll(self.h.run_id)
        if seq != self.h.commits.seq:
            self.h.commits.reload_foreign(seq)  # a variable was written from outside since our last commit
        if control == "cancel" or self.h.cancel.is_set():
            raise StopRun("cancelled", step.id)
        if control == "pause":
            raise StopRun("paused", step.id)
        if self.h.release.is_set():
            raise StopRun("pending", step.id)
        visit = self.h.visits.get(step.id, 0)
        key = idempotency_key(self.h.run_id, step.id, visit)
        started = time.time()
        begun = self.h.commits.settle(lambda: self._begin(step, key, started))
        if not isinstance(begun, Begun):
            return begun  # it ended without a tool: skipped, failed or completed
        scope, inputs = begun.scope, begun.inputs
        if step.is_loop:
            try:
                return self._run_loop(step, scope, key, visit, started)
            except TemplateError as exc:  # its collection (InputFileError: foreach_file), `repeat.until`
                error = {"type": type(exc).__name__, "message": exc.message}
                return self.h.commits.settle(
                    lambda: self._fail(step, error, started, key, 0, scope, [], None, None))
        ctx_writes: dict[str, Any]
        result, meta, attempts, ctx_writes = begun.result, None, begun.attempts, {}
        if begun.args is not None:
            try:
                result, meta, attempts, ctx_writes = call_tool(self.h, step, begun.args, key)
            except StopRun as exc:
                cut = exc.cut  # the lambda reads a local: the `as` name is unbound after the block
                if cut is not None:  # the attempt the cancel ended stays on the step's record
                    self.h.commits.settle(lambda: self._record(
                        step, "failed", started, key, attempts=cut.attempts, nxt=step.id,
                        inputs=inputs, result=cut.result, error=cut.error))
                raise
            except StepFailed as exc:
                failed = exc  # the lambdas read a local: the `as` name is unbound after the block
                return self.h.commits.settle(lambda: self._fail(step, failed.error, started, key,
                                                              failed.attempts, scope, [], inputs,
                                                              failed.result))
        return self.h.commits.settle(lambda: self._complete(step, scope, started, key, [], ctx_writes, result,
                                                          meta, attempts, inputs))

    def _begin(self, step: Step, key: str, started: float) -> str | Begun | None:
        """A step up to its first commit, rendered against the variables in memory: ``if``,
        ``let``, ``vars.before``, the tool's arguments and ``step.started``. A step without a
        tool ends here (its next step is returned); otherwise what its tool needs."""
        scope = self.h.step_scope(step, 1, key)
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
                scope[BARE_KEY] = self.h.bare_lookup(let)
                for name, tmpl in step.let.items():
                    let[name] = render_deep(tmpl, scope, f"step {sid!r}, field 'let.{name}'")
            if step.vars.before:
                before = self.h.render_block(step.vars.before, scope, sid, "vars.before")
                writes += self.h.commits.stage_writes(before, "step_result", sid, "vars.before")
            if step.is_loop:
                if writes:  # vars.before of the loop step itself
                    self.h.commits.commit(writes=writes)
                return Begun(scope)
            if step.tool == "pause":
                return Begun(scope, result=pause_step(self.h, step, scope, key, writes), attempts=1)
            if step.tool is not None:
                args = render_deep(step.with_, scope, f"step {sid!r}, field 'with'")
                inputs = {"with": mask(args, self.h.secrets)}
                if step.let:
                    inputs["let"] = mask(scope["let"].to_dict(), self.h.secrets)
                try:  # the step's record keeps its inputs: they must be storable before the tool runs
                    codec.checked(inputs, "inputs")
                except UnstorableValue as exc:
                    inputs = None
                    raise exc.at(f"step {sid!r}") from None
                self.h.commits.commit(writes=writes, events=(EventWrite("step.started", sid,
                                                               {"attempt": 1, "idempotency_key": key}),))
                return Begun(scope, args=args, inputs=inputs)
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
                writes += self.h.commits.stage_writes(ctx_writes, "step_result", sid)
            scope["result"] = result
            self._see_own_record(scope, step, "completed", started, key, attempts, result, None, meta)
            if step.vars.after:
                after = self.h.render_block(step.vars.after, scope, sid, "vars")
                writes += self.h.commits.stage_writes(after, "step_result", sid)
            nxt = self._next(step, scope)
            if step.share:
                share(self.h, step, scope)
        except StepFailed as failed:  # a shared variable refused the write
            return self._fail(step, failed.error, started, key, failed.attempts, scope, writes, inputs,
                              failed.result)
        except TemplateError as exc:
            return self._fail(step, {"type": "TemplateError", "message": exc.message}, started, key,
                              attempts, scope, writes, inputs, None)
        except UnstorableValue as exc:  # a value its vars or share blocks made
            return self._fail(step, exc.error(), started, key, attempts, scope, writes, inputs, None)
        self.h.last_error = None
        return self._record(step, "completed", started, key, attempts=attempts, nxt=nxt,
                            writes=writes, inputs=inputs, result=result, meta=meta)

    def _run_loop(self, step: Step, scope: dict[str, Any], key: str, visit: int,
                  started: float) -> str | None:
        """A foreach/repeat step: run its iterations, then commit the step with its aggregates."""
        loop_key = self.h.retry_loops.get(step.id) or top_loop_key(step.id, visit)
        retry = step.id in self.h.retry_loops or self.h.resuming_failed == step.id
        if step.repeat is not None:
            outcome = self.h.loops.run_repeat(step, scope, loop_key, key)
        else:
            outcome = self.h.loops.run_foreach(step, scope, loop_key, key, retry_failed=retry)
        self.h.retry_loops.pop(step.id, None)
        self.h.resuming_failed = None
        if outcome.stopped:
            raise StopRun(outcome.stopped, step.id, outcome.pause)
        mapview = MapView(self.h.store, self.h.run_id, loop_key, outcome.total)
        meta = {"loop_key": loop_key, "total": outcome.total,
                "map": MapView.counts(outcome.counts, outcome.total)}
        scope["map"] = mapview
        self._see_own_record(scope, step, "completed", started, key, 1, None, None, meta)  # _fail: "failed"
        if _mentions_result(step):
            scope["result"] = loop_results(self.h.store, self.h.run_id, loop_key, outcome.total)

        def complete() -> str | None:  # rendered against the variables in memory, committed fenced
            writes: list[VarWrite] = []
            if outcome.error is not None:
                nxt = self._fail(step, outcome.error, started, key, 1, scope, writes, None, None, meta=meta)
                self.h.base["map"] = mapview
                return nxt
            try:
                if step.vars.after:
                    writes += self.h.commits.stage_writes(
                        self.h.render_block(step.vars.after, scope, step.id, "vars"), "step_result", step.id)
                nxt = self._next(step, scope)
            except TemplateError as exc:
                return self._fail(step, {"type": "TemplateError", "message": exc.message}, started, key, 1,
                                  scope, writes, None, None, meta=meta)
            self.h.last_error = None
            self.h.base["map"] = mapview
            return self._record(step, "completed", started, key, attempts=1, nxt=nxt, writes=writes,
                                meta=meta)
        return self.h.commits.settle(complete)

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
        h = self.h
        rec = StepRecord(step.id, status, h.commits.seq, attempts, None, mask(result, h.secrets), error,
                         meta, started, time.time(), key)
        scope["steps"] = with_own_record(h.base["steps"], step_view(rec, h.store, h.run_id), step.id)

    def _record(self, step: Step, status: str, started: float, key: str, *, attempts: int, nxt: str | None,
                writes: list[VarWrite] | None = None, inputs: Any = None,
                result: Any = None, meta: Any = None, error: Any = None) -> str | None:
        finished = time.time()
        safe_result = mask(result, self.h.secrets)
        enc_inputs = None if inputs is None else codec.encode(inputs, field="inputs")
        enc_result = None if result is None else codec.encode(safe_result, field="result")
        rec = StepWrite(step.id, status, attempts, enc_inputs, enc_result,
                        error, meta, started, finished, key)
        self.h.commits.commit(steps=(rec,), writes=writes or (), run=RunUpdate(cursor=self.h.cursor_at(nxt)),
                     step_event=(f"step.{status}", step.id, {"attempts": attempts, "error": error}))
        if status != "failed":
            self.h.visits[step.id] = self.h.visits.get(step.id, 0) + 1
        load = self.h.store.load_blob  # large values are kept as references to the blob store
        rec_ = StepRecord(step.id, status, self.h.commits.seq, attempts, keep(inputs, enc_inputs, load),
                          keep(safe_result, enc_result, load), error, meta, started, finished, key)
        if isinstance(meta, dict) and "loop_key" in meta:
            self.h.set_view(rec_)  # a loop step's view also sets `map`
        else:
            self.h.remember(rec_)  # its template view is built if a template reads it
        return nxt

    def _fail(self, step: Step, error: dict[str, str], started: float, key: str, attempts: int,
              scope: dict[str, Any], writes: list[VarWrite], inputs: Any, result: Any,
              meta: Any = None) -> str | None:
        error = mask(dict(error), self.h.secrets)  # type, message, and a traceback or failed iterations
        policy = step.on_failure
        if policy == "fail":
            self._record(step, "failed", started, key, attempts=attempts, nxt=step.id,
                         writes=writes, inputs=inputs, result=result, error=error, meta=meta)
            raise FailRun({**error, "step": step.id}, at=step.id)
        scope["error"] = error
        if policy == "continue":
            self._see_own_record(scope, step, "failed", started, key, attempts, result, error, meta)
            try:
                nxt = self._next(step, scope)
            except TemplateError as exc:
                self._record(step, "failed", started, key, attempts=attempts, nxt=step.id,
                             writes=writes, inputs=inputs, result=result, error=error, meta=meta)
                raise FailRun({"type": "TemplateError", "message": exc.message, "step": step.id},
                                 at=step.id) from None
        else:
            nxt = policy
        self.h.last_error = error
        return self._record(step, "failed", started, key, attempts=attempts, nxt=nxt,
                            writes=writes, inputs=inputs, result=result, error=error, meta=meta)



def _mentions_result(step: Step) -> bool:
    """Whether the loop step's own vars/next read ``result`` (so the list is worth building)."""
    text = orjson.dumps([step.vars.after, step.next if isinstance(step.next, str) else
                         [r.model_dump() for r in step.next or []]]).decode()
    return "result" in text


@dataclass
class Begun:
    """A step that committed its start (or needs no commit before its tool): what the rest needs."""

    scope: dict[str, Any]
    args: Any = None  # the tool's rendered arguments; None: no tool to call
    inputs: dict[str, Any] | None = None
    result: Any = None
    attempts: int = 0
