"""The Python API: start runs, read and write their variables, subscribe to events."""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    ConflictError,
    Interrupted,
    NotFound,
    UsageError,
)
from ..ids import check_run_id, check_var_name, new_run_id
from ..queries import run_reads
from ..settings import Settings
from ..store import codec, open_store
from ..store.base import (
    EventRecord,
    RunRecord,
    StepRecord,
    Store,
    now,
)
from . import control
from .lease import owner_id
from .lifecycle import status_of
from .listeners import Listeners
from .state_api import StateApi
from .stored_run import stored_flow

if TYPE_CHECKING:
    from ..flow import LoadedFlow
    from ..vault import Vault
    from .resume import EnvChange  # noqa: F401

def preload() -> None:
    """Import what running a flow needs (pydantic models, Jinja, cryptography). The engine
    imports these on first use so that reading commands (`tether vars`, `runs`, `show`)
    start fast; call this to pay that cost up front (benchmarks, servers)."""
    from .. import env, flow, vault  # noqa: F401
    from . import inputs, resume, runner  # noqa: F401


log = logging.getLogger(__name__)
# The cursor of a run whose first commit (initial variables, `run.started`) has not
# happened yet: a process killed in between leaves it so, and resume starts it fresh.
UNSTARTED = {"next": None, "unstarted": True}


@dataclass(frozen=True)
class Run:
    """A run as its caller sees it. ``status`` is ``interrupted`` for a running run whose
    owner is gone."""

    id: str
    name: str
    status: str
    outputs: Any
    error: Any
    vars: dict[str, Any]
    parent_id: str | None
    seq: int
    created: bool = True
    pause: dict[str, Any] | None = None  # a paused run: ``{step, message}`` of the pause

    @property
    def ok(self) -> bool:
        return self.status == "completed"


