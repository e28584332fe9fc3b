"""A stored run made whole again from what it committed: its flow (from the stored parsed
data, or its text) and a computed variable evaluated against its committed state."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CorruptRecord, FlowError, NotFound
from ..store.base import RunRecord, Store, VarRecord, now

if TYPE_CHECKING:
    from ..flow import LoadedFlow
    from ..vault import Vault


def stored_flow(store: Store, record: RunRecord) -> LoadedFlow:
    """The flow a run started with (its text is stored with the run); CorruptRecord when
    it no longer loads."""
    from ..flow import load_flow_text, load_trusted
    base = str(Path(record.flow_path).parent) if record.flow_path else "."
    name = record.flow_path or f"<run {record.run_id}>"
    data = record.flow_data if record.flow_data is not None else store.flow_data(record.run_id)
    try:
        if data is not None:
            return load_trusted(data, record.flow_text, name, base, record.flow_digest)
        return load_flow_text(record.flow_text, name, base)
    except (FlowError, ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        raise CorruptRecord(f"run {record.run_id}: the stored flow no longer loads (damaged?): "
                            f"{exc}") from None


def computed_var(store: Store, vault: Vault, run_id: str, name: str, ttl: float) -> VarRecord:
    """A computed variable of the run, evaluated now against its committed state exactly as
    a template of the run would see it (type ``computed``, version 0); NotFound when the
    run's flow has no such computed variable."""
    from ..env import mask, recorded_env, secret_values
    from ..flow import computed_dependencies
    from .runner import Runner
    record = store.load_run(run_id)
    loaded = stored_flow(store, record)
    if name not in loaded.flow.computed:
        raise NotFound(f"run {run_id} has no variable {name!r}")
    resumed = store.events_of_type(run_id, "run.resumed")  # the latest one's environment holds now
    changes = resumed[-1].data.get("env") if resumed and isinstance(resumed[-1].data, dict) else None
    env = recorded_env(loaded.flow, record.env_snapshot, changes)
    runner = Runner(store, loaded, record, env=env, secrets=secret_values(loaded.flow, env),
                    ttl=ttl, emit=lambda *_: None, computed_deps=computed_dependencies(loaded.flow),
                    vault=vault, listening=lambda: False)
    runner.load_committed()
    value = mask(runner.state.get(name), runner.secrets)
    t = now()
    return VarRecord(name, value, "computed", "run", 0, None, t, t, t, 0)
