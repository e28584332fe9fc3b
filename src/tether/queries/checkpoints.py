"""Time travel over a run's commits, read-only: the list of its checkpoints, a checkpoint
named by seq or step id, the variables as of one, and the difference between two."""
from __future__ import annotations

from typing import Any

from ..errors import NotFound
from ..ids import check_run_id
from ..store import codec
from ..store.base import Store, hidden_ranges, is_hidden


def checkpoints(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every checkpoint: ``{seq, at, steps, events, vars}``. ``steps`` names the steps
    and loop iterations (``LOOP_KEY[INDEX]``) it committed, ``vars`` each variable it
    wrote once, ``at`` is the latest time recorded with it (its commit time when it
    wrote an event or a variable)."""
    check_run_id(run_id)
    store.load_run(run_id)
    out: dict[int, dict[str, Any]] = {}

    def row(seq: int, at: float | None) -> dict[str, Any]:
        cp = out.setdefault(seq, {"seq": seq, "at": at, "steps": [], "events": [], "vars": []})
        if at is not None and (cp["at"] is None or at > cp["at"]):
            cp["at"] = at
        return cp
    for e in store.events(run_id):
        cp = row(e.seq, e.at)
        cp["events"].append(e.type)
        if e.step_id and e.step_id not in cp["steps"]:
            cp["steps"].append(e.step_id)
    for seq, loop_key, idx, finished_at in store.iteration_checkpoints(run_id):
        row(seq, finished_at)["steps"].append(f"{loop_key}[{idx}]")
    for seq, name, at in store.var_changes(run_id):
        cp = row(seq, at)
        if name not in cp["vars"]:
            cp["vars"].append(name)
    return [out[k] for k in sorted(out)]


def checkpoint_of(store: Store, run_id: str, ref: str | int) -> int:
    """A checkpoint given as a seq number or a step id (the step's latest commit)."""
    record = store.load_run(check_run_id(run_id))
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        seq = int(ref)
        if not 0 <= seq <= record.seq:
            raise NotFound(f"run {run_id} has checkpoints 0..{record.seq}, not {seq}")
        return seq
    hidden = hidden_ranges(record.cursor)
    seqs = [r.seq for r in store.steps(run_id) if r.step_id == ref and not is_hidden(r.seq, hidden)]
    if not seqs:
        raise NotFound(f"run {run_id} has no committed step {ref!r}")
    return max(seqs)


def state_at(store: Store, run_id: str, ref: str | int) -> dict[str, Any]:
    """Variables as of a checkpoint (secret ones as ``***``)."""
    seq = checkpoint_of(store, run_id, ref)
    secret = {n for n, v in store.read_vars(run_id).items() if v.secret}
    return {n: ("***" if n in secret else v) for n, v in store.state_at(run_id, seq).items()}


def diff(store: Store, run_id: str, a: str | int, b: str | int) -> dict[str, Any]:
    """Variables added, removed and changed from checkpoint ``a`` to ``b``."""
    sa, sb = checkpoint_of(store, run_id, a), checkpoint_of(store, run_id, b)
    va, vb = state_at(store, run_id, sa), state_at(store, run_id, sb)
    return {"from": sa, "to": sb,
            "added": {n: vb[n] for n in sorted(vb.keys() - va.keys())},
            "removed": {n: va[n] for n in sorted(va.keys() - vb.keys())},
            "changed": {n: {"from": va[n], "to": vb[n]} for n in sorted(va.keys() & vb.keys())
                        if codec.dumps(va[n]) != codec.dumps(vb[n])}}