class Engine(StateApi):
    """Runs flows against one store (``db``: a URL, or ``TETHER_DB``, or the default SQLite file)."""

    def __init__(self, db: str | Store | None = None, *, lease_seconds: float | None = None,
                 max_recoveries: int | None = None, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.store: Store = (db if db is not None and not isinstance(db, str)
                             else open_store(db or self.settings.db, settings=self.settings))
        self.lease_seconds = lease_seconds or self.settings.lease_seconds
        # automatic takeovers of a run without progress before it is failed (work_once)
        self.max_recoveries = max_recoveries if max_recoveries is not None else self.settings.max_recoveries
        self.listeners = Listeners()
        self._lock = threading.Lock()
        self._vault: Vault | None = None
        self._runners: set[Any] = set()  # runs executing in this process (interrupt_all)

    @property
    def vault(self) -> Vault:
        """Encrypts secret variables; its key is made on first use (see tether.vault)."""
        from ..vault import vault_for
        if self._vault is None:
            self._vault = vault_for(getattr(self.store, "path", None), self.settings.secret_key)
        return self._vault

    # ------------------------------------------------------------ events
    def on(self, event: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(payload)`` after each committed event of that name (``step.completed``,
        ``var.set``...), or of a family (``step.*``, ``*``). Callbacks run in the run's thread;
        an exception in one is logged and never affects the run."""
        self.listeners.add(event, callback)

    # ------------------------------------------------------------ runs
    def load(self, flow: str | os.PathLike[str] | LoadedFlow) -> LoadedFlow:
        """A validated flow from a path or an already loaded flow."""
        from ..flow import LoadedFlow, load_flow
        if isinstance(flow, LoadedFlow):
            return flow
        return load_flow(flow)

    def run(self, flow: str | os.PathLike[str] | LoadedFlow, inputs: dict[str, Any] | None = None, *,
            run_id: str | None = None, parent_id: str | None = None, detach: bool = False,
            on_start: Callable[[str], None] | None = None) -> Run:
        """Start a run and execute it to its end in this thread; with ``detach``, queue it
        as ``pending`` for a worker (``tether worker``) and return at once.

        With ``run_id`` of an existing run of the same flow (by name), return that run
        untouched (``created`` False); ConflictError when the id belongs to another flow.
        ``on_start(run_id)`` is called once the new run exists, before its first step."""
        from ..env import read_env, snapshot
        from ..flow import trusted_digest
        from .inputs import resolve_inputs
        loaded = self.load(flow)
        resolved = resolve_inputs(loaded.flow, inputs)
        codec.checked(resolved, "inputs")  # refused here, naming the input, not by the store
        env = read_env(loaded.flow)
        rid = check_run_id(run_id) if run_id is not None else new_run_id()
        t = now()
        record = RunRecord(
            run_id=rid, name=loaded.flow.name, status="pending" if detach else "running",
            flow_text=loaded.text,
            flow_path=(str(Path(loaded.name).resolve())
                       if loaded.name and not loaded.name.startswith("<") else None),
            inputs=resolved, parent_id=parent_id, created_at=t, started_at=None if detach else t,
            cursor=UNSTARTED,
            durability=loaded.flow.checkpoint.durability,
            env_snapshot=snapshot(loaded.flow, env, os.urandom(16)), flow_data=loaded.data,
            flow_digest=trusted_digest(loaded.data))
        record, created = self.store.create_run(record, None if detach else owner_id(),
                                                0.0 if detach else self.lease_seconds)
        if not created and record.name != loaded.flow.name:
            raise ConflictError(f"run id {rid} is taken by a run of flow {record.name!r}, "
                                f"not {loaded.flow.name!r}",
                                hint="give another --run-id, or omit it to get a new one")
        if not created or detach:
            return self._to_run(record, created=created)
        if on_start is not None:
            on_start(rid)
        return self._execute(loaded, record, env)

    def work_once(self, owner: str | None = None, release: threading.Event | None = None) -> Run | None:
        """Claim one queued or abandoned run and execute it here; None when there is none.

        A run queued by ``run(detach=True)`` starts with this process's environment; a run
        taken over from a dead owner, or released by a stopping worker, continues with its
        environment compared as ``resume`` compares it (a refusal fails the run). A run
        whose owner died on this host is taken at once, without waiting for its lease; one
        taken over more than ``max_recoveries`` times without progress is failed with
        MaxRecoveriesExceeded instead of run again. Setting ``release`` makes the run stop
        after its current step and go back to ``pending``."""
        from .claims import claim
        claimed = claim(self.store, owner or owner_id(), self.lease_seconds, self.max_recoveries)
        if claimed is None:
            return None
        if claimed.loaded is None or claimed.env is None:  # failed at once
            return self.get_run(claimed.record.run_id)
        return self._execute(claimed.loaded, claimed.record, claimed.env, release=release)

    def _execute(self, loaded: LoadedFlow, record: RunRecord, env: dict[str, str | None],
                 resume_set: dict[str, Any] | None = None, release: threading.Event | None = None) -> Run:
        from ..env import secret_values
        from ..flow import computed_dependencies
        from .runner import Runner
        runner = Runner(self.store, loaded, record, env=env, secrets=secret_values(loaded.flow, env),
                        ttl=self.lease_seconds, emit=self.listeners.emit,
                        computed_deps=computed_dependencies(loaded.flow), vault=self.vault,
                        listening=self.listeners.any)
        runner.resume_set = dict(resume_set or {})
        runner.settings = self.settings
        if release is not None:
            runner.release = release
        runner.run_child = lambda path, inputs, child_id: self._run_child(path, inputs, child_id,
                                                                          record.run_id, resume_set)
        with self._lock:
            self._runners.add(runner)
        try:
            final = runner.execute()
        except KeyboardInterrupt as stop:  # SIGINT, or SIGTERM in the CLI: stop the steps, run interrupted
            runner.hand_back(hold=True)  # stopped on purpose: it waits for a resume, no worker takes it
            if isinstance(stop, Interrupted):
                stop.run_id = record.run_id  # the outermost run, set last
            raise
        finally:
            with self._lock:
                self._runners.discard(runner)
        values = {n: ("***" if runner.state.meta[n].secret else v)
                  for n, v in runner.state.snapshot().items()}
        return self._to_run(final, values=values)

    def interrupt_all(self) -> list[str]:
        """Stop every run this engine is executing now, from any thread: each one's step
        processes are killed and it is handed back as ``interrupted`` (its runner then
        stops at its next write). The ids of those runs."""
        with self._lock:
            runners = list(self._runners)
        for runner in runners:
            runner.hand_back()
        return [r.run_id for r in runners]

    def _run_child(self, path: Path, inputs: dict[str, Any], child_id: str, parent_id: str,
                   resume_set: dict[str, Any] | None) -> Run:
        """Run a sub-flow, or continue it when a previous attempt of the step started it."""
        try:
            child = self.store.load_run(child_id)
        except NotFound:
            return self.run(path, inputs, run_id=child_id, parent_id=parent_id)
        status = status_of(child)
        if status in ("completed", "cancelled"):
            return self._to_run(child)
        return self.resume(child_id, set=resume_set if status == "paused" else None)

    # ------------------------------------------------------------ resume
    def stored_flow(self, record: RunRecord) -> LoadedFlow:
        """The flow a run started with (its text is stored with the run)."""
        return stored_flow(self.store, record)

    def resume(self, run_id: str, *, set: dict[str, Any] | None = None, from_step: str | None = None,
               retry_failed: bool = False,
               flow: str | os.PathLike[str] | None = None, rerun_changed: bool = False,
               env: dict[str, str] | None = None, env_policy: str | None = None,
               report: Callable[[str, Any], None] | None = None) -> Run:
        """Continue a failed, interrupted or paused run (or re-run part of a completed one
        with ``from_step``). Completed steps are not re-run; ``set`` is written in the same
        transaction that takes the run over. ``report(kind, data)`` receives the
        environment differences (``"env"``) and the flow change report (``"flow"``) before
        anything is changed. ConflictError (nothing changed) when another live process owns
        the run or the environment is refused."""
        from ..flow import load_flow
        from .resume import check_resumable, plan_resume
        record = self.store.load_run(check_run_id(run_id))
        for name in set or {}:  # bad input is a usage error whatever state the run is in
            check_var_name(name)
        new_flow = None if flow is None else load_flow(flow)
        check_resumable(record, from_step=from_step, retry_failed=retry_failed, rerun_changed=rerun_changed)
        old = self.stored_flow(record)
        if new_flow is not None and new_flow.flow.name != old.flow.name:
            raise UsageError(f"{flow} is flow {new_flow.flow.name!r}; run {run_id} runs {old.flow.name!r}")
        plan = plan_resume(self.store, record, old, self.vault, environ={**os.environ, **(env or {})},
                           values=set, from_step=from_step, retry_failed=retry_failed, new_flow=new_flow,
                           rerun_changed=rerun_changed, env_policy=env_policy, report=report)
        taken = self.store.acquire_lease(run_id, owner_id(), self.lease_seconds, steal_epoch=plan.steal_epoch,
                                         takeover=plan.takeover)
        if plan.new_flow:
            taken = self._switch_flow(taken, plan.loaded)
        return self._execute(plan.loaded, taken, plan.env, resume_set=set)

    def _switch_flow(self, record: RunRecord, loaded: LoadedFlow) -> RunRecord:
        from dataclasses import replace

        from ..flow import trusted_digest
        digest = trusted_digest(loaded.data)
        self.store.set_flow(record.run_id, record.lease_epoch, loaded.text, str(Path(loaded.name).resolve()),
                            loaded.data, digest)
        return replace(record, flow_text=loaded.text, flow_path=str(Path(loaded.name).resolve()),
                       flow_digest=digest)

    def fork(self, run_id: str, *, from_step: str | None = None, set: dict[str, Any] | None = None,
             new_run_id: str | None = None, on_start: Callable[[str], None] | None = None) -> Run:
        """Start and run a new run (``parent_id`` = ``run_id``) from the original's state as of
        the checkpoint before ``from_step`` first started (default: its last checkpoint).
        The original is not changed. ``on_start(new_run_id)`` is called once the new run
        exists, before its first step."""
        from .fork import create_fork
        src = self.store.load_run(check_run_id(run_id))
        loaded = self.stored_flow(src)
        record, env = create_fork(self.store, self.vault, src, loaded, from_step=from_step, values=set,
                                  fork_id=new_run_id, lease_seconds=self.lease_seconds)
        if on_start is not None:
            on_start(record.run_id)
        return self._execute(loaded, record, env, resume_set=set)

    def verify(self, run_id: str) -> dict[str, Any]:
        """Re-render the recorded templates of the run's completed steps against the state as of
        each step: ``{run_id, ok, checked, differences, volatile}``."""
        from .verify import verify_run
        record = self.store.load_run(check_run_id(run_id))
        loaded = self.stored_flow(record)
        return verify_run(self.store, record, loaded, self.vault, dict(os.environ)).to_dict()

    # ------------------------------------------------------------ control
    def pause(self, run_id: str) -> str:
        """Ask the running run to stop after its current step; returns its status now."""
        return control.pause(self.store, run_id)

    def cancel(self, run_id: str) -> str:
        """Stop the run now (see :func:`tether.engine.control.cancel`); returns the status it had."""
        return control.cancel(self.store, run_id, self.lease_seconds)

    def run_text(self, text: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Run:
        """Like :meth:`run` for flow text (imports resolve against the current folder)."""
        from ..flow import load_flow_text
        return self.run(load_flow_text(text), inputs, **kwargs)

    def _to_run(self, record: RunRecord, *, values: dict[str, Any] | None = None,
                created: bool = True) -> Run:
        if values is None:
            values = self.vars(record.run_id)
        status = status_of(record)
        pause = record.cursor.get("pause") if status == "paused" and isinstance(record.cursor, dict) else None
        return Run(record.run_id, record.name, status, record.outputs, record.error,
                   values, record.parent_id, record.seq, created, pause)

    def get_run(self, run_id: str) -> Run:
        """The run as committed; NotFound if there is none."""
        return self._to_run(self.store.load_run(check_run_id(run_id)))

    def record(self, run_id: str) -> RunRecord:
        return self.store.load_run(check_run_id(run_id))

    def runs(self, status: str | None = None, limit: int = 50, before: str | None = None) -> list[RunRecord]:
        """Runs, newest first; ``status`` may be ``interrupted``; UsageError for a status
        that does not exist."""
        return run_reads.runs(self.store, status, limit, before)

    def steps(self, run_id: str) -> list[StepRecord]:
        return self.store.steps(check_run_id(run_id))

    def events(self, run_id: str, after_seq: int = 0) -> list[EventRecord]:
        """The run's events after checkpoint ``after_seq``; NotFound for an unknown run."""
        return run_reads.events(self.store, run_id, after_seq)

    def gc(self, *, older_than: float | str | None = None, statuses: str | list[str] | None = None,
           keep_last: int | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Delete finished runs in bounded batches and report it (see :mod:`.retention`);
        without ``older_than``: each flow's ``retention:``, else TETHER_RETENTION, else 30 days."""
        from .retention import gc
        return gc(self.store, older_than=older_than, statuses=statuses, keep_last=keep_last, dry_run=dry_run,
                  default_age=self.settings.retention, use_flows=older_than is None)

    def delete_run(self, run_id: str) -> dict[str, Any]:
        """Delete one finished run and all of it; NotFound, or ConflictError if unfinished."""
        from .retention import delete_run
        return delete_run(self.store, check_run_id(run_id))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

