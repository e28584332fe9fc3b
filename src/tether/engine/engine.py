"""The Python API: start runs, read and write their variables, subscribe to events."""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..env import read_env, secret_values, snapshot
from ..errors import NotFound, UsageError
from ..ids import check_run_id, check_var_name, new_run_id
from ..spec import LoadedFlow, computed_dependencies, load_flow, load_flow_text
from ..store import open_store
from ..store import codec
from ..store.base import EventRecord, HistoryRecord, RunRecord, StepRecord, Store, VarRecord, VarWrite, now
from .inputs import resolve_inputs
from .lease import owner_id
from .runner import Runner
from ..vault import Vault, vault_for

log = logging.getLogger(__name__)
EVENT_KINDS = ("run.", "step.", "var.")


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

    @property
    def ok(self) -> bool:
        return self.status == "completed"


class Engine:
    """Runs flows against one store (``db``: a URL, or ``TETHER_DB``, or the default SQLite file)."""

    def __init__(self, db: str | Store | None = None, *, lease_seconds: float | None = None) -> None:
        self.store: Store = db if db is not None and not isinstance(db, str) else open_store(db)
        self.lease_seconds = lease_seconds or float(os.environ.get("TETHER_LEASE_SECONDS", "30"))
        self._listeners: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._lock = threading.Lock()
        self._vault: Vault | None = None

    @property
    def vault(self) -> Vault:
        """Encrypts secret variables; its key is made on first use (see tether.vault)."""
        if self._vault is None:
            self._vault = vault_for(getattr(self.store, "path", None))
        return self._vault

    # ------------------------------------------------------------ events
    def on(self, event: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(payload)`` after each committed event of that name (``step.completed``,
        ``var.set``...), or of a family (``step.*``, ``*``). Callbacks run in the run's thread;
        an exception in one is logged and never affects the run."""
        if not (event == "*" or event.startswith(EVENT_KINDS)):
            raise UsageError(f"unknown event {event!r}: use run.*, step.*, var.* or an exact name")
        with self._lock:
            self._listeners.setdefault(event, []).append(callback)

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        if not self._listeners:
            return
        family = event.split(".", 1)[0] + ".*"
        for key in (event, family, "*"):
            for cb in self._listeners.get(key, ()):
                try:
                    cb({"event": event, **payload})
                except Exception:  # a listener's bug must not break the run
                    log.exception("event listener for %s failed", event)

    # ------------------------------------------------------------ runs
    def load(self, flow: str | os.PathLike[str] | LoadedFlow) -> LoadedFlow:
        """A validated flow from a path or an already loaded flow."""
        if isinstance(flow, LoadedFlow):
            return flow
        return load_flow(flow)

    def run(self, flow: str | os.PathLike[str] | LoadedFlow, inputs: dict[str, Any] | None = None, *,
            run_id: str | None = None, parent_id: str | None = None) -> Run:
        """Start a run and execute it to its end in this thread.

        With ``run_id`` of an existing run, return that run untouched (``created`` False)."""
        loaded = self.load(flow)
        resolved = resolve_inputs(loaded.flow, inputs)
        env = read_env(loaded.flow)
        rid = check_run_id(run_id) if run_id is not None else new_run_id()
        t = now()
        record = RunRecord(
            run_id=rid, name=loaded.flow.name, status="running", flow_text=loaded.text,
            flow_path=str(Path(loaded.name).resolve()) if loaded.name and not loaded.name.startswith("<") else None,
            inputs=resolved, parent_id=parent_id, created_at=t, started_at=t, cursor={"next": None},
            durability=loaded.flow.checkpoint.durability,
            env_snapshot=snapshot(loaded.flow, env, os.urandom(16)))
        record, created = self.store.create_run(record, owner_id(), self.lease_seconds)
        if not created:
            return self._to_run(record, created=False)
        runner = Runner(self.store, loaded, record, env=env, secrets=secret_values(loaded.flow, env),
                        ttl=self.lease_seconds, emit=self._emit,
                        computed_deps=computed_dependencies(loaded.flow), vault=self.vault)
        final = runner.execute()
        return self._to_run(final, values=runner.state.snapshot())

    def run_text(self, text: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Run:
        """Like :meth:`run` for flow text (imports resolve against the current folder)."""
        return self.run(load_flow_text(text), inputs, **kwargs)

    def _to_run(self, record: RunRecord, *, values: dict[str, Any] | None = None, created: bool = True) -> Run:
        if values is None:
            values = self.vars(record.run_id)
        return Run(record.run_id, record.name, record.effective_status(), record.outputs, record.error,
                   values, record.parent_id, record.seq, created)

    def get_run(self, run_id: str) -> Run:
        """The run as committed; NotFound if there is none."""
        return self._to_run(self.store.load_run(check_run_id(run_id)))

    def record(self, run_id: str) -> RunRecord:
        return self.store.load_run(check_run_id(run_id))

    def runs(self, status: str | None = None, limit: int = 50, before: str | None = None) -> list[RunRecord]:
        """Runs, newest first; ``status`` may be ``interrupted``."""
        if status == "interrupted":
            return [r for r in self.store.list_runs("running", limit * 4, before)
                    if r.effective_status() == "interrupted"][:limit]
        return self.store.list_runs(status, limit, before)

    def steps(self, run_id: str) -> list[StepRecord]:
        return self.store.steps(check_run_id(run_id))

    def events(self, run_id: str, after_seq: int = 0) -> list[EventRecord]:
        check_run_id(run_id)
        self.store.load_run(run_id)
        return self.store.events(run_id, after_seq)

    # ------------------------------------------------------------ variables
    def vars(self, run_id: str) -> dict[str, Any]:
        """``{name: value}`` of the run's current variables (secret ones as ``***``)."""
        check_run_id(run_id)
        self.store.load_run(run_id)
        return {n: ("***" if v.secret else v.value) for n, v in sorted(self.store.read_vars(run_id).items())}

    def variable(self, run_id: str, name: str, *, reveal: bool = False) -> VarRecord:
        """One variable with its metadata; counts as an access. NotFound if absent.
        A secret variable's value is ``***`` unless ``reveal``."""
        rec = self.store.read_var(check_run_id(run_id), check_var_name(name), count_access=True)
        return self._reveal(rec) if reveal else _masked(rec)

    def _reveal(self, rec: VarRecord) -> VarRecord:
        if not rec.secret:
            return rec
        from dataclasses import replace
        return replace(rec, value=self.vault.decrypt(rec.value, f"variable {rec.name}"))

    def set_var(self, run_id: str, name: str, value: Any, expected_version: int | None = None, *,
                scope: str = "run", source: str = "api", secret: bool = False) -> VarRecord:
        """Write a ``user_defined`` variable as its own checkpoint; ConflictError when
        ``expected_version`` is given and stale. A running run sees it from its next step.
        A ``secret`` value is stored encrypted and shown as ``***``."""
        check_run_id(run_id)
        check_var_name(name)
        if scope not in ("run", "temp"):
            raise UsageError(f"scope must be 'run' or 'temp', not {scope!r}")
        stored = self.vault.encrypt(value) if secret else value
        write = VarWrite(name, codec.encode(stored), "user_defined", scope, source, secret)
        return _masked(self.store.set_var(run_id, write, expected_version))

    def delete_var(self, run_id: str, name: str, expected_version: int | None = None, *,
                   source: str = "api") -> bool:
        """Remove a variable (its history is kept); NotFound if it does not exist."""
        if not self.store.delete_var(check_run_id(run_id), check_var_name(name), source, expected_version):
            raise NotFound(f"run {run_id} has no variable {name!r}")
        return True

    def history(self, run_id: str, name: str) -> list[HistoryRecord]:
        """Every write of the variable, oldest first; NotFound if it never existed."""
        check_run_id(run_id)
        check_var_name(name)
        self.store.load_run(run_id)
        rows = self.store.var_history(run_id, name)
        if not rows:
            raise NotFound(f"run {run_id} has no variable {name!r}")
        try:
            secret = self.store.read_var(run_id, name).secret
        except NotFound:
            secret = False
        if secret:
            from dataclasses import replace
            rows = [replace(h, value=None if h.deleted else "***") for h in rows]
        return rows

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _masked(rec: VarRecord) -> VarRecord:
    if not rec.secret:
        return rec
    from dataclasses import replace
    return replace(rec, value="***")
