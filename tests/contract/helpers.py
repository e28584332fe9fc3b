"""Records the contract tests build: a run, a variable write, a queued run."""
from __future__ import annotations

from tether.store import codec
from tether.store.base import RunRecord, VarWrite


def new_run(store, run_id: str = "r1", owner: str = "me", ttl: float = 30.0):
    rec = RunRecord(run_id=run_id, name="f", status="running", flow_text="name: f", flow_path=None,
                    inputs={"a": 1}, cursor={"next": "s1"})
    return store.create_run(rec, owner, ttl)


def var(name: str, value, **kw) -> VarWrite:
    return VarWrite(name, codec.encode(value), **kw)


def queued(store, run_id: str):
    rec = RunRecord(run_id=run_id, name="f", status="pending", flow_text="name: f", flow_path=None,
                    inputs={}, cursor={"next": None, "unstarted": True})
    return store.create_run(rec, None, 0.0)[0]
