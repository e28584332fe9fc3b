"""Walks one run from its cursor to its end: the first commit, loading what is committed,
the walk from step to step (each step run by :class:`StepRun`, engine/step_run.py), the
heartbeat, stops and the final commit.

Every state change goes through :meth:`RunCommits.commit` (engine/run_commits.py), one store transaction
that writes the step record, only the variables that changed, their history and
the events, and moves the cursor. A fresh run and a continued run take the same
path: the runner loads what is committed and goes on from the cursor.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

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
    StepHead,
    StepRecord,
    Store,
    VarWrite,
    hidden_ranges,
    is_hidden,
    latest_visible_steps,
)
from ..store.records import HELD
from ..templates import BARE_KEY, CACHE, MISSING, AttrView, render_deep
from ..variables import VarState
from ..vault import Vault
from .attempts import StepFailed
from .durable import DurableResults
from .lease import Heartbeat, owner_id
from .loops import Loops
from .run_commits import RunCommits
from .run_stops import FailRun, StopRun
from .scope import bare_lookup, run_fields, run_scope, step_scope
from .step_run import StepRun
from .template_views import step_view
from .tool_call import call_tool

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
        # latest records whose views are built on first use (a head: read whole then)
        self.unbuilt: dict[str, StepRecord | StepHead] = {}
        self.visits: dict[str, int] = {}
        self.last_error: dict[str, str] | None = None
        self.cancel = threading.Event()
        self.pause = threading.Event()
        self.release = threading.Event()  # a stopping worker hands the run back (status pending)
        self.processes = ProcessGroups(lambda rec: store.record_processes(run.run_id, self.epoch, rec))
        self.loops = Loops(self)
        self.steps = StepRun(self)
        cursor = run.cursor if isinstance(run.cursor, dict) else {}
        self.hidden = hidden_ranges(cursor)
        self.paused_at: dict[str, Any] | None = cursor.get("pause")
        self.resume_set: dict[str, Any] = {}
        # loop steps whose failed iterations run again (resume --retry-failed), by step id -> loop key
        self.retry_loops: dict[str, str] = dict(cursor.get("retry", {}))
        self.resuming_failed: str | None = None
        self.run_child: Callable[..., Any] | None = None
        self.settings: Any = None  # the engine's Settings, handed to tools
        self.durable = DurableResults(store, run.run_id, self.hidden, self.secrets,
                                      lambda e: self.commits.settle(lambda: self.commits.commit(events=(e,))))
        steps_view = AttrView(self._step_view, self._step_ids, "steps")
        shared_view = AttrView(self._shared_value, lambda: [r.name for r in store.shared_list()], "shared")
        self.base: dict[str, Any] = run_scope(inputs=run.inputs or {}, state=self.state, env=env,
                                              steps=steps_view, run=run_fields(run), shared=shared_view)
        self.base["__tether_names__"] = self._bare_names
        self.base[BARE_KEY] = self.bare_lookup(None)
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
            rec = self.unbuilt[step_id]  # KeyError: no such step (yet)
            if not isinstance(rec, StepRecord):  # a head: its record is read now
                rec = self.store.step_at(self.run_id, rec.seq, rec.step_id)
            self.set_view(rec)
            view = self.step_views[step_id]
        return view

    def _step_ids(self) -> list[str]:
        return list(self.step_views) + list(self.unbuilt)

    def bare_lookup(self, let: dict[str, Any] | None) -> Callable[[str], Any]:
        views, unbuilt = self.step_views, self.unbuilt

        def step(name: str) -> Any:
            return self._step_view(name) if name in views or name in unbuilt else MISSING
        return bare_lookup(self.state, step, self.run.inputs or {}, self.base["run"], let)

    def _bare_names(self) -> list[str]:
        return self.state.names() + self._step_ids() + list(self.run.inputs or {})

    def step_scope(self, step: Step, attempt: int, key: str) -> dict[str, Any]:
        """What ``step``'s templates see in its ``attempt`` under idempotency ``key``."""
        return step_scope(self.base, step.id, attempt, key, self.last_error)

    def cursor_at(self, nxt: str | None, pause: dict[str, Any] | None = None) -> dict[str, Any]:
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
        """First commit of a new run: initial variables in order, ``run.started``.

        A variable already committed (written from outside after the run was created —
        ``vars set``, the API, ``resume --set`` — before this first commit) keeps its value:
        its initial template is not rendered, and later ones see the written value. Run
        under ``settle``, this attempt is refused and made again whenever such a write
        lands before its commit, so a confirmed write is never overwritten by the flow's
        initial ``vars:``."""
        scope = dict(self.base)
        writes: list[VarWrite] = []
        written = set(self.state.values)  # committed: the first commit writes nothing else
        try:
            for name, tmpl in self.flow.vars.items():  # in order: each sees the ones before it
                if name in written:
                    continue  # written from outside before the first commit: that write wins
                writes += self.commits.stage_writes({name: render_deep(tmpl, scope, f"vars.{name}")},
                                                    "user_defined", "flow")
        except (TemplateError, UnstorableValue) as exc:  # the run fails; a resume starts it afresh
            raise FailRun({"type": type(exc).__name__, "message": exc.message, "step": None}) from None
        first = self.flow.steps[0].id
        self.commits.commit(writes=writes,
                            events=(EventWrite("run.started", None, {"flow": self.flow.name}),),
                            run=RunUpdate(cursor=self.cursor_at(first)))

    def load_committed(self) -> str | None:
        """Restore variables and step records from the store; return the cursor's next step.
        Of the step records only their heads are read (no values decoded); a step's latest
        record is read whole when a template first reads it."""
        self.commits.load_vars(self.store.read_state(self.run_id))
        records = self.store.step_heads(self.run_id)
        for rec in records:
            # A failed execution that runs again is the same execution (same idempotency key);
            # finished ones count, undone (rewound) ones too: a re-run after a rewind is new.
            if rec.status != "failed":
                self.visits[rec.step_id] = self.visits.get(rec.step_id, 0) + 1
        latest = latest_visible_steps(records, self.hidden)
        latest_loop: StepHead | None = None
        for rec in latest.values():
            self.unbuilt[rec.step_id] = rec  # views are built when a template first reads them
            if isinstance(rec.meta, dict) and rec.meta.get("loop_key") and (
                    latest_loop is None or rec.seq > latest_loop.seq):
                latest_loop = rec
        if latest_loop is not None:  # `map` names the most recently finished loop
            self._step_view(latest_loop.step_id)
        cursor = self.run.cursor or {}
        nxt = cursor.get("next") if isinstance(cursor, dict) else None
        if nxt in latest and latest[nxt].status == "failed":
            self.resuming_failed = nxt  # a failed loop step resumed: its failed iterations run again
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
                    self.commits.load_vars(self.store.read_state(self.run_id))
                try:
                    self.commits.settle(self.start_fresh)
                except FailRun as exc:  # its initial variables cannot be made: it ends here
                    unstarted = exc  # the lambda reads a local: the `as` name is unbound after the block
                    self.commits.settle(lambda: self._end("failed", error=unstarted.error, unstarted=True))
                    return self.store.load_run(self.run_id)
                nxt: str | None = self.flow.steps[0].id
            else:
                nxt = self.load_committed()
                if nxt is not None and nxt not in self.index:
                    raise FailRun({"type": "FlowError", "message": f"the run continues at step {nxt!r}, "
                                      "which the flow no longer has", "step": nxt}, at=nxt)
            current = nxt
            try:
                while nxt is not None:
                    current = nxt
                    nxt = self.steps.run(self.flow.steps[self.index[nxt]])
                current = None
                self.commits.settle(self._finish)
            except FailRun as exc:
                failed = exc  # the lambda reads a local: the `as` name is unbound after the block
                self.commits.settle(lambda: self._end("failed", error=failed.error, nxt=failed.at))
            except UnstorableValue as exc:
                # Values are checked before their commit; should a store still refuse one, the
                # run fails at that step (a resume runs it again) instead of being left running.
                error = {**exc.error(), "step": current}
                self.commits.settle(lambda: self._end("failed", error=error, nxt=current))
            except StopRun as exc:
                stop = exc  # the lambda reads a local: the `as` name is unbound after the block
                self.commits.settle(lambda: self._end(stop.status, nxt=stop.at, pause=stop.pause))
        except LeaseLost:
            log.warning("run %s: stopped, another process owns it now", self.run_id,
                        extra={"run_id": self.run_id})
            raise
        finally:
            heartbeat.stop()
        return self.store.load_run(self.run_id)

    def hand_back(self, hold: bool = False) -> None:
        """After a signal: fence this runner's commits (the lease moves to a new epoch, so
        a loop thread that is still running writes nothing), kill every process group its
        steps started, and give the lease up, so the run is ``interrupted`` and a resume
        takes it at once. With ``hold`` (its owner was stopped on purpose) the run is
        marked ``HELD`` first: no worker takes it over, it waits for a person's resume."""
        epoch = None
        try:
            if hold:
                self.store.request(self.run_id, HELD)
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

    def set_view(self, rec: StepRecord) -> None:
        self.unbuilt.pop(rec.step_id, None)
        view = step_view(rec, self.store, self.run_id)
        self.step_views[rec.step_id] = view
        if "map" in view:
            self.base["map"] = view["map"]  # `map` names the most recently finished loop

    def remember(self, rec: StepRecord) -> None:
        """Keep ``rec`` as its step's latest record; its template view is built on first read."""
        self.step_views.pop(rec.step_id, None)
        self.unbuilt[rec.step_id] = rec

    def call_tool(self, step: Step, args: dict[str, Any], key: str,
                  where: str | None = None) -> tuple[Any, dict[str, Any], int, dict[str, Any]]:
        """Run ``step``'s tool through its attempts (see :func:`.tool_call.call_tool`)."""
        return call_tool(self, step, args, key, where)

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

    # ------------------------------------------------------------ end
    def _finish(self) -> None:
        scope = dict(self.base)
        try:
            outputs = mask(render_deep(dict(self.flow.outputs), scope, "outputs"), self.secrets)
            for name, value in outputs.items():
                codec.checked(value, f"outputs.{name}")
        except (TemplateError, UnstorableValue) as exc:
            raise FailRun({"type": type(exc).__name__, "message": exc.message, "step": None}) from None
        self._end("completed", outputs=outputs)

    def save_checkpoint(self, step_id: str, name: str, data: Any) -> None:
        event = EventWrite("checkpoint", step_id, {"name": name, "data": mask(data, self.secrets)})
        self.commits.settle(lambda: self.commits.commit(events=(event,)))

    def load_checkpoint(self, name: str) -> Any:
        found = None
        for e in self.store.events(self.run_id):
            if e.type == "checkpoint" and isinstance(e.data, dict) and e.data.get("name") == name and \
                    not is_hidden(e.seq, self.hidden):
                found = e.data.get("data")
        return found

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
        cursor = self.cursor_at(nxt, pause)
        if unstarted:
            cursor = {**cursor, "unstarted": True}
        self.commits.commit(writes=drops, events=(EventWrite(f"run.{status}", None, data),),
                            run=RunUpdate(cursor=cursor, status=status,
                                          outputs=(None if outputs is None
                                                   else codec.encode(outputs, field="outputs")),
                                          error=error, finished=status not in ("paused", "pending")))
        for w in drops:
            self.state.remove(w.name)
        self.store.release_lease(self.run_id, self.epoch)


__all__ = ["Runner", "StepFailed"]
